"""The errors profkit raises for problems a user can fix, and every process exit code.

Library code names *settings* (the fields of ``CaptureSettings``, ``BenchSettings``, ...), never command-line
flags: a message mentions a setting as a ``{name}`` placeholder listed in ``settings``. ``str(error)`` renders
plain names ("steps must be at least 1"); the CLI renders them as its flags ("--steps must be at least 1") in the
one place that knows them (``profkit.cli.errors``) and exits with ``error.exit_code``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

#: The command did what was asked.
EXIT_OK = 0
#: The user gave up at a prompt (typer.Abort).
EXIT_ABORTED = 1
#: Exit code for bad input: missing/unreadable/foreign files, impossible settings.
EXIT_BAD_INPUT = 2
#: Exit code for a run that started but could not finish (capture crashed, tool missing).
EXIT_RUN_FAILED = 3
#: ``bench --fail-if-slower`` / ``check``: a metric regressed beyond the threshold.
EXIT_REGRESSION = 4
#: Interrupted (Ctrl-C, SIGINT): 128 + 2, as shells report it.
EXIT_INTERRUPTED = 130
#: Stopped by SIGTERM (``timeout``, ``docker stop``, SLURM): 128 + 15, as shells report it. A run stopped so keeps
#: what it measured exactly as Ctrl-C does (:class:`Terminated` is a ``KeyboardInterrupt``); only the code differs.
EXIT_TERMINATED = 143

#: How a setting name is shown: the library shows the name itself.
Namer = Callable[[str], str]


def plain_name(setting: str) -> str:
    return setting


class ProfkitError(Exception):
    """An error with a message meant for the user and the process exit code it maps to.

    ``message`` may name settings as ``{name}`` placeholders, each listed in ``settings``; :meth:`render` fills
    them in (plain names by default, flags in the CLI).
    """

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT, settings: Sequence[str] = ()) -> None:
        self.template = message
        self.settings = tuple(settings)
        self.exit_code = exit_code
        super().__init__(self.render())

    def render(self, name: Namer = plain_name) -> str:
        text = self.template
        for setting in self.settings:
            text = text.replace("{" + setting + "}", name(setting))
        return text

    @property
    def message(self) -> str:
        return self.render()

    def __str__(self) -> str:
        return self.render()


class SettingError(ProfkitError):
    """A setting has an impossible value: ``SettingError("steps", "must be at least 1 (got 0)")``.

    ``setting`` may join several with "/" ("height/width"); ``problem`` may name further settings as
    ``{name}`` placeholders listed in ``mentions``.
    """

    def __init__(
        self, setting: str, problem: str, mentions: Sequence[str] = (), exit_code: int = EXIT_BAD_INPUT
    ) -> None:
        self.setting = setting
        self.problem = problem
        names = setting.split("/")
        lead = "/".join("{" + name + "}" for name in names)
        super().__init__(f"{lead} {problem}", exit_code, (*names, *mentions))


class ConflictingSettings(ProfkitError):
    """Two settings that exclude each other were both given."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"give {{{first}}} or {{{second}}}, not both", EXIT_BAD_INPUT, (first, second))


class OutputExists(ProfkitError):
    """An output file or folder exists and overwriting was not allowed (the ``force`` setting)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        super().__init__(
            f"{path} already exists: pass {{force}} to overwrite it, or choose {{out}}", settings=("force", "out")
        )

    def render(self, name: Namer = plain_name) -> str:
        if name is plain_name:
            return f"{self.path} already exists: set force to overwrite it, or choose another output"
        return super().render(name)


class SetupMismatch(ProfkitError):
    """Two runs (or results) come from different setups and comparing them anyway was not asked for."""

    def __init__(self, refusal: str, differences: Sequence[str]) -> None:
        self.refusal = refusal
        self.differences = tuple(differences)
        super().__init__(
            f"{refusal} ({'; '.join(self.differences)}): pass {{force}} to compare anyway", settings=("force",)
        )

    def render(self, name: Namer = plain_name) -> str:
        if name is plain_name:
            return f"{self.refusal} ({'; '.join(self.differences)}): set force to compare anyway"
        return super().render(name)


class Terminated(KeyboardInterrupt):
    """SIGTERM raised where Ctrl-C would be (see :mod:`profkit.interrupts`): every path that keeps what was measured
    on Ctrl-C keeps it on SIGTERM too."""


def signal_name(interrupt: BaseException | None) -> str:
    """``"SIGTERM"`` for :class:`Terminated`, else ``"SIGINT"`` (Ctrl-C)."""
    return "SIGTERM" if isinstance(interrupt, Terminated) else "SIGINT"


class Interrupted(ProfkitError):
    """A run was stopped by a signal; ``kept`` says what it left (``"what was measured is in bench/x/bench.json"``).

    Exit code :data:`EXIT_TERMINATED` for SIGTERM, :data:`EXIT_INTERRUPTED` for Ctrl-C (SIGINT).
    """

    def __init__(self, kept: str, interrupt: BaseException | None = None) -> None:
        self.kept = kept
        self.interrupt = interrupt
        self.signal = signal_name(interrupt)
        code = EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED
        super().__init__(f"interrupted ({self.signal}): {kept}", code)


class UnfinishedRun(ProfkitError):
    """An output folder holds a run that did not finish (interrupted, crashed, killed) and ``force`` was not set."""

    def __init__(self, path: Path | str, status: str) -> None:
        self.path = Path(path)
        self.status = status
        super().__init__(
            f"{path} holds {_unfinished(status)}: pass {{force}} to replace it, or choose {{out}}",
            settings=("force", "out"),
        )

    def render(self, name: Namer = plain_name) -> str:
        if name is plain_name:
            return f"{self.path} holds {_unfinished(self.status)}: set force to replace it, or choose another output"
        return super().render(name)


def _unfinished(status: str) -> str:
    return {
        "interrupted": "an interrupted run (kept as it was stopped)",
        "failed": "a run that failed",
        "running": "an unfinished run (still running, or killed)",
    }.get(status, f"an unfinished run (status {status!r})")
