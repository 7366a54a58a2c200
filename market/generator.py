"""Synthetic European road-freight market: deterministic, vectorised daily load records.

Over 400 lines, long because a load's price is one formula over one day's arrays (below); the
city and country tables are data in market/data/, and scenarios will live beside this module.

The price of a load is built the way a carrier prices it (docs/market-model.md has the full
model and where its magnitudes come from):

    price = (fixed cost + distance x cost per km x short-haul factor + ferry)
            x chargeable share of the trailer x equipment x hazmat x lead time x weekday
            x season x lane imbalance x lane idiosyncrasy x market regime x carrier noise

Cost per km mixes the origin and destination countries' base rate (driver, truck, margin),
diesel (31 l/100 km ex VAT) and tolls. The market structure (lane detours, lane premiums, the
regime path) depends only on the seed; each day draws its loads from a generator seeded by
(seed, day), so any day can be produced alone, in any order, with identical bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from market.geography import Cities, Countries, load_cities, load_countries
from processing.geography import great_circle_km
from processing.schema import (
    EQUIPMENT_TYPES,
    KG_PER_CHARGEABLE_LOADING_METER,
    LOAD_SCHEMA,
    MAX_LOADING_METERS,
    MS_PER_DAY,
    MS_PER_HOUR,
    TIMESTAMP_TYPE,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DIESEL_LITRES_PER_KM = 0.31
# Share of each equipment type in the posted loads, and its price factor over a tautliner.
EQUIPMENT_SHARE = {
    "tautliner": 0.46,
    "mega": 0.14,
    "box": 0.12,
    "reefer": 0.15,
    "flatbed": 0.07,
    "tanker": 0.06,
}
EQUIPMENT_PRICE_FACTOR = {
    "tautliner": 1.00,
    "mega": 1.04,
    "box": 1.06,
    "reefer": 1.24,
    "flatbed": 1.12,
    "tanker": 1.32,
}
EQUIPMENT_CUMULATIVE_SHARE = np.cumsum([EQUIPMENT_SHARE[name] for name in EQUIPMENT_TYPES])[:-1]
EQUIPMENT_PRICE_FACTOR_BY_CODE = np.array(
    [EQUIPMENT_PRICE_FACTOR[name] for name in EQUIPMENT_TYPES]
)
TANKER = EQUIPMENT_TYPES.index("tanker")
HAZMAT_FACTOR = 1.12
# Lead time buckets: same or next day, within four days, up to two weeks ahead.
LEAD_TIME_BUCKET_SHARE = np.array([0.28, 0.82])
LEAD_TIME_BUCKET_LOW = np.array([2.0, 24.0, 96.0])
LEAD_TIME_BUCKET_SPAN = np.array([22.0, 72.0, 240.0])
# Small part loads still pay for a share of the truck (minimum charge).
MIN_TRAILER_SHARE = 0.16
FULL_TRUCKLOAD_SHARE = 0.55
EURO_PALLET_LOADING_METERS = 0.4
# Channel tunnel or ferry for loads to or from Great Britain and Ireland.
SEA_CROSSING_COUNTRIES = ("GB", "IE")
SEA_CROSSING_EUR = 320.0
# Weekday premium of the pickup day, Monday first (weekend pickups need drivers and permits).
WEEKDAY_FACTOR = np.array([1.02, 1.00, 1.00, 1.01, 1.04, 1.10, 1.16])
CARRIER_NOISE_SIGMA = 0.07
LANE_PREMIUM_SIGMA = 0.05
DIRTY_SHARE = 0.012
# Values of the dirty records that validation must catch.
UNKNOWN_EQUIPMENT_VALUES = ("trailer", "Tautliner ", "frigo")
DIRTY_KINDS = (
    "missing_field",
    "weight_out_of_range",
    "loading_meters_out_of_range",
    "unknown_equipment",
    "origin_equals_destination",
    "non_positive_price",
    "price_out_of_range",
    "pickup_before_posting",
    "duplicate_load_id",
)
NULLABLE_IN_DIRTY_DATA = ("origin_region", "weight_kg", "price_eur", "pickup_at", "equipment_type")
SHIPPER_COUNT = 4_000
DAYS_1970_TO_2020 = 18_262
BLOCK_ROWS = 1 << 17


@dataclass(frozen=True)
class MarketConfig:
    """What the generator produces: how many days from which date, how many rows, which seed."""

    start_date: dt.date = dt.date(2025, 11, 1)
    days: int = 365
    rows_per_day: int = 3_000
    seed: int = 7
    dirty_share: float = DIRTY_SHARE

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        if self.rows_per_day < 1:
            raise ValueError(f"rows_per_day must be at least 1, got {self.rows_per_day}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if not 0.0 <= self.dirty_share <= 0.5:
            raise ValueError(f"dirty_share must be within [0, 0.5], got {self.dirty_share}")

    def dates(self) -> list[dt.date]:
        """The calendar days of the market, in order."""
        return [self.start_date + dt.timedelta(days=offset) for offset in range(self.days)]


class Market:
    """The structure of one synthetic market (a seed): lanes, their volumes and price levels."""

    def __init__(
        self, seed: int, cities: Cities | None = None, countries: Countries | None = None
    ) -> None:
        self.seed = seed
        self.cities = cities or load_cities()
        self.countries = countries or load_countries()

    @cached_property
    def _structure_rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, 0xF4E16])

    @cached_property
    def lane_sampler(self) -> tuple[FloatArray, IntArray]:
        """Walker alias table over (origin, destination) city pairs, flattened row-major.

        Volumes follow a gravity model: they grow with both cities' weights, more out of
        regions with a freight surplus, and fall with distance. The alias table draws a lane
        in constant time per load.
        """
        cities = self.cities
        distance = great_circle_km(
            cities.lat[:, None], cities.lon[:, None], cities.lat[None, :], cities.lon[None, :]
        )
        outbound = cities.weight * (1.0 + 0.45 * cities.imbalance)
        inbound = cities.weight * (1.0 - 0.45 * cities.imbalance)
        volume = outbound[:, None] * inbound[None, :] / (distance + 150.0) ** 1.25
        np.fill_diagonal(volume, 0.0)
        return _alias_table(volume.ravel())

    @cached_property
    def lane_detour(self) -> FloatArray:
        """Road over great-circle distance per city pair (mountains, coasts), flattened."""
        size = len(self.cities)
        detour = 1.16 + 0.16 * self._structure_rng.beta(2.0, 3.0, size=(size, size))
        symmetric: FloatArray = np.triu(detour) + np.triu(detour, 1).T
        return symmetric.ravel()

    @cached_property
    def lane_premium(self) -> FloatArray:
        """A lane's own price level (competition, border waiting, local supply), flattened."""
        size = len(self.cities)
        premium: FloatArray = np.exp(
            self._structure_rng.normal(0.0, LANE_PREMIUM_SIGMA, size=size * size)
        )
        return premium

    @cached_property
    def _cost_levels(self) -> tuple[FloatArray, FloatArray]:
        """Per city pair: cost per km (base, diesel, tolls) and fixed cost, mixing both ends."""
        cities, countries = self.cities, self.countries
        per_km_country = (
            countries.base_rate_eur_per_km
            + DIESEL_LITRES_PER_KM * countries.diesel_eur_per_litre
            + countries.toll_eur_per_km
        )
        per_km = per_km_country[cities.country_index]
        fixed = countries.fixed_cost_eur[cities.country_index]
        sea = np.isin(np.array(countries.codes)[cities.country_index], SEA_CROSSING_COUNTRIES)
        crossing = (sea[:, None] != sea[None, :]) * SEA_CROSSING_EUR
        fixed_pair = 0.5 * (fixed[:, None] + fixed[None, :]) + crossing
        return (0.5 * (per_km[:, None] + per_km[None, :])).ravel(), fixed_pair.ravel()

    @cached_property
    def lane_imbalance_factor(self) -> FloatArray:
        """Head-haul premium and back-haul discount per city pair, flattened."""
        imbalance = self.cities.imbalance
        factor: FloatArray = np.exp(0.11 * (imbalance[:, None] - imbalance[None, :]))
        return factor.ravel()

    def regime(self, days_since_2020: IntArray) -> FloatArray:
        """Market tightness multiplier: tight and soft phases lasting weeks to months.

        A sum of slow waves with seed-dependent phases, so swings are bounded (a few percent)
        and there is no trend.
        """
        phases = np.random.default_rng([self.seed, 0x2E61E]).uniform(0.0, 2.0 * np.pi, size=3)
        days = np.asarray(days_since_2020, dtype=np.float64)
        swing = (
            0.045 * np.sin(2.0 * np.pi * days / 150.0 + phases[0])
            + 0.025 * np.sin(2.0 * np.pi * days / 67.0 + phases[1])
            + 0.015 * np.sin(2.0 * np.pi * days / 29.0 + phases[2])
        )
        result: FloatArray = np.exp(swing)
        return result

    def warm_up(self) -> None:
        """Build the lane tables now rather than inside the first day."""
        _ = self.lane_sampler, self.lane_detour, self.lane_premium, self._cost_levels
        _ = self.lane_imbalance_factor

    def base_price(self, pair: IntArray, distance_km: FloatArray) -> FloatArray:
        """Full-truckload cost of a lane and distance, before load and market factors."""
        per_km, fixed = self._cost_levels
        short_haul = 1.0 + 55.0 / (distance_km + 40.0)
        result: FloatArray = fixed[pair] + distance_km * per_km[pair] * short_haul
        return result


