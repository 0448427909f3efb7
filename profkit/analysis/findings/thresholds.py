"""THE table of finding thresholds: every number a trace or comparison rule compares against.

Each rule declares the keys it reads (``@trace_rule(thresholds=...)``); tests check that no rule compares
against a number of its own and that every key here is read by some rule.
"""

from __future__ import annotations

THRESHOLDS: dict[str, float] = {
    # severity from impact (recoverable time as a share of the pipeline wall time), applied by the registry
    "impact_critical_share": 0.10,
    "impact_warning_share": 0.02,
    "impact_floor_ms": 1.0,  # less recoverable time than this is info, whatever its share
    # pipeline stages and steps
    "vae_share_warning": 0.25,
    "text_encoder_share_warning": 0.20,
    "other_share_warning": 0.15,
    "denoise_dominates_share": 0.5,  # from this share of the pipeline on, the denoise loop "dominates"
    "min_steps_step_rules": 3,  # steps needed before the first-step and step-variance rules judge
    "first_step_outlier_ratio": 1.5,
    "step_cv_warning": 0.15,
    # GPU kernels
    "low_gpu_utilization": 0.5,
    "fp32_matmul_share_in_half_run": 0.10,
    "dominant_category_share": 0.40,
    # GPU idle time and host blocking (Nsight Systems expert rules, launch-bound loop)
    "sync_time_share_warning": 0.01,  # host time blocked in sync calls, of the analysed window
    "starvation_share_warning": 0.05,  # long idle gaps, of the GPU window
    "launch_bound_idle_share": 0.30,  # GPU idle share inside the denoise loop
    "every_step_share": 0.8,  # "in every step": at least this share of the steps
    "min_steps_every_step": 2,  # steps needed before "in every step" means anything
    # CUDA graphs and attention (graph_rules.py, attention_rules.py)
    "graph_idle_share": 0.05,  # GPU idle between graph replays, of the pipeline wall time
    "attention_min_share": 0.01,  # non-flash attention kernels, of their stage's GPU time
    # comparisons (speedup = A time / B time)
    "same_speed_tolerance": 0.02,  # |speedup - 1| below this reads "about the same speed"
    "slower_speedup": 0.98,  # a total speedup below this: B made the run slower
    "host_bound_gpu_speedup": 1.1,  # GPU busy time got at least this much faster ...
    "host_bound_wall_lag": 1.25,  # ... but wall time gained this factor less: the host did not keep up
    "stage_change_min": 0.02,  # a stage changed when |speedup - 1| reaches this
    "min_matched_steps": 2,  # matched steps needed for the per-step speedup finding
    "prediction_match_tolerance": 0.5,  # measured gain within this fraction of the predicted one: "matches"
}
