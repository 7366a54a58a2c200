from __future__ import annotations

import dataclasses
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from processing.features import (
    COUNTRIES,
    FEATURE_INDEX,
    FEATURE_NAMES,
    MIN_LOADS_FOR_MEDIAN,
    FeatureBuilder,
    FeatureSpec,
    LaneStatistics,
    _group_medians,
    fit_lane_statistics,
)
from processing.validation import validate


@pytest.fixture(scope="module")
def valid_loads(small_loads: pa.Table) -> pa.Table:
    return validate(small_loads).valid


@pytest.fixture(scope="module")
def statistics(valid_loads: pa.Table) -> LaneStatistics:
    return fit_lane_statistics(valid_loads)


@pytest.fixture(scope="module")
def builder(statistics: LaneStatistics) -> FeatureBuilder:
    return FeatureBuilder(statistics)


def _as_request(record: dict[str, Any], timestamps: str) -> dict[str, Any]:
    request = dict(record)
    if timestamps == "epoch_ms":
        for name in ("posted_at", "pickup_at"):
            request[name] = int(record[name].timestamp() * 1000 + 0.5)
    return request


@pytest.mark.parametrize("timestamps", ["datetime", "epoch_ms"])
def test_training_and_serving_paths_give_identical_features(
    builder: FeatureBuilder, valid_loads: pa.Table, timestamps: str
) -> None:
    loads = valid_loads.slice(0, 2_000)
    from_training = builder.from_table(loads)
    requests = [_as_request(record, timestamps) for record in loads.to_pylist()]
    # Big batches run the formulas on NumPy columns, one to four loads on Python numbers.
    batch = builder.from_records(requests)
    one_by_one = np.vstack([builder.from_records([request]) for request in requests])
    in_threes = np.vstack(
        [builder.from_records(requests[start : start + 3]) for start in range(0, 2_000, 3)]
    )
    assert from_training.shape == (2_000, len(FEATURE_NAMES))
    np.testing.assert_array_equal(batch, from_training)
    np.testing.assert_array_equal(one_by_one, from_training)
    np.testing.assert_array_equal(in_threes, from_training)


def test_plain_string_columns_give_the_same_features_as_dictionary_columns(
    builder: FeatureBuilder, valid_loads: pa.Table
) -> None:
    loads = valid_loads.slice(0, 1_000)
    plain = pa.table(
        {
            name: column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column
            for name, column in zip(loads.column_names, loads.columns, strict=True)
        }
    )
    np.testing.assert_array_equal(builder.from_table(plain), builder.from_table(loads))


def test_parallel_blocks_do_not_change_features(
    builder: FeatureBuilder, valid_loads: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("processing.features.PARALLEL_BLOCK_ROWS", 1_000)
    with ThreadPoolExecutor(2) as executor:
        parallel = builder.from_table(valid_loads, executor)
    np.testing.assert_array_equal(parallel, builder.from_table(valid_loads))


def test_lane_median_is_the_median_price_per_km_of_the_lane(
    statistics: LaneStatistics, valid_loads: pa.Table
) -> None:
    origin = np.array(valid_loads.column("origin_region").cast(pa.string()).to_pylist())
    destination = np.array(valid_loads.column("destination_region").cast(pa.string()).to_pylist())
    price = valid_loads.column("price_eur").to_numpy()
    distance = valid_loads.column("distance_km").to_numpy()
    lanes, counts = np.unique(
        np.char.add(np.char.add(origin, ">"), destination), return_counts=True
    )
    busiest = lanes[np.argmax(counts)]
    o, d = busiest.split(">")
    on_lane = (origin == o) & (destination == d)
    builder = FeatureBuilder(statistics)
    slot = builder.slot(o, o[:2]) * statistics.slot_count + builder.slot(d, d[:2])
    assert statistics.lane_load_count[slot] == on_lane.sum()
    assert statistics.lane_median_price_per_km[slot] == pytest.approx(
        np.median(price[on_lane] / distance[on_lane]), rel=1e-6
    )
    assert statistics.lane_median_price[slot] == pytest.approx(np.median(price[on_lane]), rel=1e-6)


def _request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "posted_at": dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC),
        "pickup_at": dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.UTC),
        "origin_country": "DE",
        "origin_region": "DE-80",
        "origin_lat": 48.14,
        "origin_lon": 11.58,
        "destination_country": "IT",
        "destination_region": "IT-20",
        "destination_lat": 45.46,
        "destination_lon": 9.19,
        "distance_km": 490.0,
        "weight_kg": 12_000.0,
        "loading_meters": 13.6,
        "equipment_type": "tautliner",
        "hazmat": False,
    }
    request.update(changes)
    return request


def test_unseen_lane_falls_back_to_its_country_pair_and_unknown_country_to_the_market(
    builder: FeatureBuilder, statistics: LaneStatistics
) -> None:
    unseen_regions = builder.from_records(
        [_request(origin_region="DE-99", destination_region="IT-99")]
    )[0]
    pair_ppk = unseen_regions[FEATURE_INDEX["country_pair_median_price_per_km"]]
    assert unseen_regions[FEATURE_INDEX["lane_median_price_per_km"]] == pair_ppk
    assert unseen_regions[FEATURE_INDEX["lane_load_count"]] == 0
    unknown_country = builder.from_records(
        [_request(origin_country="UA", origin_region="UA-01", destination_country="MD",
                  destination_region="MD-20")]
    )[0]  # fmt: skip
    assert unknown_country[FEATURE_INDEX["lane_median_price_per_km"]] == pytest.approx(
        statistics.market_median_price_per_km, rel=1e-6
    )
    assert unknown_country[FEATURE_INDEX["lane_median_price"]] == pytest.approx(
        statistics.market_median_price, rel=1e-6
    )


