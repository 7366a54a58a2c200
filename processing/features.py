"""Features of the price model: one implementation for training (millions of rows) and serving.

Over 400 lines, long because the formulas, both backends, the lane tables they read and the
spec that versions them must change together: split apart, they would drift (ADR 0002).

Both paths run the same formulas, :meth:`FeatureBuilder._feature_values`: on NumPy columns
decoded from an Arrow table in training (vectorised, dictionary-aware), and on Python numbers
for the one or few loads of a price request, where a NumPy call costs more than the arithmetic.
The lane statistics they look up are learned from the training window only and shipped inside
the model directory (:class:`LaneStatistics`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from processing.columns import UNKNOWN_CODE, encode, epoch_ms, floats
from processing.schema import (
    EQUIPMENT_TYPES,
    EUROPEAN_COUNTRIES,
    KG_PER_CHARGEABLE_LOADING_METER,
    MAX_LOADING_METERS,
    MS_PER_HOUR,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
FeatureMatrix = npt.NDArray[np.float32]

FEATURE_SPEC_FILE = "feature_spec.json"
LANE_STATISTICS_FILE = "lane_statistics.npz"
FEATURE_SPEC_VERSION = 1
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MILLISECOND = dt.timedelta(milliseconds=1)
# A lane (or country pair) needs this many training loads before its own median is trusted;
# below it the next coarser level answers.
MIN_LOADS_FOR_MEDIAN = 3

# Country vocabulary: fixed, so that a country unseen in training still has a slot.
COUNTRIES: tuple[str, ...] = (*sorted(EUROPEAN_COUNTRIES), "??")
UNKNOWN_COUNTRY = len(COUNTRIES) - 1
COUNTRY_INDEX = {code: position for position, code in enumerate(COUNTRIES[:-1])}
EQUIPMENT_INDEX = {name: code for code, name in enumerate(EQUIPMENT_TYPES)}

RAW_NUMERIC = (
    "distance_km",
    "weight_kg",
    "loading_meters",
    "origin_lat",
    "origin_lon",
    "destination_lat",
    "destination_lon",
)
FEATURE_NAMES: tuple[str, ...] = (
    *RAW_NUMERIC,
    "chargeable_loading_meters",
    "hazmat",
    *(f"equipment_{name}" for name in EQUIPMENT_TYPES),
    "lead_time_hours",
    "posted_hour",
    "pickup_hour",
    "pickup_weekday",
    "pickup_day_of_year",
    "lane_median_price_per_km",
    "lane_median_price",
    "lane_load_count",
    "country_pair_median_price_per_km",
    "lane_expected_price",
    "origin_net_outbound",
    "destination_net_outbound",
)
FEATURE_INDEX = {name: position for position, name in enumerate(FEATURE_NAMES)}
PARALLEL_BLOCK_ROWS = 1 << 18
# Up to this many loads per call, features are computed with Python numbers (one load: about
# 5 us), beyond it as NumPy columns (per-call overhead about 25 us, then far cheaper per load).
SCALAR_MAX_LOADS = 4


def _calendar_table() -> npt.NDArray[np.int16]:
    """Weekday (Monday = 0) and day of year (rows) for every day from 1970 to 2199 (columns).

    A table lookup is several times cheaper than NumPy's datetime conversions; days outside
    the range are clipped to its ends.
    """
    days = np.arange(0, (dt.date(2200, 1, 1) - dt.date(1970, 1, 1)).days)
    dates = days.astype("datetime64[D]")
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    return np.stack([weekday, day_of_year]).astype(np.int16)


_CALENDAR = _calendar_table()


@dataclass(frozen=True)
class LaneStatistics:
    """Price levels learned from the training window, as dense lookup tables.

    Lanes are (origin region, destination region) pairs. Every region of the training window
    has a slot; each country has one more slot for its regions unseen in training, and an
    unknown country has the last. The tables are ``slots x slots``, flattened, with fallbacks
    resolved at build time (lane -> country pair -> whole market), so a lookup is one take.
    """

    regions: tuple[str, ...]
    lane_load_count: npt.NDArray[np.float32]
    lane_median_price_per_km: npt.NDArray[np.float32]
    lane_median_price: npt.NDArray[np.float32]
    country_pair_median_price_per_km: npt.NDArray[np.float32]
    region_net_outbound: npt.NDArray[np.float32]
    market_median_price_per_km: float
    market_median_price: float

    @property
    def slot_count(self) -> int:
        """Width of the lookup tables: regions, then one slot per country (unknown last)."""
        return len(self.regions) + len(COUNTRIES)

    def region_index(self) -> dict[str, int]:
        """Map each known region to its slot."""
        return {region: position for position, region in enumerate(self.regions)}

    def save(self, path: Path) -> None:
        """Write the tables to ``path`` (NumPy .npz; no pickled objects)."""
        np.savez(
            path,
            regions=np.array(self.regions, dtype=np.str_),
            lane_load_count=self.lane_load_count,
            lane_median_price_per_km=self.lane_median_price_per_km,
            lane_median_price=self.lane_median_price,
            country_pair_median_price_per_km=self.country_pair_median_price_per_km,
            region_net_outbound=self.region_net_outbound,
            market=np.array([self.market_median_price_per_km, self.market_median_price]),
        )

    @classmethod
    def load(cls, path: Path) -> LaneStatistics:
        """Read tables written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            market = data["market"]
            return cls(
                regions=tuple(str(region) for region in data["regions"]),
                lane_load_count=data["lane_load_count"],
                lane_median_price_per_km=data["lane_median_price_per_km"],
                lane_median_price=data["lane_median_price"],
                country_pair_median_price_per_km=data["country_pair_median_price_per_km"],
                region_net_outbound=data["region_net_outbound"],
                market_median_price_per_km=float(market[0]),
                market_median_price=float(market[1]),
            )


