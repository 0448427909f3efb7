"""Output quality next to speed: pair the images of two or more configurations by prompt and seed and measure how
far they drifted from the reference (:mod:`.pairing`, :mod:`.metrics`, :mod:`.weighted`, :mod:`.drift`,
:mod:`.pareto`, :mod:`.compare`). Heavy imports (torch, torchmetrics, transformers) happen inside functions."""
