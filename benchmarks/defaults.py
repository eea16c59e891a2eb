"""Defaults that work (issue 14, part 5): estimators with every setting left
at its default, against the tuned recipes of the other benchmarks.

- Images: ``MetaFeatureExtractor(input_shape=(1, 28, 28))`` meta-trained on
  Omniglot ``background`` with its defaults (ProtoNet, the max-pool Conv4,
  episodes sized to the data: 20-way 1-shot 15-query, 1,000 iterations), scored
  on ``evaluation`` (600 episodes per task, 15 queries per class) against
  ``results/omniglot_final.json``'s recipe (strided Conv4, 20-way 1-shot with
  rotations, 27,925 iterations).
- Regression: ``FewShotRegressor()`` meta-trained on 1,000 sine waves of 20
  points (``make_sinusoid_tasks``) with its defaults (MAML, 10 shots + 10
  queries, 25 tasks per meta-update, 1,000 iterations), scored as
  ``benchmarks/sinusoid.py`` scores
  (1,000 new waves, MSE on 100 grid points) at 5 and 10 shots, against
  ``results/sinusoid.json``'s recipe; and with ``meta_batch_size=1``, the
  default before (one task per meta-update).

Meta-training time is part of the result: the docs quote it.

    python benchmarks/defaults.py [--parts regression,images]
                                         # writes results/defaults.{json,md}
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from skmeta import (
    FewShotClassifier,
    FewShotRegressor,
    MetaFeatureExtractor,
    episodic_score,
)
from skmeta.datasets import load_omniglot, make_sinusoid_tasks

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
sys.path.insert(0, str(HERE))
from sinusoid import evaluate as sine_errors  # noqa: E402


def images(report: dict) -> None:
    background = load_omniglot("background", data_home=DATA)
    evaluation = load_omniglot("evaluation", data_home=DATA)
    tic = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        extractor = MetaFeatureExtractor(input_shape=(1, 28, 28), random_state=0)
        extractor.fit(background.data, background.target)
    seconds = time.perf_counter() - tic
    recipe = json.loads((RESULTS / "omniglot_final.json").read_text())
    recipe = recipe["runs"]["protonet"]["scores"]
    training = extractor.meta_model_.config["training"]
    entry = {
        "meta_training_seconds": seconds,
        "episodes": f"{training['n_way']}-way {training['k_shot']}-shot "
        f"{training['n_query']}-query, "
        f"backbone {extractor.meta_model_.config['backbone']}",
        "warnings": [str(w.message)[:160] for w in caught],
        "scores": {},
    }
    for key, (n_way, k_shot) in {
        "5w1s": (5, 1),
        "5w5s": (5, 5),
        "20w1s": (20, 1),
    }.items():
        result = episodic_score(
            FewShotClassifier(pretrained=extractor.meta_model_),
            evaluation.data,
            evaluation.target,
            n_way=n_way,
            k_shot=k_shot,
            n_query=15,
            n_episodes=600,
            random_state=0,
        )
        entry["scores"][key] = {
            "default": result.mean,
            "default_ci95": result.ci95,
            "recipe": recipe[key]["mean"],
        }
        print("images", key, entry["scores"][key], flush=True)
    report["images"] = entry


def regression(report: dict, key: str = "regression", **params) -> None:
    X, y, groups = make_sinusoid_tasks(1000, 20, random_state=0)
    tic = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta = FewShotRegressor(random_state=0, **params).fit(X, y, groups=groups)
    seconds = time.perf_counter() - tic
    recipe = json.loads((RESULTS / "sinusoid.json").read_text())
    entry = {
        "meta_training_seconds": seconds,
        "params": params,
        "warnings": [str(w.message)[:160] for w in caught],
        "scores": {},
    }
    for k_shot in (5, 10):
        errors = sine_errors(meta.meta_model_, k_shot, 1000, 1, None)
        best = recipe.get(str(k_shot), recipe.get(k_shot, {}))
        entry["scores"][f"{k_shot} shots"] = {
            "default": float(np.nanmean(errors)),
            "default_ci95": float(1.96 * np.nanstd(errors) / np.sqrt(errors.size)),
            "diverged": int(np.isnan(errors).sum()),
            "recipe": best.get("mse") if isinstance(best, dict) else None,
        }
        print(key, k_shot, entry["scores"][f"{k_shot} shots"], flush=True)
    report[key] = entry


def table(report: dict) -> str:
    lines = [
        "| task | defaults | recipe | meta-training with defaults |",
        "|---|---|---|---|",
    ]
    if "images" in report:
        e = report["images"]
        for key, s in e["scores"].items():
            lines.append(
                f"| Omniglot {key} | {100 * s['default']:.2f} ± "
                f"{100 * s['default_ci95']:.2f}% | {100 * s['recipe']:.2f}% | "
                f"{e['meta_training_seconds'] / 60:.1f} min ({e['episodes']}) |"
            )
    for part in ("regression", "regression_meta_batch_1"):
        if part not in report:
            continue
        e = report[part]
        given = ", ".join(f"{k}={v}" for k, v in e.get("params", {}).items())
        for key, s in e["scores"].items():
            recipe = "" if s["recipe"] is None else f"{s['recipe']:.3f}"
            lines.append(
                f"| sine waves, {key} (MSE){', ' + given if given else ''} | "
                f"{s['default']:.3f} ± {s['default_ci95']:.3f} | {recipe} | "
                f"{e['meta_training_seconds'] / 60:.1f} min |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="regression,images")
    parts = ap.parse_args().parts.split(",")
    path = RESULTS / "defaults.json"
    report: dict = json.loads(path.read_text()) if path.exists() else {}
    if "regression" in parts:
        regression(report)
        # the default before it was 25 tasks: one task per meta-update
        report.pop("regression_meta_batch_25", None)
        regression(report, "regression_meta_batch_1", meta_batch_size=1)
    if "images" in parts:
        images(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "defaults.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "defaults.md").write_text(table(report))
    print(table(report))


if __name__ == "__main__":
    main()
