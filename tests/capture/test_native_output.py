"""Native output while the profiler starts and stops: Kineto's chatter dropped, anything else passed on."""

from __future__ import annotations

import os

from profkit.capture.native_output import profiler_chatter_dropped


def test_kineto_lines_are_dropped_and_others_reach_stderr(capfd) -> None:
    with profiler_chatter_dropped():
        os.write(2, b"USDT:2026-11-28 05:24:04 21729:21729 SyncActivityProfilerHandler.cpp:52] profiler_start\n")
        os.write(2, b"STAGE:2026-11-28 05:24:04 21729:21729 ActivityProfilerController.cpp:312] Completed Stage\n")
        os.write(1, b"a warning from some other library\n")
    out, err = capfd.readouterr()
    assert "USDT" not in err + out and "STAGE" not in err + out
    assert out == "" and err == "a warning from some other library\n"


def test_a_real_profiler_start_and_stop_print_nothing(capfd) -> None:
    import torch
    from torch.profiler import profile

    profiler = profile()
    with profiler_chatter_dropped():
        profiler.start()
    torch.ones(4).add_(1)
    with profiler_chatter_dropped():
        profiler.stop()
    out, err = capfd.readouterr()
    assert "USDT" not in out + err and "profiler_st" not in out + err
