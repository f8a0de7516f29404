"""Reading the settings at start-up, refusing every ``LIVEDATA_*`` variable that means nothing.

A ``LIVEDATA_*`` variable is one of four things: a setting (``livedata.settings``), an
override of an entry the catalog file has (``LIVEDATA_SOURCES__SHOP__HOST``, see
``livedata.catalog``), a secret the catalog or the access file names (``{ env = "VAR" }``),
or one of the few names other tools own (``NOT_SETTINGS``). Anything else is a typo that
would otherwise change nothing without a word (``LIVEDATA_CACHE_TTLL=0`` leaves caching on),
so it stops start-up with "did you mean". Every problem is named at once, with the
variable, what is wrong, and the fix.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import SecretStr, ValidationError

from livedata.catalog import SECTIONS
from livedata.errors import SettingsError
from livedata.settings import BUNDLED_CATALOG, ENV_PREFIX, Settings, variable

# Names under the prefix that are not settings, and who reads them.
NOT_SETTINGS = {
    "LIVEDATA_TEST_DATABASE": "the test suite's database name (README, Tests); tests read it",
    "LIVEDATA_STACK_PORT": "deploy/stack.sh: the compose stack's port",
    "LIVEDATA_STACK_PROJECT": "deploy/stack.sh: the compose project",
    "LIVEDATA_IMAGE": "deploy/compose.yaml: the image to run",
    "LIVEDATA_PODMAN_DIR": "deploy/local-images/podman-env.sh: podman's scratch store",
}
# Kubernetes gives every pod LIVEDATA_SERVICE_HOST, LIVEDATA_PORT=tcp://... and more for a
# Service named livedata, unless the pod spec turns service links off.
_SERVICE_LINK = re.compile(r"LIVEDATA_(SERVICE_(HOST|PORT)\w*|PORT_\d+_\w+)")
SETTINGS = {variable(field): field for field in Settings.model_fields}


def read_settings(
    environ: Mapping[str, str] | None = None, catalog: Path | None = None
) -> Settings:
    """The process's settings (from ``os.environ``), or SettingsError naming every unknown
    name and every invalid value. ``catalog``: the catalog file in use, when a command line
    option chose it; the file decides which override names exist."""
    environ = os.environ if environ is None else environ
    problems = unknown_variables(environ, catalog or _catalog_path(environ))
    try:
        settings = Settings()
    except ValidationError as exc:
        problems += [_invalid(error, environ) for error in exc.errors()]
    if len(problems) == 1:
        raise SettingsError(problems[0], problems=problems)
    if problems:
        raise SettingsError(
            f"{len(problems)} problems in the environment:\n"
            + "\n".join(f"  {problem}" for problem in problems),
            problems=problems,
        )
    return settings


def unknown_variables(environ: Mapping[str, str], catalog: Path) -> list[str]:
    """Each ``LIVEDATA_*`` name that is neither a setting, nor an override of an entry of
    ``catalog``, nor a secret it or the access file names, nor in ``NOT_SETTINGS``: what is
    wrong and the fix."""
    raw = _read(catalog)
    entries = None if raw is None else _entries(raw)
    secrets = _secret_variables(raw) | _secret_variables(_read(_access_file(environ)))
    problems = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in SETTINGS or name in NOT_SETTINGS:
            continue
        if name in secrets:
            continue
        parts = name.removeprefix(ENV_PREFIX).lower().split("__")
        if len(parts) >= 3 and parts[0] in SECTIONS:
            problem = _unknown_entry(name, parts[0], parts[1], entries, catalog)
        elif _SERVICE_LINK.fullmatch(name):
            problem = (
                f"{name}: no such setting; Kubernetes sets it for a Service named livedata: "
                "set `enableServiceLinks: false` in the pod spec (deploy/k8s/livedata.yaml)"
            )
        else:
            close = difflib.get_close_matches(name, [*SETTINGS, *NOT_SETTINGS], n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            problem = (
                f"{name}: no such setting; {hint}remove it or correct its name (every "
                'setting is in the README, "Settings"; a catalog override is '
                f"{ENV_PREFIX}SOURCES__NAME__FIELD)"
            )
        if problem is not None:
            problems.append(problem)
    return problems


def _unknown_entry(
    name: str, section: str, entry: str, entries: dict[str, list[str]] | None, catalog: Path
) -> str | None:
    if entries is None:  # the catalog cannot be read: loading it says why
        return None
    known = entries.get(section, [])
    if entry in known:
        return None  # the field is checked when the catalog loads, like one in the file
    close = difflib.get_close_matches(entry, known, n=1)
    hint = f"did you mean {ENV_PREFIX}{section.upper()}__{close[0].upper()}__...? " if close else ""
    return (
        f"{name}: overrides {section}.{entry}, which {catalog} does not define; {hint}"
        f"{section} there: {', '.join(known) or 'none'}"
    )


def _read(path: Path | None) -> dict[str, Any] | None:
    """A TOML file as data, None when there is none or it cannot be read (loading it later
    says why)."""
    if path is None:
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _entries(raw: dict[str, Any]) -> dict[str, list[str]]:
    """The names of each section of the catalog."""
    return {
        section: [str(key).lower() for key in raw.get(section, {})]
        for section in SECTIONS
        if isinstance(raw.get(section, {}), dict)
    }


def _secret_variables(node: Any) -> set[str]:
    """Every variable a ``{ env = "VAR" }`` in the file names."""
    if isinstance(node, dict):
        found = {node["env"]} if isinstance(node.get("env"), str) else set()
        return found.union(*(_secret_variables(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_secret_variables(item) for item in node))
    return set()


def _access_file(environ: Mapping[str, str]) -> Path | None:
    value = environ.get(variable("auth_file"))
    return Path(value) if value else None


def _catalog_path(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(variable("catalog")) or BUNDLED_CATALOG)


def _invalid(error: Any, environ: Mapping[str, str]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:  # a rule over several settings names them itself
        return message
    field = str(error["loc"][0])
    name = variable(field)
    annotation = Settings.model_fields[field].annotation
    secret = SecretStr in (annotation, *get_args(annotation))
    shown = "" if secret or name not in environ else f" (got {environ[name]!r})"
    return f"{name}: {message}{shown}"
