"""Hostile documents: capture metadata with wrong types, comparisons without a shared basis, tampered bench results.

:data:`CASES` is the table: what is built, the command, the exit code and the start of the first stderr line
(``None``: a clean run, whose terminal output must contain ``says``). Every row runs in-process through the app
function behind the command (the error rendered as the CLI renders it); rows marked ``cli`` also run as a
``python -m profkit`` subprocess (slow) to prove the one-line contract end to end. The fuzzer replaces fields of
a capture metadata document by values of other JSON types: the result is a clean analysis and comparison, or a
:class:`~profkit.errors.ProfkitError` of one line naming the file and the field.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rich.console import Console

from profkit.analysis.bench.summary import summarize_bench
from profkit.app.analyze import analyze_path
from profkit.app.bench import CostOptions, GateOptions, check
from profkit.app.compare import compare_paths
from profkit.cli.errors import error_line
from profkit.errors import ProfkitError
from profkit.model.bench import BenchResult
from profkit.model.capture import METADATA_FILE, TRACE_FILE, CaptureMetadata
from profkit.report.terminal import print_bench, print_comparison
from tests.benchbuilder import bench_result
from tests.conftest import REPO, run_cli
from tests.tracebuilder import TraceBuilder, diffusion_trace

FP32 = REPO / "traces" / "tiny-sd_fp32_4steps_64x64_b1"
FP16 = REPO / "traces" / "tiny-sd_fp16_4steps_64x64_b1"
SECONDS = 30  # every row, in-process or not, finishes well within this

Edit = Callable[[dict[str, Any]], None]


# ---------------------------------------------------------------- builders


def _capture(folder: Path, source: Path, edit: Edit | None = None) -> Path:
    """A capture folder: the trace of ``source`` and its metadata, edited."""
    folder.mkdir(parents=True)
    shutil.copy(source / TRACE_FILE, folder / TRACE_FILE)
    metadata = orjson.loads((source / METADATA_FILE).read_bytes())
    if edit is not None:
        edit(metadata)
    (folder / METADATA_FILE).write_bytes(orjson.dumps(metadata))
    return folder


def metadata_pair(edit: Edit) -> Callable[[Path], None]:
    """Capture folders ``a`` (metadata edited) and ``b`` (as captured)."""

    def build(tmp: Path) -> None:
        _capture(tmp / "a", FP32, edit)
        _capture(tmp / "b", FP16)

    return build


def _set(path: str, value: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        for parent in parents:
            data = data[parent]
        data[key] = value

    return edit


def cpu_and_gpu(tmp: Path) -> None:
    """A CPU-only trace and a GPU trace, neither with profkit ranges: no time measured the same way."""
    TraceBuilder(device_name=None).cpu_op("aten::mm", 0, 500).cpu_op("aten::add", 600, 100).write(tmp / "cpu.json")
    gpu = TraceBuilder()
    gpu.cpu_op("aten::mm", 0, 50)
    gpu.kernel("sm90_xmma_gemm_f16f16_f16f32", 10, 20, 400)
    gpu.write(tmp / "gpu.json")


def same_trace(tmp: Path) -> None:
    diffusion_trace(steps=3).write(tmp / "a.json")
    shutil.copy(tmp / "a.json", tmp / "copy.json")


def _bench(edit: Callable[[dict[str, Any]], None] | None = None, **fields: Any) -> bytes:
    data = orjson.loads(msgspec.structs.replace(bench_result(6), **fields).to_json())
    if edit is not None:
        edit(data)
    return orjson.dumps(data)


def _trial(field: str, value: Any, config: int = 0, trial: int = 1) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        data["configs"][config]["trials"][trial][field] = value

    return edit


def bench_pair(new: bytes | None = None, baseline: bytes | None = None) -> Callable[[Path], None]:
    """``new.json`` and ``base.json``: a good result unless given."""

    def build(tmp: Path) -> None:
        (tmp / "base.json").write_bytes(baseline if baseline is not None else _bench())
        (tmp / "new.json").write_bytes(new if new is not None else _bench())

    return build


def _summarized(edit: Edit | None = None) -> bytes:
    """A good result with its summary stored, then edited (a hand-altered file)."""
    result = bench_result(6)
    data = orjson.loads(result.with_summary(summarize_bench(result)).to_json())
    if edit is not None:
        edit(data)
    return orjson.dumps(data)


def _p50(value: float) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        data["summary"]["configs"][0]["metrics"]["e2e_ms"]["p50"] = value

    return edit


def _only_config(name: str) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        data["configs"] = [
            {**c, "name": name, "trials": [{**t, "config": name} for t in c["trials"]]} for c in data["configs"][:1]
        ]
        data["order"] = [name] * len(data["configs"][0]["trials"])

    return edit


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], None]
    command: tuple[str, ...]  # "{tmp}" is the case's folder
    code: int
    first_line: str | None  # the start of the one stderr line; None: a clean run
    says: str = ""  # what the terminal output of a clean run must contain


def row(name: str, case: Case, cli: bool = False) -> Any:
    return pytest.param(case, cli, id=name)


COMPARE = ("compare", "{tmp}/a", "{tmp}/b", "-o", "{tmp}/out.html", "--force")
GATE = ("check", "{tmp}/new.json", "--baseline", "{tmp}/base.json", "--fail-if-slower", "10")
CHECK = ("check", "{tmp}/new.json", "--baseline", "{tmp}/base.json")
INVALID_META = "profkit: error: {tmp}/a/metadata.json: invalid profkit.capture document: "
INVALID_NEW = "profkit: error: {tmp}/new.json: invalid profkit.bench document: "
INVALID_BASE = "profkit: error: {tmp}/base.json: invalid profkit.bench document: "

CASES = [
    # -- capture metadata whose fields have the wrong type: refused on load, file and field named
    row(
        "metadata-device-is-a-string",
        Case(
            metadata_pair(_set("device", "cuda")),
            COMPARE,
            2,
            INVALID_META + "Expected `object`, got `str` - at `$.device`",
        ),
        cli=True,
    ),
    row(
        "metadata-settings-is-a-string",
        Case(metadata_pair(_set("settings", "fast")), COMPARE, 2, INVALID_META + "Expected `object | null`, got `str`"),
    ),
    row(
        "metadata-steps-is-a-list",
        Case(
            metadata_pair(_set("settings.steps", [4])),
            COMPARE,
            2,
            INVALID_META + "Expected `int`, got `array` - at `$.settings.steps`",
        ),
    ),
    row(
        "metadata-precision-switch-is-an-object",
        Case(
            metadata_pair(_set("precision.cudnn_allow_tf32", {"a": 1})),
            COMPARE,
            2,
            INVALID_META + "Expected `bool | int | float | str | null`, got `object`",
        ),
    ),
    row(
        "metadata-timing-is-a-number",
        Case(
            metadata_pair(_set("timing_seconds", 1.5)),
            COMPARE,
            2,
            INVALID_META + "Expected `object`, got `float` - at `$.timing_seconds`",
        ),
    ),
    row(
        "metadata-images-is-a-string",
        Case(
            metadata_pair(_set("files.images", "images/image_000.png")),
            COMPARE,
            2,
            INVALID_META + "Expected `array`, got `str` - at `$.files.images`",
        ),
    ),
    row(
        "metadata-without-settings-compares",
        Case(metadata_pair(_set("settings", None)), COMPARE, 0, None, says="tiny-sd fp16 is"),
    ),
    # -- comparisons: one basis on both sides, or a refusal; a trace against itself is said
    row(
        "compare-cpu-only-with-gpu",
        Case(
            cpu_and_gpu,
            ("compare", "{tmp}/cpu.json", "{tmp}/gpu.json", "-o", "{tmp}/c.html"),
            2,
            "profkit: error: cannot compare cpu (no profkit ranges, CPU operators only) with gpu (no profkit ranges, "
            "GPU activity)",
        ),
        cli=True,
    ),
    row(
        "compare-a-trace-with-itself",
        Case(
            same_trace,
            ("compare", "{tmp}/a.json", "{tmp}/a.json", "-o", "{tmp}/c.html"),
            0,
            None,
            says="A and B are the same trace",
        ),
        cli=True,
    ),
    row(
        "compare-a-trace-with-its-copy",
        Case(
            same_trace,
            ("compare", "{tmp}/a.json", "{tmp}/copy.json", "-o", "{tmp}/c.html"),
            0,
            None,
            says="A and B are the same trace",
        ),
    ),
    # -- tampered bench results: wrong types and impossible values refused on load, naming the field
    row(
        "bench-time-is-a-word",
        Case(
            bench_pair(new=_bench(_trial("e2e_ms", "fast"))),
            CHECK,
            2,
            INVALID_NEW + "Expected `float | null`, got `str` - at `$.configs[0].trials[1].e2e_ms`",
        ),
        cli=True,
    ),
    row(
        "bench-negative-e2e-in-the-baseline",
        Case(
            bench_pair(baseline=_bench(_trial("e2e_ms", -173.8))),
            GATE,
            2,
            INVALID_BASE + "Expected `float` >= 0.0 - at `$.configs[0].trials[1].e2e_ms`",
        ),
        cli=True,
    ),
    row(
        "bench-negative-inference",
        Case(
            bench_pair(new=_bench(_trial("inference_ms", -1.0))),
            GATE,
            2,
            INVALID_NEW + "Expected `float` >= 0.0 - at `$.configs[0].trials[1].inference_ms`",
        ),
    ),
    row(
        "bench-negative-step",
        Case(
            bench_pair(new=_bench(_trial("steps_ms", [40.0, -40.0]))),
            GATE,
            2,
            INVALID_NEW + "Expected `float` >= 0.0 - at `$.configs[0].trials[1].steps_ms[1]`",
        ),
    ),
    row(
        "bench-negative-stage",
        Case(
            bench_pair(new=_bench(_trial("stage_ms", {"vae": -3.0}))),
            GATE,
            2,
            INVALID_NEW + "Expected `float` >= 0.0 - at `$.configs[0].trials[1].stage_ms[...]`",
        ),
    ),
    row(
        "bench-infinite-time",
        Case(
            bench_pair(new=_bench(_trial("e2e_ms", 1e12 * 10))),
            GATE,
            2,
            INVALID_NEW + "Expected `float` <= 1000000000000.0 - at `$.configs[0].trials[1].e2e_ms`",
        ),
    ),
    row(
        "bench-steps-longer-than-the-call",
        Case(
            bench_pair(new=_bench(_trial("steps_ms", [400.0, 400.0]))),
            GATE,
            2,
            INVALID_NEW + "steps_ms (summed) of a trial of fp32 b1 is 800.000 ms, longer than its whole call",
        ),
        cli=True,
    ),
    row(
        "bench-inference-longer-than-the-call",
        Case(
            bench_pair(new=_bench(_trial("inference_ms", 1000.0))),
            CHECK,
            2,
            INVALID_NEW + "inference_ms of a trial of fp32 b1 is 1000.000 ms",
        ),
    ),
    row(
        "bench-batch-zero",
        Case(
            bench_pair(new=_bench(lambda d: d["configs"][0].update(batch=0))),
            CHECK,
            2,
            INVALID_NEW + "Expected `int` >= 1 - at `$.configs[0].batch`",
        ),
    ),
    # -- stored summaries that disagree with the raw trials: a warning, and a gate refuses
    row(
        "bench-altered-summary-is-said",
        Case(
            bench_pair(new=_summarized(_p50(1.0))),
            CHECK,
            0,
            None,
            says="warning: The summary stored in this result disagrees with its raw trials (fp32 b1 e2e_ms p50: "
            "stored 1",
        ),
        cli=True,
    ),
    row(
        "bench-altered-summary-gate-refuses",
        Case(
            bench_pair(new=_summarized(_p50(1.0))),
            GATE,
            2,
            "profkit: error: {tmp}/new.json: the result's stored summary disagrees with its raw trials (fp32 b1 "
            "e2e_ms p50",
        ),
        cli=True,
    ),
    row(
        "bench-altered-baseline-summary-gate-refuses",
        Case(
            bench_pair(baseline=_summarized(lambda d: d["summary"]["configs"][1].update(trials_ok=99))),
            GATE,
            2,
            "profkit: error: {tmp}/base.json: the baseline's stored summary disagrees with its raw trials (fp32 b2: "
            "the summary counts 99 ok",
        ),
    ),
    row(
        "bench-gate-with-nothing-in-common",
        Case(
            bench_pair(new=_bench(_only_config("fp32 b8"))),
            GATE,
            2,
            "profkit: error: {tmp}/new.json: no configuration has trials to compare with those of the baseline",
        ),
    ),
    # -- partial (interrupted) results: refused as partial, not reported as an interruption now
    row(
        "bench-check-a-partial-result",
        Case(
            bench_pair(new=_bench(status="interrupted")),
            CHECK,
            2,
            "profkit: error: {tmp}/new.json: the result to check is partial (its run was interrupted)",
        ),
        cli=True,
    ),
    row(
        "bench-gate-on-a-partial-baseline",
        Case(
            bench_pair(baseline=_bench(status="interrupted")),
            GATE,
            2,
            "profkit: error: {tmp}/base.json: the baseline result is partial (its run was interrupted)",
        ),
        cli=True,
    ),
    row("bench-clean-gate-passes", Case(bench_pair(), GATE, 0, None, says="fp32 b1")),
]


# ---------------------------------------------------------------- running a row


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def _in_process(args: list[str]) -> str:
    """Run a command through its app function; the terminal output it would print."""
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    if args[0] == "compare":
        outputs = compare_paths(
            Path(args[1]),
            Path(args[2]),
            html=Path(_flag(args, "-o")),
            force="--force" in args,
            allow_different_setups="--force" in args,
        )
        print_comparison(outputs.comparison, console)
    else:
        threshold = _flag(args, "--fail-if-slower")
        gate = GateOptions(Path(_flag(args, "--baseline")), float(threshold) if threshold else None)
        outputs = check(Path(args[1]), CostOptions(), gate, None, False)
        print_bench(outputs.summary, console)
        assert not outputs.regressed
    return out.getvalue()


def _run(case: Case, tmp: Path, cli: bool) -> None:
    case.build(tmp)
    args = [part.replace("{tmp}", str(tmp)) for part in case.command]
    expected = case.first_line.replace("{tmp}", str(tmp)) if case.first_line else None
    started = time.monotonic()
    if cli:
        done = run_cli(*args, timeout=SECONDS)
        assert done.returncode == case.code, done.stderr
        assert "Traceback" not in done.stderr
        lines = done.stderr.strip().splitlines()
        if expected is None:
            assert lines == [], done.stderr
            assert case.says in done.stdout
        else:
            assert len(lines) == 1 and lines[0].startswith(expected), done.stderr
    elif expected is None:
        assert case.says in _in_process(args)
    else:
        with pytest.raises(ProfkitError) as raised:
            _in_process(args)
        line = error_line(raised.value)
        assert raised.value.exit_code == case.code, line
        assert "\n" not in line and line.startswith(expected), line
    assert time.monotonic() - started < SECONDS


@pytest.mark.parametrize(("case", "cli"), CASES)
def test_hostile_document_in_process(case: Case, cli: bool, tmp_path: Path) -> None:
    _run(case, tmp_path, cli=False)


@pytest.mark.slow
@pytest.mark.parametrize(("case", "cli"), [p for p in CASES if p.values[1]])
def test_hostile_document_on_the_command_line(case: Case, cli: bool, tmp_path: Path) -> None:
    _run(case, tmp_path, cli=True)


def test_nan_and_infinity_are_refused_in_memory_too() -> None:
    """JSON has no NaN or infinity (the reader refuses them); a document built in memory is checked the same way."""
    data = orjson.loads(bench_result().to_json())
    for value in (float("nan"), float("inf"), float("-inf")):
        data["configs"][0]["trials"][0]["e2e_ms"] = value
        with pytest.raises(ProfkitError, match=r"at `\$\.configs\[0\]\.trials\[0\]\.e2e_ms`"):
            BenchResult.from_builtins(data, "mem.json")


def _analyzed(builder: TraceBuilder, tmp: Path, name: str) -> Any:
    from profkit.analysis import analyze_tables
    from profkit.parsers import load_trace

    return analyze_tables(load_trace(builder.write(tmp / name)), label=name)


def test_a_side_without_ranges_compares_both_on_the_gpu_window(tmp_path: Path) -> None:
    """One GPU trace with profkit ranges, one without: both totals are GPU windows, never wall vs window."""
    from profkit.analysis.compare import GPU_WINDOW, compare_results

    ranged = _analyzed(diffusion_trace(steps=3), tmp_path, "ranged.json")
    bare = TraceBuilder()
    bare.cpu_op("aten::mm", 0, 50)
    bare.kernel("sm90_xmma_gemm_f16f16_f16f32", 10, 20, 400)
    plain = _analyzed(bare, tmp_path, "plain.json")
    comparison = compare_results(ranged, plain)
    assert comparison.total_basis == GPU_WINDOW and comparison.verdict.endswith(f"({GPU_WINDOW})")
    assert (comparison.total.a_us, comparison.total.b_us) == (ranged.gpu.window_us, plain.gpu.window_us)
    assert ranged.total_us != ranged.gpu.window_us  # its own total is the wall time, which B has not
    assert comparison.stages == [] and comparison.steps == [] and comparison.step_speedup is None


def test_step_rows_only_when_both_sides_have_steps(tmp_path: Path) -> None:
    from profkit.analysis.compare import WALL_TIME, compare_results

    steps = _analyzed(diffusion_trace(steps=3), tmp_path, "steps.json")
    no_steps = TraceBuilder()
    no_steps.range("profkit/pipeline", 0, 3000).range("profkit/vae/decode", 2000, 900)
    no_steps.kernel("void cudnn::cnn::conv2d_grouped_direct_kernel<float>", 2005, 2010, 300)
    comparison = compare_results(steps, _analyzed(no_steps, tmp_path, "no_steps.json"))
    assert comparison.total_basis == WALL_TIME and comparison.stages
    assert comparison.steps == [] and comparison.step_speedup is None


def test_a_trace_compared_with_itself_says_so_in_every_output(tmp_path: Path) -> None:
    from profkit.analysis.compare import SAME_TRACE

    same_trace(tmp_path)
    outputs = compare_paths(tmp_path / "a.json", tmp_path / "copy.json", html=tmp_path / "c.html")
    assert outputs.comparison.verdict.startswith(SAME_TRACE) and outputs.comparison.notes[0] == SAME_TRACE
    assert SAME_TRACE in outputs.html.read_text()
    other = diffusion_trace(steps=3, step_us=1500).write(tmp_path / "other.json")
    different = compare_paths(tmp_path / "a.json", other, html=tmp_path / "d.html").comparison
    assert SAME_TRACE not in different.verdict and SAME_TRACE not in different.notes


# ---------------------------------------------------------------- the fuzzer: wrong types in capture metadata


def _field_paths(struct: type, prefix: str = "") -> list[str]:
    """Every field of a Struct type, nested Structs included (``device``, ``device.name`` ...)."""
    paths = []
    for field in msgspec.structs.fields(struct):
        path = prefix + field.encode_name
        paths.append(path)
        for member in getattr(field.type, "__args__", (field.type,)):
            if isinstance(member, type) and issubclass(member, msgspec.Struct):
                paths += _field_paths(member, path + ".")
    return paths


FIELDS = [path for path in _field_paths(CaptureMetadata) if path != "created_at"]
SCALARS = {
    "null": st.none(),
    "bool": st.booleans(),
    "int": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "str": st.text(max_size=20),
}
JSON_VALUES = {
    **SCALARS,
    "list": st.lists(st.one_of(*SCALARS.values()), max_size=3),
    "dict": st.dictionaries(st.text(max_size=8), st.one_of(*SCALARS.values()), max_size=3),
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return {type(None): "null", int: "int", float: "float", str: "str", list: "list", dict: "dict"}[type(value)]


@st.composite
def wrong_types(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """One to three fields of the metadata, each replaced by a value of another JSON type."""
    original = orjson.loads((FP32 / METADATA_FILE).read_bytes())
    edits = []
    for path in draw(st.sets(st.sampled_from(FIELDS), min_size=1, max_size=3)):
        current: Any = original
        for key in path.split("."):
            current = current.get(key) if isinstance(current, dict) else None
        kinds = [kind for kind in JSON_VALUES if kind != _json_type(current)]
        edits.append((path, draw(JSON_VALUES[draw(st.sampled_from(kinds))])))
    return edits


@pytest.fixture(scope="module")
def fuzz_folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    for name in ("a", "b"):
        (root / name).mkdir()
        diffusion_trace(steps=2).write(root / name / TRACE_FILE)
    shutil.copy(FP32 / METADATA_FILE, root / "b" / METADATA_FILE)
    return root


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=wrong_types())
def test_wrong_types_in_metadata_are_one_line_or_a_clean_report(
    fuzz_folders: Path, edits: list[tuple[str, Any]]
) -> None:
    root = fuzz_folders
    data = orjson.loads((FP32 / METADATA_FILE).read_bytes())
    for path, value in edits:
        parent, *keys = [data, *path.split(".")]
        *walk, last = keys
        for key in walk:
            if not isinstance(parent.get(key), dict):
                parent[key] = {}
            parent = parent[key]
        parent[last] = value
    metadata = root / "a" / METADATA_FILE
    metadata.write_bytes(orjson.dumps(data))
    try:
        analyze_path(root / "a", html=root / "a.html", json_path=root / "a.json", force=True)
        compare_paths(
            root / "a",
            root / "b",
            html=root / "c.html",
            json_path=root / "c.json",
            force=True,
            allow_different_setups=True,
        )
        event("analyzed and compared")
    except ProfkitError as error:
        event("refused")
        line = error_line(error)
        assert "\n" not in line and error.exit_code == 2, line
        assert line.startswith(f"profkit: error: {metadata}: "), line
        if "invalid profkit.capture document" in line:
            assert "`$" in line or "missing required field" in line, line  # the field is named
