"""The load record contract: one typed Arrow schema used by every step, with units."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# Physical limits of a European road-freight load. A standard semi-trailer is 13.6 m long
# (13.6 loading metres), a mega trailer the same length with 3 m inner height; the legal gross
# weight of 40 t leaves about 24-25 t of payload, 26 t for some national exceptions.
MAX_LOADING_METERS = 13.6
MIN_WEIGHT_KG = 1.0
MAX_WEIGHT_KG = 26_000.0
MIN_DISTANCE_KM = 1.0
MAX_DISTANCE_KM = 6_000.0
# A price above this per km is a typo (the spot market rarely pays over 5 EUR/km); below the
# minimum is a data error. Both are checked against the road distance.
MAX_PRICE_PER_KM_EUR = 25.0
MIN_PRICE_EUR = 0.0

EQUIPMENT_TYPES: tuple[str, ...] = (
    "tautliner",  # curtain-sider, the European workhorse
    "mega",  # tautliner with 3 m inner height, for volume cargo
    "box",  # closed dry van
    "reefer",  # temperature controlled
    "flatbed",  # open platform, steel and machinery
    "tanker",  # liquids in bulk
)

# ISO 3166-1 alpha-2 codes of the countries the forwarder serves by road (EU, EEA, Switzerland,
# the United Kingdom, the Western Balkans, Turkey, Ukraine and Moldova).
EUROPEAN_COUNTRIES: frozenset[str] = frozenset(
    [
        "AL",
        "AT",
        "BA",
        "BE",
        "BG",
        "CH",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GB",
        "GR",
        "HR",
        "HU",
        "IE",
        "IS",
        "IT",
        "LI",
        "LT",
        "LU",
        "LV",
        "MD",
        "ME",
        "MK",
        "MT",
        "NL",
        "NO",
        "PL",
        "PT",
        "RO",
        "RS",
        "SE",
        "SI",
        "SK",
        "TR",
        "UA",
        "XK",
    ]
)

# Europe's bounding box for plausible coordinates (Canary Islands to North Cape, Portugal to
# the Black Sea).
LATITUDE_RANGE = (27.0, 72.0)
LONGITUDE_RANGE = (-25.0, 45.0)

TIMESTAMP_TYPE = pa.timestamp("ms", tz="UTC")
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000
# Part loads heavier than this per loading metre are charged by weight: the common
# 1 ldm = 1,750-1,850 kg conversion of European groupage tariffs.
KG_PER_CHARGEABLE_LOADING_METER = 1_800.0


@dataclass(frozen=True)
class FieldDoc:
    """Name, Arrow type and meaning (with unit) of one field of the contract."""

    name: str
    type: pa.DataType
    description: str


LOAD_FIELDS: tuple[FieldDoc, ...] = (
    FieldDoc("load_id", pa.string(), "Unique id of the load, assigned by the marketplace"),
    FieldDoc("shipper_id", pa.string(), "Id of the shipper who posted the load"),
    FieldDoc("posted_at", TIMESTAMP_TYPE, "When the load was posted (UTC, ms)"),
    FieldDoc("pickup_at", TIMESTAMP_TYPE, "Requested pickup time (UTC, ms)"),
    FieldDoc("origin_country", pa.string(), "Origin country, ISO 3166-1 alpha-2"),
    FieldDoc("origin_region", pa.string(), "Origin postal region: country and first two digits"),
    FieldDoc("origin_lat", pa.float64(), "Origin latitude, WGS84 degrees"),
    FieldDoc("origin_lon", pa.float64(), "Origin longitude, WGS84 degrees"),
    FieldDoc("destination_country", pa.string(), "Destination country, ISO 3166-1 alpha-2"),
    FieldDoc("destination_region", pa.string(), "Destination postal region"),
    FieldDoc("destination_lat", pa.float64(), "Destination latitude, WGS84 degrees"),
    FieldDoc("destination_lon", pa.float64(), "Destination longitude, WGS84 degrees"),
    FieldDoc("distance_km", pa.float64(), "Road distance origin to destination, km"),
    FieldDoc("weight_kg", pa.float64(), "Gross cargo weight, kg"),
    FieldDoc("loading_meters", pa.float64(), "Trailer length used, loading metres (0-13.6)"),
    FieldDoc("equipment_type", pa.string(), "Trailer type, one of EQUIPMENT_TYPES"),
    FieldDoc("hazmat", pa.bool_(), "Dangerous goods under ADR"),
    FieldDoc("price_eur", pa.float64(), "Booked price, EUR excluding VAT (the label)"),
)

FIELD_NAMES: tuple[str, ...] = tuple(field.name for field in LOAD_FIELDS)
# The numeric fields a price request carries (coordinates and the load's size).
REQUEST_NUMBER_FIELDS: tuple[str, ...] = (
    "origin_lat",
    "origin_lon",
    "destination_lat",
    "destination_lon",
    "distance_km",
    "weight_kg",
    "loading_meters",
)
LABEL = "price_eur"
# Fields a price request must carry: the contract without ids and label. posted_at defaults to
# the time of the request when a client leaves it out.
REQUEST_FIELDS: tuple[str, ...] = tuple(
    name for name in FIELD_NAMES if name not in ("load_id", "shipper_id", LABEL)
)
# String columns with few distinct values: stored dictionary-encoded in Parquet so that readers
# map them to codes without materialising millions of Python strings.
DICTIONARY_FIELDS: tuple[str, ...] = (
    "origin_country",
    "origin_region",
    "destination_country",
    "destination_region",
    "equipment_type",
)

LOAD_SCHEMA = pa.schema(
    [
        pa.field(
            f.name,
            pa.dictionary(pa.int32(), pa.string()) if f.name in DICTIONARY_FIELDS else f.type,
            metadata={"description": f.description},
        )
        for f in LOAD_FIELDS
    ]
)
"""Schema of raw and curated load files. Every field is required by the contract, but the raw
feed may contain nulls anywhere, so the Arrow fields are nullable and validation quarantines rows
with a missing field."""

QUARANTINE_REASON = "quarantine_reason"
QUARANTINE_DETAIL = "quarantine_detail"
QUARANTINE_SCHEMA = LOAD_SCHEMA.append(pa.field(QUARANTINE_REASON, pa.string())).append(
    pa.field(QUARANTINE_DETAIL, pa.string())
)
PARTITION_COLUMN = "dt"


def conform(table: pa.Table) -> pa.Table:
    """Return ``table`` with the contract's columns, in order, cast to the contract's types.

    Raises ``ValueError`` naming the missing columns, or the column that cannot be cast.
    """
    missing = [name for name in FIELD_NAMES if name not in table.column_names]
    if missing:
        raise ValueError(f"load data lacks required column(s): {', '.join(missing)}")
    columns = []
    for field in LOAD_SCHEMA:
        column = table.column(field.name)
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise ValueError(
                    f"column {field.name!r} has type {column.type}, expected {field.type}: {error}"
                ) from error
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=LOAD_SCHEMA)
