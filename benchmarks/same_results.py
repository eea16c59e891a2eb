"""Same seed, same data: does a change of the core change what meta-training
computes? Writes a fingerprint (per-tensor sums of the weights, and the loss
history) of short meta-training runs of every method to a JSON file.

    git worktree add /tmp/old <ref>
    PYTHONPATH=/tmp/old python benchmarks/same_results.py /tmp/old.json
    PYTHONPATH=. python benchmarks/same_results.py /tmp/new.json
    python benchmarks/same_results.py --compare /tmp/old.json /tmp/new.json

Identical fingerprints mean the accuracy benchmarks (Omniglot, sinusoid) need
no rerun: they would compute the same numbers.
"""

import json
import sys

import numpy as np
from sklearn.datasets import make_blobs

from skmeta.meta.train import TrainSettings, meta_train

if sys.argv[1] == "--compare":
    old, new = (json.load(open(path)) for path in sys.argv[2:4])
    for method in old:
        diffs = [
            abs(a - b) / (abs(a) + 1e-9)
            for key in old[method]
            for a, b in zip(
                np.ravel(old[method][key]), np.ravel(new[method][key]), strict=True
            )
        ]
        print(f"{method}: max relative difference {max(diffs):.2e}")
    sys.exit(0)
out = {}
X, y = make_blobs(360, n_features=10, centers=24, cluster_std=1.5, random_state=0)
X = X.astype(np.float32)
rng = np.random.default_rng(0)
patterns = rng.random((12, 144)) > 0.7
yi = np.repeat(np.arange(12), 6)
Xi = (patterns[yi] + 0.3 * rng.standard_normal((72, 144))).astype(np.float32)
cases = [
    ("protonet", {}, "mlp", None),
    ("maml", {"inner_lr": 0.1, "inner_steps": 2}, "conv4_strided", "img"),
    ("fomaml", {"inner_lr": 0.1, "inner_steps": 2}, "conv4_strided", "img"),
    ("metasgd", {"inner_lr": 0.1, "inner_steps": 2}, "mlp", None),
    ("anil", {"inner_lr": 0.1, "inner_steps": 2}, "conv4_strided", "img"),
    (
        "protomaml",
        {"inner_lr": 0.1, "inner_steps": 2, "first_order": True},
        "conv4_strided",
        "img",
    ),
    ("reptile", {"inner_lr": 0.1, "inner_steps": 2}, "mlp", None),
    ("metasgd_reg", {"inner_lr": 0.01, "regression": True}, "mlp", "reg"),
]
for name, params, backbone, data in cases:
    method = name.split("_")[0]
    if data == "img":
        Xd, yd, shape, targets = Xi, yi, (1, 12, 12), None
        kw = dict(n_way=3, k_shot=1, n_query=2, backbone_params={"hidden_channels": 8})
    elif data == "reg":
        Xd = np.linspace(-5, 5, 400, dtype=np.float32)[:, None]
        yd = np.repeat(np.arange(20), 20)
        targets = np.sin(Xd[:, 0] + yd * 0.3).astype(np.float32)
        shape, kw = (1,), dict(n_way=1, k_shot=5, n_query=5)
    else:
        Xd, yd, shape, targets = X, y, (10,), None
        kw = dict(n_way=5, k_shot=2, n_query=5)
    settings = TrainSettings(
        input_shape=shape,
        method=method,
        method_params=params,
        backbone=backbone,
        max_iter=20,
        meta_batch_size=4,
        seed=0,
        early_stopping=data is None,
        n_iter_no_change=100,
        **kw,
    )
    model = meta_train(Xd, yd, settings, targets=targets)
    out[name] = {k: v.double().sum().item() for k, v in model.state.items()}
    out[name]["__history"] = [r.get("val_loss", r["loss"]) for r in model.history]
json.dump(out, open(sys.argv[1], "w"))
