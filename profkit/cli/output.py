"""What commands print: a console on stdout for results, one on stderr for progress, and plain lines.

Nothing printed is read as console markup or emoji codes: what commands print holds names from traces, metadata and
the user (``runs[exp1]``, ``a:fire:b``), shown as written; styles are given as ``style=`` or :class:`~rich.text.Text`.
Control characters in that text (a terminal escape sequence in a kernel name) are shown escaped (``\\x1b``), never
sent to the terminal. The rich consoles are built on first use: a command that prints only plain lines
(``analyze -q``) does not import rich.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

#: Width of tables when the output is a file or a pipe (rich would use 80 and wrap sentences mid-way).
PIPE_WIDTH = 160

#: C0 controls but tab and newline, DEL and C1 controls -> their escape as Python writes it
_ESCAPED = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if chr(code) not in "\t\n"}


def visible(text: str) -> str:
    """``text`` with its control characters escaped (a terminal would act on them)."""
    return text.translate(_ESCAPED) if not text.isprintable() else text


def say(line: str) -> None:
    """Print one plain line on stdout (control characters escaped), without rich."""
    sys.stdout.write(visible(line) + "\n")
    sys.stdout.flush()


def wrote(what: str, path: Path | None) -> None:
    if path is not None:
        say(f"wrote {what}: {path}")


def _console(stderr: bool) -> Console:
    from rich.console import Console
    from rich.segment import Segment

    class _VisibleConsole(Console):
        """A console that escapes control characters in the text it renders (not in its own control codes)."""

        def _render_buffer(self, buffer: Any) -> str:
            return super()._render_buffer(
                segment if segment.control else Segment(visible(segment.text), segment.style, segment.control)
                for segment in buffer
            )

    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty()) and not os.environ.get("COLUMNS")
    if piped:  # a sentence stays on one line; tables get room for their columns
        return _VisibleConsole(
            stderr=stderr, highlight=False, markup=False, emoji=False, width=PIPE_WIDTH, soft_wrap=True
        )
    return _VisibleConsole(stderr=stderr, highlight=False, markup=False, emoji=False)


_CONSOLES: dict[str, Console] = {}


def __getattr__(name: str) -> Console:
    """``console`` (stdout) and ``progress_console`` (stderr), built on first use."""
    if name not in ("console", "progress_console"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _CONSOLES:
        _CONSOLES[name] = _console(stderr=name == "progress_console")
    return _CONSOLES[name]
