"""Does a reconstruction loss beside ProtoNet's help within one alphabet?

Probe for the forty-second try at Lake's within-alphabet one-shot target
(issue 15; see ``lake_augment.py``). The errors left are near misses that
differ by a short stroke or a dot: ProtoNet's loss on random 40-way episodes
seldom needs such details, and the embedding underfits the characters of
its own training alphabets (``lake_fit.py``). A decoder that must redraw the
character from the embedding's 4x4 map (at 14x14 pixels) keeps every stroke
in it: ``--target own`` redraws the undistorted image the query was
distorted from (a denoising auto-encoder), ``--target other`` the support
image of the same class, another drawer's drawing (as Hewitt et al.'s 2018
variational homoencoder, 95.2% on these runs, encodes one element of a class
and decodes another).

Both arms run the same loop here (not the library's): the ``lake_augment.py``
select recipe's episodes (40-way, 1 support and 2 queries per class, rot90
classes, elastic distortions ``alpha=16, sigma=4``, box-adaptive ink, the
strided Conv4 ending in a 4x4 map, Adam at 4e-3 with a cosine schedule),
with ``--recon 0`` for plain ProtoNet. Scored on 100 Lake runs of the 5
held-out alphabets (run seed 0, inductive, no test-time shifts).

``--margin m`` probes a large-margin prototypical loss in the same loop
instead: ``m`` added to each query's squared distance to its own prototype
in training, so that an episode is won only by a margin.

    python benchmarks/lake_recon.py --iterations 6000 --recon 0
    python benchmarks/lake_recon.py --iterations 6000 --recon 1 --target own
    python benchmarks/lake_recon.py --iterations 6000 --margin 2

Prints the held-out accuracy and saves the per-run accuracies to
``/tmp/lake_recon_<recon>_<target>_<margin>_<iterations>.npy`` for paired
comparisons; the figures are in ``RESULTS.md`` (forty-second round).
"""

from __future__ import annotations

import argparse
import time

import lake_augment
import lake_runs
import numpy as np
import torch
import torch.nn.functional as F
from omniglot_methods import within_alphabet_runs
from torch import nn

from skmeta.meta.backbones import Conv4
from skmeta.meta.elastic import ElasticAugmentation


class Decoder(nn.Module):
    """The 64 x 4 x 4 map back to a 14 x 14 image (logits)."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.up1 = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU()
        )
        self.up2 = nn.Conv2d(32, 1, 3, padding=1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        h = self.up1(F.interpolate(maps, size=(7, 7), mode="nearest"))
        return self.up2(F.interpolate(h, size=(14, 14), mode="nearest"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=5000)
    ap.add_argument("--recon", type=float, default=0.0)
    ap.add_argument(
        "--target", choices=["own", "other"], help="with --recon: own (default)"
    )
    ap.add_argument(
        "--margin",
        type=float,
        default=0.0,
        help="added to each query's squared distance to its own prototype",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--data-home", default=str(lake_runs.DATA))
    args = ap.parse_args()
    if args.target is not None and not args.recon:
        ap.error("--target is the reconstruction loss's: give --recon too")
    args.target = args.target or "own"
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    (Xt, yt, _), (Xh, yh, gh, dh) = lake_augment.data(
        "select", args.data_home, 0, 28, "box-adaptive"
    )
    images = torch.from_numpy(Xt).view(-1, 1, 28, 28)
    mean, std = float(Xt.mean()), float(Xt.std())
    rows_of = [np.flatnonzero(yt == c) for c in np.unique(yt)]
    n_classes = 4 * len(rows_of)  # rot90: each character's quarter turns

    net = Conv4(1, 64, downsample=("strided", "strided", "strided", "none"))
    decoder = Decoder()
    params = list(net.parameters()) + (
        list(decoder.parameters()) if args.recon > 0 else []
    )
    optimiser = torch.optim.Adam(params, lr=4e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.iterations)
    augment = ElasticAugmentation(alpha=16, sigma=4).build((1, 28, 28))
    n_way, n_query = 40, 2
    tic = time.process_time()
    net.train()
    decoder.train()
    for it in range(args.iterations):
        classes = rng.choice(n_classes, n_way, replace=False)
        picks, turns = [], []
        for c in classes:
            rows = rows_of[c // 4]
            picks.append(rng.choice(rows, 1 + n_query, replace=False))
            turns.append(c % 4)
        picks = np.stack(picks)  # (n_way, 1 + n_query)
        clean = images[torch.from_numpy(picks.reshape(-1))]
        turn = torch.tensor(turns).repeat_interleave(1 + n_query)
        for k in (1, 2, 3):
            sel = turn == k
            clean[sel] = torch.rot90(clean[sel], k, (2, 3))
        x = augment(clean)
        maps = net.features(((x - mean) / std).to(memory_format=torch.channels_last))
        emb = maps.flatten(1).view(n_way, 1 + n_query, -1)
        prototypes = emb[:, 0]
        queries = emb[:, 1:].reshape(n_way * n_query, -1)
        logits = -torch.cdist(queries, prototypes).pow(2)
        labels = torch.arange(n_way).repeat_interleave(n_query)
        if args.margin:
            logits = logits - args.margin * F.one_hot(labels, n_way)
        loss = F.cross_entropy(logits, labels)
        if args.recon > 0:
            clean14 = F.interpolate(clean, size=(14, 14), mode="area")
            clean14 = clean14.view(n_way, 1 + n_query, 1, 14, 14)
            if args.target == "own":
                target = clean14.reshape(-1, 1, 14, 14)
            else:  # each row redraws another row of its class
                target = clean14.roll(1, dims=1).reshape(-1, 1, 14, 14)
            out = decoder(maps.contiguous())
            loss = loss + args.recon * F.binary_cross_entropy_with_logits(out, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if (it + 1) % 1000 == 0:
            print(
                f"iteration {it + 1}: loss {loss.item():.3f} "
                f"({time.process_time() - tic:.0f} CPU s)",
                flush=True,
            )
    net.eval()
    with torch.no_grad():
        held = (torch.from_numpy(Xh).view(-1, 1, 28, 28) - mean) / std
        E = torch.cat([net(held[s : s + 512]) for s in range(0, len(held), 512)])
    acc = []
    for support, query in within_alphabet_runs(yh, gh, dh, args.runs, 0):
        pred = torch.cdist(E[query], E[support]).argmin(1)
        acc.append((pred == torch.arange(len(query))).float().mean().item())
    acc = np.array(acc)
    tag = f"{args.recon}_{args.target}_{args.margin}_{args.iterations}"
    np.save(f"/tmp/lake_recon_{tag}.npy", acc)  # per run, for paired comparisons
    print(
        f"recon={args.recon} target={args.target} margin={args.margin}: held-out runs "
        f"{100 * acc.mean():.2f} ± {196 * acc.std(ddof=1) / np.sqrt(acc.size):.2f}% "
        f"({time.process_time() - tic:.0f} CPU s)",
        flush=True,
    )


if __name__ == "__main__":
    main()
