"""What native libraries print while profkit measures: Kineto's ``USDT: ... profiler_start`` chatter is dropped.

Kineto (torch.profiler's C++ side) writes a line to file descriptor 2 whenever a profiler starts or stops. It is
not for the user: :func:`profiler_chatter_dropped` sends descriptors 1 and 2 to a temporary file while the
profiler starts or stops, then passes on every other line (to stderr, so stdout stays the tool's own output).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

#: Lines Kineto prints on its own when a profiler starts or stops (and its CUPTI start-up warnings' prefixes).
KINETO_CHATTER = re.compile(r"^(USDT:|STAGE:|\[W\d*\s.*(ActivityProfiler|CuptiActivity|kineto)|INFO:\d+:kineto)")
#: At most this much of what was printed is passed on (a runaway library must not fill memory).
MAX_KEPT_BYTES = 1 << 20


@contextmanager
def profiler_chatter_dropped() -> Iterator[None]:
    """Within the block, native output on descriptors 1 and 2 is held; on exit, all but Kineto's chatter goes to
    stderr."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            text = sink.read(MAX_KEPT_BYTES).decode("utf-8", "replace")
            kept = [line for line in text.splitlines() if line.strip() and not KINETO_CHATTER.match(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()
