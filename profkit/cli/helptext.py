"""Help that reads like every other command line tool's: flags without a ``<bool>`` type, arguments in upper case.

typer 0.29 prints an on/off flag as ``--force <bool>`` and a required argument as ``{trace}`` in the usage line;
:func:`conventional_help` makes them ``--force`` and ``TRACE`` (``[TRACE]`` when optional) for every command.
"""

from __future__ import annotations

from typing import Any


def conventional_help() -> None:
    from typer import core

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False):
            return None
        return original_type(self, ctx)

    def usage_name(self: Any) -> str:
        name = (self.metavar or self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    original_type = core.TyperOption.display_type_rich
    if not getattr(core.TyperOption, "_profkit_help", False):
        core.TyperOption.display_type_rich = display_type_rich
        core.TyperArgument._usage_display_name = usage_name
        core.TyperOption._profkit_help = True
