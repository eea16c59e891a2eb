"""benchmarks/gpu_check.py runs on a CPU too (its code path cannot rot between
GPU sessions): meta-training in each precision, files and pickles across
devices, every check passing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_passes_on_a_cpu(tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["checks"] and all(report["checks"].values())
    cases = {row["case"] for row in report["training"]}
    assert "maml/resnet12/bfloat16" in cases and "protonet/conv4/float32" in cases
