"""One table from error class to exit code: every class has a row it reaches, and the split
between a mistake to fix (2) and a failure to retry (1) is right."""

from __future__ import annotations

import pytest

from livedata import errors
from livedata.commands.exits import EXIT_CODES, ExitCode, exit_code


def _all(cls: type[errors.LivedataError]) -> list[type[errors.LivedataError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _all(sub))]


EVERY_ERROR = _all(errors.LivedataError)
MISTAKES = (errors.SettingsError, errors.CatalogError, errors.UnsafeExposure, errors.RequestError)


@pytest.mark.parametrize("cls", EVERY_ERROR, ids=lambda c: c.__name__)
def test_each_error_class_has_its_exit_code(cls: type[errors.LivedataError]) -> None:
    error = cls("x") if cls is not errors.Unauthenticated else cls("why")
    assert exit_code(error) == (ExitCode.USAGE if issubclass(cls, MISTAKES) else ExitCode.FAILURE)


def test_every_row_of_the_table_is_reached() -> None:
    reached = {next(c for c in cls.__mro__ if c in EXIT_CODES) for cls in EVERY_ERROR}
    assert reached == set(EXIT_CODES)
