"""The layers' import rules, checked on the source: parsers and analysis stay below capture, app, report and cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "profkit"

#: layer -> the profkit modules (and their submodules) it may import
ALLOWED = {
    "parsers": ("profkit.parsers", "profkit.errors", "profkit.jsonio"),
    "analysis": ("profkit.analysis", "profkit.parsers", "profkit.model", "profkit.naming", "profkit.errors"),
    # documents are data: they may wrap analysis results, never reach into capture, app, report or cli
    "model": (
        "profkit.model",
        "profkit.analysis",
        "profkit.parsers",
        "profkit.errors",
        "profkit.jsonio",
        "profkit.naming",
    ),
}
FORBIDDEN = ("profkit.capture", "profkit.app", "profkit.report", "profkit.cli")


def _modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in(source: str, package: str) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, function-level imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*parts, node.module] if node.module else parts)
            found.add(module)
            if module == "profkit" or not node.module:  # `from profkit import naming`, `from . import x`
                found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imports_of(path: Path) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    return imports_in(path.read_text(encoding="utf-8"), package)


def _profkit_imports(path: Path) -> set[str]:
    return {name for name in imports_of(path) if name == "profkit" or name.startswith("profkit.")}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_pure_layers_import_only_what_they_may(layer: str) -> None:
    assert _modules(layer), f"no modules under profkit/{layer}"
    wrong = {}
    for path in _modules(layer):
        imported = _profkit_imports(path)
        bad = sorted(n for n in imported if n != "profkit" and not _within(n, ALLOWED[layer]))
        if bad:
            wrong[str(path.relative_to(PACKAGE.parent))] = bad
    assert not wrong, f"profkit/{layer} imports outside its layer: {wrong}"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_pure_layers_import_nothing_from_the_layers_above(layer: str) -> None:
    wrong = {
        str(path.relative_to(PACKAGE.parent)): sorted(n for n in _profkit_imports(path) if _within(n, FORBIDDEN))
        for path in _modules(layer)
    }
    assert not {k: v for k, v in wrong.items() if v}


def test_no_parser_runs_a_program() -> None:
    for path in _modules("parsers"):
        imported = imports_of(path)
        assert not _within_any(imported, ("subprocess", "os.system", "multiprocessing")), path
        source = path.read_text(encoding="utf-8")
        assert "os.system(" not in source and "os.popen(" not in source, path


def _within_any(names: set[str], prefixes: tuple[str, ...]) -> bool:
    return any(_within(name, prefixes) for name in names)


def test_the_import_check_sees_every_form() -> None:
    """The checker itself: plain, from, relative, function-level and `from profkit import x` imports."""
    source = (
        "import subprocess\nfrom profkit import naming\nfrom .tables import SCHEMAS\nfrom . import kineto\n"
        "from ..errors import ProfkitError\ndef f():\n    from profkit.capture.run import TRACE_FILE\n"
    )
    found = imports_in(source, "profkit.parsers")
    expected = {"subprocess", "profkit.naming", "profkit.parsers.tables", "profkit.parsers.kineto", "profkit.errors"}
    assert expected | {"profkit.capture.run"} <= found
    assert not _within_any(found - {"profkit.capture.run"}, FORBIDDEN) and _within_any(found, FORBIDDEN)
