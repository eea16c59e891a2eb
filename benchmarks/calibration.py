"""Probabilities to trust and "none of these" (issue 15, part 7), on Omniglot.

Each method (``--methods``; ProtoNet, trained on the softmax of its episode
scores, and the supervised ``pretrain`` baseline, whose prototype distances
were never trained as logits) is meta-trained on ``background`` with
``calibrate=True``: a class-disjoint tenth of the background classes is held
out, and after the last step a temperature is fitted on their episodes (the
deployed scores). Reported on ``evaluation`` (classes never seen):

- **calibration**: the expected calibration error (15 bins) and the negative
  log-likelihood of ``predict_proba`` with the raw softmax (temperature 1)
  and with the fitted temperature, over the queries of N-way K-shot episodes;
- **open set**: episodes of 5 known classes (K shots each, 15 queries each)
  plus 15 queries of each of 5 other unseen classes. The AUROC of "unknown"
  against "known" by the best class score (``decision_function``'s max), and
  the share of known and unknown queries ``predict`` labels ``unknown_label``
  at ``rejection_rate=0.05`` (the threshold from the held-out background
  classes).

    python benchmarks/calibration.py [--methods protonet,pretrain] [--max-iter 3000]

writes ``results/calibration.{json,md}`` (one entry per method, merged into
the file's).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import log_softmax, softmax
from sklearn.metrics import roc_auc_score

from skmeta import FewShotClassifier, MetaFeatureExtractor
from skmeta.datasets import load_omniglot
from skmeta.meta.calibration import expected_calibration_error

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DATA = HERE.parent.parent / "shared" / "data" / "omniglot"


def _episode(rng, by_class, classes, n_way, k_shot, n_query, n_unknown=0):
    chosen = rng.choice(classes, n_way + n_unknown, replace=False)
    support, queries, labels = [], [], []
    for way, c in enumerate(chosen):
        rows = rng.permutation(by_class[c])
        if way < n_way:
            support.append(rows[:k_shot])
            queries.append(rows[k_shot : k_shot + n_query])
            labels += [c] * n_query
        else:
            queries.append(rows[:n_query])
            labels += [-1] * n_query
    return np.concatenate(support), np.concatenate(queries), np.array(labels)


def _ci95(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(1.96 * values.std(ddof=1) / np.sqrt(values.size))


def calibration(model, X, y, by_class, classes, n_way, k_shot, episodes, seed):
    rng = np.random.default_rng(seed)
    raw, calibrated, targets = [], [], []
    clf = FewShotClassifier(pretrained=model)
    for _ in range(episodes):
        support, query, labels = _episode(rng, by_class, classes, n_way, k_shot, 15)
        clf.fit(X[support], y[support])
        scores = clf.decision_function(X[query]).astype(np.float64)
        raw.append(scores)
        calibrated.append(scores / clf.temperature_)
        targets.append(np.searchsorted(clf.classes_, labels))
    raw, calibrated = np.concatenate(raw), np.concatenate(calibrated)
    t = torch.from_numpy(np.concatenate(targets))
    out = {}
    for name, logits in (("raw", raw), ("calibrated", calibrated)):
        out[f"ece_{name}"] = expected_calibration_error(
            torch.from_numpy(softmax(logits, axis=1)), t
        )
        out[f"nll_{name}"] = float(
            -log_softmax(logits, axis=1)[np.arange(t.numel()), t.numpy()].mean()
        )
    out["accuracy"] = float((raw.argmax(1) == t.numpy()).mean())
    return out


def open_set(model, X, y, by_class, classes, k_shot, episodes, seed, rate=0.05):
    rng = np.random.default_rng(seed)
    clf = FewShotClassifier(pretrained=model, unknown_label=-1, rejection_rate=rate)
    aurocs, known_rejected, unknown_rejected, accepted_accuracy = [], [], [], []
    for _ in range(episodes):
        support, query, labels = _episode(rng, by_class, classes, 5, k_shot, 15, 5)
        clf.fit(X[support], y[support])
        best = clf.decision_function(X[query]).max(1)
        unknown = labels == -1
        aurocs.append(roc_auc_score(unknown, -best))
        predicted = clf.predict(X[query])
        known_rejected.append(np.mean(predicted[~unknown] == -1))
        unknown_rejected.append(np.mean(predicted[unknown] == -1))
        kept = ~unknown & (predicted != -1)
        if kept.any():
            accepted_accuracy.append(np.mean(predicted[kept] == labels[kept]))
    return {
        "auroc": float(np.mean(aurocs)),
        "auroc_ci95": _ci95(aurocs),
        "rejection_rate": rate,
        "known_rejected": float(np.mean(known_rejected)),
        "unknown_rejected": float(np.mean(unknown_rejected)),
        "accuracy_of_accepted_known": float(np.mean(accepted_accuracy)),
        "threshold": clf.unknown_threshold_,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-iter", type=int, default=3000)
    ap.add_argument("--methods", default="protonet,pretrain")
    ap.add_argument("--episodes", type=int, default=600)
    ap.add_argument("--data-home", default=str(DATA))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    path = RESULTS / "calibration.json"
    report = json.loads(path.read_text()) if path.exists() else {"methods": {}}
    report["torch_threads"] = torch.get_num_threads()
    background = load_omniglot("background", data_home=args.data_home)
    evaluation = load_omniglot("evaluation", data_home=args.data_home)
    X, y = evaluation.data, evaluation.target
    classes = np.unique(y)
    by_class = {c: np.flatnonzero(y == c) for c in classes}
    for method in args.methods.split(","):
        tic = time.perf_counter()
        model = (
            MetaFeatureExtractor(
                method=method,
                backbone="conv4_strided",
                input_shape=(1, 28, 28),
                n_way=20,
                k_shot=1,
                n_query=5,
                class_augmentation="rot90",
                calibrate=True,
                max_iter=args.max_iter,
                random_state=args.seed,
            )
            .fit(background.data, background.target)
            .meta_model_
        )
        entry = {
            "meta_training_seconds": time.perf_counter() - tic,
            "max_iter": args.max_iter,
            "held_out": model.thawed_config()["calibration"],
            "calibration": {},
            "open_set": {},
        }
        for n_way, k_shot in ((5, 1), (5, 5), (20, 1)):
            key = f"{n_way}w{k_shot}s"
            entry["calibration"][key] = calibration(
                model, X, y, by_class, classes, n_way, k_shot, args.episodes, args.seed
            )
            print(method, key, entry["calibration"][key], flush=True)
        for k_shot in (1, 5):
            key = f"5w{k_shot}s+5unknown"
            entry["open_set"][key] = open_set(
                model, X, y, by_class, classes, k_shot, args.episodes, args.seed
            )
            print(method, key, entry["open_set"][key], flush=True)
        report["methods"][method] = entry
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(report, indent=1))
        (RESULTS / "calibration.md").write_text(table(report))
    print(table(report))


def table(report: dict) -> str:
    lines = [
        "| method | temperature (held-out background) | Omniglot evaluation | "
        "accuracy | ECE raw softmax | ECE calibrated | NLL raw | NLL calibrated |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, entry in report["methods"].items():
        held = entry["held_out"]
        for key, r in entry["calibration"].items():
            lines.append(
                f"| {method} | {held['temperature']:.3g} (ECE "
                f"{100 * held['ece_before']:.2f}% -> {100 * held['ece_after']:.2f}%) | "
                f"{key} | {100 * r['accuracy']:.2f}% | {100 * r['ece_raw']:.2f}% | "
                f"{100 * r['ece_calibrated']:.2f}% | {r['nll_raw']:.3f} | "
                f"{r['nll_calibrated']:.3f} |"
            )
    lines += [
        "",
        "| method | open set (15 queries per class) | AUROC unknown vs known | "
        "known rejected | unknown rejected | accuracy of accepted known |",
        "|---|---|---|---|---|---|",
    ]
    for method, entry in report["methods"].items():
        for key, r in entry["open_set"].items():
            lines.append(
                f"| {method} | {key}, rejection_rate={r['rejection_rate']} | "
                f"{r['auroc']:.3f} ± {r['auroc_ci95']:.3f} | "
                f"{100 * r['known_rejected']:.1f}% | "
                f"{100 * r['unknown_rejected']:.1f}% | "
                f"{100 * r['accuracy_of_accepted_known']:.2f}% |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
