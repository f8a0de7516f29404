"""How the ``livedata`` command ends: one table from error class to exit code, and the one
way a failure is printed."""

from __future__ import annotations

from enum import IntEnum
from typing import NoReturn

import typer

from livedata.errors import (
    CatalogError,
    LivedataError,
    NotCached,
    RequestError,
    SettingsError,
    SourceError,
    TooManyRequests,
    UnsafeExposure,
)


class ExitCode(IntEnum):
    """The README's exit code table is checked against these."""

    OK = 0  # done
    FAILURE = 1  # the source failed or refused, or the command was interrupted
    USAGE = 2  # a mistake in a setting, the catalog, the access file or an argument


# The most specific class of an error decides (its method resolution order is walked).
EXIT_CODES: dict[type[LivedataError], ExitCode] = {
    SettingsError: ExitCode.USAGE,
    CatalogError: ExitCode.USAGE,  # the access file's AccessFileError too
    UnsafeExposure: ExitCode.USAGE,
    RequestError: ExitCode.USAGE,  # a parameter, column or filter given on the command line
    TooManyRequests: ExitCode.FAILURE,
    NotCached: ExitCode.FAILURE,
    SourceError: ExitCode.FAILURE,
    LivedataError: ExitCode.FAILURE,
}
# Mistakes in what the user wrote print bare; the others with the code the HTTP API uses.
_UNLABELLED = (SettingsError, CatalogError, UnsafeExposure)


def exit_code(error: LivedataError) -> ExitCode:
    return next(EXIT_CODES[c] for c in type(error).__mro__ if c in EXIT_CODES)


def report(error: LivedataError | str) -> None:
    """Print a failure on stderr: ``error: ...`` or ``error (code): ...``."""
    from rich.console import Console  # only a failing command pays for it
    from rich.markup import escape

    if isinstance(error, str):
        label, message = "error", error
    else:
        labelled = not isinstance(error, _UNLABELLED)
        label, message = f"error ({error.code})" if labelled else "error", error.message
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        f"[red]{label}:[/red] {escape(message)}"
    )


def stop(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """End the command with ``message`` on stderr and ``code``."""
    report(message)
    raise typer.Exit(code)
