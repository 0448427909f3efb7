"""``bench --batch auto``: the largest batch that fits on the device, by doubling then bisecting on out-of-memory.

The search is given a ``fits(batch)`` callable (one pipeline call on the device; stand-ins in tests) and makes at
most ``max_tries`` calls: 1, 2, 4 ... until a batch does not fit or ``max_batch`` is reached, then bisects between
the largest batch that fit and the smallest that did not. An error that is not an out-of-memory error stops the
search (the batch that failed is not retried). On a CPU the limit is RAM and swapping, not an allocator error, so
the runner refuses ``auto`` there before any work.
"""

from __future__ import annotations

from collections.abc import Callable

from profkit.model.bench import BatchTry

#: ``fits(batch)`` -> ``None`` when the call fit, else the error text ("out of memory: ..." for an OOM).
FitCheck = Callable[[int], str | None]


def is_out_of_memory(error: str | None) -> bool:
    return error is not None and "out of memory" in error.lower()


def find_max_batch(fits: FitCheck, max_batch: int = 256, max_tries: int = 12) -> tuple[int | None, list[BatchTry]]:
    """The largest batch ``fits`` accepts (``None`` when not even 1 does) and every try made, in order."""
    tries: list[BatchTry] = []
    max_tries = max(1, max_tries)

    def attempt(batch: int) -> bool:
        error = fits(batch)
        tries.append(BatchTry(batch=batch, fits=error is None, error=error))
        return error is None

    fitting, failing = 0, None
    batch = 1
    while len(tries) < max_tries:
        if attempt(batch):
            fitting = batch
            if batch >= max_batch:
                return fitting, tries
            batch = min(batch * 2, max_batch)
        else:
            failing = batch
            break
    if failing is None or not is_out_of_memory(tries[-1].error):
        return fitting or None, tries
    while failing - fitting > 1 and len(tries) < max_tries:
        middle = (fitting + failing) // 2
        if attempt(middle):
            fitting = middle
        elif is_out_of_memory(tries[-1].error):
            failing = middle
        else:
            break
    return fitting or None, tries
