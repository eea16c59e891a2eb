"""GPU check (issue 13): skmeta end to end on a device, with throughput.

On the device (``--device cuda``, the default when torch sees a GPU):

1. meta-training throughput (episodes/s, peak device memory) of ProtoNet and
   second-order MAML on 84x84 RGB uint8 rows, 5-way 5-shot 15-query, for the
   Conv4 and ResNet-12 backbones, in float32 and under each mixed precision;
2. a ``FewShotClassifier`` fitted on the device: adaptation, ``predict`` and
   ``MetaFeatureExtractor.transform`` rows/s;
3. save and load across devices: a model file written from the device gives
   the same embeddings on the CPU; a pickled estimator fitted on the device
   predicts in a fresh process that sees no GPU (``CUDA_VISIBLE_DEVICES=``),
   with ``device="auto"``, the same labels.

Everything is checked, not only timed: the script exits 1 if any check fails.
``--device cpu --quick`` runs the same code path on a CPU at a tiny size (the
test suite does, so the script cannot rot between GPU sessions).

    python benchmarks/gpu_check.py                 # results/gpu_check.{json,md}
    python benchmarks/gpu_check.py --device cpu --quick --out /tmp/check.json
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from skmeta import FewShotClassifier, MetaFeatureExtractor, MetaModel
from skmeta.meta.train import TrainSettings, meta_train

RESULTS = Path(__file__).parent / "results"


def colour_rows(n_classes, per_class, side, seed=0):
    """uint8 RGB rows: per class a random smooth pattern, per row noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n_classes, 3, 6, 6)).astype(np.float32)
    patterns = torch.nn.functional.interpolate(
        torch.from_numpy(coarse), size=(side, side), mode="bilinear"
    ).numpy()
    y = np.repeat(np.arange(n_classes), per_class)
    noise = rng.normal(0, 25, (y.size, 3, side, side))
    X = np.clip(patterns[y] + noise, 0, 255).astype(np.uint8).reshape(y.size, -1)
    return X, y


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_rate(X, y, side, device, method, backbone, precision, iters, params):
    """Episodes/s of meta-training (after 2 warm-up iterations) and peak memory."""
    settings = dict(
        n_way=5,
        k_shot=5,
        n_query=15,
        input_shape=(3, side, side),
        method=method,
        method_params=params,
        backbone=backbone,
        backbone_params=BACKBONE_PARAMS[backbone],
        device=str(device),
        precision=precision,
    )
    meta_train(X, y, TrainSettings(max_iter=2, **settings))  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    tic = time.perf_counter()
    model = meta_train(X, y, TrainSettings(max_iter=iters, **settings))
    sync(device)
    seconds = time.perf_counter() - tic
    peak = (
        torch.cuda.max_memory_allocated(device) / 2**20
        if device.type == "cuda"
        else None
    )
    finite = all(torch.isfinite(t).all() for t in model.state.values())
    return {"episodes_per_s": iters / seconds, "peak_device_mib": peak}, finite


def estimator_checks(X, y, side, device, quick):
    """Fit on the device, then: adaptation, predict, transform rates; files and
    pickles across devices."""
    checks, rates = {}, {}
    base, novel = y < y.max() // 2, y >= y.max() // 2
    extractor = MetaFeatureExtractor(
        input_shape=(3, side, side),
        backbone="conv4",
        max_iter=5 if quick else 200,
        device=str(device),
        random_state=0,
    ).fit(X[base], y[base])
    model = extractor.meta_model_
    rows = X[novel]
    sync(device)
    tic = time.perf_counter()
    on_device = extractor.transform(rows)
    sync(device)
    rates["transform_rows_per_s"] = rows.shape[0] / (time.perf_counter() - tic)
    clf = FewShotClassifier(pretrained=model, device=str(device))
    tic = time.perf_counter()
    clf.fit(rows[::2], y[novel][::2])
    labels = clf.predict(rows[1::2])
    rates["adapt_predict_seconds"] = time.perf_counter() - tic
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        model.save(path)
        on_cpu = MetaFeatureExtractor(pretrained=MetaModel.load(path), device="cpu")
        cpu_rows = on_cpu.fit(rows[:2]).transform(rows)
        checks["file_device_to_cpu_same_embeddings"] = bool(
            np.allclose(cpu_rows, on_device, atol=1e-3, rtol=1e-3)
        )
        clf_auto = FewShotClassifier(pretrained=model, device="auto")
        clf_auto.fit(rows[::2], y[novel][::2])
        pickled = Path(tmp) / "clf.pkl"
        pickled.write_bytes(pickle.dumps(clf_auto))
        np.save(Path(tmp) / "rows.npy", rows[1::2])
        code = (
            "import pickle, sys, numpy as np, torch; "
            "assert not torch.cuda.is_available(); "
            f"clf = pickle.loads(open({str(pickled)!r}, 'rb').read()); "
            f"np.save({str(Path(tmp) / 'labels.npy')!r}, "
            f"clf.predict(np.load({str(Path(tmp) / 'rows.npy')!r})))"
        )
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True
        )
        checks["pickle_device_to_cpu_only_process"] = done.returncode == 0 and bool(
            np.array_equal(np.load(Path(tmp) / "labels.npy"), labels)
        )
        if done.returncode:
            print(done.stderr[-2000:])
    return checks, rates


BACKBONE_PARAMS = {"conv4": None, "resnet12": None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--out", default=None, help="JSON path (default: results/)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":  # bfloat16 on a CPU is slow, and run on purpose
        warnings.filterwarnings("ignore", message=r"precision=.* on a CPU")
    side = 28 if args.quick else 84
    if args.quick:
        BACKBONE_PARAMS.update(resnet12={"channels": (8, 8, 8, 8)})
    X, y = colour_rows(12 if args.quick else 64, 20 if args.quick else 40, side)
    precisions = ["float32", "bfloat16"]
    if device.type == "cuda":
        precisions.append("float16")
    report = {
        "device": str(device),
        "name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "training": [],
        "checks": {},
    }
    iters = 2 if args.quick else args.iters
    for backbone in ("conv4", "resnet12"):
        for method, params in (("protonet", {}), ("maml", {"inner_steps": 1})):
            for precision in precisions:
                rate, finite = training_rate(
                    X, y, side, device, method, backbone, precision, iters, params
                )
                name = f"{method}/{backbone}/{precision}"
                report["training"].append({"case": name, **rate})
                report["checks"][f"finite_weights {name}"] = bool(finite)
                print(name, rate, flush=True)
    checks, rates = estimator_checks(X, y, side, device, args.quick)
    report["checks"].update(checks)
    report["estimator"] = rates
    print(json.dumps(report["checks"], indent=1))
    out = Path(args.out) if args.out else RESULTS / "gpu_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    if not args.out:
        (RESULTS / "gpu_check.md").write_text(markdown(report))
    return 0 if all(report["checks"].values()) else 1


def markdown(report) -> str:
    lines = [
        f"# GPU check: {report['name']} ({report['device']}), torch "
        f"{report['torch']}, {report['date']}",
        "",
        "| case (method/backbone/precision) | episodes/s | peak device MiB |",
        "|---|---|---|",
    ]
    for row in report["training"]:
        peak = row["peak_device_mib"]
        lines.append(
            f"| {row['case']} | {row['episodes_per_s']:.1f} | "
            f"{'-' if peak is None else f'{peak:.0f}'} |"
        )
    lines += ["", "| check | passed |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["checks"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
