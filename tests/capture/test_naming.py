from profkit import naming


def test_names_round_trip_through_the_parser():
    assert naming.parse_range_name(naming.PIPELINE).kind == "pipeline"
    step = naming.parse_range_name(naming.step_range(7))
    assert (step.stage, step.step, step.kind) == ("denoise", 7, "step")
    cfg = naming.parse_range_name(naming.denoiser_range(12, "transformer", 2))
    assert naming.denoiser_range(12, "transformer", 2) == "profkit/denoise/step_012/transformer#2"
    assert (cfg.kind, cfg.component, cfg.step) == ("denoiser", "transformer", 12)
    assert naming.parse_range_name(naming.scheduler_range(3)).kind == "scheduler"
    assert naming.parse_range_name(naming.text_encoder_range("text_encoder_3")).component == "text_encoder_3"
    assert naming.parse_range_name(naming.vae_range("encode")).stage == "vae"
    assert naming.parse_range_name(naming.SAFETY_CHECKER).stage == "safety_checker"


def test_foreign_names_are_not_profkit_ranges():
    for name in ("ProfilerStep#1", "profkit", "profkit/unknown/thing", "aten::mm", "profkit/text_encoder/"):
        assert naming.parse_range_name(name) is None
