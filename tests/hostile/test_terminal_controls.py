"""Control characters and emoji codes in text from traces, metadata or the user reach the terminal as text.

A kernel or file name holding a terminal escape sequence (``ESC ] 0 ; title BEL`` retitles the window, ``ESC [ 2 J``
clears it) is printed with its control characters escaped; ``:fire:`` stays ``:fire:``, never an emoji.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.table import Table
from rich.text import Text

from profkit.cli import output
from profkit.cli.errors import error_line
from profkit.errors import ProfkitError
from tests.hostile.test_outputs import _main_in_process
from tests.tracebuilder import diffusion_trace

HOSTILE = "k\x1b]0;owned\x07\x1b[2J\x9b31m\x7f:fire:"
SHOWN = "k\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\x7f:fire:"
#: as rich shows it: it drops BEL (and backspace, vertical tab, form feed, carriage return) itself
SHOWN_BY_RICH = SHOWN.replace("\\x07", "")
CONTROLS = ("\x1b", "\x07", "\x9b", "\x7f")


def _no_controls(text: str) -> None:
    assert not [c for c in CONTROLS if c in text], repr(text)


def test_visible_escapes_control_characters_and_keeps_the_rest() -> None:
    assert output.visible(HOSTILE) == SHOWN
    assert output.visible("tab\tnew\nline ü 名前 [bold]") == "tab\tnew\nline ü 名前 [bold]"


def test_plain_lines_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    output.wrote("HTML report", Path(f"/tmp/{HOSTILE}.html"))
    out = capsys.readouterr().out
    assert out == f"wrote HTML report: /tmp/{SHOWN}.html\n"


def test_rich_console_escapes_cells_and_keeps_emoji_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = io.StringIO()
    monkeypatch.setattr("sys.stdout", sink)
    console = output._console(stderr=False)
    table = Table(title=Text(HOSTILE))
    table.add_column("kernel")
    table.add_row(Text(HOSTILE))
    console.print(table)
    console.print(Text(HOSTILE, style="bold"))
    console.print(HOSTILE)
    printed = sink.getvalue()
    _no_controls(printed)
    assert printed.count(SHOWN_BY_RICH) == 4, printed
    assert "\N{FIRE}" not in printed


def test_an_error_is_one_line_whatever_its_text() -> None:
    line = error_line(ProfkitError(f"cannot read {HOSTILE}\nsecond line"))
    assert line == f"profkit: error: cannot read {SHOWN}\\nsecond line"


def test_analyze_prints_a_hostile_kernel_name_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    builder = diffusion_trace(steps=3, kernel_name=HOSTILE)
    builder.device_name = HOSTILE
    trace = builder.write(tmp_path / "t:fire:.json.gz")
    code, out, err = _main_in_process(["analyze", str(trace), "--out", str(tmp_path / "r.html")], monkeypatch, capsys)
    assert code == 0, err
    _no_controls(out + err)
    assert SHOWN_BY_RICH in out  # the kernel table
    assert "t:fire:" in out and "\N{FIRE}" not in out
