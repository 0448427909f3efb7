"""Help that reads like every other command line tool's: flags without a ``<bool>`` type, arguments in upper case.

typer prints a required argument as ``{trace}`` in the usage line, and 0.29 an on/off flag as ``--force <bool>``;
:func:`conventional_help` makes them ``TRACE`` (``[TRACE]`` when optional) and ``--force`` for every command, under
typer 0.28 (the version profkit asks for) and 0.29 alike.
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

    def make_metavar(self: Any, ctx: Any, *, usage: bool = False) -> str:
        return usage_name(self) if usage else original_metavar(self, ctx, usage=usage)

    original_type = getattr(core.TyperOption, "display_type_rich", None)
    original_metavar = getattr(core.TyperArgument, "make_metavar", None)
    if not getattr(core.TyperOption, "_profkit_help", False):
        if original_type is not None:  # typer 0.29 (0.28 prints a flag without a type already)
            core.TyperOption.display_type_rich = display_type_rich
        if hasattr(core.TyperArgument, "_usage_display_name"):  # typer 0.29 names arguments in the usage line here
            core.TyperArgument._usage_display_name = usage_name
        else:  # typer 0.28, here
            core.TyperArgument.make_metavar = make_metavar
        core.TyperOption._profkit_help = True