def _alias_table(weights: FloatArray) -> tuple[FloatArray, IntArray]:
    """Vose's alias method: probability and alias arrays for O(1) weighted sampling."""
    count = len(weights)
    scaled = weights * (count / weights.sum())
    probability = np.ones(count)
    alias = np.arange(count, dtype=np.int64)
    small = [int(i) for i in np.flatnonzero(scaled < 1.0)]
    large = [int(i) for i in np.flatnonzero(scaled >= 1.0)]
    while small and large:
        low, high = small.pop(), large.pop()
        probability[low] = scaled[low]
        alias[low] = high
        scaled[high] -= 1.0 - scaled[low]
        (small if scaled[high] < 1.0 else large).append(high)
    return probability, alias


def _season_factor(day_of_year: FloatArray) -> FloatArray:
    """Q4 peak (late November to mid December), summer dip (August), January lull."""
    peak = 0.08 * np.exp(-(((day_of_year - 338.0) / 24.0) ** 2))
    dip = 0.05 * np.exp(-(((day_of_year - 218.0) / 20.0) ** 2))
    january_lull = 0.03 * np.exp(-(((day_of_year - 10.0) / 10.0) ** 2))
    result: FloatArray = 1.0 + peak - dip - january_lull
    return result


def _draw_block(
    market: Market, epoch_day: int, block: int, first_row: int, rows: int, dirty_share: float
) -> dict[str, npt.NDArray[Any]]:
    """Draw ``rows`` loads of one day as NumPy columns; a block has its own random stream."""
    rng = np.random.default_rng([market.seed, epoch_day, block])
    cities = market.cities
    city_count = len(cities)

    # Lanes: alias-table draw of (origin, destination) city pairs.
    probability, alias = market.lane_sampler
    slot = rng.integers(0, len(probability), rows)
    pair = np.where(rng.random(rows) < probability[slot], slot, alias[slot])
    origin, destination = np.divmod(pair, city_count)

    # Exact addresses scatter around the city centre.
    scatter = rng.standard_normal((4, rows))
    origin_lat = cities.lat[origin] + 0.06 * scatter[0]
    origin_lon = cities.lon[origin] + 0.09 * scatter[1]
    destination_lat = cities.lat[destination] + 0.06 * scatter[2]
    destination_lon = cities.lon[destination] + 0.09 * scatter[3]
    crow_flies: FloatArray = great_circle_km(
        origin_lat, origin_lon, destination_lat, destination_lon
    ).astype(np.float64, copy=False)
    detoured: FloatArray = np.maximum(crow_flies * market.lane_detour[pair], 5.0)
    distance_km = detoured.round(1)

    # Posting time during the business day; lead time from same-day to two weeks ahead.
    uniforms = rng.random((6, rows))
    posted_hour = np.clip(11.5 + 3.2 * rng.standard_normal(rows), 5.0, 21.0)
    posted_ms = epoch_day * MS_PER_DAY + (posted_hour * MS_PER_HOUR).astype(np.int64)
    urgency = np.searchsorted(LEAD_TIME_BUCKET_SHARE, uniforms[0])
    lead_hours = LEAD_TIME_BUCKET_LOW[urgency] + LEAD_TIME_BUCKET_SPAN[urgency] * uniforms[1]
    pickup_ms = posted_ms + (lead_hours * MS_PER_HOUR).astype(np.int64)
    pickup_ms = np.maximum(pickup_ms - pickup_ms % MS_PER_HOUR, posted_ms)  # booked on the hour
    lead_hours = (pickup_ms - posted_ms) * (1.0 / MS_PER_HOUR)

    # Equipment, size and weight of the cargo.
    equipment = np.searchsorted(EQUIPMENT_CUMULATIVE_SHARE, uniforms[2]).astype(np.int32)
    is_tanker = equipment == TANKER
    full_truckload = (uniforms[3] < FULL_TRUCKLOAD_SHARE) | is_tanker
    pallets = np.floor(1.0 + 30.0 * uniforms[4])
    loading_meters = np.where(
        full_truckload, MAX_LOADING_METERS, np.round(pallets * EURO_PALLET_LOADING_METERS, 1)
    )
    density_noise = rng.standard_normal(rows)
    density_kg_per_ldm = np.where(
        is_tanker, 1_620.0 + 90.0 * density_noise, np.exp(6.685 + 0.5 * density_noise)
    )
    weight_kg = np.round(np.clip(loading_meters * density_kg_per_ldm, 50.0, 24_500.0), 0)
    hazmat = uniforms[5] < np.where(is_tanker, 0.45, 0.035)

    # Price: lane cost x load factors x market factors x noise.
    chargeable_ldm = np.minimum(
        MAX_LOADING_METERS,
        np.maximum(loading_meters, weight_kg * (1.0 / KG_PER_CHARGEABLE_LOADING_METER)),
    )
    trailer_share = np.maximum(
        (chargeable_ldm * (1.0 / MAX_LOADING_METERS)) ** 0.72, MIN_TRAILER_SHARE
    )
    pickup_day = pickup_ms // MS_PER_DAY
    weekday = (pickup_day + 3) % 7  # 1970-01-01 was a Thursday
    pickup_dates = pickup_day.astype("datetime64[D]")
    day_of_year = (pickup_dates - pickup_dates.astype("datetime64[Y]")).astype(np.float64) + 1.0
    price = (
        market.base_price(pair, distance_km)
        * trailer_share
        * EQUIPMENT_PRICE_FACTOR_BY_CODE[equipment]
        * np.where(hazmat, HAZMAT_FACTOR, 1.0)
        * (1.0 + 0.22 * np.exp(lead_hours * (-1.0 / 18.0)))
        * WEEKDAY_FACTOR[weekday]
        * _season_factor(day_of_year)
        * market.lane_imbalance_factor[pair]
        * market.lane_premium[pair]
        * market.regime(pickup_day - DAYS_1970_TO_2020)
        * np.exp(CARRIER_NOISE_SIGMA * rng.standard_normal(rows))
    )
    columns: dict[str, npt.NDArray[Any]] = {
        "sequence": np.arange(first_row, first_row + rows, dtype=np.int64),
        # Shipper activity is heavy-tailed: log-uniform over the shipper ids.
        "shipper": np.minimum(
            np.exp(rng.random(rows) * np.log(SHIPPER_COUNT)).astype(np.int64) - 1,
            SHIPPER_COUNT - 1,
        ),
        "posted_at": posted_ms,
        "pickup_at": pickup_ms,
        "origin_city": origin.astype(np.int32),
        "destination_city": destination.astype(np.int32),
        "origin_lat": np.round(origin_lat, 5),
        "origin_lon": np.round(origin_lon, 5),
        "destination_lat": np.round(destination_lat, 5),
        "destination_lon": np.round(destination_lon, 5),
        "distance_km": distance_km,
        "weight_kg": weight_kg,
        "loading_meters": loading_meters,
        "equipment": equipment,
        "hazmat": hazmat,
        "price_eur": np.round(price * 0.2) * 5.0,  # carriers quote in steps of 5 EUR
    }
    _make_dirty(columns, rng, dirty_share)
    return columns


