"""Geometry on the earth's surface: the one great-circle (haversine) distance of the project."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6371.0088
# Runtime data shipped inside the package (processing/data/SOURCES.md says where it comes from).
COUNTRY_BOUNDS_PATH = Path(__file__).resolve().parent / "data" / "country_bounds.csv"

AnyFloatArray = npt.NDArray[np.floating[Any]]


def great_circle_km(
    lat1: AnyFloatArray, lon1: AnyFloatArray, lat2: AnyFloatArray, lon2: AnyFloatArray
) -> AnyFloatArray:
    """Haversine distance in km between points given in degrees (vectorised)."""
    phi1 = np.radians(lat1)
    phi2 = np.radians(lat2)
    half_dphi = (phi2 - phi1) * 0.5
    half_dlambda = np.radians(lon2 - lon1) * 0.5
    a = np.sin(half_dphi) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(half_dlambda) ** 2
    result: AnyFloatArray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return result


def great_circle_km_scalar(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The same haversine distance for one pair of points, with Python floats (no array cost)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))


@dataclass(frozen=True)
class CountryBox:
    """The bounding box of one country's territory in WGS84 degrees (see data/SOURCES.md)."""

    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the point lies in the box, edges included."""
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon


@cache
def country_boxes() -> Mapping[str, CountryBox]:
    """The bounding box of each country in ``country_bounds.csv``, by ISO 3166-1 alpha-2 code.

    Read once per process; the mapping is read-only because every caller shares it.
    """
    with COUNTRY_BOUNDS_PATH.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    boxes = {
        row["country"]: CountryBox(
            min_lat=float(row["min_lat"]),
            max_lat=float(row["max_lat"]),
            min_lon=float(row["min_lon"]),
            max_lon=float(row["max_lon"]),
        )
        for row in rows
    }
    return MappingProxyType(boxes)