def _group_medians(keys: IntArray, values: FloatArray, groups: int) -> tuple[FloatArray, IntArray]:
    """Median of ``values`` per integer key in ``[0, groups)`` and the count per key.

    One float sort of ``key + value / scale`` orders by key, then value, without an argsort.
    """
    counts = np.bincount(keys, minlength=groups)
    medians = np.full(groups, np.nan)
    if len(values) == 0:
        return medians, counts
    scale = float(values.max()) * 1.000001 + 1e-9
    ordered = np.sort(keys + values / scale)
    ends = np.cumsum(counts)
    starts = ends - counts
    present = counts > 0
    low = starts[present] + (counts[present] - 1) // 2
    high = starts[present] + counts[present] // 2
    group_of_present = np.flatnonzero(present).astype(np.float64)
    medians[present] = (
        0.5 * ((ordered[low] - group_of_present) + (ordered[high] - group_of_present)) * scale
    )
    return medians, counts


def fit_lane_statistics(
    table: pa.Table, executor: ThreadPoolExecutor | None = None
) -> LaneStatistics:
    """Learn lane statistics from validated training loads (``table`` in the load contract)."""
    if table.num_rows == 0:
        raise ValueError("cannot fit lane statistics on an empty training window")
    origin_regions = table.column("origin_region")
    destination_regions = table.column("destination_region")
    regions = sorted(
        {str(value) for value in origin_regions.unique().cast(pa.string()).to_pylist()}
        | {str(value) for value in destination_regions.unique().cast(pa.string()).to_pylist()}
    )
    region_index = {region: position for position, region in enumerate(regions)}
    region_count, country_count = len(regions), len(COUNTRIES)
    slots = region_count + country_count
    origin = encode(origin_regions, region_index).astype(np.int64)
    destination = encode(destination_regions, region_index).astype(np.int64)
    origin_country = _country_codes(table.column("origin_country"))
    destination_country = _country_codes(table.column("destination_country"))
    price = floats(table.column("price_eur"))
    price_per_km = price / floats(table.column("distance_km"))

    lane_key = origin * region_count + destination
    pair_key = origin_country * country_count + destination_country
    jobs = [
        (lane_key, price_per_km, region_count * region_count),
        (lane_key, price, region_count * region_count),
        (pair_key, price_per_km, country_count * country_count),
        (pair_key, price, country_count * country_count),
    ]
    if executor is not None:
        results = list(executor.map(lambda job: _group_medians(*job), jobs))
    else:
        results = [_group_medians(*job) for job in jobs]
    (lane_ppk, lane_count), (lane_price, _), (pair_ppk, pair_count), (pair_price, _) = results

    market_ppk = float(np.median(price_per_km))
    market_price = float(np.median(price))
    trusted_pair = pair_count >= MIN_LOADS_FOR_MEDIAN
    pair_ppk = np.where(trusted_pair, pair_ppk, market_ppk)
    pair_price = np.where(trusted_pair, pair_price, market_price)

    # Country of each slot: a region's own country, then the per-country fallback slots.
    region_country = np.zeros(region_count, dtype=np.int64)
    region_country[origin] = origin_country
    region_country[destination] = destination_country
    slot_country = np.concatenate([region_country, np.arange(country_count)])
    slot_pair = (slot_country[:, None] * country_count + slot_country[None, :]).ravel()

    def resolve(lane_values: FloatArray, pair_values: FloatArray) -> npt.NDArray[np.float32]:
        table_values = pair_values[slot_pair].reshape(slots, slots)
        lanes = lane_values.reshape(region_count, region_count)
        trusted = lane_count.reshape(region_count, region_count) >= MIN_LOADS_FOR_MEDIAN
        table_values[:region_count, :region_count] = np.where(
            trusted, lanes, table_values[:region_count, :region_count]
        )
        result: npt.NDArray[np.float32] = table_values.ravel().astype(np.float32)
        return result

    counts = np.zeros((slots, slots), dtype=np.float32)
    counts[:region_count, :region_count] = lane_count.reshape(region_count, region_count)
    outbound = np.bincount(origin, minlength=region_count).astype(np.float64)
    inbound = np.bincount(destination, minlength=region_count).astype(np.float64)
    net_outbound = np.zeros(slots, dtype=np.float32)
    net_outbound[:region_count] = np.log((outbound + 1.0) / (inbound + 1.0))
    return LaneStatistics(
        regions=tuple(regions),
        lane_load_count=counts.ravel(),
        lane_median_price_per_km=resolve(lane_ppk, pair_ppk),
        lane_median_price=resolve(lane_price, pair_price),
        country_pair_median_price_per_km=pair_ppk[slot_pair].astype(np.float32),
        region_net_outbound=net_outbound,
        market_median_price_per_km=market_ppk,
        market_median_price=market_price,
    )


