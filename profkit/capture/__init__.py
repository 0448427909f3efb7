"""Side effects on the model live here: instrumentation (``instrument``), run folders and metadata (``run``),
the torch.profiler and Nsight Systems captures (``torch_profiler``, ``nsys/``), the benchmark runner and sampler
(``bench/``), the environment collected with every result (``environment``) and the one progress protocol."""

from profkit.capture.instrument import Instrumentation, instrument
from profkit.capture.run import RunRecord
from profkit.capture.settings import CaptureSettings

__all__ = ["CaptureSettings", "Instrumentation", "RunRecord", "instrument"]
