"""Tests of the synthetic market: determinism, independence of days, dirt and price realism."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from market import generator
from market.generator import (
    DIRTY_KINDS,
    DIRTY_SHARE,
    Market,
    MarketConfig,
    generate,
    generate_day,
)
from market.geography import load_cities
from processing.geography import country_boxes, great_circle_km
from processing.lake import parquet_bytes
from processing.regions import region_country
from processing.rules import REASONS
from processing.schema import LOAD_SCHEMA, MAX_LOADING_METERS
from processing.validation import validate

FloatArray = npt.NDArray[np.float64]

DAY = dt.date(2026, 3, 10)  # a Tuesday in March, away from the Q4 peak and the summer dip
SMALL = 2_000
SAMPLE_ROWS_PER_DAY = 20_000


def day_bytes(seed: int, day: dt.date = DAY, rows: int = SMALL) -> bytes:
    return parquet_bytes(generate_day(Market(seed), day, rows))


def test_same_seed_gives_identical_bytes_from_separate_markets() -> None:
    assert day_bytes(seed=11) == day_bytes(seed=11)


def test_different_seed_gives_different_loads_and_prices() -> None:
    first = generate_day(Market(11), DAY, SMALL)
    second = generate_day(Market(12), DAY, SMALL)

    assert parquet_bytes(first) != parquet_bytes(second)
    first_prices = first.column("price_eur").to_numpy()
    second_prices = second.column("price_eur").to_numpy()
    # Prices are quoted in 5 EUR steps, so a few may coincide, but not most of them.
    assert np.mean(first_prices == second_prices) < 0.1


def test_different_days_differ() -> None:
    assert day_bytes(seed=11, day=DAY) != day_bytes(seed=11, day=DAY + dt.timedelta(days=1))


def test_threaded_generation_gives_identical_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks are 131,072 rows; shrink them so a small day spans several blocks and the
    # executor actually draws blocks in parallel.
    monkeypatch.setattr(generator, "BLOCK_ROWS", 1_000)
    market = Market(5)
    rows = 7_500  # seven full blocks and a partial one

    with ThreadPoolExecutor(max_workers=4) as executor:
        threaded = generate_day(market, DAY, rows, executor=executor)
    sequential = generate_day(market, DAY, rows)

    assert threaded.num_rows == rows
    assert parquet_bytes(threaded) == parquet_bytes(sequential)


def test_blocks_of_a_day_are_not_copies_of_each_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generator, "BLOCK_ROWS", 1_000)

    table = generate_day(Market(5), DAY, 2_000, dirty_share=0.0)

    prices = table.column("price_eur").to_numpy()
    assert np.mean(prices[:1_000] == prices[1_000:]) < 0.1
    assert table.column("load_id")[1_000].as_py() == f"L{DAY:%Y%m%d}-0001000"


def test_a_day_alone_equals_the_same_day_within_a_run() -> None:
    config = MarketConfig(start_date=DAY, days=4, rows_per_day=1_500, seed=3)
    target = config.dates()[2]
    # Generated first, on a fresh market: nothing drawn for other days can influence it.
    alone = parquet_bytes(generate_day(Market(config.seed), target, 1_500, config.dirty_share))

    run = dict(generate(config))

    assert list(run) == config.dates()
    assert parquet_bytes(run[target]) == alone


def test_generate_yields_every_day_in_order_with_its_rows() -> None:
    config = MarketConfig(
        start_date=dt.date(2025, 12, 30), days=3, rows_per_day=100, seed=1, dirty_share=0.0
    )

    days = list(generate(config))

    assert [day for day, _ in days] == [
        dt.date(2025, 12, 30),
        dt.date(2025, 12, 31),
        dt.date(2026, 1, 1),
    ]
    assert [table.num_rows for _, table in days] == [100, 100, 100]
    # Load ids carry the posting day and are unique across days.
    first_ids = days[0][1].column("load_id").to_pylist()
    assert all(load_id.startswith("L20251230-") for load_id in first_ids)
    all_ids = [load_id for _, table in days for load_id in table.column("load_id").to_pylist()]
    assert len(set(all_ids)) == len(all_ids)


def test_output_schema_is_the_contract() -> None:
    table = generate_day(Market(7), DAY, SMALL)

    assert table.schema.equals(LOAD_SCHEMA, check_metadata=True)


def test_loads_are_posted_on_their_day() -> None:
    table = generate_day(Market(7), DAY, SMALL, dirty_share=0.0)

    posted_days = pc.unique(table.column("posted_at").cast(pa.date32())).to_pylist()
    assert posted_days == [DAY]


def test_every_city_lies_in_its_countrys_bounding_box() -> None:
    # Validation rejects coordinates outside the stated country's box (widened by a tolerance);
    # the city centres themselves must lie inside it, so that only the scatter of addresses
    # around them, of a few km, ever reaches into the tolerance.
    cities = load_cities()
    boxes = country_boxes()

    outside = [
        (name, country, lat, lon)
        for name, country, lat, lon in zip(
            cities.names, cities.country_codes, cities.lat, cities.lon, strict=True
        )
        if not boxes[country].contains(float(lat), float(lon))
    ]

    assert outside == []


def test_every_city_region_has_its_countrys_region_format() -> None:
    cities = load_cities()

    assert [
        (name, region, country)
        for name, region, country in zip(
            cities.names, cities.regions, cities.country_codes, strict=True
        )
        if region_country(region) != country
    ] == []


def quarantined_share(dirty_share: float, seed: int = 7) -> float:
    result = validate(generate_day(Market(seed), DAY, SAMPLE_ROWS_PER_DAY, dirty_share))
    share: float = result.quarantine.num_rows / result.total
    return share


@pytest.mark.parametrize("dirty_share", [DIRTY_SHARE, 0.05, 0.2])
def test_dirty_share_is_roughly_honoured(dirty_share: float) -> None:
    share = quarantined_share(dirty_share)

    assert 0.5 * dirty_share <= share <= 2.0 * dirty_share


def test_no_dirt_means_nothing_quarantined() -> None:
    assert quarantined_share(0.0) == 0.0


def test_dirt_is_only_of_the_kinds_validation_knows() -> None:
    result = validate(generate_day(Market(7), DAY, SAMPLE_ROWS_PER_DAY, dirty_share=0.1))

    found = {reason for reason, count in result.reason_counts.items() if count}
    assert set(DIRTY_KINDS) <= set(REASONS)
    # With ~2,000 dirty rows over nine kinds, every kind shows up, and nothing else does.
    assert found == set(DIRTY_KINDS)


@pytest.fixture(scope="module")
def valid_sample() -> pa.Table:
    """Valid loads of two weekdays in spring (about 40k rows), for the realism checks."""
    market = Market(7)
    days = [generate_day(market, DAY + dt.timedelta(days=d), SAMPLE_ROWS_PER_DAY) for d in (0, 1)]
    return validate(pa.concat_tables(days)).valid


def numbers(table: pa.Table, name: str) -> FloatArray:
    values: FloatArray = table.column(name).to_numpy().astype(np.float64)
    return values


def price_per_km(table: pa.Table) -> FloatArray:
    return numbers(table, "price_eur") / numbers(table, "distance_km")


def lead_hours(table: pa.Table) -> FloatArray:
    pickup = table.column("pickup_at").cast(pa.int64()).to_numpy()
    posted = table.column("posted_at").cast(pa.int64()).to_numpy()
    hours: FloatArray = (pickup - posted) / 3_600_000.0
    return hours


def long_full_truckloads(table: pa.Table) -> npt.NDArray[np.bool_]:
    mask: npt.NDArray[np.bool_] = (numbers(table, "loading_meters") == MAX_LOADING_METERS) & (
        numbers(table, "distance_km") > 300.0
    )
    return mask


def equipment(table: pa.Table) -> npt.NDArray[np.str_]:
    return np.array(table.column("equipment_type").cast(pa.string()).to_pylist())


def median_price_per_km(table: pa.Table, mask: npt.NDArray[np.bool_]) -> float:
    # Enough loads that the median is stable, and not so few that a broken filter passes.
    assert mask.sum() >= 300
    return float(np.median(price_per_km(table)[mask]))


def test_full_truckload_tautliner_price_per_km_is_market_like(valid_sample: pa.Table) -> None:
    mask = long_full_truckloads(valid_sample) & (equipment(valid_sample) == "tautliner")

    assert 1.2 <= median_price_per_km(valid_sample, mask) <= 2.6


def test_reefer_costs_more_than_tautliner(valid_sample: pa.Table) -> None:
    full = long_full_truckloads(valid_sample)
    kinds = equipment(valid_sample)

    reefer = median_price_per_km(valid_sample, full & (kinds == "reefer"))
    tautliner = median_price_per_km(valid_sample, full & (kinds == "tautliner"))

    # The model charges 24 % more for a reefer; lane mix and noise leave well over 10 %.
    assert reefer > 1.1 * tautliner


def test_short_notice_costs_more_than_booking_ahead(valid_sample: pa.Table) -> None:
    full = long_full_truckloads(valid_sample)
    lead = lead_hours(valid_sample)

    short_notice = median_price_per_km(valid_sample, full & (lead < 12.0))
    booked_ahead = median_price_per_km(valid_sample, full & (lead > 96.0))

    assert short_notice > booked_ahead


def test_pickup_is_never_before_posting_for_valid_loads(valid_sample: pa.Table) -> None:
    lead = lead_hours(valid_sample)

    assert lead.min() >= 0.0
    assert lead.max() <= 14 * 24


def test_road_distance_is_at_least_the_great_circle(valid_sample: pa.Table) -> None:
    straight = great_circle_km(
        numbers(valid_sample, "origin_lat"),
        numbers(valid_sample, "origin_lon"),
        numbers(valid_sample, "destination_lat"),
        numbers(valid_sample, "destination_lon"),
    )
    road = numbers(valid_sample, "distance_km")

    assert np.all(road >= straight)
    # Detours are 16-32 % on lanes long enough that the 5 km minimum and rounding do not matter.
    long_lanes = straight > 50.0
    assert np.all(road[long_lanes] <= 1.35 * straight[long_lanes])


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"days": 0}, "days"),
        ({"days": -3}, "days"),
        ({"rows_per_day": 0}, "rows_per_day"),
        ({"seed": -1}, "seed"),
        ({"dirty_share": 0.51}, "dirty_share"),
        ({"dirty_share": -0.01}, "dirty_share"),
    ],
)
def test_market_config_rejects_bad_values_naming_the_field(
    options: dict[str, float], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        MarketConfig(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [{"days": 1}, {"rows_per_day": 1}, {"seed": 0}, {"dirty_share": 0.0}, {"dirty_share": 0.5}],
)
def test_market_config_accepts_boundary_values(options: dict[str, float]) -> None:
    MarketConfig(**options)  # type: ignore[arg-type]


def test_market_config_dates_are_consecutive() -> None:
    config = MarketConfig(start_date=dt.date(2026, 2, 27), days=3)

    assert config.dates() == [dt.date(2026, 2, 27), dt.date(2026, 2, 28), dt.date(2026, 3, 1)]
