"""The synthetic market in the embedded lake: landed into the local stage's raw loads, sampled."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local.embedded_aws import EmbeddedAws
from market.generator import MarketConfig, generate
from processing.lake import split_s3_uri, write_partitions
from stages.names import ResourceNames

# The local stage: the embedded lake's buckets, the local pipeline and endpoint.
LOCAL_NAMES = ResourceNames(stage="local")
# The demo's market is the generator's default one; the CLI's defaults and the bench read these.
DEMO_MARKET = MarketConfig()
DEMO_DAYS = DEMO_MARKET.days
DEMO_ROWS_PER_DAY = DEMO_MARKET.rows_per_day
DEMO_SEED = DEMO_MARKET.seed


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def land_market(aws: EmbeddedAws, config: MarketConfig, names: ResourceNames = LOCAL_NAMES) -> None:
    """Generate the synthetic market into the embedded lake's raw loads."""
    with ThreadPoolExecutor(max_workers=2) as executor:
        write_partitions(
            generate(config, executor), names.raw_loads_uri, s3_client=aws.client("s3")
        )


def market_up_to_yesterday(config: MarketConfig, today: dt.date | None = None) -> MarketConfig:
    """``config`` moved to end the day before ``today`` (UTC): the relative window's last day."""
    today = today or dt.datetime.now(dt.UTC).date()
    return dataclasses.replace(config, start_date=today - dt.timedelta(days=config.days))


def ensure_local_data(
    aws: EmbeddedAws,
    config: MarketConfig,
    names: ResourceNames = LOCAL_NAMES,
    log: Callable[[str], None] = _to_stderr,
) -> bool:
    """Land the market unless the raw loads already hold a partition; True if it was landed."""
    bucket, prefix = split_s3_uri(names.raw_loads_uri)
    listed = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/", MaxKeys=1)
    if listed.get("KeyCount", 0):
        return False
    log(f"the embedded lake is empty: generating {config.days} days x {config.rows_per_day} loads")
    land_market(aws, config, names)
    return True


def demo_requests(config: MarketConfig, count: int) -> tuple[list[dict[str, Any]], list[float]]:
    """A few valid loads of the market's last day, as price requests, and their prices.

    The generator is deterministic, so the day is drawn again rather than read from the lake.
    """
    from market.generator import Market, generate_day
    from processing.schema import REQUEST_FIELDS
    from processing.validation import validate

    last_day = config.dates()[-1]
    loads = validate(generate_day(Market(config.seed), last_day, config.rows_per_day)).valid
    # Spread the picks over the day's loads so that they differ in lane and equipment.
    step = max(1, loads.num_rows // count)
    picked = loads.take(list(range(0, step * count, step))[:count]).to_pylist()
    requests = []
    for load in picked:
        request = {name: load[name] for name in REQUEST_FIELDS}
        request["posted_at"] = request["posted_at"].isoformat()
        request["pickup_at"] = request["pickup_at"].isoformat()
        request["load_id"] = load["load_id"]
        requests.append(request)
    return requests, [float(load["price_eur"]) for load in picked]
