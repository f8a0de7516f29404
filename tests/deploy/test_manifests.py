"""The deployment files agree with the code: catalogs load, and every variable they set is a
setting or a catalog override that exists (a typo would be ignored silently today, and refuse
to start once unknown names are refused)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from livedata.catalog import Catalog, load_catalog
from livedata.settings import Settings

DEPLOY = Path(__file__).parents[2] / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
MANIFESTS = list(yaml.safe_load_all((DEPLOY / "k8s" / "livedata.yaml").read_text()))
CONFIG_MAP = next(m for m in MANIFESTS if m["kind"] == "ConfigMap")["data"]
LIVEDATA_SERVICES = {
    name: service
    for name, service in COMPOSE["services"].items()
    if "livedata" in str(service.get("image", ""))
}


def _catalog(path: Path, environ: dict[str, str]) -> Catalog:
    """Loaded as the server loads it (plain-text secrets refused); the secret files themselves
    exist only in the running stack."""
    return load_catalog(path, environ=environ)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service.get("environment", {}).items()}


@pytest.mark.parametrize("name", sorted(LIVEDATA_SERVICES))
def test_compose_service_sets_only_known_names(name: str) -> None:
    environ = _environment(LIVEDATA_SERVICES[name])
    catalog = _catalog(DEPLOY / "catalog.toml", environ)
    for key in environ:
        if key.startswith("LIVEDATA_SOURCES__"):
            assert key.split("__")[1].lower() in catalog.sources, key
        elif key.startswith("LIVEDATA_"):
            assert key.removeprefix("LIVEDATA_").lower() in Settings.model_fields, key


def test_sample_load_writes_as_the_owner_and_replicas_read_as_the_reader() -> None:
    loader = _catalog(DEPLOY / "catalog.toml", _environment(COMPOSE["services"]["sample-load"]))
    replica = _catalog(DEPLOY / "catalog.toml", _environment(COMPOSE["services"]["livedata-1"]))
    assert loader.sources["sample"].user == "livedata_owner"
    assert replica.sources["sample"].user == "livedata_reader"


def test_every_secret_a_service_reads_is_mounted() -> None:
    for name, service in LIVEDATA_SERVICES.items():
        mounted = {f"/run/secrets/{secret}" for secret in service.get("secrets", [])}
        files = set(re.findall(r"/run/secrets/\w+", (DEPLOY / "catalog.toml").read_text()))
        files |= {v for v in _environment(service).values() if v.startswith("/run/secrets/")}
        if name != "sample-load":
            assert files <= mounted, name


def test_nginx_balances_every_replica() -> None:
    upstreams = re.findall(r"server (\S+):5000", (DEPLOY / "nginx" / "livedata.conf").read_text())
    replicas = {name for name in LIVEDATA_SERVICES if name.startswith("livedata-")}
    assert len(replicas) == 3
    assert sorted(upstreams) == sorted(replicas)


def test_kubernetes_config_map_sets_only_settings(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CONFIG_MAP["catalog.toml"])
    _catalog(catalog, {})
    for key in CONFIG_MAP:
        if key.startswith("LIVEDATA_"):
            assert key.removeprefix("LIVEDATA_").lower() in Settings.model_fields, key
