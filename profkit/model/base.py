"""The base of every document profkit writes: a frozen msgspec Struct with its own kind and version.

A document kind is a subclass of :class:`Document` that sets ``KIND`` (``"profkit.capture"`` ...) and
``VERSION`` (an int, raised whenever the JSON shape changes) and, for each older version it can still read,
a function in ``MIGRATIONS`` that turns a version-``n`` dict into a version-``n+1`` dict. Loading checks the
kind, migrates older files step by step, refuses newer or unknown ones with one line, and converts the dict
into the typed document (every field type checked by msgspec; a wrong type names its field).

On disk a document is a JSON object whose first keys are ``schema_version``, ``kind`` and ``created_at``.
A kind that wraps a type of another layer (an analysis result) flattens it in :meth:`Document.body` and
rebuilds it in :meth:`Document.from_body`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import msgspec

from profkit.errors import ProfkitError

#: Version 1 is the shape every profkit document had before documents were typed (one number for all kinds).
LEGACY_VERSION = 1

D = TypeVar("D", bound="Document")


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Document(msgspec.Struct, frozen=True, kw_only=True):
    """A typed, immutable, versioned result document."""

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = LEGACY_VERSION
    #: ``{n: f}``: ``f`` turns a version-``n`` dict into a version-``n + 1`` dict.
    MIGRATIONS: ClassVar[dict[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {}

    created_at: str = msgspec.field(default_factory=now_utc)

    # -- writing -------------------------------------------------------------------------------------
    def to_builtins(self) -> dict[str, Any]:
        """The JSON object of this document: header first, then every field."""
        return {"schema_version": self.VERSION, "kind": self.KIND, **self.body()}

    def body(self) -> dict[str, Any]:
        """Every field as JSON builtins (a kind that wraps another type flattens it here)."""
        return msgspec.to_builtins(self)

    def to_json(self) -> bytes:
        from profkit.jsonio import dumps

        return dumps(self.to_builtins()) + b"\n"

    # -- reading -------------------------------------------------------------------------------------
    @classmethod
    def from_builtins(cls: type[D], data: Any, source: str = "document") -> D:
        """A document from its decoded JSON: kind checked, older versions migrated, types validated."""
        if not isinstance(data, dict):
            raise ProfkitError(f"{source}: not a profkit {cls.KIND} document (not a JSON object)")
        kind = data.get("kind")
        if kind != cls.KIND:
            raise ProfkitError(f"{source}: not a profkit {cls.KIND} document (kind is {kind!r})")
        version = data.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ProfkitError(f"{source}: {cls.KIND} document without a valid schema_version ({version!r})")
        if version > cls.VERSION:
            raise ProfkitError(
                f"{source}: {cls.KIND} version {version} was written by a newer profkit; this one reads up to "
                f"version {cls.VERSION}: upgrade profkit"
            )
        body = {key: value for key, value in data.items() if key not in ("schema_version", "kind")}
        while version < cls.VERSION:
            migrate = cls.MIGRATIONS.get(version)
            if migrate is None:
                raise ProfkitError(
                    f"{source}: {cls.KIND} version {version} is too old for this profkit (reads "
                    f"{min([cls.VERSION, *cls.MIGRATIONS])} to {cls.VERSION})"
                )
            body = migrate(body)
            version += 1
        try:
            return cls.from_body(body, source)
        except msgspec.ValidationError as error:
            raise ProfkitError(f"{source}: invalid {cls.KIND} document: {error}") from error

    @classmethod
    def from_body(cls: type[D], body: dict[str, Any], source: str = "document") -> D:
        """The document from its current-version fields (the inverse of :meth:`body`); ``source`` names it in errors."""
        return msgspec.convert(body, cls, strict=False)

    @classmethod
    def from_json(cls: type[D], raw: bytes, source: str = "document") -> D:
        import orjson

        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise ProfkitError(f"{source}: not valid JSON ({error})") from error
        return cls.from_builtins(data, source)

    @classmethod
    def load(cls: type[D], path: Path, what: str | None = None) -> D:
        from profkit.jsonio import read_json

        return cls.from_builtins(read_json(Path(path), what or f"{cls.KIND} document"), str(path))

    def write(self, path: Path, force: bool = True) -> Path:
        """Write atomically; without ``force`` an existing file is refused (even one that appeared meanwhile)."""
        from profkit.jsonio import write_bytes

        return write_bytes(Path(path), self.to_json(), force)
