"""Fine-tuning on the augmented support set before an inductive deployment.

Probe for the forty-second try at Lake's within-alphabet one-shot target
(issue 15; see ``lake_augment.py``). A select model is copied for each run
and fine-tuned on the run's 20 support images alone, elastically distorted
(the drawer-to-drawer variation meta-training imitated): each step draws
``views`` distortions of every support image, makes prototypes of half of
them and classifies the other half by squared Euclidean distance, the
ProtoNet loss of meta-training on this one run's 20 characters. Then the
queries are labelled one at a time by the nearest support prototype, as the
inductive deployment does: the queries take no part in the adaptation.

    python benchmarks/lake_finetune.py probe --runs 50 --steps 10,30 \
        --lr 3e-5,1e-4,3e-4
    python benchmarks/lake_finetune.py probe --runs 100 --steps 30 \
        --lr 3e-5,3e-4 --shifts

``tta`` probes elastic distortions as test-time views instead (no
fine-tuning): each image's embedding averaged with those of ``--views``
distorted copies, for the support alone or for support and queries:

    python benchmarks/lake_finetune.py tta --runs 100 --views 16 [--shifts]

Prints one line per setting: the inductive accuracy without and with the
fine-tuning (or views) on the same runs, and the paired difference; run
seed 0 draws the select stage's own 100 held-out runs. The figures are in
``RESULTS.md`` (forty-second round).
"""

from __future__ import annotations

import argparse
import copy
import time

import lake_augment
import lake_runs
import numpy as np
import torch
import torch.nn.functional as F
from omniglot_methods import within_alphabet_runs

from skmeta import MetaModel
from skmeta.meta.elastic import ElasticAugmentation
from skmeta.meta.views import shift_offsets, viewed


def nearest(net, support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Index of the nearest support embedding for each query row."""
    with torch.no_grad():
        return torch.cdist(net(query), net(support)).argmin(1)


def finetuned(
    net,
    support: torch.Tensor,
    input_shape,
    steps: int,
    lr: float,
    views: int,
    elastic: ElasticAugmentation,
    generator_seed: int,
):
    """A copy of `net` fine-tuned on the distorted `support` images
    (one image per class, shape (n_way, C * H * W)) with the ProtoNet loss."""
    tuned = copy.deepcopy(net)
    tuned.requires_grad_(True)
    tuned.eval()  # batch norms keep their meta-training statistics
    optimiser = torch.optim.Adam(
        [p for p in tuned.parameters() if p.requires_grad], lr=lr
    )
    augment = elastic.build(tuple(input_shape))
    n_way = support.shape[0]
    images = support.reshape(n_way, *input_shape)
    torch.manual_seed(generator_seed)
    half = views // 2
    labels = torch.arange(n_way).repeat_interleave(views - half)
    for _ in range(steps):
        batch = augment(images.repeat_interleave(views, 0))
        emb = tuned(batch.reshape(n_way * views, -1)).reshape(n_way, views, -1)
        prototypes = emb[:, :half].mean(1)
        queries = emb[:, half:].reshape(-1, emb.shape[-1])
        logits = -torch.cdist(queries, prototypes).pow(2)
        loss = F.cross_entropy(logits, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    tuned.requires_grad_(False)
    return tuned


def report(label: str, accuracies, base) -> None:
    """Print the mean of per-run `accuracies` and its paired difference from
    `base` (same runs) with 1.96 standard errors, in points."""
    accuracies, base = np.asarray(accuracies), np.asarray(base)
    d = accuracies - base
    margin = 196 * d.std(ddof=1) / np.sqrt(d.size)
    print(
        f"{label}: {100 * accuracies.mean():.2f}% paired {100 * d.mean():+.2f} "
        f"(margin {margin:.2f})",
        flush=True,
    )


def tta(args, net, shape, offsets, runs, X, elastic) -> None:
    """Prototypes (and query embeddings) averaged over elastic distortions:
    ``--views`` distorted copies beside the image itself, for support only
    and for support and queries."""
    augment = elastic.build(tuple(shape))
    embed = viewed(net, shape, offsets)
    torch.manual_seed(0)

    def averaged(rows: torch.Tensor) -> torch.Tensor:
        images = rows.reshape(-1, *shape)
        copies = augment(images.repeat_interleave(args.views, 0))
        with torch.no_grad():
            e = embed(copies.reshape(len(copies), -1))
            e = e.reshape(len(rows), args.views, -1).sum(1) + embed(rows)
        return e / (args.views + 1)

    acc = {"base": [], "support": [], "both": []}
    for support, query in runs:
        s_t, q_t = torch.from_numpy(X[support]), torch.from_numpy(X[query])
        truth = torch.arange(len(support))
        with torch.no_grad():
            es, eq = embed(s_t), embed(q_t)
        es_avg, eq_avg = averaged(s_t), averaged(q_t)
        for key, (a, b) in {
            "base": (eq, es),
            "support": (eq, es_avg),
            "both": (eq_avg, es_avg),
        }.items():
            acc[key].append((torch.cdist(a, b).argmin(1) == truth).float().mean())
    for key, values in acc.items():
        report(f"{key} (views={args.views}, alpha={args.alpha:g})", values, acc["base"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["probe", "tta"])
    ap.add_argument("--name", default="w40q2-boxa-el16-s4-20k")
    ap.add_argument("--data-home", default=str(lake_runs.DATA))
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--run-seed", type=int, default=0)
    ap.add_argument("--steps", help="probe: comma-separated (default 20)")
    ap.add_argument("--lr", help="probe: comma-separated (default 1e-4)")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--shifts", action="store_true")
    args = ap.parse_args()
    if args.stage == "tta" and (args.steps or args.lr):
        ap.error("--steps and --lr are the probe's: tta fine-tunes nothing")
    torch.set_num_threads(1)
    _, (X, y, groups, drawer) = lake_augment.data(
        "select", args.data_home, 0, 28, "box-adaptive"
    )
    model = MetaModel.load(lake_runs.MODELS / f"lake_select_{args.name}.safetensors")
    net = model.network()
    shape = model.input_shape
    offsets = shift_offsets(lake_augment.SHIFTS) if args.shifts else None
    runs = within_alphabet_runs(y, groups, drawer, args.runs, args.run_seed)
    elastic = ElasticAugmentation(alpha=args.alpha, sigma=4.0)
    if args.stage == "tta":
        return tta(args, net, shape, offsets, runs, X, elastic)
    settings = [
        (int(s), float(lr))
        for s in (args.steps or "20").split(",")
        for lr in (args.lr or "1e-4").split(",")
    ]
    base, tuned_acc = [], {s: [] for s in settings}
    tic = time.process_time()
    for i, (support, query) in enumerate(runs):
        s_t, q_t = torch.from_numpy(X[support]), torch.from_numpy(X[query])
        truth = torch.arange(len(support))
        base.append(
            (nearest(viewed(net, shape, offsets), s_t, q_t) == truth).float().mean()
        )
        for steps, lr in settings:
            tuned = finetuned(net, s_t, shape, steps, lr, args.views, elastic, i)
            pred = nearest(viewed(tuned, shape, offsets), s_t, q_t)
            tuned_acc[(steps, lr)].append((pred == truth).float().mean())
    base = np.array(base)
    print(f"{len(runs)} runs, {time.process_time() - tic:.0f} CPU s")
    print(f"base {100 * base.mean():.2f}%")
    for (steps, lr), acc in tuned_acc.items():
        report(f"steps={steps} lr={lr:g}", acc, base)


if __name__ == "__main__":
    main()
