"""Every error class has a status, a code of its own, and the client/server split is right."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from livedata import errors
from livedata.settings import Settings
from livedata.web.app import create_app
from livedata.web.errors import CHALLENGE, STATUS, status_for


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
    elif cls is errors.PreconditionFailed:  # not a mistake: the client's copy is current
        assert status == 412
    else:
        assert status >= 500
    assert cls.__doc__ or cls.__name__ in errors.__doc__  # drawn in the module's tree


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in EVERY_ERROR]
    assert len(codes) == len(set(codes))


@pytest.fixture(scope="module")
def raising(serve_app: Callable[[FastAPI], str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The real app, with one extra route that raises the error class it is named after."""
    app = create_app(Settings(cache_dir=tmp_path_factory.mktemp("cache")))
    by_name = {cls.__name__: cls for cls in EVERY_ERROR}

    async def fail(name: str) -> None:
        cls = by_name[name]
        raise cls("secret detail 5f3a") if cls is not errors.Unauthenticated else cls("why")

    app.add_api_route("/raise/{name}", fail)
    return serve_app(app)


@pytest.mark.parametrize("cls", EVERY_ERROR, ids=lambda c: c.__name__)
def test_each_error_class_through_the_real_handler(
    raising: str, cls: type[errors.LivedataError]
) -> None:
    response = httpx.get(f"{raising}/raise/{cls.__name__}")

    status = status_for(cls("x"))
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"code", "message", "request_id", "details"}
    assert error["request_id"] == response.headers["x-request-id"]
    if status == 500:  # opaque: the request id only, never what went wrong inside
        assert error["code"] == "internal_error"
        assert "5f3a" not in response.text
    else:
        assert error["code"] == cls.code
    retry = response.headers.get("retry-after")
    if status in (429, 503):
        assert retry is not None
        assert int(retry) >= 1
    else:
        assert retry is None
    challenge = response.headers.get("www-authenticate")
    assert (challenge == CHALLENGE) if status == 401 else challenge is None
