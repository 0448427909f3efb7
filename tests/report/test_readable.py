"""Reports a user understands in ten seconds (issue 15, points 2-4): verdict first, short kernel names, one unit per
column, plurals, fitted chart axes, sampler start-up readings dropped. Checked on the real H100 captures."""

from __future__ import annotations

import html as htmlmod
import os
import re
from pathlib import Path

import msgspec
import numpy as np
import pytest

from profkit.analysis.bench.summary import metric_samples, summarize_bench
from profkit.analysis.compare import compare_results
from profkit.analysis.kernel_names import short_kernel_name
from profkit.app.inputs import analyze_input, resolve_input
from profkit.model.bench import BenchResult
from profkit.report import analysis_html, comparison_html
from profkit.report.charts import distribution_chart, line_chart, nice_axis, step_chart
from profkit.report.html import bench_html
from profkit.report.jinja import plural
from profkit.report.verdict import bench_verdict, group_caveats, ratio_ci
from tests.conftest import REPO

H100 = Path(os.environ.get("PROFKIT_CORPUS", REPO.parent / "shared" / "corpus")) / "h100"
FP32_64 = "tiny-sd_fp32_20steps_64x64_b1"
FP16_64 = "tiny-sd_fp16_20steps_64x64_b1"
DIT = "tiny-dit_fp32_20steps_256x256_b1"
COMPILED = "tiny-sd_fp16_compiled_reduce-overhead_10steps_256x256_b1"
BENCH = "bench_tiny-sd_fp32-fp16_20steps_64x64"


def _need_corpus() -> None:
    if not (H100 / BENCH / "bench.json").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real H100 captures not found at {H100} (set PROFKIT_CORPUS)")
        pytest.skip(f"real H100 captures not found at {H100}")


@pytest.fixture(scope="module")
def analyses():
    _need_corpus()
    return {name: analyze_input(resolve_input(H100 / name)) for name in (FP32_64, FP16_64, DIT, COMPILED)}


@pytest.fixture(scope="module")
def reports(analyses):
    pages = {name: analysis_html(result) for name, result in analyses.items()}
    comparison = compare_results(analyses[FP32_64], analyses[FP16_64])
    pages["compare"] = comparison_html(comparison, "a", "b")
    return pages


@pytest.fixture(scope="module")
def bench():
    _need_corpus()
    result = BenchResult.load(H100 / BENCH / "bench.json")
    summary = summarize_bench(result)
    return result, summary, bench_html(result, summary)


def _text(fragment: str) -> str:
    return htmlmod.unescape(re.sub(r"<[^>]+>", " ", fragment))


def _first_section(page: str) -> str:
    match = re.search(r"<section\b.*?</section>", page, re.S)
    assert match
    return match.group(0)


# ------------------------------------------------------------------ verdict first


def test_bench_leads_with_the_verdict_saying_fp16_is_slower(bench):
    result, _, page = bench
    first = _first_section(page)
    sentence = _text(re.search(r'id="verdict-sentence">(.*?)</div>', first, re.S).group(1))
    assert page.index('id="verdict-sentence"') < page.index("<table")  # before any table
    medians = {c.name: float(np.median(metric_samples(c)["e2e_ms"])) for c in result.configs}
    assert medians["fp16 b1"] > medians["fp32 b1"]  # the corpus: fp16 190 ms, fp32 174 ms
    assert sentence.strip().startswith("Fastest: fp32 b1")
    assert "fp16 b1 is SLOWER than fp32 b1" in sentence
    assert f"{medians['fp16 b1']:.1f} ms vs {medians['fp32 b1']:.1f} ms" in sentence
    ratio = re.search(r"(\d\.\d\d)x the time \(95% bootstrap CI (\d\.\d\d)–(\d\.\d\d)x\)", sentence)
    assert ratio, sentence
    point, low, high = map(float, ratio.groups())
    assert point == pytest.approx(medians["fp16 b1"] / medians["fp32 b1"], abs=0.006)
    assert 1 < low <= point <= high


def test_ratio_ci_covers_a_known_ratio_and_is_reproducible():
    rng = np.random.default_rng(3)
    base = rng.normal(100, 3, 40).tolist()
    slower = rng.normal(120, 3, 40).tolist()
    low, high = ratio_ci(base, slower)
    assert low < 1.2 < high and high - low < 0.1
    assert ratio_ci(base, slower) == (low, high)
    assert ratio_ci(base[:2], slower) is None


