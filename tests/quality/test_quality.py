"""profkit quality: metrics by hand, pairing, local-weight CLIP / FID, gates, drift, the capture wiring."""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from profkit.app.quality import QualityGate, quality_paths
from profkit.errors import EXIT_BAD_INPUT, EXIT_REGRESSION, ProfkitError
from profkit.model import load_document
from profkit.model.quality import QualityDocument
from profkit.quality import metrics
from profkit.quality.compare import WeightFiles
from profkit.quality.pareto import pareto_points
from tests.conftest import run_cli

SIZE = 64


def _write(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        Image.fromarray(array).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reference images, an identical copy, and a copy with +10 on every channel of every pixel (the injected drift)."""
    rng = np.random.default_rng(0)
    base = {f"img_{i}": rng.integers(0, 200, (SIZE, SIZE, 3), dtype=np.uint8) for i in range(3)}
    root = tmp_path_factory.mktemp("quality")
    return {
        "ref": _write(root / "ref", base),
        "same": _write(root / "same", base),
        "shifted": _write(root / "shifted", {k: v + 10 for k, v in base.items()}),
        "root": root,
    }


def test_identical_images_give_infinite_psnr_and_ssim_one() -> None:
    import torch

    image = torch.rand(1, 3, SIZE, SIZE)
    scores = metrics.score_pair(image, image.clone(), metrics.ms_ssim_plan(SIZE, SIZE))
    assert math.isinf(scores.psnr_db) and scores.psnr_db > 0
    assert scores.ssim == 1.0 and scores.ms_ssim == 1.0


def test_known_perturbation_gives_the_psnr_computed_by_hand(folders: dict[str, Path], tmp_path: Path) -> None:
    outputs = quality_paths(
        [folders["ref"], folders["shifted"]], html=tmp_path / "q.html", json_path=tmp_path / "q.json"
    )
    by_hand = 10 * math.log10(1 / (10 / 255) ** 2)  # MSE of a +10 shift on a 0..255 scale
    config = outputs.document.configs[0]
    assert config.psnr_db.pairs == 3 and config.unmatched == 0
    for pair in config.pairs:
        assert pair.psnr_db == pytest.approx(by_hand, abs=1e-3)
        assert pair.ssim < 1 and pair.ms_ssim is not None and pair.ms_ssim < 1
    assert config.psnr_db.median == pytest.approx(by_hand, abs=1e-3)
    assert "PSNR 28.1 dB (median)" in config.verdict
    html = (tmp_path / "q.html").read_text()
    assert html.count("data:image/png;base64,") == 9  # 3 worst pairs: reference, image, heat map
    assert "Gaussian kernel" in html  # 64x64 MS-SSIM says how it was reduced
    loaded = load_document(tmp_path / "q.json")
    assert isinstance(loaded, QualityDocument) and loaded == outputs.document


def test_identical_folders_are_identical_in_the_document(folders: dict[str, Path], tmp_path: Path) -> None:
    outputs = quality_paths([folders["ref"], folders["same"]], json_path=tmp_path / "q.json", write_html=False)
    config = outputs.document.configs[0]
    assert config.psnr_db.median is None and all(p.identical for p in config.pairs)
    assert config.ssim.median == 1.0
    assert "identical" in config.verdict


def test_ms_ssim_plan_small_and_standard_sizes() -> None:
    assert metrics.ms_ssim_plan(512, 512).standard
    small = metrics.ms_ssim_plan(64, 64)
    assert small is not None and not small.standard and small.scales < 5
    assert "64x64" in small.note(64, 64)
    assert abs(sum(small.betas) - 1) < 1e-9


def test_the_gate_fails_on_injected_drift(folders: dict[str, Path], tmp_path: Path) -> None:
    paths = [folders["ref"], folders["shifted"]]
    with pytest.raises(ProfkitError) as failed:
        quality_paths(paths, json_path=tmp_path / "q.json", write_html=False, gate=QualityGate(min_psnr=35))
    assert failed.value.exit_code == EXIT_REGRESSION and "PSNR 28.13 dB < 35 dB" in str(failed.value)
    assert (tmp_path / "q.json").is_file()  # written before the gate
    with pytest.raises(ProfkitError) as failed:
        quality_paths(
            paths, json_path=tmp_path / "q.json", write_html=False, force=True, gate=QualityGate(min_ssim=0.999)
        )
    assert failed.value.exit_code == EXIT_REGRESSION
    quality_paths(paths, json_path=tmp_path / "q.json", write_html=False, force=True, gate=QualityGate(min_psnr=25))


def test_images_without_partners_are_refused(folders: dict[str, Path], tmp_path: Path) -> None:
    other = _write(tmp_path / "other", {"unrelated": np.zeros((SIZE, SIZE, 3), np.uint8)})
    with pytest.raises(ProfkitError, match="matches one of"):
        quality_paths([folders["ref"], other], json_path=tmp_path / "q.json", write_html=False)


def test_missing_weights_name_the_file_to_pass(folders: dict[str, Path], tmp_path: Path) -> None:
    from profkit.cli.errors import error_line

    for weights, flag in (
        (WeightFiles(clip_model=tmp_path / "no-clip"), "--clip-model"),
        (WeightFiles(inception_weights=tmp_path / "no.pt"), "--inception-weights"),
        (WeightFiles(lpips_weights=tmp_path / "no.pth"), "--lpips-weights"),
    ):
        with pytest.raises(ProfkitError) as missing:
            quality_paths([folders["ref"], folders["same"]], json_path=tmp_path / "q.json", weights=weights)
        line = error_line(missing.value)
        assert missing.value.exit_code == EXIT_BAD_INPUT and "\n" not in line
        assert line.startswith(f"profkit: error: {flag} must name") and "never downloads" in line
    assert not (tmp_path / "q.json").exists()


def test_pareto_front() -> None:
    points = pareto_points([("fp32", 2.0, None), ("fp16", 1.0, 40.0), ("slow-bad", 3.0, 30.0), ("int8", 0.5, 25.0)])
    front = {p.label: p.on_front for p in points}
    assert front == {"fp32": True, "fp16": True, "slow-bad": False, "int8": True}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLIP (random weights) saved with save_pretrained, with its processor: the local-folder path."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from profkit.pipelines.tokenizer import make_clip_tokenizer

    folder = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={
            **small,
            "vocab_size": 600,
            "max_position_embeddings": 77,
            "bos_token_id": 512,
            "eos_token_id": 513,
        },
        vision_config={**small, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    tokenizer = make_clip_tokenizer(folder / "tok")
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(folder)
    return folder


def test_clip_score_from_a_local_tiny_model(folders: dict[str, Path], tiny_clip: Path, tmp_path: Path) -> None:
    outputs = quality_paths(
        [folders["ref"], folders["shifted"]],
        json_path=tmp_path / "q.json",
        write_html=False,
        weights=WeightFiles(clip_model=tiny_clip),
    )
    document = outputs.document
    assert document.reference_clip_score is not None and 0 <= document.reference_clip_score <= 100
    assert document.configs[0].clip_score is not None and math.isfinite(document.configs[0].clip_score)


def test_fid_and_kid_from_a_local_feature_extractor(folders: dict[str, Path], tmp_path: Path) -> None:
    import torch

    class Features(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.conv(images.float() / 255).mean(dim=(2, 3))

    torch.manual_seed(0)
    weights = tmp_path / "features.pt"
    torch.jit.save(torch.jit.script(Features()), str(weights))
    same = quality_paths(
        [folders["ref"], folders["same"]],
        json_path=tmp_path / "same.json",
        write_html=False,
        weights=WeightFiles(inception_weights=weights),
    ).document.configs[0]
    shifted = quality_paths(
        [folders["ref"], folders["shifted"]],
        json_path=tmp_path / "shifted.json",
        write_html=False,
        weights=WeightFiles(inception_weights=weights),
    ).document.configs[0]
    assert same.fid == pytest.approx(0, abs=1e-3)
    assert shifted.fid is not None and shifted.fid > same.fid + 1e-6
    assert shifted.kid is not None and math.isfinite(shifted.kid)


@pytest.mark.slow
def test_cli_missing_weights_one_line_exit_2(folders: dict[str, Path], tmp_path: Path) -> None:
    result = run_cli(
        "quality", str(folders["ref"]), str(folders["same"]), "--inception-weights", str(tmp_path / "x.pt")
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--inception-weights" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_capture_fp32_fp16_records_finite_psnr_in_the_comparison(captured) -> None:
    _settings, outputs = captured
    assert outputs.quality is not None
    config = outputs.quality.document.configs[0]
    assert config.label == "fp16" and config.psnr_db.median is not None and math.isfinite(config.psnr_db.median)
    comparison = outputs.comparisons[0]
    assert comparison.comparison.quality is not None
    assert comparison.comparison.quality.psnr_db_median == config.psnr_db.median
    assert "images differ from fp32 by PSNR" in comparison.comparison.verdict
    import re

    page = comparison.html.read_text()  # the report's verdict: speed with its numbers first, then the images
    sentence = re.search(r'id="verdict-sentence">(.*?)</div>', page, re.S).group(1)
    assert sentence.index("speedup A/B") < sentence.index("Images differ from fp32 by PSNR")
    from profkit.model.comparison import load_comparison

    stored = load_comparison(comparison.json)
    assert stored.quality == comparison.comparison.quality  # the JSON carries it


@pytest.fixture(scope="module")
def latent_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Latents of the built-in pipeline (32x32, 2 steps): fp32 twice (two loads) and fp16."""
    from profkit.capture.latents import record_run_latents
    from profkit.capture.run import call_kwargs
    from profkit.capture.settings import CaptureSettings
    from profkit.pipelines.loading import load_pipeline

    root = tmp_path_factory.mktemp("latents")
    settings = CaptureSettings(steps=2, height=32, width=32, seed=3)
    records = {}
    for name, dtype in (("fp32", "fp32"), ("fp32-again", "fp32"), ("fp16", "fp16")):
        pipeline = load_pipeline("tiny-sd", dtype, "cpu").pipeline
        folder = root / name
        folder.mkdir()
        records[name] = record_run_latents(pipeline, call_kwargs(settings, "cpu", settings.seed), folder, settings.seed)
    return records


@pytest.mark.slow
def test_latent_drift_zero_against_itself_and_growing_for_fp16(latent_runs: dict[str, Path]) -> None:
    from profkit.quality.drift import latent_drift

    itself = latent_drift(latent_runs["fp32"], latent_runs["fp32-again"])
    assert len(itself.steps) == 2
    assert all(step.distance == 0 and step.relative == 0 for step in itself.steps)
    assert itself.diverges_at is None
    fp16 = latent_drift(latent_runs["fp32"], latent_runs["fp16"])
    assert all(step.distance > 0 for step in fp16.steps)
    assert fp16.steps[-1].norm > 0
    strict = latent_drift(latent_runs["fp32"], latent_runs["fp16"], threshold=1e-9)
    assert strict.diverges_at == 0


@pytest.mark.slow
def test_multi_configuration_bench_keeps_images_and_writes_a_quality_section(tmp_path: Path) -> None:
    from profkit.app.bench import CostOptions, GateOptions, bench
    from profkit.app.quality import BenchQuality
    from profkit.model.bench import BenchSettings

    settings = BenchSettings(dtypes=("fp32",), batches=(1, 2), steps=2, height=32, width=32, warmup=0, trials=1)
    settings = msgspec_replace(settings, device="cpu")
    quality = BenchQuality(record_latents=True, gate=QualityGate(min_psnr=40))
    outputs = bench(settings, tmp_path / "b", CostOptions(), GateOptions(), False, quality=quality)
    assert outputs.quality is not None
    document = outputs.quality.document
    assert document.reference == "fp32 b1" and [c.label for c in document.configs] == ["fp32 b2"]
    config = document.configs[0]
    assert config.psnr_db.pairs == 1 and config.unmatched == 1  # b2's second image has no partner in b1
    # same prompt and seed: batch 2's first image is batch 1's image, bit for bit or within batched-kernel rounding
    assert config.pairs[0].identical or config.pairs[0].psnr_db > 60
    # batched kernels round differently: the latents agree to float precision, never diverging
    assert config.drift is not None and config.drift.diverges_at is None
    assert all(step.relative < 1e-4 for step in config.drift.steps)
    assert config.seconds is not None and document.pareto_metric == "psnr_db" and len(document.pareto) == 2
    from profkit.model.bench import BenchResult

    result = BenchResult.load(tmp_path / "b" / "bench.json", "bench")
    per_image = {c.name: statistics.median(t.e2e_ms for t in c.trials) / 1000 / c.batch for c in result.configs}
    assert config.seconds == pytest.approx(per_image["fp32 b2"])  # per image, as the bench verdict compares them
    assert document.reference_seconds == pytest.approx(per_image["fp32 b1"])
    assert (tmp_path / "b" / "quality.html").is_file() and load_document(tmp_path / "b" / "quality.json") == document
    quality.gate.check(document, "here")  # (near-)identical images pass the gate
    from markupsafe import escape

    bench_report = (tmp_path / "b" / "bench.html").read_text()  # the bench report names the verdict, links the report
    assert str(escape(config.verdict)) in bench_report and 'href="quality.html"' in bench_report


def msgspec_replace(struct, **changes):
    import msgspec

    return msgspec.structs.replace(struct, **changes)


def test_latent_drift_refuses_runs_of_different_step_counts(tmp_path: Path) -> None:
    from profkit.quality.drift import latent_drift

    rng = np.random.default_rng(1)
    two, three = tmp_path / "two.npz", tmp_path / "three.npz"
    np.savez(two, latents=rng.normal(size=(2, 1, 4, 8, 8)), seed=np.array(0))
    np.savez(three, latents=rng.normal(size=(3, 1, 4, 8, 8)), seed=np.array(0))
    with pytest.raises(ProfkitError, match="different schedules"):
        latent_drift(two, three)
    assert len(latent_drift(three, three).steps) == 3


@pytest.mark.slow
def test_bench_keeps_each_configuration_s_own_steps() -> None:
    """The kept images of a steps list come from calls with that configuration's steps (not the settings' first)."""
    from profkit.capture.bench.runner import measure
    from profkit.model.bench import BenchSettings

    settings = BenchSettings(steps=1, steps_list=(1, 2), height=32, width=32, warmup=0, trials=1, device="cpu")
    kept: dict[str, int] = {}
    measure(settings, keep=lambda name, _pipeline, kwargs: kept.__setitem__(name, kwargs["num_inference_steps"]))
    assert kept == {"fp32 b1 1steps": 1, "fp32 b1 2steps": 2}


def test_report_draws_the_drift_chart_and_leaves_uncomputed_reference_columns_empty() -> None:
    from profkit.model.quality import ConfigQuality, DriftStep, LatentDrift, MetricSummary
    from profkit.report.quality_html import drift_svg, quality_html

    def step(index: int, relative: float) -> DriftStep:
        return DriftStep(step=index, norm=1.0, reference_norm=1.0, distance=relative, relative=relative)

    drift = LatentDrift(steps=[step(0, 0.0), step(1, 0.005), step(2, 0.04)], threshold=0.01, diverges_at=2)
    summary = MetricSummary(median=40.0, worst=39.0, pairs=1)
    config = ConfigQuality(
        label="fp16", source="b", pairs=[], psnr_db=summary, ssim=summary, drift=drift, verdict="fp16 differs"
    )
    document = QualityDocument(reference="fp32", reference_source="a", configs=[config])
    chart = drift_svg(document)
    assert chart is not None and len(chart["lines"]) == 1
    (_, y0, _), (_, y1, _), (_, y2, _) = chart["lines"][0]["dots"]
    assert y0 == chart["bottom"] and y2 < chart["threshold_y"] < y1 < y0  # step 2 above the threshold, step 1 below
    html = quality_html(document)
    assert "latent drift per step" in html and "fp16 step 2: 4.000%" in html
    reference_row = html.split("(reference)</td>", 1)[1].split("</tr>", 1)[0]
    assert ">0<" not in reference_row  # no LPIPS / FID / KID computed: n/a, not a made-up 0


def _image_server(answers: dict[str, bytes]):
    """A stub images endpoint on 127.0.0.1: POST /<name> answers ``answers[name]`` (OpenAI-style JSON)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = answers[self.path.strip("/")]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_load_runs_keep_an_image_sample_paired_by_prompt_and_seed(folders: dict[str, Path], tmp_path: Path) -> None:
    import base64

    import orjson

    from profkit.model.bench import MetricStats
    from profkit.model.load import LoadLevel, LoadTestResult
    from profkit.quality.sample import keep_sample

    def answer(folder: Path) -> bytes:
        images = sorted(folder.glob("*.png"))[:2]
        return orjson.dumps({"data": [{"b64_json": base64.b64encode(p.read_bytes()).decode()} for p in images]})

    server, base = _image_server({"ref": answer(folders["ref"]), "shifted": answer(folders["shifted"]), "none": b"{}"})
    try:
        seeded = {"body": {"prompt": "a cat", "n": 2, "seed": 7}}
        runs = {}
        for name, p50 in (("ref", 200.0), ("shifted", 100.0)):
            run = tmp_path / f"load_{name}"
            stats = MetricStats(count=3, mean=p50, std=0, cv=0, min=p50, p50=p50, p90=p50, p95=p50, p99=p50, max=p50,
                                median_ci=None)  # fmt: skip
            level = LoadLevel(users=1, duration_s=1, requests=3, ok=3, rps=3, images_per_s=6, error_rate=0,
                              latency=stats)  # fmt: skip
            run.mkdir()
            (run / "load.json").write_bytes(LoadTestResult(url=base, mode="closed", levels=(level,)).to_json())
            assert keep_sample(f"{base}/{name}", seeded, run).startswith("kept 2 sample image(s)")
            runs[name] = run
        unseeded = keep_sample(f"{base}/ref", {"body": {"prompt": "a cat"}}, tmp_path / "unseeded")
        assert "names no seed" in unseeded
        assert keep_sample(f"{base}/none", seeded, tmp_path / "empty").startswith("no image sample kept")
    finally:
        server.shutdown()
    outputs = quality_paths([runs["ref"], runs["shifted"]], json_path=tmp_path / "q.json", write_html=False)
    config = outputs.document.configs[0]
    assert [p.key for p in config.pairs] == ["seed 7 #0: a cat", "seed 7 #1: a cat"]
    assert config.psnr_db.median == pytest.approx(10 * math.log10(1 / (10 / 255) ** 2), abs=1e-3)
    assert config.speedup == pytest.approx(2.0)  # one-user median latency 200 ms vs 100 ms
    (tmp_path / "empty" / "load.json").parent.mkdir()
    (tmp_path / "empty" / "load.json").write_bytes((runs["ref"] / "load.json").read_bytes())
    with pytest.raises(ProfkitError, match="without an image sample"):
        quality_paths([tmp_path / "empty", runs["ref"]], json_path=tmp_path / "e.json", write_html=False)


def _alexnet_state(seed: int) -> dict:
    """A torchvision-style ``alexnet`` state dict (features + classifier keys) with seeded random weights."""
    import torch

    from profkit.quality.lpips_net import alexnet_features

    torch.manual_seed(seed)
    state = {f"features.{key}": value for key, value in alexnet_features().state_dict().items()}
    state["classifier.1.weight"] = torch.zeros(4096, 9216)
    return state


def test_lpips_from_a_local_backbone_file(folders: dict[str, Path], tmp_path: Path) -> None:
    """LPIPS end to end from a saved AlexNet state dict, no torchvision: 0 for identical images, above 0 for a
    shift, and the backbone file decides the value."""
    import torch

    def lpips_of(name: str, weights: Path) -> float:
        document = quality_paths(
            [folders["ref"], folders[name]],
            json_path=tmp_path / f"{name}-{weights.stem}.json",
            write_html=False,
            weights=WeightFiles(lpips_weights=weights),
        ).document
        assert document.configs[0].lpips is not None
        return document.configs[0].lpips.median

    first, second = tmp_path / "alexnet.pth", tmp_path / "other.pth"
    torch.save(_alexnet_state(0), first)
    torch.save(_alexnet_state(1), second)
    assert lpips_of("same", first) == pytest.approx(0, abs=1e-6)
    shifted = lpips_of("shifted", first)
    assert shifted > 0
    assert lpips_of("shifted", second) != pytest.approx(shifted, rel=1e-3)


def test_lpips_equals_torchmetrics_lpips_on_the_same_backbone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The torchvision-free network gives torchmetrics' own LPIPS value when torchmetrics is handed the same
    backbone (its torchvision lookup replaced by the layers built here)."""
    import torch
    from torchmetrics.functional.image import lpips as tm_lpips

    from profkit.quality.lpips_net import AlexLpips, alexnet_features

    torch.manual_seed(3)
    features = alexnet_features()
    monkeypatch.setattr(tm_lpips, "_get_tv_model_features", lambda net, pretrained=False: features)
    reference = tm_lpips._NoTrainLpips(net="alex", pretrained=True, pnet_rand=True).eval()
    ours = AlexLpips(features)
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    noisy = (images + 0.2 * torch.rand(images.shape, generator=torch.Generator().manual_seed(6))).clamp(0, 1)
    with torch.no_grad():
        expected = reference(images, noisy, normalize=True).flatten()
        got = ours(images, noisy, normalize=True).flatten()
    assert expected.min() > 0
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert sum(p.numel() for p in features.parameters()) == 2_469_696  # torchvision alexnet().features


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"features.0.weight": "zeros"}, "holds no AlexNet backbone weights (no features.0.bias)"),
        ("wrong-shape", "features.3.weight is (192, 64, 3, 3), AlexNet's is (192, 64, 5, 5)"),
        ("not-a-dict", "holds no AlexNet backbone weights (no features.0.weight)"),
    ],
)
def test_lpips_weights_that_are_not_an_alexnet_give_one_line(
    folders: dict[str, Path], tmp_path: Path, state: object, message: str
) -> None:
    import torch

    from profkit.errors import SettingError

    if state == "wrong-shape":
        state = _alexnet_state(0)
        state["features.3.weight"] = torch.zeros(192, 64, 3, 3)
    elif state == "not-a-dict":
        state = [torch.zeros(2)]
    else:
        state = {"features.0.weight": torch.zeros(64, 3, 11, 11)}
    weights = tmp_path / "bad.pth"
    torch.save(state, weights)
    with pytest.raises(SettingError, match=re.escape(message)):
        quality_paths([folders["ref"], folders["same"]], json_path=tmp_path / "q.json", write_html=False,
                      weights=WeightFiles(lpips_weights=weights))  # fmt: skip


