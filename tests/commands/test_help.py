"""Every command's --help reads whole at 80 columns, and `livedata --help` imports nothing
heavy (its time is measured by bench/cli_startup.py, not here)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from livedata.cli import app
from tests.test_cli import run


def _paths(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for command in group.registered_commands:
        assert command.callback is not None
        paths.append((*prefix, command.name or command.callback.__name__))
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        assert sub.name is not None
        paths += _paths(sub.typer_instance, (*prefix, sub.name))
    return paths


@pytest.mark.parametrize("path", _paths(app), ids=lambda p: " ".join(p) or "livedata")
def test_help_fits_80_columns_without_cutting_text(path: tuple[str, ...]) -> None:
    done = run(*path, "--help", env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines():
        assert len(line) <= 80, line
        assert "…" not in line, line
        assert "..." not in line.replace("[ARGS]...", ""), line


def test_help_imports_nothing_heavy() -> None:
    probe = (
        "import sys; from livedata.cli import app\n"
        "try:\n    app(['--help'], prog_name='livedata')\nexcept SystemExit:\n    pass\n"
        "heavy = {'pyarrow', 'pydantic', 'uvicorn', 'fastapi', 'matplotlib', 'duckdb', "
        "'sqlglot', 'rich', 'livedata.study', 'livedata.service', 'livedata.catalog'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
