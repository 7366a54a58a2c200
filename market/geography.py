"""Reference geography of the synthetic market: cities as lane endpoints, country cost levels."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

DATA_DIR = Path(__file__).resolve().parent / "data"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Countries:
    """Cost levels per country (see market/data/SOURCES.md), aligned by index."""

    codes: tuple[str, ...]
    names: tuple[str, ...]
    diesel_eur_per_litre: FloatArray
    toll_eur_per_km: FloatArray
    base_rate_eur_per_km: FloatArray
    fixed_cost_eur: FloatArray

    def index(self) -> dict[str, int]:
        """Map each country code to its position."""
        return {code: position for position, code in enumerate(self.codes)}


@dataclass(frozen=True)
class Cities:
    """Lane endpoints, aligned by index; ``country_index`` points into :class:`Countries`."""

    names: tuple[str, ...]
    regions: tuple[str, ...]
    country_codes: tuple[str, ...]
    country_index: npt.NDArray[np.int32]
    lat: FloatArray
    lon: FloatArray
    weight: FloatArray
    imbalance: FloatArray

    def __len__(self) -> int:
        return len(self.names)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@cache
def load_countries() -> Countries:
    """Read the country cost table shipped with the package."""
    rows = _read_csv(DATA_DIR / "countries.csv")

    def column(name: str) -> FloatArray:
        return np.array([float(row[name]) for row in rows], dtype=np.float64)

    return Countries(
        codes=tuple(row["country"] for row in rows),
        names=tuple(row["name"] for row in rows),
        diesel_eur_per_litre=column("diesel_eur_per_litre"),
        toll_eur_per_km=column("toll_eur_per_km"),
        base_rate_eur_per_km=column("base_rate_eur_per_km"),
        fixed_cost_eur=column("fixed_cost_eur"),
    )


@cache
def load_cities() -> Cities:
    """Read the city table shipped with the package; each city has a unique postal region."""
    rows = _read_csv(DATA_DIR / "cities.csv")
    country_index = load_countries().index()
    return Cities(
        names=tuple(row["city"] for row in rows),
        regions=tuple(row["region"] for row in rows),
        country_codes=tuple(row["country"] for row in rows),
        country_index=np.array([country_index[row["country"]] for row in rows], dtype=np.int32),
        lat=np.array([float(row["lat"]) for row in rows]),
        lon=np.array([float(row["lon"]) for row in rows]),
        weight=np.array([float(row["weight"]) for row in rows]),
        imbalance=np.array([float(row["imbalance"]) for row in rows]),
    )
