"""xgboost, imported without the scikit-learn import it makes for wrappers we never use.

``import xgboost`` imports scikit-learn whenever it is installed (it is: training's ONNX
converter needs it) only to base its sklearn-style estimators on it: 6-8 s of every server
worker's and job's start on 2 cores, for classes this project never uses (it trains and scores
``xgboost.Booster``). A ``None`` entry in ``sys.modules`` makes exactly that import fail, so
xgboost falls back to its own base classes; the entry is removed at once, and a later
``import sklearn`` (the converter's) works as usual. Import xgboost from here, first.
"""

from __future__ import annotations

import sys

_BLOCKED = "sklearn" not in sys.modules
if _BLOCKED:
    sys.modules["sklearn"] = None  # type: ignore[assignment]
try:
    import xgboost
finally:
    if _BLOCKED:
        del sys.modules["sklearn"]

__all__ = ["xgboost"]
