"""The OpenAI images request shape (prompt, n, size ``WxH``, plus steps and seed), checked against the limits."""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec

from profkit.serve.settings import ServeSettings

_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")


class BadRequest(Exception):
    """A request the pipeline never sees: HTTP ``status`` with a JSON error ``{"error": {"message", "type"}}``."""

    def __init__(self, message: str, status: int = 400, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "code": self.status}}


class ImagesRequest(msgspec.Struct, frozen=True):
    """``POST /v1/images/generations`` body; unknown fields (``model``, ``quality`` ...) are ignored."""

    prompt: str
    n: int = 1
    size: str | None = None
    steps: int | None = None
    seed: int | None = None
    response_format: str = "b64_json"


@dataclass(frozen=True)
class Generation:
    """One validated request: what the pipeline is called with."""

    prompt: str
    n: int
    height: int
    width: int
    steps: int
    seed: int | None

    @property
    def shape(self) -> tuple[int, int, int]:
        """Requests of the same shape can share a pipeline call."""
        return (self.height, self.width, self.steps)


_DECODER = msgspec.json.Decoder(ImagesRequest)


def parse_generation(body: bytes, settings: ServeSettings) -> Generation:
    """Decode and check ``body``; :class:`BadRequest` (400/413/422) says what is wrong."""
    if len(body) > settings.max_body_bytes:
        raise BadRequest(f"body is larger than {settings.max_body_bytes} bytes", 413)
    try:
        request = _DECODER.decode(body)
    except msgspec.ValidationError as error:
        raise BadRequest(f"invalid request: {error}", 422) from None
    except msgspec.DecodeError as error:
        raise BadRequest(f"body is not valid JSON: {error}", 400) from None
    if not request.prompt.strip():
        raise BadRequest("prompt is empty", 422)
    if not 1 <= request.n <= settings.max_n:
        raise BadRequest(f"n must be in 1..{settings.max_n} (got {request.n})", 422)
    if request.response_format != "b64_json":
        raise BadRequest("only response_format b64_json is served", 422)
    height, width = settings.height, settings.width
    if request.size is not None:
        match = _SIZE.match(request.size)
        if not match:
            raise BadRequest(f"size must be WIDTHxHEIGHT, e.g. 64x64 (got {request.size!r})", 422)
        width, height = int(match[1]), int(match[2])
        for side in (width, height):
            if side % 8 or not settings.min_side <= side <= settings.max_side:
                raise BadRequest(
                    f"size sides must be multiples of 8 in {settings.min_side}..{settings.max_side} "
                    f"(got {request.size})",
                    422,
                )
    steps = settings.steps if request.steps is None else request.steps
    if not 1 <= steps <= settings.max_steps:
        raise BadRequest(f"steps must be in 1..{settings.max_steps} (got {steps})", 422)
    if request.seed is not None and not 0 <= request.seed < 2**63:
        raise BadRequest(f"seed must be in 0..2^63-1 (got {request.seed})", 422)
    return Generation(request.prompt, request.n, height, width, steps, request.seed)
