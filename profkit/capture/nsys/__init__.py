"""Capture under Nsight Systems: finding and running nsys (``tool``), the parent that runs ``nsys profile`` and
completes the run folder (``runner``), and the child process it profiles (``child``)."""
