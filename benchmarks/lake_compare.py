"""A trained pair comparator that re-ranks the nearest prototypes.

Probe for the forty-second try at Lake's within-alphabet one-shot target
(issue 15; see ``lake_augment.py``). The errors left are near misses: the
right character is the second nearest for 75% of them and in the nearest
three for 89% (``lake_local.py``). Comparing two images location by location
with the untrained feature maps lost (the thirty-sixth try). Here a small
network is *trained* to compare: Koch et al.'s (2015) Siamese network and
Shyam et al.'s (2017) attentive comparators look at both images of a pair,
where a prototype network embeds each alone.

The select model stays frozen. For a query ``q`` and a support image ``s``
the comparator reads both feature maps after a block of the Conv4 (64 x 7 x
7 after block 2), stacked with their product and absolute difference, through
a 1x1 and a 3x3 convolution and a pooled linear output; its score is added to
the prototype network's logit, ``-|e(q) - e(s)|^2 / t + g(q, s)`` (``t`` and
``g`` learnt, ``g`` starting at zero: the comparator starts as the
inductive deployment). It trains on Lake-style runs drawn from the select
stage's own 25 training alphabets (20 characters of one alphabet, support
and queries by two drawers), each query against the ``top_k`` nearest
support images by the embedding with its own character among them, and the
cross-entropy over those. At deployment each query is scored alone against
the run's support (inductive): the ``top_k`` nearest re-ranked by the
comparator.

    python benchmarks/lake_compare.py probe --name w40q2-boxa-el16-s4-20k

Prints the held-out runs' accuracy without and with the comparator, paired.
"""

from __future__ import annotations

import argparse
import time

import lake_augment
import lake_runs
import numpy as np
import torch
import torch.nn.functional as F
from lake_fit import training_drawers
from lake_local import BLOCKS
from omniglot_methods import within_alphabet_runs
from torch import nn

from skmeta import MetaModel


class Comparator(nn.Module):
    """Score of a pair of feature maps, each of shape (C, H, W)."""

    def __init__(self, channels: int = 64, hidden: int = 64) -> None:
        super().__init__()
        self.mix = nn.Sequential(
            nn.Conv2d(4 * channels, hidden, 1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )
        self.out = nn.Linear(2 * hidden, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.log_t = nn.Parameter(torch.zeros(()))

    def forward(self, q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.mix(torch.cat([q, s, q * s, (q - s).abs()], 1))
        pooled = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)
        return self.out(pooled).squeeze(1)


@torch.no_grad()
def features(model, X: np.ndarray, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings (n, d) and feature maps after `block` (n, 64, h, w)."""
    net = model.network("cpu").eval()
    layers = net.backbone.features[: BLOCKS[block]]
    emb, maps = [], []
    for start in range(0, len(X), 512):
        rows = torch.as_tensor(X[start : start + 512])
        emb.append(net(rows))
        x = net.standardize(rows)
        maps.append(layers(x.view(-1, *model.input_shape)).contiguous())
    return torch.cat(emb), torch.cat(maps)


def candidates(E: torch.Tensor, support, query, top_k: int, truth: bool):
    """For each query the `top_k` nearest support positions by the embedding
    (with its own among them when `truth`) and the squared distances."""
    d = torch.cdist(E[query], E[support]).pow(2)  # (n_query, n_way)
    order = d.argsort(1)[:, :top_k]
    if truth:
        own = torch.arange(len(query))
        missing = ~(order == own[:, None]).any(1)
        order[missing, -1] = own[missing]
    return order, d


def logits(comp, E, M, support, query, order, d):
    """Combined logits of each query's candidates, shape (n_query, top_k)."""
    n_query, top_k = order.shape
    q_maps = M[query].repeat_interleave(top_k, 0)
    s_maps = M[support][order.reshape(-1)]
    g = comp(q_maps, s_maps).view(n_query, top_k)
    return -d.gather(1, order) * torch.exp(-comp.log_t) + g


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["probe"])
    ap.add_argument("--name", default="w40q2-boxa-el16-s4-20k")
    ap.add_argument("--data-home", default=str(lake_runs.DATA))
    ap.add_argument("--block", type=int, default=2, choices=[2, 3])
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--episodes", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--run-seed", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    (Xt, yt, gt), (Xh, yh, gh, dh) = lake_augment.data(
        "select", args.data_home, 0, 28, "box-adaptive"
    )
    dt = training_drawers(args.data_home, gh, yt)
    model = MetaModel.load(lake_runs.MODELS / f"lake_select_{args.name}.safetensors")
    tic = time.process_time()
    Et, Mt = features(model, Xt, args.block)
    Eh, Mh = features(model, Xh, args.block)
    print(f"features: {time.process_time() - tic:.0f} CPU s", flush=True)

    comp = Comparator(Mt.shape[1])
    optimiser = torch.optim.Adam(comp.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.episodes)
    # Lake-style runs on the training alphabets (every alphabet in turn)
    runs = within_alphabet_runs(yt, gt, dt, args.episodes, 10_000 + args.seed)
    tic = time.process_time()
    comp.train()
    running = []
    for i, (support, query) in enumerate(runs):
        order, d = candidates(Et, support, query, args.top_k, truth=True)
        out = logits(comp, Et, Mt, support, query, order, d)
        target = (order == torch.arange(len(query))[:, None]).float().argmax(1)
        loss = F.cross_entropy(out, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running.append((out.argmax(1) == target).float().mean().item())
        if (i + 1) % 250 == 0:
            print(
                f"episode {i + 1}: train run accuracy {100 * np.mean(running):.2f}% "
                f"({time.process_time() - tic:.0f} CPU s)",
                flush=True,
            )
            running = []
    comp.eval()
    base, ranked = [], []
    with torch.no_grad():
        for support, query in within_alphabet_runs(
            yh, gh, dh, args.runs, args.run_seed
        ):
            order, d = candidates(Eh, support, query, args.top_k, truth=False)
            truth = torch.arange(len(query))
            base.append((d.argmin(1) == truth).float().mean().item())
            out = logits(comp, Eh, Mh, support, query, order, d)
            pick = order.gather(1, out.argmax(1, keepdim=True)).squeeze(1)
            ranked.append((pick == truth).float().mean().item())
    base, ranked = np.array(base), np.array(ranked)
    diff = ranked - base
    print(
        f"held-out runs ({len(base)}): base {100 * base.mean():.2f}%, "
        f"comparator {100 * ranked.mean():.2f}%, paired {100 * diff.mean():+.2f} "
        f"(margin {196 * diff.std(ddof=1) / np.sqrt(diff.size):.2f}); "
        f"t={comp.log_t.exp().item():.3g}",
        flush=True,
    )


if __name__ == "__main__":
    main()
