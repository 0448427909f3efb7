"""The one error type profkit raises for problems a user can fix.

The CLI maps it to a single line on stderr and its exit code (see ``profkit.cli.main``).
"""

from __future__ import annotations

#: Exit code for bad input: missing/unreadable/foreign files, impossible settings.
EXIT_BAD_INPUT = 2
#: Exit code for a run that started but could not finish (capture crashed, tool missing).
EXIT_RUN_FAILED = 3


class ProfkitError(Exception):
    """An error with a message meant for the user and the process exit code it maps to."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
