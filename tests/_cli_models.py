"""A glyph image folder and a model trained on it by ``skmeta train``, for the
command-line tests."""

from __future__ import annotations

from pathlib import Path

from _image_trees import write_image_tree

from skmeta.cli import main
from skmeta.datasets import make_glyphs

__all__ = ["glyph_folder_and_model"]


def glyph_folder_and_model(root: Path, max_iter: int) -> Path:
    """Write 8 classes of 6 grey 28x28 glyph PNGs to ``root/data`` and train
    ``root/model.safetensors`` on them (ProtoNet, strided Conv4, 3-way 2-shot
    episodes, seed 0, `max_iter` iterations) through the command line.

    Returns
    -------
    Path
        The model file.
    """
    X, y = make_glyphs(n_classes=8, n_samples_per_class=6, random_state=0)
    write_image_tree(root / "data", X, y)
    model = root / "model.safetensors"
    argv = ["train", str(root / "data"), "--out", str(model), "--image-size", "28"]
    argv += ["--color", "grey", "--backbone", "conv4_strided"]
    argv += ["--max-iter", str(max_iter), "--n-way", "3", "--k-shot", "2"]
    assert main([*argv, "--quiet", "--seed", "0"]) == 0
    return model
