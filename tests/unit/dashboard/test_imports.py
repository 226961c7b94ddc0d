"""The dashboard talks to the inference service over HTTP only: it loads none of the model machinery."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "mlflow",
    "lightgbm",
    "xgboost",
    "statsmodels",
    "btcmlops.registry",
    "btcmlops.model",
    "btcmlops.contest.contest",
)
"""What the page must not load. It scores intervals with ``btcmlops.contest.scoring`` (the contest's own
formula, numpy and pandas only): the contest's pure parts, never its driver nor the model code."""


def test_importing_the_dashboard_loads_no_mlflow_model_library_nor_registry() -> None:
    """Checked in a fresh interpreter: in this one, other tests have imported all of them already."""
    code = (
        "import json, sys; import btcmlops.dashboard.app; "
        f"heavy = {HEAVY!r}; "
        "print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') "
        "for h in heavy))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == []


def test_the_check_sees_a_module_that_loads_them() -> None:
    """The same check over a module that does load the registry finds it (the test above can fail)."""
    code = (
        "import sys; import btcmlops.registry; "
        "print('btcmlops.registry' in sys.modules and 'mlflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "True"
