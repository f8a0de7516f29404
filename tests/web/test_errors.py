"""Every error class has a status, a code of its own, and the client/server split is right."""

from __future__ import annotations

import pytest

from livedata import errors
from livedata.web.errors import STATUS, status_for


def _all(cls: type[errors.LivedataError]) -> list[type[errors.LivedataError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _all(sub))]


EVERY_ERROR = _all(errors.LivedataError)


@pytest.mark.parametrize("cls", EVERY_ERROR, ids=lambda c: c.__name__)
def test_each_error_class_is_in_the_status_table(cls: type[errors.LivedataError]) -> None:
    assert cls in STATUS
    status = status_for(cls("x"))
    if issubclass(cls, errors.RequestError):
        assert 400 <= status < 500
    elif issubclass(cls, errors.TooManyRequests):  # not a mistake: the same request, later
        assert status == 429
    else:
        assert status >= 500
    assert cls.__doc__ or cls.__name__ in errors.__doc__  # drawn in the module's tree


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in EVERY_ERROR]
    assert len(codes) == len(set(codes))
