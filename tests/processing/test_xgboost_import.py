"""xgboost comes without scikit-learn, and scikit-learn stays importable afterwards."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import processing.model
assert "sklearn" not in sys.modules, "xgboost imported scikit-learn"
import xgboost.compat
assert not xgboost.compat.SKLEARN_INSTALLED
import sklearn.base  # the ONNX converter's import still works
print("ok")
"""


def test_the_model_module_loads_xgboost_without_scikit_learn() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
