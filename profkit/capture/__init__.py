"""Side effects on the model live here: instrumentation and profilers."""

from profkit.capture.instrument import Instrumentation, instrument
from profkit.capture.run import RunRecord
from profkit.capture.settings import CaptureSettings

__all__ = ["CaptureSettings", "Instrumentation", "RunRecord", "instrument"]
