"""bench/gpu_check.py checks itself on the CPU, and says 'no GPU' (exit 2) here, where there is none."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "gpu_check.py"


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--through", "2023-02", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow  # eight XGBoost fits in a process of its own (8 s): make test, not test-fast
def test_cpu_only_compares_two_cpu_fits_and_they_agree() -> None:
    done = _run("--cpu-only")
    assert done.returncode == 0, done.stderr
    assert "scored on 2023-03" in done.stdout
    assert "max relative forecast difference: cpu (again) 0.000e+00" in done.stdout
    assert "sampling off, max relative forecast difference: 0.000e+00" in done.stdout
    assert done.stdout.rstrip().endswith("agree")


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine: cuda is there")
def test_without_a_gpu_it_exits_2_naming_the_setting() -> None:
    done = _run()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "BTCMLOPS_MODEL__DEVICE=cuda" in done.stderr
