"""GPU check (issue 13): skmeta end to end on a device, with throughput.

On the device (``--device cuda``, the default when torch sees a GPU):

1. meta-training throughput (episodes/s, peak device memory) of ProtoNet and
   second-order MAML on 84x84 RGB uint8 rows, 5-way 5-shot 15-query, for the
   Conv4 and ResNet-12 backbones, in float32 and under each mixed precision;
2. a ``FewShotClassifier`` fitted on the device: adaptation, ``predict`` and
   ``MetaFeatureExtractor.transform`` rows/s;
3. save and load across devices: a model file written from the device gives
   the same embeddings on the CPU (compared with TF32 off: cuDNN's default
   TF32 convolutions differ from float32 at about 1e-3); a pickled estimator
   fitted on the device predicts in a fresh process that sees no GPU
   (``CUDA_VISIBLE_DEVICES=``), with ``device="auto"``, the same labels;
4. the rest of the library on the device, at a tiny size, each a check: every
   classification method meta-trained and adapted (the closed-form heads
   under bfloat16 too), mini-batch adaptation of MAML to a large support set,
   a checkpoint written on the device and resumed on the CPU, calibration
   with test-time views, augmentations, the regressor, ``partial_fit``,
   transductive inference, ``MetaModel.from_module``, and whether two seeded
   runs give the same weights there (reported, not checked: cuDNN is not
   deterministic by default).

Everything is checked, not only timed: the script exits 1 if any check fails.
A check that raises is recorded as failed with its error (``errors`` in the
JSON) and the others still run.
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
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from skmeta import FewShotClassifier, MetaFeatureExtractor, MetaModel
from skmeta.meta.callbacks import Callback
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


class Clock(Callback):
    """Seconds from the first iteration to the end of the last, synchronised:
    the run's set-up (input statistics, building the net) is left out."""

    def __init__(self, device):
        self.device, self.seconds = device, None

    def on_train_begin(self, loop):
        sync(self.device)
        self.start = time.perf_counter()

    def on_train_end(self, loop):
        sync(self.device)
        self.seconds = time.perf_counter() - self.start


