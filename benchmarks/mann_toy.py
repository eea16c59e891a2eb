"""MANN on toy episodes: does it learn to bind rows to labels? (issue 15)

MANN stayed at chance on Omniglot after every short budget, even on frozen
ProtoNet embeddings (``mann.py``). This script removes the backbone: each
episode's classes are unit vectors of 64 features, each row its class's
vector plus Gaussian noise (norm 0.3), 5-way 5-shot 5-query, 16 episodes a
meta-batch, Adam at 3e-3, the paper's memory sizes. Two kinds of class
vectors:

- ``gaussian``: normalised Gaussian vectors, nearly orthogonal (cosines
  about 0);
- ``relu-like``: normalised ``|z| + 0.5``, positive and alike (cosines about
  0.85), as the embeddings of a ReLU network are.

Each run reports the query accuracy over the last 100 iterations and the
first iteration at which the mean of 100 passed 50%. Run it at a commit
before the controller's input normalisation (``c7370cb``), after its layer
norm (``8315a61``), after its input layer (``52c0e8c``), with a layer
norm before that layer too (``8cd9ba8``) and with episode centring
(``62f7680``) to see what each changed; the
results file keeps one row per kind and ``--label``.

    python benchmarks/mann_toy.py --label "layer-normalised input"

Writes ``results/mann_toy.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skmeta.meta.algorithms import TaskBatch, make_algorithm
from skmeta.meta.net import MetaNet

RESULTS = Path(__file__).resolve().parent / "results"
N_WAY, K_SHOT, N_QUERY, DIM, N_TASKS, NOISE = 5, 5, 5, 64, 16, 0.3


def class_vectors(kind: str, generator: torch.Generator) -> torch.Tensor:
    """Unit class vectors, shape (N_TASKS, N_WAY, DIM)."""
    z = torch.randn(N_TASKS, N_WAY, DIM, generator=generator)
    return F.normalize(z if kind == "gaussian" else z.abs() + 0.5, dim=-1)


def rows(centres: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """`n` noisy rows of each class, shape (N_TASKS, N_WAY * n, DIM)."""
    noise = torch.randn(N_TASKS, N_WAY * n, DIM, generator=generator)
    return centres.repeat_interleave(n, 1) + NOISE / DIM**0.5 * noise


def run(kind: str, iterations: int, seed: int) -> dict:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    algorithm = make_algorithm("mann")
    net = MetaNet(nn.Identity(), (DIM,), per_feature_scaling=False)
    for name, value in algorithm.meta_parameters(net, DIM, N_WAY).items():
        net.extra[name] = nn.Parameter(value.clone())
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    accuracies, tic = [], time.process_time()
    for _ in range(iterations):
        centres = class_vectors(kind, generator)
        batch = TaskBatch(
            rows(centres, K_SHOT, generator),
            torch.arange(N_WAY).repeat_interleave(K_SHOT),
            rows(centres, N_QUERY, generator),
            torch.arange(N_WAY).repeat_interleave(N_QUERY),
            N_WAY,
        )
        loss, metrics = algorithm.loss(net, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        accuracies.append(metrics["accuracy"])
    means = np.convolve(accuracies, np.ones(100) / 100, mode="valid")
    passed = np.flatnonzero(means > 0.5)
    return {
        "iterations": iterations,
        "last_100_accuracy": float(np.mean(accuracies[-100:])),
        "first_iteration_above_50": int(passed[0] + 100) if passed.size else None,
        "cpu_seconds": time.process_time() - tic,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True, help="what the code under test is")
    ap.add_argument("--iterations", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    path = RESULTS / "mann_toy.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    for kind in ("gaussian", "relu-like"):
        result = run(kind, args.iterations, args.seed)
        report[f"{args.label} / {kind}"] = {"label": args.label, "kind": kind, **result}
        print(kind, result, flush=True)
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        "MANN on toy 5-way 5-shot episodes of 64-feature class vectors "
        "(`benchmarks/mann_toy.py`), 16 episodes a meta-batch, Adam 3e-3; "
        "chance 20%.",
        "",
        "| code | class vectors | iterations | query accuracy, last 100 "
        "| first iteration above 50% | CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.values():
        lines.append(
            f"| {r['label']} | {r['kind']} | {r['iterations']} | "
            f"{100 * r['last_100_accuracy']:.1f}% | "
            f"{r['first_iteration_above_50'] or 'never'} | {r['cpu_seconds']:.0f} |"
        )
    (RESULTS / "mann_toy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