def test_lanes_with_few_loads_use_the_country_pair(statistics: LaneStatistics) -> None:
    regions = len(statistics.regions)
    counts = statistics.lane_load_count.reshape(statistics.slot_count, -1)[:regions, :regions]
    lane_ppk = statistics.lane_median_price_per_km.reshape(statistics.slot_count, -1)
    pair_ppk = statistics.country_pair_median_price_per_km.reshape(statistics.slot_count, -1)
    sparse = (counts > 0) & (counts < MIN_LOADS_FOR_MEDIAN)
    assert sparse.any()
    np.testing.assert_array_equal(
        lane_ppk[:regions, :regions][sparse], pair_ppk[:regions, :regions][sparse]
    )


def test_calendar_features_match_python_datetime(builder: FeatureBuilder) -> None:
    rng = np.random.default_rng(3)
    start = dt.datetime(2023, 12, 25, tzinfo=dt.UTC)
    requests = []
    for offset_hours in rng.integers(0, 24 * 800, 300):
        posted = start + dt.timedelta(hours=int(offset_hours), minutes=17)
        pickup = posted + dt.timedelta(hours=int(rng.integers(1, 200)))
        requests.append(_request(posted_at=posted, pickup_at=pickup))
    features = builder.from_records(requests)
    for request, row in zip(requests, features, strict=True):
        pickup, posted = request["pickup_at"], request["posted_at"]
        assert row[FEATURE_INDEX["pickup_weekday"]] == pickup.weekday()
        assert row[FEATURE_INDEX["pickup_day_of_year"]] == pickup.timetuple().tm_yday
        assert row[FEATURE_INDEX["pickup_hour"]] == pickup.hour
        assert row[FEATURE_INDEX["posted_hour"]] == posted.hour
        assert row[FEATURE_INDEX["lead_time_hours"]] == pytest.approx(
            (pickup - posted).total_seconds() / 3600, rel=1e-6
        )


def test_chargeable_loading_meters_follow_weight_for_heavy_part_loads(
    builder: FeatureBuilder,
) -> None:
    light, heavy, full = builder.from_records(
        [
            _request(loading_meters=2.4, weight_kg=900.0),
            _request(loading_meters=2.4, weight_kg=9_000.0),
            _request(loading_meters=13.6, weight_kg=24_000.0),
        ]
    )[:, FEATURE_INDEX["chargeable_loading_meters"]]
    assert light == pytest.approx(2.4)
    assert heavy == pytest.approx(5.0)
    assert full == pytest.approx(13.6)


def test_naive_datetime_is_rejected(builder: FeatureBuilder) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        builder.from_records([_request(pickup_at=dt.datetime(2026, 3, 4, 8, 0))])


def test_group_medians_match_numpy() -> None:
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 50, 5_000)
    values = rng.lognormal(0.0, 1.0, 5_000)
    medians, counts = _group_medians(keys, values, 60)
    for key in range(60):
        chosen = values[keys == key]
        assert counts[key] == len(chosen)
        if len(chosen):
            assert medians[key] == pytest.approx(np.median(chosen), rel=1e-9)
        else:
            assert np.isnan(medians[key])


def test_statistics_round_trip(statistics: LaneStatistics, tmp_path: Path) -> None:
    path = tmp_path / "stats.npz"
    statistics.save(path)
    loaded = LaneStatistics.load(path)
    assert loaded.regions == statistics.regions
    np.testing.assert_array_equal(loaded.lane_median_price, statistics.lane_median_price)
    assert loaded.market_median_price_per_km == statistics.market_median_price_per_km
    assert loaded.slot_count == len(statistics.regions) + len(COUNTRIES)


def test_feature_spec_from_another_code_version_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    FeatureSpec(feature_names=(*FEATURE_NAMES, "extra"), version=99).save(path)
    with pytest.raises(ValueError, match="retrain"):
        FeatureSpec.load(path)


def test_fitting_on_an_empty_window_fails_clearly(valid_loads: pa.Table) -> None:
    with pytest.raises(ValueError, match="empty training window"):
        fit_lane_statistics(valid_loads.slice(0, 0))


def test_statistics_do_not_depend_on_row_order(valid_loads: pa.Table) -> None:
    order = np.random.default_rng(1).permutation(valid_loads.num_rows)
    shuffled = fit_lane_statistics(valid_loads.take(pa.array(order)))
    original = fit_lane_statistics(valid_loads)
    compared = []
    for field in dataclasses.fields(LaneStatistics):
        mine, theirs = getattr(shuffled, field.name), getattr(original, field.name)
        if isinstance(mine, np.ndarray):
            assert mine.size > 0, field.name
            np.testing.assert_array_equal(mine, theirs, err_msg=field.name)
        else:
            assert mine == theirs, field.name
        compared.append(field.name)
    # Every field: a new statistic cannot escape this test.
    assert len(compared) == len(dataclasses.fields(LaneStatistics)) >= 8
    assert pc.sum(valid_loads.column("price_eur")).as_py() > 0