def test_bench_verdict_says_no_clear_difference_within_noise(bench):
    result = bench[0]
    same = msgspec.structs.replace(
        result, configs=(result.configs[0], msgspec.structs.replace(result.configs[0], name="copy"))
    )
    verdict = bench_verdict(same, summarize_bench(same))
    assert verdict.versus[0].word == "no clear difference"
    assert "same time within noise" in verdict.versus[0].sentence


def test_caveats_grouped_each_once_and_cost_mismatch_beside_the_cost(bench):
    result, summary, _ = bench
    warnings = (
        *summary.warnings,
        summary.warnings[0],
        "the run was measured on NVIDIA H100 80GB HBM3 and priced as p4d.24xlarge (8x A100): another GPU model",
    )
    groups = group_caveats(warnings)
    flat = [w for items in groups.values() for w in items]
    assert len(flat) == len(set(flat))
    assert next(iter(groups)) == "Cost" and "priced as" in groups["Cost"][0]
    p99 = [w for w in flat if "P99 from 20 samples" in w]
    assert len(p99) == 1 and "fp32 b1" in p99[0] and "fp16 b1" in p99[0]  # one line for the same problem
    priced = summarize_bench(result, ("p4d.24xlarge", 21.9576, "8x A100, us-east-1"))
    page = bench_html(result, msgspec.structs.replace(priced, warnings=warnings))
    cost = re.search(r'<section id="cost">.*?</section>', page, re.S).group(0)
    assert "Measured on NVIDIA H100 80GB HBM3" in cost
    assert 'data-caveat="cost"' in cost and "another GPU model" in _text(cost)
    summary_section = _first_section(page)
    assert "another GPU model" not in summary_section  # said once, with the cost


def test_compare_leads_with_the_verdict_and_a_ci(reports):
    page = reports["compare"]
    first = _first_section(page)
    sentence = _text(re.search(r'id="verdict-sentence">(.*?)</div>', first, re.S).group(1))
    assert page.index('id="verdict-sentence"') < page.index("<table")
    assert "slower than" in sentence and "speedup A/B 0.8" in sentence
    assert re.search(r"median step \d\.\d\dx \(95% bootstrap CI \d\.\d\d–\d\.\d\dx\)", sentence)


def test_analysis_leads_with_the_top_finding_by_impact(analyses, reports):
    result, page = analyses[DIT], reports[DIT]
    top = max((f for f in result.findings if f.impact), key=lambda f: f.impact.recoverable_ms)
    first = _first_section(page)
    box = _text(re.search(r'id="top-finding">(.*?)</div>', first, re.S).group(1))
    assert box.startswith("Top finding: " + top.title)
    assert top.impact.headline() in box
    assert first.index('id="top-finding"') < first.index('class="kpis"')


# ------------------------------------------------------------------ names, units, plurals


@pytest.mark.parametrize(
    ("full", "short"),
    [
        (
            "void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<"
            "at::native::CUDAFunctor_add<c10::Half> >(at::TensorIteratorBase&, at::native::CUDAFunctor_add<c10::Half> "
            "const&)::{lambda(int)#1}>(int, at::native::gpu_kernel_impl_nocast)",
            "elementwise_kernel<…> [CUDAFunctor_add]",
        ),
        (
            "void at::native::(anonymous namespace)::CatArrayBatchedCopy<at::native::(anonymous namespace)::OpaqueType"
            "<4u>, unsigned int, 4, 64, 64>(at::native::(anonymous namespace)::OpaqueType<4u>*)",
            "CatArrayBatchedCopy<…> [OpaqueType]",
        ),
        (
            "void cutlass::Kernel2<cutlass_80_simt_sgemm_64x64_8x5_tn_align1>(cutlass_80_simt_sgemm_64x64_8x5_tn_align1"
            "::Params)",
            "Kernel2<cutlass_80_simt_sgemm_64x64_8x5_tn_align1>",
        ),
        ("nvjet_sm90_hsh_64x16_64x16_1x2_h_bz_NNT", "nvjet_sm90_hsh_64x16_64x16_1x2_h_bz_NNT"),
        ("Memcpy HtoD (Pageable -> Device)", "Memcpy HtoD (Pageable -> Device)"),
        ("void std::enable_if<!(false), void>::type at::native::rms_kernel<float, 4>(float*, int)", "rms_kernel<…>"),
    ],
)
def test_short_kernel_names(full, short):
    assert short_kernel_name(full) == short


