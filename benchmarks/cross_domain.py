"""Cross-domain transfer (issue 13): meta-train on glyphs, test on Omniglot.

Backbones are trained only on ``make_glyphs`` (1,000 character classes rendered
from matplotlib's fonts, no download) and applied to Omniglot's ``evaluation``
alphabets (hand-drawn characters never seen): episodes of 5-way 1-shot, 5-way
5-shot and 20-way 1-shot, 15 queries, mean accuracy and 95% CI.

Rows:

- raw pixels, 1-nearest neighbour (no training);
- ``pretrain``: supervised training on all glyph classes, then prototypes;
- ``protonet``: Prototypical Networks meta-trained on glyph episodes;
- ``pretrain -> protonet``: the pretrained backbone meta-trained further with
  ProtoNet (the pretrain, meta-train, fine-tune pipeline of Hu et al. 2022);
  the same total number of iterations split in two;
- in-domain reference: ProtoNet meta-trained on Omniglot ``background``
  (``results/omniglot_final.json``, not rerun here).

    python benchmarks/cross_domain.py       # writes results/cross_domain.{json,md}
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier

from skmeta import FewShotClassifier, MetaFeatureExtractor, episodic_score
from skmeta.datasets import load_omniglot, make_glyphs

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
TASKS = {"5w1s": (5, 1), "5w5s": (5, 5), "20w1s": (20, 1)}
COMMON = dict(
    input_shape=(1, 28, 28),
    backbone="conv4_strided",
    n_way=20,
    k_shot=5,
    n_query=15,
    class_augmentation="rot90",
    random_state=0,
)


def fit(method, X, y, max_iter, backbone=None):
    params = dict(COMMON, method=method, max_iter=max_iter)
    if backbone is not None:
        params["backbone"] = backbone
    tic = time.perf_counter()
    extractor = MetaFeatureExtractor(**params).fit(X, y)
    return extractor.meta_model_, time.perf_counter() - tic


def evaluate(estimator, X, y, n_episodes):
    scores = {}
    for name, (n_way, k_shot) in TASKS.items():
        result = episodic_score(
            estimator,
            X,
            y,
            n_way=n_way,
            k_shot=k_shot,
            n_query=15,
            n_episodes=n_episodes,
            random_state=0,
        )
        scores[name] = {"mean": result.mean, "ci95": result.ci95}
        print(f"    {name}: {100 * result.mean:.2f} ± {100 * result.ci95:.2f}%")
    return scores


def pretrained_backbone_factory(model):
    """A factory returning a trainable copy of `model`'s backbone."""
    template = model.network("cpu").backbone

    def factory():
        module = copy.deepcopy(template)
        module.requires_grad_(True)
        return module

    return factory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=4000)
    parser.add_argument("--n-episodes", type=int, default=600)
    parser.add_argument("--data-home", default=str(DATA))
    args = parser.parse_args()
    X, y = make_glyphs(n_classes=1000, random_state=0)
    evaluation = load_omniglot("evaluation", data_home=args.data_home)
    Xe, ye = evaluation.data, evaluation.target
    rows = []

    print("raw pixels, 1-NN")
    rows.append(
        {
            "row": "raw pixels (1-nearest neighbour)",
            "train_seconds": 0.0,
            "scores": evaluate(KNeighborsClassifier(1), Xe, ye, args.n_episodes),
        }
    )
    models = {}
    for method in ("pretrain", "protonet"):
        print(f"{method} on glyphs, {args.iters} iterations")
        model, seconds = fit(method, X, y, args.iters)
        models[method] = model
        rows.append(
            {
                "row": f"{method} on glyphs ({args.iters} it)",
                "train_seconds": seconds,
                "scores": evaluate(
                    FewShotClassifier(pretrained=model), Xe, ye, args.n_episodes
                ),
            }
        )
    half = args.iters // 2
    print(f"pretrain ({half} it) -> protonet ({half} it) on glyphs")
    pre, pre_seconds = fit("pretrain", X, y, half)
    torch.manual_seed(0)
    model, seconds = fit("protonet", X, y, half, pretrained_backbone_factory(pre))
    rows.append(
        {
            "row": f"pretrain ({half} it) -> protonet ({half} it) on glyphs",
            "train_seconds": pre_seconds + seconds,
            "scores": evaluate(
                FewShotClassifier(pretrained=model), Xe, ye, args.n_episodes
            ),
        }
    )
    final = RESULTS / "omniglot_final.json"
    reference = None
    if final.exists():
        run = json.loads(final.read_text())["runs"].get("protonet")
        if run:
            reference = {
                "row": f"in-domain: protonet on Omniglot background "
                f"({run['max_iter']} it; omniglot_final.json)",
                "train_seconds": run["train_seconds"],
                "scores": {k: run["scores"][k] for k in TASKS},
            }
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "settings": {k: str(v) for k, v in COMMON.items()},
        "n_episodes": args.n_episodes,
        "rows": rows,
        "reference": reference,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cross_domain.json").write_text(json.dumps(report, indent=1))
    lines = [
        "# Cross-domain: meta-trained on glyphs, tested on Omniglot evaluation",
        "",
        f"Conv4 (strided), 20-way 5-shot 15-query training episodes with rot90; "
        f"{args.n_episodes} test episodes per task, 15 queries; "
        f"`benchmarks/cross_domain.py`, {report['date']}.",
        "",
        "| backbone trained on | training | 5-way 1-shot | 5-way 5-shot | "
        "20-way 1-shot |",
        "|---|---|---|---|---|",
    ]
    for row in rows + ([reference] if reference else []):
        scores = [row["scores"][t] for t in TASKS]
        cells = " | ".join(
            f"{100 * s['mean']:.2f} ± {100 * s['ci95']:.2f}%" for s in scores
        )
        lines.append(
            f"| {row['row']} | {row['train_seconds'] / 60:.1f} min | {cells} |"
        )
    (RESULTS / "cross_domain.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
