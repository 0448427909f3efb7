"""The ``profkit`` command line: typer commands only; errors become one line and an exit code in :func:`main`.

Command modules hold flags and help only and import their implementation (``profkit.app``, ``profkit.report``)
when they run, so ``profkit --help`` loads neither numpy, pandas, scipy nor torch.
"""

from __future__ import annotations

import atexit
import functools
import gc
import importlib
import sys
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

from profkit import __version__
from profkit.cli.errors import error_line
from profkit.cli.helptext import conventional_help
from profkit.errors import EXIT_ABORTED, EXIT_BAD_INPUT, Interrupted, ProfkitError
from profkit.interrupts import sigterm_as_interrupt

conventional_help()


def _show_version(value: bool) -> None:
    if value:
        print(f"profkit {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_show_version, is_eager=True)
    ] = False,
) -> None:
    """Where the time goes in diffusion-model inference: capture, analyze, compare, bench."""


def _interruptible(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with Ctrl-C / SIGTERM that no run handled turned into :class:`Interrupted` (typer would turn a
    ``KeyboardInterrupt`` into a silent exit 130 before :func:`main` sees it)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt as interrupt:
            raise Interrupted("files written so far are kept", interrupt) from None

    return run


#: each command: the ``profkit.cli`` module defining it, its function there, and the module attributes holding its
#: help, epilog and context settings (None: none), in the order ``--help`` lists them. A run imports the module of
#: the command it runs alone.
COMMANDS: dict[str, tuple[str, str, str, str, str | None]] = {
    "capture": ("capture", "capture", "HELP", "EPILOG", None),
    "analyze": ("analyze", "analyze", "HELP", "EPILOG", None),
    "compare": ("compare", "compare", "HELP", "EPILOG", None),
    "bench": ("bench", "bench_command", "HELP", "EPILOG", None),
    "load": ("load", "load_command", "HELP", "EPILOG", "CONTEXT"),
    "quality": ("quality", "quality", "HELP", "EPILOG", None),
    "check": ("bench", "check_command", "CHECK_HELP", "CHECK_EPILOG", None),
    "history": ("history", "history_command", "HELP", "EPILOG", None),
    "doctor": ("doctor", "doctor", "HELP", "EPILOG", None),
    "serve": ("serve", "serve_command", "HELP", "EPILOG", None),
}


def _command(name: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The function of command ``name`` and its typer settings (importing its module)."""
    module_name, function, help_text, epilog, context = COMMANDS[name]
    module = importlib.import_module(f"profkit.cli.{module_name}")
    settings = {"help": getattr(module, help_text), "epilog": getattr(module, epilog)}
    if context is not None:
        settings["context_settings"] = getattr(module, context)
    return getattr(module, function), settings


def typer_app(names: Iterable[str] = COMMANDS) -> typer.Typer:
    """The ``profkit`` app with the commands ``names`` (all by default)."""
    built = typer.Typer(
        name="profkit",
        help="Where the time goes in diffusion-model inference: capture, analyze, compare, bench.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    built.callback()(_root)  # a callback keeps a one-command app a group: the command is still named
    for name in names:
        command, settings = _command(name)
        built.command(name, **settings)(_interruptible(command))
    return built


@functools.cache
def whole_app() -> typer.Typer:
    """The app with every command (built once)."""
    return typer_app()


def __getattr__(name: str) -> Any:
    if name == "app":  # ``profkit.cli.app``: the whole app, built when first asked for
        return whole_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def app_for(args: list[str]) -> typer.Typer:
    """The app that runs ``args``: only the command named first when one is. Typer builds every registered command
    (their parameters, type hints and coercion) and imports every command module on each run, ~25 ms of a 0.5 s
    analysis; the whole app serves help,
    ``--version`` and misspelt commands."""
    return typer_app([args[0]]) if args and args[0] in COMMANDS else whole_app()


#: allocations between two collections of the youngest generation (Python's default: 700)
_YOUNG_COLLECTION = 50_000


def main() -> None:
    """Entry point: run the app; a :class:`ProfkitError` becomes one line on stderr and its exit code.

    SIGTERM is handled like Ctrl-C for the whole command (:mod:`profkit.interrupts`): a run keeps what it measured,
    marked interrupted, says so in one line and exits 130 (SIGINT) or 143 (SIGTERM).
    """
    # One command per process. The objects imported so far (modules, classes, functions: tens of thousands) are never
    # garbage: frozen, no collection rescans them, and young collections run every 50,000 allocations instead of 700
    # (mypy's tuning): ~0.03 s of a 0.45 s analysis. Cycles are still collected, less often.
    gc.freeze()
    gc.set_threshold(_YOUNG_COLLECTION, *gc.get_threshold()[1:])
    # the process ends after one command: its objects need no more cycle collection, and interpreter shutdown then
    # skips rescanning all of them (~0.05 s of a 0.6 s analysis: a whole-process cost users pay per run)
    atexit.register(gc.freeze)
    try:
        with sigterm_as_interrupt():
            # a typer.Exit inside a command comes back as its exit code
            code = app_for(sys.argv[1:])(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except ProfkitError as error:
        print(error_line(error), file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt as interrupt:  # outside any command (while typer reads the arguments)
        error = Interrupted("files written so far are kept", interrupt)
        print(error_line(error), file=sys.stderr)
        sys.exit(error.exit_code)
    except typer.Abort:
        print("profkit: aborted", file=sys.stderr)
        sys.exit(EXIT_ABORTED)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except Exception as error:
        # Usage errors (unknown option, missing argument) are click exceptions; typer may vendor its own
        # click, so recognise them by what they offer rather than by class.
        if callable(getattr(error, "show", None)) and isinstance(getattr(error, "exit_code", None), int):
            error.show()
            sys.exit(error.exit_code or EXIT_BAD_INPUT)
        raise
