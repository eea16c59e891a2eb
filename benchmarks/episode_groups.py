"""Lake et al.'s one-shot runs through the library: ``EpisodicSplit`` with
``groups=np.c_[alphabet, drawer]`` against the benchmarks' own runs.

The Lake figures of issue 15 were scored on runs drawn by
``omniglot_methods.within_alphabet_runs`` (20 characters of one alphabet, the
support by one drawer, one query each by another). Since this check the library draws
the same runs: ``EpisodicSplit(n_way=20, k_shot=1, n_query=1)`` given groups
of two columns, the alphabet and the drawer, and so ``episodic_score`` and
``GridSearchCV``. This script scores one model both ways on the same rows,
400 runs each, and reports the two accuracies and their difference. The
draws differ (the benchmark visits the alphabets in turn, the library draws
them at random), so agreement within the 95% CIs is the expectation.

Rows: the 5 ``background`` alphabets held out by ``lake_runs.py`` (seed 0),
never ``evaluation``; model: ``lake_augment.py``'s select model
``w40q2-boxa-el16-20k`` (meta-trained on the other 25 alphabets, images
boxed with ``ink_box(aspect="adaptive")``), deployed inductively. Run seed
152 for both draws.

Usage::

    python benchmarks/episode_groups.py [--model PATH] [--runs 400]

Writes ``results/episode_groups.json`` and ``results/episode_groups.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lake_augment
import lake_runs
import numpy as np
from omniglot_methods import within_alphabet_runs

from skmeta import EpisodicSplit, FewShotClassifier, MetaModel, episodic_score

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DEFAULT_MODEL = lake_runs.MODELS / "lake_select_w40q2-boxa-el16-20k.safetensors"
RUN_SEED = 152


def score_runs(model, X, y, runs) -> np.ndarray:
    """Accuracy of each of the benchmark's runs (a list of index pairs)."""
    scores = []
    for support, query in runs:
        clf = FewShotClassifier(pretrained=model).fit(X[support], y[support])
        scores.append(clf.score(X[query], y[query]))
    return np.array(scores)


def summary(scores: np.ndarray, seconds: float) -> dict:
    ci = 1.96 * scores.std(ddof=1) / np.sqrt(len(scores))
    return {
        "accuracy": float(scores.mean()),
        "ci95": float(ci),
        "runs": len(scores),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--data-home", default=str(lake_runs.DATA))
    args = ap.parse_args()
    model = MetaModel.load(args.model)
    _, (X, y, alphabet, drawer) = lake_augment.data(
        "select", args.data_home, 0, ink="box-adaptive"
    )
    tic = time.perf_counter()
    runs = within_alphabet_runs(y, alphabet, drawer, args.runs, RUN_SEED)
    benchmark = summary(score_runs(model, X, y, runs), time.perf_counter() - tic)
    tic = time.perf_counter()
    cv = EpisodicSplit(n_way=20, k_shot=1, n_query=1, n_episodes=args.runs)
    cv.random_state = RUN_SEED
    library_scores = episodic_score(
        FewShotClassifier(pretrained=model), X, y, cv=cv, groups=np.c_[alphabet, drawer]
    ).scores
    library = summary(library_scores, time.perf_counter() - tic)
    difference = library["accuracy"] - benchmark["accuracy"]
    spread = np.hypot(library["ci95"], benchmark["ci95"])
    result = {
        "model": Path(args.model).name,
        "rows": "5 held-out background alphabets (lake_runs.py, seed 0)",
        "benchmark_runs": benchmark,
        "library_runs": library,
        "difference": difference,
        "difference_ci95": float(spread),
        "agree": bool(abs(difference) <= spread),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "episode_groups.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# Lake's one-shot runs: the library's EpisodicSplit against the benchmarks'",
        "",
        f"Model `{result['model']}`, {result['rows']}; 20-way 1-shot, one query",
        "per character, support and queries by two drawers; inductive.",
        "",
        "| runs drawn by | runs | accuracy | 95% CI | seconds |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in (
        ("`omniglot_methods.within_alphabet_runs`", benchmark),
        ("`EpisodicSplit(groups=np.c_[alphabet, drawer])`", library),
    ):
        lines.append(
            f"| {name} | {row['runs']} | {100 * row['accuracy']:.2f}% | "
            f"± {100 * row['ci95']:.2f} | {row['seconds']} |"
        )
    lines += [
        "",
        f"Difference {100 * difference:+.2f} points (95% CI of a difference of "
        f"independent means ± {100 * spread:.2f}): "
        f"{'they agree' if result['agree'] else 'they disagree'}.",
    ]
    (RESULTS / "episode_groups.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
