"""Service settings: declared once here with a default and a help text, read once at start-up.

Every field can be set with an environment variable ``LIVEDATA_<FIELD>`` (for example
``LIVEDATA_PORT=8080``). What the service serves (sources, tables, queries) lives in the
catalog file instead; see ``livedata.catalog``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_CATALOG = Path(__file__).parent / "sample" / "catalog.toml"


class Settings(BaseSettings):
    """Process-wide settings; the README's settings table is checked against these fields."""

    model_config = SettingsConfigDict(env_prefix="LIVEDATA_", extra="ignore", frozen=True)

    catalog: Path = Field(
        default=BUNDLED_CATALOG,
        description="Catalog file (TOML) with the sources, tables and queries to serve. "
        "Defaults to the bundled sample catalog (embedded DuckDB, no external service).",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address to listen on. Loopback by default: nothing is exposed by accident.",
    )
    port: int = Field(default=5000, ge=0, le=65535, description="TCP port to listen on.")
    max_body_bytes: int = Field(
        default=64 * 1024, gt=0, description="Largest request body accepted (413 beyond)."
    )
    log_level: str = Field(default="info", description="Log level: debug, info, warning, error.")
