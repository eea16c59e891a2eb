"""Writes the golden model file every future skmeta must load (run once; the
files are committed). ``python tests/data/make_golden.py``"""

from pathlib import Path

import numpy as np
from sklearn.datasets import make_blobs

from skmeta.meta.train import TrainSettings, meta_train

HERE = Path(__file__).parent


def main() -> None:
    """Meta-train the small golden model and write it with its expected
    embeddings. Only when run as a script: ``--doctest-modules`` imports
    this file, and an import must not rewrite the committed files."""
    X, y = make_blobs(120, n_features=6, centers=8, random_state=0)
    X = X.astype(np.float32)
    settings = TrainSettings(
        n_way=4,
        k_shot=2,
        n_query=3,
        input_shape=(6,),
        backbone_params={"hidden_sizes": (16,), "out_features": 8},
        max_iter=5,
        seed=0,
    )
    model = meta_train(
        X, y, settings, description={"class_names": [str(c) for c in range(8)]}
    )
    model.save(HERE / "golden_model_v1.safetensors")
    np.savez(
        HERE / "golden_model_v1_expected.npz",
        X=X[:10],
        embeddings=model.transform(X[:10]),
    )
    print(model.summary())


if __name__ == "__main__":
    main()