def _country_codes(column: pa.Array | pa.ChunkedArray) -> IntArray:
    codes = encode(column, COUNTRY_INDEX).astype(np.int64)
    codes[codes == UNKNOWN_CODE] = UNKNOWN_COUNTRY
    return codes


@dataclass(frozen=True)
class _Backend:
    """The few operations the feature formulas need, for NumPy arrays or Python scalars.

    One set of formulas (:meth:`FeatureBuilder._feature_values`) runs on whole columns in
    training and on plain Python numbers for a single load in serving, where a NumPy call
    costs more than the arithmetic. ``take`` reads a lookup table: an array for array
    indexes, an exact Python number for an int index, so both backends compute in float64.
    """

    minimum: Callable[[Any, Any], Any]
    maximum: Callable[[Any, Any], Any]
    take: Callable[[npt.NDArray[Any], Any], Any]


_ARRAYS = _Backend(np.minimum, np.maximum, lambda table, index: table[index])
_SCALARS = _Backend(min, max, lambda table, index: table.item(index))


class _LoadInputs(NamedTuple):
    """What the formulas read from loads: all arrays (a batch) or all Python scalars (one)."""

    distance_km: Any
    weight_kg: Any
    loading_meters: Any
    origin_lat: Any
    origin_lon: Any
    destination_lat: Any
    destination_lon: Any
    hazmat: Any
    equipment: Any
    posted_ms: Any
    pickup_ms: Any
    origin_slot: Any
    destination_slot: Any


