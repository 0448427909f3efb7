"""Side effects on the model live here: instrumentation and profilers."""

from profkit.capture.instrument import Instrumentation, instrument
from profkit.capture.settings import CaptureSettings
from profkit.capture.torch_capture import RunRecord, run_capture

__all__ = ["CaptureSettings", "Instrumentation", "RunRecord", "instrument", "run_capture"]
