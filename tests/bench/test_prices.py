"""Prices from the table generated out of the cloud catalog snapshot: known rows against the CSV, instance names,
spot vs on-demand, the per-GPU price, and the warnings when the instance's GPUs are not the measured device."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import msgspec
import orjson
import pytest

from profkit.app.bench import CostOptions, GateOptions, summarize
from profkit.app.prices import find_instance, instance_warnings, load_prices, price_for, price_warnings
from profkit.errors import ProfkitError
from tests.benchbuilder import bench_result
from tests.conftest import REPO, corpus_dir, run_cli

CATALOG = REPO.parent / "shared" / "prices" / "gpu_instances.csv"
H100 = {"type": "cuda", "name": "NVIDIA H100 80GB HBM3", "count": 1, "total_memory_bytes": 85017493504}
A100_40 = {"type": "cuda", "name": "NVIDIA A100-SXM4-40GB", "count": 1, "total_memory_bytes": 42505273344}
needs_catalog = pytest.mark.skipif(not CATALOG.is_file(), reason="the catalog snapshot (../shared/prices) is absent")


def _catalog_rows() -> dict[tuple[str, str], dict[str, str]]:
    lines = [line for line in CATALOG.read_text().splitlines() if not line.startswith("#")]
    return {(row["provider"], row["instance_type"]): row for row in csv.DictReader(lines)}


@needs_catalog
def test_the_built_in_table_is_generated_from_the_catalog(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import generate_prices
    finally:
        sys.path.remove(str(REPO / "scripts"))
    out = tmp_path / "prices.json"
    count = generate_prices.generate(CATALOG, out)
    shipped = REPO / "profkit" / "data" / "prices.json"
    assert out.read_bytes() == shipped.read_bytes(), "profkit/data/prices.json is stale: run scripts/generate_prices.py"
    assert count == len(_catalog_rows()) == len(load_prices()["instances"])


@needs_catalog
def test_known_rows_match_the_catalog() -> None:
    table = load_prices()
    assert table["snapshot"] == "catalog snapshot" and "skypilot" in table["source"].lower()
    rows = _catalog_rows()
    for provider, kind in (("aws", "p5.48xlarge"), ("gcp", "a2-ultragpu-1g"), ("lambda", "gpu_8x_h100_sxm5")):
        source = rows[(provider, kind)]
        row = find_instance(f"{provider}:{kind}", table)
        assert row["usd_per_hour"] == float(source["price_usd_per_hour"])
        spot = source["spot_price_usd_per_hour"]
        assert row["spot_usd_per_hour"] == (float(spot) if spot else None)
        assert (row["gpu_model"], row["gpu_count"], row["region"]) == (
            source["accelerator"].split("-")[0],
            int(source["accelerator_count"]),
            source["region"],
        )
        assert row["usd_per_gpu_hour"] == pytest.approx(row["usd_per_hour"] / row["gpu_count"])
        assert row["price_date"] == "catalog snapshot"
    every = {row["provider"] for row in table["instances"]}
    assert every == {"aws", "gcp", "lambda", "runpod"}
    models = {row["gpu_model"] for row in table["instances"]}
    assert {"H100", "H200", "A100", "L40S", "L4", "A10G", "T4"} <= models


def test_instance_names_spot_and_per_gpu_price() -> None:
    source, per_hour, detail = price_for(None, "aws:p5.48xlarge")
    assert (source, per_hour) == ("aws:p5.48xlarge", 55.04)
    assert "8x H100" in detail and "us-east-1" in detail and "on-demand" in detail and "catalog snapshot" in detail
    assert "6.88 USD per GPU-hour" in detail
    assert price_for(None, "p5.48xlarge")[1] == 55.04  # the instance type alone, when one provider has it
    assert price_for(None, "AWS-P5.48xlarge")[1] == 55.04  # the names of the old table, any case
    _, spot, spot_detail = price_for(None, "p5.48xlarge", spot=True)
    assert spot == 16.9508 and "spot price" in spot_detail
    assert price_for(None, "aws-g5.xlarge")[1] == 1.006
    with pytest.raises(ProfkitError, match="no spot price"):
        price_for(None, "lambda:gpu_1x_a10", spot=True)  # Lambda has no spot market
    with pytest.raises(ProfkitError, match="prices an instance"):
        price_for(3.0, None, spot=True)
    with pytest.raises(ProfkitError, match=r"not in the price table \(did you mean lambda:gpu_1x_a100"):
        price_for(None, "gpu_1x_a100x")
    two = {"instances": [{"name": "a:x", "provider": "a", "instance_type": "x", "usd_per_hour": 1.0}] * 2}
    with pytest.raises(ProfkitError, match="several instances"):
        price_for(None, "x", two)


def test_the_report_warns_when_the_instance_is_not_the_measured_device() -> None:
    table = load_prices()
    h100_on_a100s = instance_warnings(find_instance("aws:p4d.24xlarge", table), H100, "aws:p4d.24xlarge")
    assert len(h100_on_a100s) == 2
    assert "NVIDIA H100 80GB HBM3" in h100_on_a100s[0] and "8x A100" in h100_on_a100s[0]
    assert "8 GPUs and the run used one" in h100_on_a100s[1]
    assert instance_warnings(find_instance("aws:p5.4xlarge", table), H100, "p5") == []  # the same GPU
    assert instance_warnings(find_instance("gcp:a2-highgpu-1g", table), A100_40, "a2") == []
    variant = instance_warnings(find_instance("gcp:a2-ultragpu-1g", table), A100_40, "a2-ultra")
    assert len(variant) == 1 and "another variant" in variant[0]  # A100 80 GB priced, 40 GB measured
    l4 = {"type": "cuda", "name": "NVIDIA L4", "total_memory_bytes": 24 * 2**30}
    assert instance_warnings(find_instance("aws:g6e.xlarge", table), l4, "g6e")  # L40S is not L4
    assert instance_warnings(find_instance("aws:g6.xlarge", table), l4, "g6") == []
    cpu = instance_warnings(find_instance("aws:g5.xlarge", table), {"type": "cpu", "name": "test CPU"}, "g5")
    assert len(cpu) == 1 and "measured on a CPU" in cpu[0]
    own = {"name": "mine", "usd_per_hour": 9.0, "gpu": "8x NVIDIA A100 40GB"}  # a user's table, older format
    assert len(instance_warnings(own, H100, "mine")) == 2


def test_the_summary_carries_the_mismatch_warnings(tmp_path: Path) -> None:
    result = bench_result(trials=3)  # a CPU run
    summary = summarize(result, CostOptions(instance="aws:p5.48xlarge", spot=True), GateOptions())
    assert summary.configs[0].cost.usd_per_hour == 16.9508
    assert any("measured on a CPU" in w for w in summary.warnings)
    gpu = msgspec.structs.replace(result, device="cuda", device_info=H100)
    assert price_warnings(gpu, "aws:p5.4xlarge") == [] and price_warnings(gpu, None) == []
    table = tmp_path / "mine.json"
    table.write_bytes(orjson.dumps({"instances": [{"name": "box", "usd_per_hour": 2.0, "gpu": "1x NVIDIA L4 24GB"}]}))
    mine = summarize(gpu, CostOptions(instance="box", price_table=table), GateOptions())
    assert any("priced as box" in w for w in mine.warnings) and mine.configs[0].cost.usd_per_hour == 2.0
    plain = summarize(gpu, CostOptions(price_per_hour=2.0), GateOptions())  # a price of one's own: no instance
    assert not any("priced as" in w for w in plain.warnings)


def _h100_bench() -> Path:
    path = corpus_dir().parent / "h100" / "bench_tiny-sd_fp32-fp16_20steps_64x64" / "bench.json"
    if not path.is_file():
        pytest.skip("the h100 corpus is absent")
    return path


@pytest.mark.slow
def test_check_on_the_command_line_warns_for_an_h100_priced_as_eight_a100s(tmp_path: Path) -> None:
    path = _h100_bench()
    result = run_cli("check", str(path), "--baseline", str(path), "--instance", "p4d.24xlarge", "--spot")
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "measured on NVIDIA H100 80GB HBM3 and priced as p4d.24xlarge" in out
    assert "8 GPUs and the run used one" in out
    bad = run_cli("check", str(path), "--baseline", str(path), "--instance", "lambda:gpu_1x_a10", "--spot")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "profkit: error: --spot lambda:gpu_1x_a10: the price table has no spot price for it"
    ]