def test_kernel_tables_show_short_names_with_the_full_name_on_hover(analyses, reports):
    for name in (DIT, COMPILED):
        page = reports[name]
        table = re.search(r'<table class="sortable searchable" id="top-kernels">.*?</table>', page, re.S).group(0)
        rows = re.findall(r'<td class="name" title="([^"]*)"><code>([^<]*)</code>', table)
        full_names = [row.name for row in analyses[name].primary.rows]
        assert [htmlmod.unescape(t) for t, _ in rows] == full_names  # every row, the rest hidden but present
        for title, shown in rows:
            assert htmlmod.unescape(shown) == short_kernel_name(htmlmod.unescape(title))
            assert len(htmlmod.unescape(shown)) <= 72
        assert 'tbody class="more" hidden' in table and '<details class="more-rows"' in page
        assert '<input type="search" class="filter"' in page
        # the JSON keeps the full names
        assert all(full in page or htmlmod.escape(full) in page for full in full_names[:5])


_UNIT = re.compile(r"(ms|µs|%|MB|W|s)$")


def _columns(table: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    cells = [[_text(c).strip() for c in re.findall(r"<td\b[^>]*>(.*?)</td>", row, re.S)] for row in rows]
    width = max((len(r) for r in cells), default=0)
    return [[r[i] for r in cells if len(r) == width] for i in range(width)]


@pytest.mark.parametrize("name", [DIT, COMPILED, FP16_64, "compare", "bench"])
def test_no_column_mixes_units(reports, bench, name):
    page = bench[2] if name == "bench" else reports[name]
    # data tables (with a header row); a two-column "quantity | value" table has one unit per row instead
    tables = [t for t in re.findall(r"<table\b.*?</table>", page, re.S) if "<thead>" in t]
    assert tables
    for table in tables:
        for column in _columns(table):
            units = {_UNIT.search(v).group(1) for v in column if re.match(r"^[-+]?[\d,.]+\s*(ms|µs|%|MB|W|s)$", v)}
            assert len(units) <= 1, (units, column[:6])


def test_tensor_core_columns_are_shares(reports):
    for name in (DIT, FP16_64):
        page = reports[name]
        assert "On tensor cores (% of time, guess)" in page
        table = re.search(r'<section id="categories">.*?</section>', page, re.S).group(0)
        shares = _columns(table)[-1]
        assert shares and all(v.endswith("%") for v in shares)


def test_plurals(reports):
    assert plural(1, "stream") == "1 stream" and plural(2, "stream") == "2 streams"
    assert plural(1, "synchronization call") == "1 synchronization call"
    for page in reports.values():
        text = _text(page)
        assert not re.search(r"\b1 (streams|kernels|gaps|steps|synchronization calls|ops|idle gaps)\b", text)
    assert "1 stream)" in _text(reports[DIT])  # tiny-dit ran on one stream


def test_syncs_in_trace_contents_match_the_blocking_calls(analyses, reports):
    result, page = analyses[FP32_64], reports[FP32_64]
    contents = _text(re.search(r'<section id="trace">.*?</section>', page, re.S).group(0))
    sync_calls = sum(c.count for c in result.blocking.calls if c.kind == "sync")
    assert sync_calls > 0
    assert re.search(rf"synchronization API calls .*? {sync_calls}\b", contents)
    assert "sync events (GPU-side cuda_sync records)" in contents


def test_compare_median_step_row_and_short_one_sided_lists(analyses, reports, capsys):
    from rich.console import Console

    from profkit.report.terminal import print_comparison

    comparison = compare_results(analyses[FP32_64], analyses[FP16_64])
    print_comparison(comparison, Console(width=140, force_terminal=False))
    row = next(line for line in capsys.readouterr().out.splitlines() if "median step" in line)
    a_median = np.median([s.a_us for s in comparison.steps]) / 1000
    assert f"{a_median:.2f} ms" in row and row.count(" ms") == 2
    page = reports["compare"]
    one_sided = re.search(r'<section id="one-sided".*?</section>', page, re.S).group(0)
    assert one_sided.count("<details>") == 2
    names = re.findall(r'<td class="name" title="([^"]*)"><code>([^<]*)</code>', one_sided)
    assert len(names) == len(comparison.only_in_a) + len(comparison.only_in_b) > 0
    for title, shown in names:
        assert htmlmod.unescape(shown) == short_kernel_name(htmlmod.unescape(title))


def test_analysis_pages_fit_in_a_few_screens(reports):
    """Rows of the long tables start hidden; the page's rows visible at first stay few (the 512x512 page was
    11,319 px tall mainly from ~60 visible table rows with wrapped template names)."""
    for name in (DIT, COMPILED):
        page = re.sub(r'<tbody class="more" hidden>.*?</tbody>|<details\b.*?</details>', "", reports[name], flags=re.S)
        assert len(re.findall(r"<tr>", page)) < 110
        assert not re.search(r'<td class="name"[^>]*>(?:<code>)?[^<]{80,}<', page)


# ------------------------------------------------------------------ charts


def test_axes_fitted_to_the_data():
    for peak in (1, 7.3, 101, 151, 174.2, 190.1, 580, 2944, 0.4, 11000):
        top, _ = nice_axis(peak)
        assert peak <= top <= 1.25 * peak
    chart = step_chart([[8100.0, 8900.0, 9300.0]], ["a"])
    assert 9300 <= chart.max_value_us <= 1.25 * 9300
    assert max(v for _, v in chart.y_ticks) == chart.max_value_us


def test_bench_charts_fitted_and_labelled(bench):
    result, _, page = bench
    samples = [v for c in result.configs for v in metric_samples(c)["e2e_ms"]]
    dist = distribution_chart({c.name: metric_samples(c)["e2e_ms"] for c in result.configs})
    ticks = [v for _, v in dist.x_ticks]
    assert max(samples) <= max(ticks) <= 1.25 * max(samples)
    assert min(ticks) <= min(samples)
    charts = re.findall(r"<svg[^>]*aria-label=\"([^\"]*) over time\">(.*?)</svg>", page, re.S)
    assert [label for label, _ in charts] == ["GPU utilization, %", "CPU, % of one core", "RSS, MB"]
    for label, body in charts:
        assert f'class="axis-unit">{htmlmod.escape(label)}</text>' in body
        x_labels = re.findall(r'text-anchor="(end|middle)">([\d.]+) s</text>', body)
        assert x_labels and x_labels[-1][0] == "end"  # the last x label ends at the edge, not clipped


def test_sampler_readings_before_the_first_trial_dropped(bench):
    result, _, _ = bench
    samples = result.samples
    first_trial = min(t.started_s for c in result.configs for t in c.trials if t.ok)
    kept = [v for t, v in zip(samples.t, samples.cpu_percent, strict=True) if t >= first_trial]
    assert 0 < len(kept) < len(samples.t)  # loading and warm-up readings came before
    cpu, labels = {"cpu": list(samples.cpu_percent)}, list(samples.label)
    chart = line_chart(list(samples.t), cpu, "%", labels, start_s=first_trial)
    points = chart.series[0].points.split()
    assert len(points) == len(kept)
    top = max(v for _, v in chart.y_ticks)
    assert max(kept) <= top <= 1.25 * max(kept)
    # a synthetic start-up spike (2944% on a 2-core machine) never sets the axis
    t = [0.0, 0.05, 0.1, 0.15, 0.2]
    spiky = line_chart(t, {"cpu": [2944.0, 90.0, 100.0, 95.0, 99.0]}, "%", ["", "loading a", "a", "a", "a"])
    assert max(v for _, v in spiky.y_ticks) <= 125
    assert len(spiky.series[0].points.split()) == 3


def test_finding_texts_count_with_their_noun():
    from profkit.analysis.findings.text import render

    assert render("in {calls:n|synchronization call}", {"calls": 1}) == "in 1 synchronization call"
    assert render("in {calls:n|synchronization call}", {"calls": 122}) == "in 122 synchronization calls"
    assert render("over {streams:n|stream}", {"streams": 1}) == "over 1 stream"


def test_attention_counts_say_what_they_count(analyses, reports):
    result, page = analyses[FP16_64], reports[FP16_64]
    section = re.search(r'<section id="attention">.*?</section>', page, re.S).group(0)
    assert "Its launches" in section and "SDPA calls" in section and "What is counted" in section
    rows = [_text(r) for r in re.findall(r"<tr>(<td>.*?)</tr>", section, re.S)]
    for row, stage in zip(rows, result.attention, strict=True):
        assert f" {stage.kernel_calls} " in f" {row} "
        if stage.backend_ops:
            assert f" {sum(stage.backend_ops.values())} " in f" {row} "


def test_terminal_bench_leads_with_the_verdict(bench, capsys):
    from rich.console import Console

    from profkit.report.terminal import print_bench

    _, summary, _ = bench
    print_bench(summary, Console(width=200, force_terminal=False))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[1].startswith("Fastest: fp32 b1") and "fp16 b1 is SLOWER than fp32 b1" in lines[1]
    low, high = map(float, re.search(r"interval from the medians' CIs (\d\.\d\d)–(\d\.\d\d)x", lines[1]).groups())
    fp32, fp16 = (summary.configs[0].metrics["e2e_ms"], summary.configs[1].metrics["e2e_ms"])
    assert low == pytest.approx(fp16.median_ci[0] / fp32.median_ci[1], abs=0.006)
    assert high == pytest.approx(fp16.median_ci[1] / fp32.median_ci[0], abs=0.006)
