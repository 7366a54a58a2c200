from __future__ import annotations

import datetime as dt

from local.market_data import market_up_to_yesterday
from market.generator import MarketConfig
from processing.window import resolve_window


def test_a_market_for_run_local_ends_where_the_relative_window_ends() -> None:
    today = dt.date(2026, 12, 1)
    market = market_up_to_yesterday(MarketConfig(days=90), today=today)
    window = resolve_window(None, None, 90, dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC))
    assert (market.dates()[0], market.dates()[-1]) == (window.start, window.end)
