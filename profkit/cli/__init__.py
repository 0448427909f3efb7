"""The ``profkit`` command line: typer commands only; errors become one line and an exit code in :func:`main`.

Command modules hold flags and help only and import their implementation (``profkit.app``, ``profkit.report``)
when they run, so ``profkit --help`` loads neither numpy, pandas, scipy nor torch.
"""

from __future__ import annotations

import atexit
import functools
import gc
import sys
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

from profkit import __version__
from profkit.cli import analyze as _analyze
from profkit.cli import bench as _bench
from profkit.cli import capture as _capture
from profkit.cli import compare as _compare
from profkit.cli import doctor as _doctor
from profkit.cli import history as _history
from profkit.cli import load as _load
from profkit.cli import quality as _quality
from profkit.cli import serve as _serve
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


#: each command: its function and its typer settings, in the order ``--help`` lists them
COMMANDS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "capture": (_capture.capture, {"help": _capture.HELP, "epilog": _capture.EPILOG}),
    "analyze": (_analyze.analyze, {"help": _analyze.HELP, "epilog": _analyze.EPILOG}),
    "compare": (_compare.compare, {"help": _compare.HELP, "epilog": _compare.EPILOG}),
    "bench": (_bench.bench_command, {"help": _bench.HELP, "epilog": _bench.EPILOG}),
    "load": (_load.load_command, {"help": _load.HELP, "epilog": _load.EPILOG, "context_settings": _load.CONTEXT}),
    "quality": (_quality.quality, {"help": _quality.HELP, "epilog": _quality.EPILOG}),
    "check": (_bench.check_command, {"help": _bench.CHECK_HELP, "epilog": _bench.CHECK_EPILOG}),
    "history": (_history.history_command, {"help": _history.HELP, "epilog": _history.EPILOG}),
    "doctor": (_doctor.doctor, {"help": _doctor.HELP, "epilog": _doctor.EPILOG}),
    "serve": (_serve.serve_command, {"help": _serve.HELP, "epilog": _serve.EPILOG}),
}


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
        command, settings = COMMANDS[name]
        built.command(name, **settings)(_interruptible(command))
    return built


app = typer_app()


def app_for(args: list[str]) -> typer.Typer:
    """The app that runs ``args``: only the command named first when one is. Typer builds every registered command
    (their parameters, type hints and coercion) on each run, ~20 ms of a 0.5 s analysis; the whole app serves help,
    ``--version`` and misspelt commands."""
    return typer_app([args[0]]) if args and args[0] in COMMANDS else app


def main() -> None:
    """Entry point: run the app; a :class:`ProfkitError` becomes one line on stderr and its exit code.

    SIGTERM is handled like Ctrl-C for the whole command (:mod:`profkit.interrupts`): a run keeps what it measured,
    marked interrupted, says so in one line and exits 130 (SIGINT) or 143 (SIGTERM).
    """
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
