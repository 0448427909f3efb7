"""Text templates of findings: ``str.format`` over a finding's numbers, labels and rows.

Beyond ``str.format``:

- ``[[ ... ]]`` is an optional segment, kept only when every field it names is present (not ``None``, not
  empty); ``[[ ... || ... ]]`` falls back to the text after ``||`` instead.
- ``{rows}`` is the finding's rows, each rendered with the rule's row template and joined by its separator.
- A missing field renders as ``n/a``; the format spec ``how`` renders a speedup as a phrase
  (``"2.00x faster than"``), ``bytes`` a byte count (``"1.23 MB"``), ``n|noun`` a count with its noun
  (``"1 stream"``, ``"2 streams"``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

import msgspec

from profkit.analysis.findings.facts import byte_size, speed_phrase
from profkit.analysis.findings.model import Row

_OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)


class _Missing:
    def __format__(self, spec: str) -> str:
        return "n/a"


_MISSING = _Missing()


class _Formatter(string.Formatter):
    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        value = kwargs.get(str(key))
        return _MISSING if value is None else value

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is _MISSING:
            return "n/a"
        if format_spec == "how":
            return speed_phrase(value)
        if format_spec == "bytes":
            return byte_size(value)
        if format_spec.startswith("n|"):  # {calls:n|synchronization call}: "1 synchronization call", "2 ... calls"
            return f"{value} {format_spec[2:]}{'' if value == 1 else 's'}"
        return format(value, format_spec)


_FORMATTER = _Formatter()


def _present(values: Mapping[str, Any], template: str) -> bool:
    names = {re.split(r"[.\[]", name)[0] for _, name, _, _ in _FORMATTER.parse(template) if name}
    return all(values.get(name) not in (None, "", []) for name in names)


def render(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with its optional segments resolved and its fields filled from ``values``."""

    def segment(match: re.Match[str]) -> str:
        kept, _, fallback = match.group(1).partition("||")
        return kept if _present(values, kept) else fallback

    return _FORMATTER.vformat(_OPTIONAL.sub(segment, template), (), values)


class Text(msgspec.Struct, frozen=True):
    """A rule's templates: title, evidence, next step, and how one of its rows reads."""

    title: str
    evidence: str
    next_step: str
    row: str = ""
    row_sep: str = "; "

    def render(self, numbers: Mapping[str, Any], labels: Mapping[str, str], rows: list[Row]) -> tuple[str, str, str]:
        values: dict[str, Any] = {**numbers, **labels}
        if rows:
            values["rows"] = self.row_sep.join(render(self.row, {**values, **row}) for row in rows)
        return render(self.title, values), render(self.evidence, values), render(self.next_step, values)
