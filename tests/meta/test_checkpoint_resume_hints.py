"""What a refused resume says to do, and what is not refused: a longer
max_iter points to warm_start; backbone="auto" resumes a run of the backbone it
resolves to (checkpoints that recorded "auto" too)."""

import pytest
from checkpoint_helpers import Steps, small_settings

from skmeta.meta import fingerprint
from skmeta.meta.fingerprint import differences, run_fingerprint
from skmeta.meta.train import TrainSettings, meta_train


def test_a_longer_max_iter_is_refused_with_the_way_on(blobs, tmp_path):
    """Refused, in principle (the cosine schedule spans max_iter), but with
    no way forward (a reviewer)."""
    X, y = blobs
    path = tmp_path / "run.ckpt"
    meta_train(X, y, small_settings(path))
    with pytest.raises(ValueError, match="max_iter=8 there, 12 here") as error:
        meta_train(X, y, small_settings(path, max_iter=12))
    assert error.value.args[0].endswith(
        "finish it with max_iter=8, then, in Python, fit again with "
        "warm_start=True (meta_train's init=), max_iter=4 (the iterations to "
        "add) and a new checkpoint path; the command line has no warm start: "
        "a longer run is a new one, with a new checkpoint path."
    )
    for other in (dict(max_iter=6), dict(max_iter=12, seed=4)):  # no such way
        with pytest.raises(ValueError, match="another meta-training run") as error:
            meta_train(X, y, small_settings(path, **other))
        assert "warm_start" not in str(error.value)
    # the way works: the run finished, then 4 more iterations from it
    finished = meta_train(X, y, small_settings(path))
    more = small_settings(tmp_path / "on.ckpt", max_iter=4)
    longer = meta_train(X, y, more, init=finished)
    assert longer.config["training"]["n_iter"] == 12


@pytest.mark.parametrize("recorded_unresolved", [False, True])
def test_auto_resumes_a_run_of_the_backbone_it_resolves_to(
    blobs, tmp_path, monkeypatch, recorded_unresolved
):
    """backbone='mlp' there, 'auto' here was refused, though 'auto' is 'mlp'
    on rows (a reviewer); checkpoints written before recorded 'auto'."""
    X, y = blobs
    path = tmp_path / "run.ckpt"
    if recorded_unresolved:  # as skmeta wrote it before
        with monkeypatch.context() as patch:
            patch.setattr(fingerprint, "resolve_backbone", lambda name, shape: name)
            meta_train(X, y, small_settings(path, backbone="auto"))
    else:
        meta_train(X, y, small_settings(path, backbone="mlp"))
    for backbone in ("auto", "mlp"):
        steps = Steps()
        model = meta_train(
            X, y, small_settings(path, backbone=backbone), callbacks=[steps]
        )
        assert steps.n == 0 and model.config["training"]["n_iter"] == 8


def test_a_recorded_auto_is_compared_as_what_it_resolves_to():
    import numpy as np

    X, y = np.zeros((4, 144), np.float32), np.arange(4)
    base = dict(n_way=2, k_shot=1, n_query=1, input_shape=(1, 12, 12))
    old = run_fingerprint(TrainSettings(**base), X, y)
    old["settings"]["backbone"] = "auto"  # a checkpoint written before
    assert run_fingerprint(TrainSettings(**base), X, y)["settings"]["backbone"] == (
        "conv4"
    )
    assert differences(old, run_fingerprint(TrainSettings(**base), X, y)) == []
    other = TrainSettings(backbone="conv4_strided", **base)
    assert differences(old, run_fingerprint(other, X, y)) == [
        "backbone='conv4' there, 'conv4_strided' here"
    ]