def test_images_pair_only_when_prompt_and_seed_both_match(folders: dict[str, Path]) -> None:
    from profkit.quality.pairing import ImageRef, ImageSet, _keyed, pair

    files = {"image_000": ImageRef(folders["ref"] / "img_0.png"), "image_001": ImageRef(folders["ref"] / "img_1.png")}

    def images(prompts: list[str], seed: int) -> ImageSet:
        return ImageSet("x", folders["ref"], _keyed(files, prompts, seed))

    reference = images(["a cat", "a dog"], 0)
    pairs, unmatched = pair(reference, images(["a cat", "a dog"], 0))
    assert [p.key for p in pairs] == ["seed 0 #0: a cat", "seed 0 #1: a dog"] and unmatched == 0
    with pytest.raises(ProfkitError, match="by prompt and seed"):
        pair(reference, images(["a cat", "a dog"], 1))  # same prompts, another seed
    pairs, unmatched = pair(reference, images(["a cat", "a bird"], 0))  # the second prompt differs
    assert [p.key for p in pairs] == ["seed 0 #0: a cat"] and unmatched == 2


@pytest.mark.parametrize("content", [b"", b"not an image"])
def test_unreadable_or_truncated_image_is_one_error(folders: dict[str, Path], tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for source in sorted(folders["ref"].glob("*.png")):
        data = source.read_bytes()
        (bad / source.name).write_bytes(content or data[: len(data) // 2])  # empty: the first half of the PNG
    with pytest.raises(ProfkitError, match="not a readable image") as raised:
        quality_paths([folders["ref"], bad], json_path=tmp_path / "q.json", write_html=False)
    assert raised.value.exit_code == EXIT_BAD_INPUT and "\n" not in str(raised.value)
    assert not (tmp_path / "q.json").exists()


@pytest.mark.slow
def test_cli_truncated_image_one_line_exit_2(folders: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for source in sorted(folders["ref"].glob("*.png")):
        (bad / source.name).write_bytes(source.read_bytes()[:300])
    result = run_cli("quality", str(folders["ref"]), str(bad), "--json-out", str(tmp_path / "q.json"), "--no-html")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "truncated" in result.stderr


def test_verdict_names_speed_and_quality_together() -> None:
    from profkit.model.quality import ConfigQuality, MetricSummary
    from profkit.quality.compare import verdict

    def config(speedup: float | None, psnr: float | None) -> ConfigQuality:
        return ConfigQuality(label="fp16", source="b", pairs=[], speedup=speedup,
                             psnr_db=MetricSummary(median=psnr, worst=psnr, pairs=2),
                             ssim=MetricSummary(median=0.9912, worst=0.99, pairs=2))  # fmt: skip

    expected = "fp16 is 1.9x faster; images differ from fp32 by PSNR 38.2 dB (median), SSIM 0.991"
    assert verdict("fp32", config(1.94, 38.21)) == expected
    assert verdict("fp32", config(1.03, 38.21)).startswith("fp16 is 1.03x faster;")
    assert verdict("fp32", config(0.5, 38.21)).startswith("fp16 is 2.0x slower;")
    assert verdict("fp32", config(None, None)) == "images are identical to fp32's (2 pairs)"