class FeatureBuilder:
    """Turns load records into the model's feature matrix with fixed lane statistics."""

    def __init__(self, statistics: LaneStatistics) -> None:
        self.statistics = statistics
        self._region_index = statistics.region_index()
        self._region_count = len(statistics.regions)
        self._slot_count = statistics.slot_count
        self._last_calendar_day = _CALENDAR.shape[1] - 1

    # -- the shared computation ------------------------------------------------------------

    def _feature_values(self, load: _LoadInputs, backend: _Backend) -> list[Any]:
        """The features of ``load`` in FEATURE_NAMES order: arrays or Python numbers."""
        stats, take = self.statistics, backend.take
        chargeable = backend.minimum(
            backend.maximum(
                load.loading_meters, load.weight_kg * (1.0 / KG_PER_CHARGEABLE_LOADING_METER)
            ),
            MAX_LOADING_METERS,
        )
        pickup_hours = load.pickup_ms // MS_PER_HOUR
        day = backend.minimum(backend.maximum(pickup_hours // 24, 0), self._last_calendar_day)
        lane = load.origin_slot * self._slot_count + load.destination_slot
        lane_price_per_km = take(stats.lane_median_price_per_km, lane)
        return [
            load.distance_km,
            load.weight_kg,
            load.loading_meters,
            load.origin_lat,
            load.origin_lon,
            load.destination_lat,
            load.destination_lon,
            chargeable,
            load.hazmat,
            *(load.equipment == code for code in range(len(EQUIPMENT_TYPES))),
            (load.pickup_ms - load.posted_ms) * (1.0 / MS_PER_HOUR),
            (load.posted_ms // MS_PER_HOUR) % 24,
            pickup_hours % 24,
            take(_CALENDAR[0], day),  # weekday, Monday = 0
            take(_CALENDAR[1], day),  # day of year
            lane_price_per_km,
            take(stats.lane_median_price, lane),
            take(stats.lane_load_count, lane),
            take(stats.country_pair_median_price_per_km, lane),
            lane_price_per_km * load.distance_km,
            take(stats.region_net_outbound, load.origin_slot),
            take(stats.region_net_outbound, load.destination_slot),
        ]

    # -- training path: Arrow tables ---------------------------------------------------------

    def slots(
        self, regions: pa.Array | pa.ChunkedArray, countries: pa.Array | pa.ChunkedArray
    ) -> IntArray:
        """Lookup slot of each load end: its region, else its country's fallback slot."""
        region = encode(regions, self._region_index).astype(np.int64)
        country = _country_codes(countries) + self._region_count
        result: IntArray = np.where(region >= 0, region, country)
        return result

    def from_table(
        self, table: pa.Table, executor: ThreadPoolExecutor | None = None
    ) -> FeatureMatrix:
        """Features of validated loads in the load contract (the training path).

        Returns a (loads x features) float32 matrix stored column by column (Fortran order).
        With an ``executor``, blocks of rows are computed in parallel (NumPy and Arrow
        release the GIL); the result does not depend on it.
        """
        columns = np.empty((len(FEATURE_NAMES), table.num_rows), dtype=np.float32)
        starts = range(0, table.num_rows, PARALLEL_BLOCK_ROWS)

        def run(start: int) -> None:
            block = table.slice(start, PARALLEL_BLOCK_ROWS)
            target = columns[:, start : start + block.num_rows]
            for row, values in enumerate(self._feature_values(self._decode(block), _ARRAYS)):
                target[row] = values

        if executor is not None and len(starts) > 1:
            list(executor.map(run, starts))
        else:
            for start in starts:
                run(start)
        matrix: FeatureMatrix = columns.T
        return matrix

    def _decode(self, table: pa.Table) -> _LoadInputs:
        numbers = {name: floats(table.column(name)) for name in RAW_NUMERIC}
        return _LoadInputs(
            **numbers,
            hazmat=table.column("hazmat").to_numpy(zero_copy_only=False).astype(bool),
            equipment=encode(table.column("equipment_type"), EQUIPMENT_INDEX),
            posted_ms=epoch_ms(table.column("posted_at")),
            pickup_ms=epoch_ms(table.column("pickup_at")),
            origin_slot=self.slots(table.column("origin_region"), table.column("origin_country")),
            destination_slot=self.slots(
                table.column("destination_region"), table.column("destination_country")
            ),
        )

    # -- serving path: request dicts ---------------------------------------------------------

    def slot(self, region: str, country: str) -> int:
        """Lookup slot of one load end (same rule as :meth:`slots`)."""
        position = self._region_index.get(region)
        if position is not None:
            return position
        return self._region_count + COUNTRY_INDEX.get(country, UNKNOWN_COUNTRY)

    def from_records(self, records: Sequence[Mapping[str, Any]]) -> FeatureMatrix:
        """Features of loads given as dicts with the contract's field names (the serving path).

        Values must already be validated: numbers as float or int, timestamps as epoch
        milliseconds (int) or timezone-aware datetimes, equipment one of EQUIPMENT_TYPES.
        A few loads are computed with Python numbers, more as NumPy columns; both run the
        same formulas.
        """
        if len(records) <= SCALAR_MAX_LOADS:
            rows = [self._feature_values(self._scalars(r), _SCALARS) for r in records]
            return np.array(rows, dtype=np.float32).reshape(len(records), len(FEATURE_NAMES))
        columns = np.empty((len(FEATURE_NAMES), len(records)), dtype=np.float32)
        numbers = {
            name: np.array([r[name] for r in records], dtype=np.float64) for name in RAW_NUMERIC
        }
        inputs = _LoadInputs(
            **numbers,
            hazmat=np.array([bool(r["hazmat"]) for r in records], dtype=bool),
            equipment=np.array([EQUIPMENT_INDEX[r["equipment_type"]] for r in records]),
            posted_ms=np.array([_ms(r["posted_at"]) for r in records], dtype=np.int64),
            pickup_ms=np.array([_ms(r["pickup_at"]) for r in records], dtype=np.int64),
            origin_slot=np.array(
                [self.slot(r["origin_region"], r["origin_country"]) for r in records]
            ),
            destination_slot=np.array(
                [self.slot(r["destination_region"], r["destination_country"]) for r in records]
            ),
        )
        for row, values in enumerate(self._feature_values(inputs, _ARRAYS)):
            columns[row] = values
        matrix: FeatureMatrix = columns.T
        return matrix

    def _scalars(self, record: Mapping[str, Any]) -> _LoadInputs:
        return _LoadInputs(
            float(record["distance_km"]),
            float(record["weight_kg"]),
            float(record["loading_meters"]),
            float(record["origin_lat"]),
            float(record["origin_lon"]),
            float(record["destination_lat"]),
            float(record["destination_lon"]),
            hazmat=bool(record["hazmat"]),
            equipment=EQUIPMENT_INDEX[record["equipment_type"]],
            posted_ms=_ms(record["posted_at"]),
            pickup_ms=_ms(record["pickup_at"]),
            origin_slot=self.slot(record["origin_region"], record["origin_country"]),
            destination_slot=self.slot(record["destination_region"], record["destination_country"]),
        )


def _ms(value: int | dt.datetime) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value.isoformat()} has no time zone")
        return (value - EPOCH) // MILLISECOND
    return int(value)


@dataclass(frozen=True)
class FeatureSpec:
    """What a model expects: feature names in column order, and how the label is modelled."""

    feature_names: tuple[str, ...] = FEATURE_NAMES
    label: str = "price_eur"
    label_transform: str = "log"
    version: int = FEATURE_SPEC_VERSION
    equipment_types: tuple[str, ...] = EQUIPMENT_TYPES

    def save(self, path: Path) -> None:
        """Write the spec as JSON."""
        path.write_text(
            json.dumps(
                {
                    "version": self.version,
                    "feature_names": list(self.feature_names),
                    "label": self.label,
                    "label_transform": self.label_transform,
                    "equipment_types": list(self.equipment_types),
                    "lane_statistics": LANE_STATISTICS_FILE,
                },
                indent=2,
            )
            + "\n"
        )

    @classmethod
    def load(cls, path: Path) -> FeatureSpec:
        """Read a spec and check that this code computes the same features.

        A file that is not a spec (not UTF-8, not JSON, a field missing or of the wrong type)
        raises ValueError naming the file; a missing file raises FileNotFoundError.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            spec = cls(
                feature_names=tuple(data["feature_names"]),
                label=str(data["label"]),
                label_transform=str(data["label_transform"]),
                version=int(data["version"]),
                equipment_types=tuple(data["equipment_types"]),
            )
        except IsADirectoryError:
            raise ValueError(f"{path} is a directory, not a feature spec file") from None
        except KeyError as error:
            raise ValueError(f"{path} is not a feature spec: it lacks {error}") from None
        except (ValueError, TypeError) as error:
            # JSONDecodeError and UnicodeDecodeError are ValueErrors too.
            raise ValueError(f"{path} is not a valid feature spec: {error}") from None
        if spec.feature_names != FEATURE_NAMES or spec.version != FEATURE_SPEC_VERSION:
            raise ValueError(
                f"{path}: feature spec version {spec.version} with {len(spec.feature_names)} "
                f"features does not match this code (version {FEATURE_SPEC_VERSION}, "
                f"{len(FEATURE_NAMES)} features); retrain the model with this code version"
            )
        return spec
