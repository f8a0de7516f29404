"""The README stays true: its settings, commands and catalog example match the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from livedata.catalog import load_catalog
from livedata.cli import app
from livedata.commands.exits import ExitCode
from livedata.settings import Settings
from livedata.web.errors import client_codes

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    assert f"`LIVEDATA_{field.upper()}`" in README


def _commands(group: typer.Typer, prefix: str = "livedata") -> list[str]:
    names = [
        f"{prefix} {c.name or c.callback.__name__}"
        for c in group.registered_commands
        if c.callback is not None
    ]
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        names += _commands(sub.typer_instance, f"{prefix} {sub.name}")
    return names


@pytest.mark.parametrize("command", _commands(app))
def test_every_command_is_documented(command: str) -> None:
    assert command in README


def test_the_catalog_example_is_valid(tmp_path: Path) -> None:
    example = re.search(r"```toml\n(.*?)```", README, re.DOTALL)
    assert example is not None
    path = tmp_path / "catalog.toml"
    path.write_text(example.group(1))
    catalog = load_catalog(path, environ={})
    assert set(catalog.queries) == {"orders_by_country"}


@pytest.mark.parametrize("code", list(ExitCode), ids=lambda c: c.name)
def test_every_exit_code_is_documented(code: ExitCode) -> None:
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    assert re.search(rf"^\| `{code.value}` \| ", section, re.MULTILINE), code


def test_every_query_option_is_documented() -> None:
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    for option in ("--format", "-o", "--filter", "--order-by", "--columns", "-x", "--null"):
        assert option in section, option


@pytest.mark.parametrize(("code", "status"), sorted(client_codes().items()))
def test_every_error_code_is_documented(code: str, status: int) -> None:
    section = README.split("### Errors", 1)[1].split("\n### ", 1)[0]
    assert f"| {status} | `{code}` |" in section