@contextmanager
def float32_convolutions():
    """cuDNN's convolutions and CUDA's matrix products in float32, not TF32."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = matmul.allow_tf32
    matmul.allow_tf32 = False
    try:
        with cudnn.flags(
            enabled=cudnn.enabled,
            benchmark=cudnn.benchmark,
            deterministic=cudnn.deterministic,
            allow_tf32=False,
        ):
            yield
    finally:
        matmul.allow_tf32 = before


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
    clock = Clock(device)
    model = meta_train(
        X, y, TrainSettings(max_iter=iters, **settings), callbacks=[clock]
    )
    seconds = clock.seconds
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
    extractor.transform(rows)
    sync(device)
    rates["transform_rows_per_s"] = rows.shape[0] / (time.perf_counter() - tic)
    with float32_convolutions():  # the weights compared, not TF32's rounding
        on_device = extractor.transform(rows)
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


def finite(array) -> bool:
    return bool(np.isfinite(np.asarray(array, dtype=np.float64)).all())


class StopAt(Callback):
    """Ctrl-C after iteration `n` (the checkpoint of the one before is kept)."""

    def __init__(self, n):
        self.n = n

    def on_iteration_end(self, loop):
        if loop.n_iter == self.n:
            raise KeyboardInterrupt


def feature_checks(device, attempt):
    """The rest of the library on `device`, tiny: each check through `attempt`
    (a failure is recorded, and the next check runs)."""
    from skmeta import FewShotRegressor, available_methods
    from skmeta.datasets import make_sinusoid_tasks

    side, on = 28, str(device)
    X, y = colour_rows(12, 20, side, seed=1)
    shape = (3, side, side)
    small = dict(n_way=5, k_shot=1, n_query=2, input_shape=shape, random_state=0)
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(5)])
    queries = np.concatenate([np.flatnonzero(y == c)[2:6] for c in range(5)])

    def method_runs(method, precision):
        clf = FewShotClassifier(
            method=method, max_iter=3, device=on, precision=precision, **small
        ).fit(X[y < 5], y[y < 5])
        return finite(clf.predict_proba(X[queries]))

    for method in available_methods():
        if method != "mann":  # MANN classifies its n_way classes: below
            attempt(f"method {method}", lambda m=method: method_runs(m, "float32"))
    for method in ("r2d2", "metaoptnet", "frn", "protonet"):
        attempt(
            f"method {method} bfloat16", lambda m=method: method_runs(m, "bfloat16")
        )

    def mann():
        clf = FewShotClassifier(method="mann", max_iter=3, device=on, **small)
        clf.fit(X[y < 5], y[y < 5])
        return finite(clf.predict_proba(X[queries]))

    attempt("method mann", mann)
    extractor = MetaFeatureExtractor(max_iter=20, device=on, **small).fit(X, y)
    model = extractor.meta_model_

    def maml_mini_batches():  # 200 support rows in 16-row mini-batches
        clf = FewShotClassifier(
            method="maml",
            max_iter=2,
            device=on,
            method_params={"inner_batch_size": 16},
            **small,
        ).fit(X[y < 10], y[y < 10])
        return finite(clf.predict_proba(X[queries]))

    def checkpoint_to_cpu():
        with tempfile.TemporaryDirectory() as tmp:
            settings = TrainSettings(
                n_way=5,
                k_shot=1,
                n_query=2,
                input_shape=shape,
                max_iter=6,
                device=on,
                checkpoint=str(Path(tmp) / "run.ckpt"),
                checkpoint_every=1,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the interrupt's warning
                cut = meta_train(X, y, settings, callbacks=[StopAt(3)])
            cpu = TrainSettings(**{**settings.__dict__, "device": "cpu"})
            resumed = meta_train(X, y, cpu)
        done = resumed.config["training"]
        return (
            cut.config["training"]["interrupted"]
            and done["n_iter"] == 6
            and done["n_iter_before"] == 0
            and all(torch.isfinite(t).all() for t in resumed.state.values())
        )

    def calibrated_views():
        clf = FewShotClassifier(
            max_iter=20,
            calibrate=True,
            validation_fraction=0.5,
            test_time_shifts=(1,),
            test_time_turns=True,
            device=on,
            **small,
        ).fit(X, y)
        proba = clf.predict_proba(X[queries])
        return finite(proba) and np.allclose(proba.sum(1), 1, atol=1e-4)

    def augmentations():
        specs = [["affine", "elastic"]]
        try:  # the torchvision transforms where torchvision loads
            import torchvision.transforms.v2  # noqa: F401

            specs.append("images")
        except Exception as exc:
            print(f"augmentation='images' not checked: {exc!r}", flush=True)
        for spec in specs:
            MetaFeatureExtractor(
                max_iter=3,
                augmentation=spec,
                class_augmentation="rot90",
                device=on,
                **small,
            ).fit(X, y)
        return True

    def regressor():
        Xr, yr, groups = make_sinusoid_tasks(40, 20, random_state=0)
        meta = FewShotRegressor(k_shot=5, max_iter=20, device=on, random_state=0)
        meta.fit(Xr, yr, groups=groups)
        reg = FewShotRegressor(pretrained=meta.meta_model_, device=on)
        return finite(reg.fit(Xr[:5], yr[:5]).predict(Xr[5:20]))

    def partial_fit():
        clf = FewShotClassifier(pretrained=model, device=on)
        clf.partial_fit(X[support[:4]], y[support[:4]], classes=np.arange(5))
        clf.partial_fit(X[support[4:]], y[support[4:]])
        return finite(clf.predict_proba(X[queries]))

    def transductive():
        labels = np.concatenate([y[support], np.full(queries.size, -1)])
        rows = X[np.concatenate([support, queries])]
        clf = FewShotClassifier(pretrained=model, transductive="ptmap", device=on)
        return clf.fit(rows, labels).transduction_.shape == (labels.size,)

    def from_module():
        module = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten()
        )
        wrapped = MetaModel.from_module(module, shape)
        features = MetaFeatureExtractor(pretrained=wrapped, device=on)
        return finite(features.fit(X[:2]).transform(X[queries]))

    for name, check in [
        ("maml mini-batch adaptation", maml_mini_batches),
        ("checkpoint on the device resumed on the CPU", checkpoint_to_cpu),
        ("calibration with test-time views", calibrated_views),
        ("augmentations", augmentations),
        ("regressor", regressor),
        ("partial_fit", partial_fit),
        ("transductive ptmap", transductive),
        ("from_module", from_module),
    ]:
        attempt(name, check)

    def same_weights():
        settings = TrainSettings(
            n_way=5, k_shot=1, n_query=2, input_shape=shape, max_iter=5, device=on
        )
        one, two = (meta_train(X, y, settings).state for _ in range(2))
        return all(torch.equal(one[k], two[k]) for k in one)

    return same_weights()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--out", default=None, help="JSON path (default: results/)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(
            f"--device {args.device}: torch sees no CUDA device here "
            f"(torch {torch.__version__}); run on a GPU machine or pass --device cpu."
        )
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
    report["errors"] = {}

    def attempt(name, check):
        """Run `check`; its bool is the check, and an error a failed one."""
        try:
            report["checks"][name] = bool(check())
        except Exception as exc:  # recorded; the other checks still run
            traceback.print_exc()
            report["checks"][name] = False
            report["errors"][name] = repr(exc)[:1000]
        print(name, report["checks"][name], flush=True)

    iters = 2 if args.quick else args.iters
    for backbone in ("conv4", "resnet12"):
        for method, params in (("protonet", {}), ("maml", {"inner_steps": 1})):
            for precision in precisions:
                name = f"{method}/{backbone}/{precision}"

                def case(name=name, run=(method, backbone, precision, params)):
                    method, backbone, precision, params = run
                    rate, finite = training_rate(
                        X, y, side, device, method, backbone, precision, iters, params
                    )
                    report["training"].append({"case": name, **rate})
                    print(name, rate, flush=True)
                    return finite

                attempt(f"finite_weights {name}", case)

    def estimators():
        checks, rates = estimator_checks(X, y, side, device, args.quick)
        report["estimator"] = rates
        for name, passed in checks.items():
            attempt(name, lambda passed=passed: passed)
        return True

    attempt("estimators fitted on the device", estimators)
    seeded = {}

    def features():
        seeded["same_weights"] = feature_checks(device, attempt)
        return True

    attempt("library on the device", features)
    report["same_seed_same_weights_on_device"] = seeded.get("same_weights")
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
    lines += [
        "",
        f"Same seed, same weights on the device: "
        f"{report.get('same_seed_same_weights_on_device')}",
    ]
    lines += [f"\nError in {k}: `{v}`" for k, v in report.get("errors", {}).items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
