"""A straightforward pandas implementation of the model's features, as the benchmark's yardstick.

It is what one would write first: DataFrame columns, ``.dt`` accessors, ``get_dummies``-style
comparisons and left merges on region names with ``fillna`` fallbacks. It must produce the
same matrix as processing.features (the benchmark checks), so the speed ratio is fair.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from processing.features import COUNTRIES, FEATURE_NAMES, RAW_NUMERIC, LaneStatistics
from processing.schema import EQUIPMENT_TYPES, KG_PER_CHARGEABLE_LOADING_METER, MAX_LOADING_METERS


def lookup_tables(statistics: LaneStatistics) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Long-format lane and country-pair tables, as a pandas user would keep them."""
    slots = statistics.slot_count
    regions = list(statistics.regions)
    count = len(regions)
    grid = np.arange(slots * slots).reshape(slots, slots)[:count, :count].ravel()
    lanes = pd.DataFrame(
        {
            "origin_region": np.repeat(regions, count),
            "destination_region": np.tile(regions, count),
            "lane_median_price_per_km": statistics.lane_median_price_per_km[grid],
            "lane_median_price": statistics.lane_median_price[grid],
            "lane_load_count": statistics.lane_load_count[grid],
            "country_pair_median_price_per_km": statistics.country_pair_median_price_per_km[grid],
        }
    )
    country_slots = np.arange(count, slots)
    pair_grid = (country_slots[:, None] * slots + country_slots[None, :]).ravel()
    pairs = pd.DataFrame(
        {
            "origin_country": np.repeat(COUNTRIES, len(COUNTRIES)),
            "destination_country": np.tile(COUNTRIES, len(COUNTRIES)),
            "pair_price_per_km": statistics.lane_median_price_per_km[pair_grid],
            "pair_price": statistics.lane_median_price[pair_grid],
        }
    )
    net_outbound = pd.Series(statistics.region_net_outbound[:count], index=regions)
    return lanes, pairs, net_outbound


def pandas_features(
    loads: pd.DataFrame, tables: tuple[pd.DataFrame, pd.DataFrame, pd.Series]
) -> npt.NDArray[np.float32]:
    """The feature matrix of ``loads`` (a DataFrame in the load contract)."""
    lanes, pairs, net_outbound = tables
    frame = loads[
        [*RAW_NUMERIC, "hazmat", "equipment_type", "posted_at", "pickup_at", "origin_region",
         "destination_region", "origin_country", "destination_country"]
    ].astype({"origin_region": str, "destination_region": str, "origin_country": str,
              "destination_country": str, "equipment_type": str})  # fmt: skip
    out = pd.DataFrame(index=frame.index)
    for name in RAW_NUMERIC:
        out[name] = frame[name]
    out["chargeable_loading_meters"] = np.minimum(
        np.maximum(frame["loading_meters"], frame["weight_kg"] / KG_PER_CHARGEABLE_LOADING_METER),
        MAX_LOADING_METERS,
    )
    out["hazmat"] = frame["hazmat"].astype(float)
    for name in EQUIPMENT_TYPES:
        out[f"equipment_{name}"] = (frame["equipment_type"] == name).astype(float)
    out["lead_time_hours"] = (frame["pickup_at"] - frame["posted_at"]).dt.total_seconds() / 3600
    out["posted_hour"] = frame["posted_at"].dt.hour
    out["pickup_hour"] = frame["pickup_at"].dt.hour
    out["pickup_weekday"] = frame["pickup_at"].dt.weekday
    out["pickup_day_of_year"] = frame["pickup_at"].dt.dayofyear
    merged = frame.merge(lanes, how="left", on=["origin_region", "destination_region"])
    merged = merged.merge(pairs, how="left", on=["origin_country", "destination_country"])
    merged["lane_median_price_per_km"] = merged["lane_median_price_per_km"].fillna(
        merged["pair_price_per_km"]
    )
    merged["lane_median_price"] = merged["lane_median_price"].fillna(merged["pair_price"])
    merged["lane_load_count"] = merged["lane_load_count"].fillna(0.0)
    merged["country_pair_median_price_per_km"] = merged["country_pair_median_price_per_km"].fillna(
        merged["pair_price_per_km"]
    )
    for name in (
        "lane_median_price_per_km",
        "lane_median_price",
        "lane_load_count",
        "country_pair_median_price_per_km",
    ):
        out[name] = merged[name].to_numpy()
    out["lane_expected_price"] = (
        merged["lane_median_price_per_km"].astype(np.float32).to_numpy()
        * frame["distance_km"].to_numpy()
    )
    out["origin_net_outbound"] = frame["origin_region"].map(net_outbound).fillna(0.0)
    out["destination_net_outbound"] = frame["destination_region"].map(net_outbound).fillna(0.0)
    result: npt.NDArray[np.float32] = out[list(FEATURE_NAMES)].to_numpy(dtype=np.float32)
    return result
