"""The pages a person opens in a browser: the data page at ``/`` and the API reference at
``/docs``, with every asset they load served from this package under ``/static``.

Nothing comes from another host, so both pages work on a network without internet and the
page policy (``livedata.web.browser``) needs to allow only this origin. Swagger UI's files
come from the ``fastapi-offline`` package; the JavaScript client is ``clients/js``, linked
into ``static/`` so the page and the npm package are one file.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_PATH = "/static"
router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    """Ours first, then Swagger UI's. The client is a symbolic link in a source checkout (a
    file in the wheel), hence ``follow_symlink``: every link in ``static/`` is ours."""
    return StaticFiles(
        packages=[("livedata.web", "static"), ("fastapi_offline", "static")],
        follow_symlink=True,
    )


@router.get("/")
async def data_page() -> HTMLResponse:
    return HTMLResponse((files("livedata.web") / "static" / "index.html").read_bytes())


@router.get("/docs")
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="livedata - docs",
        swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_PATH}/favicon.png",
        # Swagger UI would otherwise show a badge fetched from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