def _make_dirty(
    columns: dict[str, npt.NDArray[Any]], rng: np.random.Generator, dirty_share: float
) -> None:
    """Corrupt a small share of rows in place, each with one kind of fault, and mark nulls."""
    rows = len(columns["sequence"])
    dirty_rows = np.flatnonzero(rng.random(rows) < dirty_share)
    kind = rng.integers(0, len(DIRTY_KINDS), len(dirty_rows))
    draws = rng.random(len(dirty_rows))

    def rows_of(name: str) -> npt.NDArray[np.int64]:
        selected: npt.NDArray[np.int64] = dirty_rows[kind == DIRTY_KINDS.index(name)]
        return selected

    def draws_of(name: str) -> FloatArray:
        selected: FloatArray = draws[kind == DIRTY_KINDS.index(name)]
        return selected

    missing = rows_of("missing_field")
    field = (draws_of("missing_field") * len(NULLABLE_IN_DIRTY_DATA)).astype(np.int64)
    for position, name in enumerate(NULLABLE_IN_DIRTY_DATA):
        mask = np.zeros(rows, dtype=bool)
        mask[missing[field == position]] = True
        columns[f"{name}:null"] = mask
    selected = rows_of("weight_out_of_range")
    weight = columns["weight_kg"]
    weight[selected] = np.where(
        draws_of("weight_out_of_range") < 0.5, -weight[selected], weight[selected] + 40_000.0
    )
    columns["loading_meters"][rows_of("loading_meters_out_of_range")] += 10.0
    selected = rows_of("unknown_equipment")
    columns["equipment"][selected] = len(EQUIPMENT_TYPES) + (
        draws_of("unknown_equipment") * len(UNKNOWN_EQUIPMENT_VALUES)
    ).astype(np.int32)
    selected = rows_of("origin_equals_destination")
    for end in ("city", "lat", "lon"):
        columns[f"destination_{end}"][selected] = columns[f"origin_{end}"][selected]
    selected = rows_of("non_positive_price")
    price = columns["price_eur"]
    price[selected] = np.where(draws_of("non_positive_price") < 0.5, 0.0, -price[selected])
    price[rows_of("price_out_of_range")] *= 100.0
    selected = rows_of("pickup_before_posting")
    columns["pickup_at"][selected] = columns["posted_at"][selected] - 2 * MS_PER_DAY
    selected = rows_of("duplicate_load_id")
    sequence = columns["sequence"]
    # A duplicate repeats the id of an earlier load of the same day.
    sequence[selected] = (draws_of("duplicate_load_id") * sequence[selected]).astype(np.int64)


