"""The one Jinja2 environment: autoescaping on, templates shipped inside the package."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jinja2

from profkit.analysis.kernel_names import short_kernel_name
from profkit.errors import EXIT_RUN_FAILED, ProfkitError


def templates_dir() -> Path:
    """The templates shipped inside the package (``profkit/report/templates``)."""
    folder = Path(__file__).resolve().parent / "templates"
    if not (folder / "base.html.j2").is_file():
        raise ProfkitError("profkit's HTML templates are missing from this installation", EXIT_RUN_FAILED)
    return folder


def format_ms(us: float | None, digits: int = 2) -> str:
    if us is None:
        return "n/a"
    return f"{us / 1000:,.{digits}f} ms"


def format_us(us: float | None) -> str:
    if us is None:
        return "n/a"
    if us >= 1000:
        return f"{us / 1000:,.2f} ms"
    return f"{us:,.1f} µs"


def format_pct(share: float | None, digits: int = 1) -> str:
    if share is None:
        return "n/a"
    return f"{share * 100:.{digits}f}%"


def plural(count: int | float | None, noun: str, many: str | None = None) -> str:
    """``1 stream``, ``2 streams``, ``1 synchronization call`` (``many`` for irregular plurals)."""
    if count is None:
        return f"n/a {many or noun + 's'}"
    shown = f"{count:,}" if isinstance(count, int) else f"{count:,.0f}"
    return f"{shown} {noun if count == 1 else (many or noun + 's')}"


def format_speedup(ratio: float | None) -> str:
    if ratio is None or ratio != ratio:
        return "n/a"
    return f"{ratio:.2f}x"


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (compiling them costs more than rendering a report)."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "profkit" / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(folder)) if os.access(folder, os.W_OK) else None


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        bytecode_cache=_bytecode_cache(),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ms=format_ms, us=format_us, pct=format_pct, speedup=format_speedup, kname=short_kernel_name, plural=plural
    )
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)
