"""Geometry on the earth's surface: the one great-circle (haversine) distance of the project."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6371.0088

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
