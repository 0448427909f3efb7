from __future__ import annotations

import orjson
import pytest

from profkit.analysis import analyze_tables
from profkit.analysis.compare import compare_results
from profkit.app.compare import compare_paths
from profkit.errors import ProfkitError
from profkit.parsers import load_trace
from tests.tracebuilder import diffusion_trace


def test_speedup_per_stage_and_step_and_one_sided_kernels(tmp_path):
    a = analyze_tables(
        load_trace(
            diffusion_trace(steps=4, step_us=2000, kernel_name="ampere_sgemm_128x64_nn").write(tmp_path / "a.json")
        ),
        label="fp32",
    )
    b = analyze_tables(load_trace(diffusion_trace(steps=4, step_us=1000).write(tmp_path / "b.json")), label="fp16")
    c = compare_results(a, b)
    assert c.total.speedup == pytest.approx(a.total_us / b.total_us)
    assert c.verdict.startswith("fp16 is") and "faster than fp32" in c.verdict
    denoise = next(s for s in c.stages if s.key == "denoise")
    assert denoise.speedup == pytest.approx(2.0)
    assert [s.speedup for s in c.steps] == pytest.approx([2.0] * 4)
    assert [o.name for o in c.only_in_a] == ["ampere_sgemm_128x64_nn"]
    assert [o.name for o in c.only_in_b] == ["sm90_xmma_gemm_f16f16_f16f32"]
    assert c.tensor_core_share[1] > c.tensor_core_share[0]
    assert c.mix_kind == "gpu_kernels"


def test_slower_candidate_is_stated_plainly(tmp_path):
    a = analyze_tables(load_trace(diffusion_trace(steps=3, step_us=1000).write(tmp_path / "a.json")), label="A")
    b = analyze_tables(load_trace(diffusion_trace(steps=3, step_us=3000).write(tmp_path / "b.json")), label="B")
    c = compare_results(a, b)
    assert "slower than" in c.verdict
    assert c.findings[0].severity == "warning"


@pytest.mark.slow
def test_capture_with_two_dtypes_writes_the_comparison(captured):
    _, outputs = captured
    (comparison,) = outputs.comparisons
    data = orjson.loads(comparison.json.read_bytes())
    assert data["schema_version"] == 1 and data["kind"] == "profkit.comparison"
    assert data["label_a"].endswith("fp32") and data["label_b"].endswith("fp16")
    assert ("dtype", "fp32", "fp16") in [tuple(d) for d in data["setting_differences"]]
    assert len(data["steps"]) == 3
    assert comparison.html.is_file()
    # On this CPU fp16 is slower; the verdict must say so rather than hide it.
    if data["total"]["speedup"] < 1:
        assert "slower than" in data["verdict"]


@pytest.mark.slow
def test_runs_from_different_setups_are_refused_unless_forced(captured, tmp_path):
    _, outputs = captured
    a, b = outputs.runs
    meta = orjson.loads(b.metadata.read_bytes())
    meta["device"]["name"] = "Some Other CPU"
    other = tmp_path / "other"
    other.mkdir()
    (other / "trace.json.gz").write_bytes(b.trace.read_bytes())
    (other / "metadata.json").write_bytes(orjson.dumps(meta))
    with pytest.raises(ProfkitError, match=r"different setups.*device\.name"):
        compare_paths(a.folder, other, out_dir=tmp_path)
    forced = compare_paths(a.folder, other, out_dir=tmp_path, allow_different_setups=True)
    assert any(f.rule == "setup_differs" for f in forced.comparison.findings)
