"""Turning the flags that capture and bench share into setting values (prompts, comma lists)."""

from __future__ import annotations

from pathlib import Path

from profkit.errors import ConflictingSettings, SettingError


def prompts_from(prompt: str | None, prompts_file: Path | None) -> tuple[str, ...]:
    """The prompts of ``--prompt`` or ``--prompts-file`` (one per line), or the default prompt."""
    from profkit.capture.settings import DEFAULT_PROMPT, read_prompts_file

    if prompt is not None and prompts_file is not None:
        raise ConflictingSettings("prompt", "prompts_file")
    if prompts_file is not None:
        return read_prompts_file(prompts_file)
    return (prompt if prompt is not None else DEFAULT_PROMPT,)


def comma_list(value: str) -> tuple[str, ...]:
    """``"fp32, FP16"`` -> ``("fp32", "fp16")``."""
    return tuple(part.strip().lower() for part in value.split(",") if part.strip())


def comma_ints(value: str, setting: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> ``(1, 2, 4)``; anything else is an error about ``setting``."""
    try:
        return tuple(int(part) for part in comma_list(value))
    except ValueError as error:
        raise SettingError(setting, f"takes integers separated by commas (got {value!r})") from error
