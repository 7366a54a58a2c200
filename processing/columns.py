"""Fast conversions of Arrow columns to NumPy: codes for categorical strings, floats, epoch ms."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

UNKNOWN_CODE = -1

Column: TypeAlias = pa.Array | pa.ChunkedArray


def _chunks(column: Column) -> list[pa.Array]:
    if isinstance(column, pa.ChunkedArray):
        return list(column.chunks) or [pa.array([], type=column.type)]
    return [column]


def encode(column: Column, vocabulary: Mapping[str, int]) -> npt.NDArray[np.int32]:
    """Map a string column to integer codes from ``vocabulary``; unknown values and nulls -> -1."""
    return encode_with(column, lambda value: vocabulary.get(value, UNKNOWN_CODE))


def encode_with(column: Column, code_of: Callable[[str], int]) -> npt.NDArray[np.int32]:
    """Map a string column to integer codes with ``code_of``; nulls -> -1.

    ``code_of`` runs once per distinct value (on the dictionary of a dictionary-encoded
    column), so the cost per row is one array take, not one Python call.
    """
    parts = []
    for chunk in _chunks(column):
        if not pa.types.is_dictionary(chunk.type):
            chunk = pc.dictionary_encode(chunk)
        dictionary = chunk.dictionary.to_pylist()
        lookup = np.array(
            [code_of(value) for value in dictionary] + [UNKNOWN_CODE],
            dtype=np.int32,
        )
        # Nulls point at the extra UNKNOWN_CODE slot behind the dictionary.
        indices = chunk.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
        parts.append(lookup[indices])
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def floats(column: Column) -> npt.NDArray[np.float64]:
    """A numeric column as float64; nulls become NaN."""
    result: npt.NDArray[np.float64] = (
        column.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    )
    return result


def epoch_ms(column: Column) -> npt.NDArray[np.int64]:
    """A timestamp column as milliseconds since the epoch (UTC); nulls become INT64 min."""
    if pa.types.is_timestamp(column.type) and column.type.unit != "ms":
        column = column.cast(pa.timestamp("ms", tz=column.type.tz))
    as_int = column.cast(pa.int64()).fill_null(np.iinfo(np.int64).min)
    result: npt.NDArray[np.int64] = as_int.to_numpy(zero_copy_only=False)
    return result


def null_mask(column: Column) -> npt.NDArray[np.bool_]:
    """True where the column is null (NaN is a value here, not a null)."""
    mask = column.is_null()
    result: npt.NDArray[np.bool_] = mask.to_numpy(zero_copy_only=False)
    return result
