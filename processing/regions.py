"""Postal regions: the region format of each served country ('DE-80', 'GB-M', 'IE-D01')."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from processing.schema import EUROPEAN_COUNTRIES

# A region is its country code, '-' and the first two digits of the postal code ('DE-80').
# British postcodes and Irish Eircodes do not start with digits: a GB region is the postcode
# area ('GB-M', 'GB-LS'), an IE region the Eircode routing key ('IE-D01', and Dublin's 'D6W').
TWO_POSTAL_DIGITS = re.compile(r"[0-9]{2}")
POSTAL_PART_BY_COUNTRY: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {"GB": re.compile(r"[A-Z]{1,2}"), "IE": re.compile(r"[A-Z][0-9]{2}|D6W")}
)
REGION_FORMAT = (
    "the country code, '-' and two postal digits such as 'DE-80' "
    "(GB: the postcode area such as 'GB-M', IE: the Eircode routing key such as 'IE-D01')"
)


@lru_cache(maxsize=4096)  # bounded: requests may send any text
def region_country(region: str) -> str | None:
    """The served country whose region format ``region`` has ('DE-80' -> 'DE'), else None."""
    country, separator, postal = region.partition("-")
    if not separator or country not in EUROPEAN_COUNTRIES:
        return None
    postal_part = POSTAL_PART_BY_COUNTRY.get(country, TWO_POSTAL_DIGITS)
    return country if postal_part.fullmatch(postal) else None