@cache
def _shipper_names() -> pa.Array:
    return pa.array([f"S{number:05d}" for number in range(SHIPPER_COUNT)])


def _dictionary(
    indices: npt.NDArray[np.int32],
    values: tuple[str, ...],
    mask: npt.NDArray[np.bool_] | None = None,
) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, type=pa.int32(), mask=mask), pa.array(values, type=pa.string())
    )


def generate_day(
    market: Market,
    day: dt.date,
    rows: int,
    dirty_share: float = DIRTY_SHARE,
    executor: ThreadPoolExecutor | None = None,
) -> pa.Table:
    """Generate one day of posted-and-booked loads as an Arrow table in the load contract.

    The day is drawn in fixed blocks of :data:`BLOCK_ROWS` loads, each from its own random
    stream seeded by (seed, day, block): the bytes do not depend on how many threads draw
    them, and ``executor`` (NumPy releases the GIL) spreads blocks over the cores.
    """
    epoch_day = (day - dt.date(1970, 1, 1)).days
    starts = range(0, rows, BLOCK_ROWS)
    jobs = [
        (market, epoch_day, block, start, min(BLOCK_ROWS, rows - start), dirty_share)
        for block, start in enumerate(starts)
    ]
    if executor is not None and len(jobs) > 1:
        blocks = list(executor.map(lambda job: _draw_block(*job), jobs))
    else:
        blocks = [_draw_block(*job) for job in jobs]
    data = {name: np.concatenate([block[name] for block in blocks]) for name in blocks[0]}

    def nulls(name: str) -> npt.NDArray[np.bool_] | None:
        mask = data.get(f"{name}:null")
        return mask if mask is not None and mask.any() else None

    def timestamp(name: str) -> pa.Array:
        return pa.array(data[name], type=pa.int64(), mask=nulls(name)).view(TIMESTAMP_TYPE)

    def number(name: str) -> pa.Array:
        return pa.array(data[name], type=pa.float64(), mask=nulls(name))

    cities, countries = market.cities, market.countries
    load_id = pc.binary_join_element_wise(
        f"L{day:%Y%m%d}-", pc.utf8_lpad(pa.array(data["sequence"]).cast(pa.string()), 7, "0"), ""
    )
    columns = {
        "load_id": load_id,
        "shipper_id": _shipper_names().take(pa.array(data["shipper"])),
        "posted_at": timestamp("posted_at"),
        "pickup_at": timestamp("pickup_at"),
        "origin_country": _dictionary(cities.country_index[data["origin_city"]], countries.codes),
        "origin_region": _dictionary(data["origin_city"], cities.regions, nulls("origin_region")),
        "origin_lat": number("origin_lat"),
        "origin_lon": number("origin_lon"),
        "destination_country": _dictionary(
            cities.country_index[data["destination_city"]], countries.codes
        ),
        "destination_region": _dictionary(data["destination_city"], cities.regions),
        "destination_lat": number("destination_lat"),
        "destination_lon": number("destination_lon"),
        "distance_km": number("distance_km"),
        "weight_kg": number("weight_kg"),
        "loading_meters": number("loading_meters"),
        "equipment_type": _dictionary(
            data["equipment"], EQUIPMENT_TYPES + UNKNOWN_EQUIPMENT_VALUES, nulls("equipment_type")
        ),
        "hazmat": pa.array(data["hazmat"]),
        "price_eur": number("price_eur"),
    }
    return pa.Table.from_pydict(columns, schema=LOAD_SCHEMA)


def generate(
    config: MarketConfig, executor: ThreadPoolExecutor | None = None
) -> Iterator[tuple[dt.date, pa.Table]]:
    """Yield every day of ``config`` with its loads, in date order."""
    market = Market(config.seed)
    for day in config.dates():
        yield day, generate_day(market, day, config.rows_per_day, config.dirty_share, executor)
