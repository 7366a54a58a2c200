"""Model lineage: the data a model learned from, carried from Prepare to the model and registry.

Each Prepare instance writes a summary (window, row counts, quarantine by reason, code version);
training merges them into ``model_metadata.json`` under ``data``; Evaluate flattens that into
``lineage.json``, whose string values the Register step copies into the model package's
customer metadata (the registry accepts only flat strings of a restricted character set).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from processing.contracts import PREPARE_SUMMARY_GLOB
from processing.rules import REASONS

QUARANTINE_KEY_PREFIX = "quarantine_"
# The model package's customer metadata keys, in the order they are registered.
LINEAGE_KEYS: tuple[str, ...] = (
    "data_window_start",
    "data_window_end",
    "code_version",
    "model_version",
    "rows_in",
    "rows_valid",
    "rows_quarantined",
    "rows_train",
    "rows_validation",
    "rows_test",
    "prepare_instances",
    *(f"{QUARANTINE_KEY_PREFIX}{reason}" for reason in REASONS),
)
UNKNOWN = "unknown"


def merge_prepare_summaries(directory: Path) -> dict[str, Any]:
    """The lineage of one Prepare run from the summaries of all its instances in ``directory``.

    Row counts add up over the instances; the window and the code version must agree (they
    come from the same step arguments). Raises FileNotFoundError when there is no summary, and
    ValueError naming the file when one is unreadable or disagrees.
    """
    paths = sorted(directory.glob(PREPARE_SUMMARY_GLOB))
    if not paths:
        raise FileNotFoundError(
            f"no Prepare summary ({PREPARE_SUMMARY_GLOB}) in {directory}: the model's lineage "
            "would be lost; is this the artifacts output of the Prepare step?"
        )
    rows = dict.fromkeys(("in", "valid", "quarantined", "train", "validation", "test"), 0)
    by_reason = dict.fromkeys(REASONS, 0)
    shared: dict[str, Any] = {}
    for path in paths:
        try:
            summary = json.loads(path.read_text())
            validation = summary["validation"]
            rows["in"] += int(validation["rows"])
            rows["valid"] += int(validation["valid"])
            rows["quarantined"] += int(validation["quarantined"])
            for split in ("train", "validation", "test"):
                rows[split] += int(summary["rows"][split])
            for reason, count in validation["by_reason"].items():
                by_reason[reason] = by_reason.get(reason, 0) + int(count)
            agreed = {"window": summary.get("window"), "code_version": summary.get("code_version")}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a Prepare summary ({error!r})") from None
        for key, value in agreed.items():
            if key in shared and shared[key] != value:
                raise ValueError(f"{path}: {key} {value!r} differs from the other instances'")
            shared[key] = value
    return {
        "window": shared["window"],
        "code_version": shared["code_version"],
        "prepare_instances": len(paths),
        "rows": rows,
        "quarantine_by_reason": by_reason,
    }


def lineage_properties(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Every LINEAGE_KEYS entry as a string, from a model's metadata (``unknown`` if absent)."""
    data = metadata.get("data") or {}
    window = data.get("window") or {}
    rows = data.get("rows") or {}
    by_reason = data.get("quarantine_by_reason") or {}
    values: dict[str, Any] = {
        "data_window_start": window.get("start"),
        "data_window_end": window.get("end"),
        "code_version": data.get("code_version"),
        "model_version": metadata.get("model_version"),
        "prepare_instances": data.get("prepare_instances"),
        **{f"rows_{name}": rows.get(name) for name in ("in", "valid", "quarantined")},
        **{f"rows_{name}": rows.get(name) for name in ("train", "validation", "test")},
        **{f"{QUARANTINE_KEY_PREFIX}{reason}": by_reason.get(reason) for reason in REASONS},
    }
    return {key: UNKNOWN if values[key] is None else str(values[key]) for key in LINEAGE_KEYS}
