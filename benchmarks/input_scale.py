"""How far new classes' rows move from the meta-training rows' statistics,
against rows scaled by 1e3 or 1e-3 or shifted by 1e6: what sets
``skmeta._input_scale.SCALE_FACTOR``.

For each data set, the mean and standard deviation of the meta-training
classes' rows (per column for tables, over all pixels for images, as the
network standardises them), then for 300 support sets of new classes (5-way,
1 and 5 shots) and single rows: the median over columns of each column's
spread (standard deviation over the rows, in meta-training deviations) and
shift (distance of its mean from the meta-training mean, same units). No
training: the statistics are the data's. Writes a markdown table.

    python benchmarks/input_scale.py [--out benchmarks/results/input_scale.md]
"""

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine

OMNIGLOT = next(
    (
        p
        for p in (
            Path(__file__).resolve().parents[1] / "../shared/data/omniglot",
            Path("/work/shared/data/omniglot"),
        )
        if p.exists()
    ),
    Path("omniglot"),
)
rng = np.random.default_rng(0)


def medians(S, mean, std, images):
    z = (np.asarray(S, np.float64) - mean) / std
    z = z.reshape(-1, 1) if images else z
    spread = z.std(0) if len(S) > 1 else np.zeros(z.shape[1])
    varying = spread[spread > 0]
    return (np.median(varying) if varying.size else np.nan), np.median(
        np.abs(z.mean(0))
    )


def supports(X, y, novel, k, n=300):
    for _ in range(n):
        ways = rng.choice(novel, size=min(5, len(novel)), replace=False)
        yield np.concatenate(
            [rng.choice(np.flatnonzero(y == c), k, replace=False) for c in ways]
        )


def case(name, Xm, X, y, novel, images, shots=(1, 5)):
    Xm = Xm.astype(np.float64)
    mean, std = (
        (Xm.mean(), Xm.std(ddof=1)) if images else (Xm.mean(0), Xm.std(0, ddof=1))
    )
    if not images:
        keep = std > 1e-8
        mean, std, X = mean[keep], std[keep], X[:, keep]
    rows = []
    for k in shots:
        got = np.array(
            [medians(X[i], mean, std, images) for i in supports(X, y, novel, k)]
        )
        rows.append((f"{k}-shot", got))
    singles = rng.choice(np.flatnonzero(np.isin(y, novel)), 300)
    rows.append(
        ("1 row", np.array([medians(X[i : i + 1], mean, std, images) for i in singles]))
    )
    S = X[next(supports(X, y, novel, max(shots)))].astype(np.float64)
    for label, f, shift in (("x1e3", 1e3, 0), ("x1e-3", 1e-3, 0), ("+1e6", 1, 1e6)):
        rows.append(
            (
                f"{max(shots)}-shot {label}",
                np.array([medians(S * f + shift, mean, std, images)]),
            )
        )
    return [
        (name, what, np.nanmin(g[:, 0]), np.nanmax(g[:, 0]), np.nanmax(g[:, 1]))
        for what, g in rows
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="benchmarks/results/input_scale.md")
    out = Path(parser.parse_args().out)
    table = []
    for loader in (load_digits, load_wine, load_breast_cancer, load_iris):
        X, y = loader(return_X_y=True)
        classes = np.unique(y)
        half = max(1, len(classes) // 2)
        for meta, novel in (
            (classes[:half], classes[half:]),
            (classes[half:], classes[:half]),
        ):
            name = f"{loader.__name__[5:]}, meta-trained on {list(map(int, meta))}"
            table += case(name, X[np.isin(y, meta)], X, y, novel, images=False)
    if (OMNIGLOT / "background.npz").exists():
        bg, ev = (np.load(OMNIGLOT / f"{n}.npz") for n in ("background", "evaluation"))
        Xb, Xe = (d["images"].reshape(len(d["images"]), -1) for d in (bg, ev))
        table += case(
            "Omniglot background -> evaluation",
            Xb,
            Xe,
            ev["labels"],
            np.unique(ev["labels"]),
            True,
        )
        for drawer in (11, 15, 20):  # drawers 1-10 of background -> one other drawer
            sel = ev["drawer"] == drawer
            table += case(
                f"Omniglot drawers 1-10 -> drawer {drawer}",
                Xb[bg["drawer"] <= 10],
                Xe[sel],
                ev["labels"][sel],
                np.unique(ev["labels"][sel]),
                True,
                shots=(1,),
            )
    from skmeta.datasets import make_glyphs

    Xg, yg = make_glyphs(300, 20, random_state=0)
    table += case(
        "glyphs, classes 0-149 -> 150-299",
        Xg[yg < 150],
        Xg,
        yg,
        np.arange(150, 300),
        True,
    )
    lines = [
        "| data | rows | median spread (min) | median spread (max) "
        "| median shift (max) |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {n} | {w} | {a:.3g} | {b:.3g} | {c:.3g} |" for n, w, a, b, c in table]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
