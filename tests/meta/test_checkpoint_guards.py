"""What resuming checks and survives (skmeta.meta.checkpoint, .fingerprint,
.warm_start): X's values in the fingerprint (hashed in chunks), unused
settings left out, ``~`` expanded, a folder that cannot be written (refused at
the start, warned about mid-run), the warm start's error naming the shapes
that differ, and warnings that point at the caller's line."""

import errno
import json
import os
import warnings

import numpy as np
import pytest
from checkpoint_helpers import assert_same_weights, saved_iteration

from skmeta import MetaFeatureExtractor
from skmeta.meta import checkpoint as checkpoint_module
from skmeta.meta import fingerprint
from skmeta.meta.callbacks import Callback, History
from skmeta.meta.checkpoint import recorded_seed
from skmeta.meta.fingerprint import data_digest
from skmeta.meta.train import TrainSettings, meta_train

# chmod takes nothing from root: the read-only folder tests need another user
CHMOD_DENIES = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="chmod denies nothing to root",
)


def _settings(**changes):
    base = dict(n_way=5, k_shot=2, n_query=3, input_shape=(10,), max_iter=20, seed=3)
    return TrainSettings(**{**base, **changes})


class Steps(Callback):
    def __init__(self):
        self.n = 0

    def on_step_end(self, loop, loss, metrics):
        self.n += 1


class Interrupt(Callback):
    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == 7:
            raise KeyboardInterrupt


# -- X's values -----------------------------------------------------------------


@pytest.mark.parametrize("change", ["flipped", "rows_reordered", "one_value"])
def test_other_values_of_the_same_shape_are_refused(blobs, tmp_path, change):
    X, y = blobs
    settings = _settings(checkpoint=str(tmp_path / "c"))
    meta_train(X, y, settings)
    if change == "flipped":  # a preprocessing bug: the features reversed
        other = X[:, ::-1].copy()
    elif change == "rows_reordered":  # rows shuffled within their class
        order, rng = np.arange(y.size), np.random.default_rng(0)
        for label in np.unique(y):
            order[y == label] = rng.permutation(order[y == label])
        other = X[order]
        assert (y[order] == y).all() and not (other == X).all()
    else:
        other = X.copy()
        other[5, 3] += 1e-3  # too small to move the input statistics
    steps = Steps()
    with pytest.raises(ValueError, match=r"other data \(X's values\)"):
        meta_train(other, y, settings, callbacks=[steps])
    assert steps.n == 0


def test_the_digest_reads_x_in_chunks_of_rows(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, size=(1000, 37), dtype=np.uint8)
    whole = data_digest(X)
    monkeypatch.setattr(fingerprint, "CHUNK_BYTES", 37 * 64 + 5)  # 64 rows a chunk
    assert data_digest(X) == whole
    np.save(tmp_path / "X.npy", X)
    assert data_digest(np.load(tmp_path / "X.npy", mmap_mode="r")) == whole
    assert data_digest(np.asfortranarray(X)) == whole  # the layout is no value
    assert data_digest(X[::-1]) != whole
    assert data_digest(X.astype(np.int16)) != whole  # nor is the dtype


# -- settings that cannot change the run --------------------------------------------


def test_unused_settings_may_change_on_resume(blobs, tmp_path):
    X, y = blobs
    path = str(tmp_path / "c")
    with pytest.warns(UserWarning, match="interrupted"):
        meta_train(X, y, _settings(checkpoint=path), callbacks=[Interrupt()])
    # early stopping and calibration are off: their settings are unused
    unused = dict(n_iter_no_change=3, validation_fraction=0.25, n_val_episodes=7)
    resumed = meta_train(X, y, _settings(checkpoint=path, **unused))
    assert_same_weights(resumed, meta_train(X, y, _settings()))
    # with early stopping they count
    stopping = str(tmp_path / "s")
    meta_train(X, y, _settings(checkpoint=stopping, early_stopping=True))
    with pytest.raises(ValueError, match="n_iter_no_change=10 there, 3 here"):
        meta_train(
            X,
            y,
            _settings(checkpoint=stopping, early_stopping=True, n_iter_no_change=3),
        )


def test_a_checkpoint_path_with_a_tilde_is_in_the_home_folder(
    blobs, tmp_path, monkeypatch
):
    X, y = blobs
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "~").mkdir()  # where the unexpanded path would go
    settings = _settings(checkpoint="~/run.ckpt", max_iter=4)
    meta_train(X, y, settings)
    assert (tmp_path / "run.ckpt").is_file()
    assert not (tmp_path / "~" / "run.ckpt").exists()
    assert recorded_seed("~/run.ckpt") == 3
    steps = Steps()
    meta_train(X, y, settings, callbacks=[steps])  # resumed at its end
    assert steps.n == 0


# -- folders that cannot be written ----------------------------------------------------


def test_a_folder_that_cannot_be_written_is_refused_before_training(
    blobs, tmp_path, monkeypatch
):
    X, y = blobs

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(checkpoint_module.tempfile, "mkstemp", denied)
    steps = Steps()
    path = str(tmp_path / "c")
    with pytest.raises(ValueError, match=r"checkpoint=.*/c' cannot be written.*Perm"):
        meta_train(X, y, _settings(checkpoint=path), callbacks=[steps])
    assert steps.n == 0
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_folder_no_one_can_write_is_refused_before_training(blobs):
    X, y = blobs
    steps = Steps()
    with pytest.raises(ValueError, match="'/proc/c' cannot be written"):
        meta_train(X, y, _settings(checkpoint="/proc/c"), callbacks=[steps])
    assert steps.n == 0


@CHMOD_DENIES
def test_a_folder_made_read_only_at_the_start_is_refused(blobs, tmp_path):
    X, y = blobs
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="cannot be written"):
            meta_train(X, y, _settings(checkpoint=str(folder / "c")))
    finally:
        folder.chmod(0o755)


def _failing_writes(monkeypatch, at):
    """Make the checkpoint writes after iterations `at` fail: disk full."""
    real = checkpoint_module.save_checkpoint

    def save(path, data):
        if data["state"]["n_iter"] in at:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(checkpoint_module, "save_checkpoint", save)


def test_a_failed_write_mid_run_warns_and_training_goes_on(
    blobs, tmp_path, monkeypatch
):
    X, y = blobs
    path = tmp_path / "c"
    _failing_writes(monkeypatch, at={4, 6, 8})  # every 2 iterations: 3 in a row
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = meta_train(X, y, _settings(checkpoint=str(path), checkpoint_every=2))
    failures = [w for w in caught if "Could not write" in str(w.message)]
    assert len(failures) == 1  # once for the run of failures
    message = str(failures[0].message)
    assert f"checkpoint={str(path)!r} after iteration 4" in message
    assert "No space left on device" in message and "trying again" in message
    assert failures[0].filename == __file__  # this test's line, not skmeta's
    assert_same_weights(model, meta_train(X, y, _settings()))
    assert saved_iteration(path) == 20  # written again, up to the last


def test_a_failed_last_write_keeps_the_model(blobs, tmp_path, monkeypatch):
    X, y = blobs
    path = tmp_path / "c"
    _failing_writes(monkeypatch, at={20})
    with pytest.warns(UserWarning, match="after iteration 20 .* last state written"):
        model = meta_train(X, y, _settings(checkpoint=str(path), checkpoint_every=5))
    assert model.config["training"]["n_iter"] == 20
    assert saved_iteration(path) == 15


@CHMOD_DENIES
def test_a_folder_made_read_only_mid_run_warns(blobs, tmp_path):
    X, y = blobs
    folder = tmp_path / "ro"
    folder.mkdir()

    class Lock(Callback):
        def on_step_end(self, loop, loss, metrics):
            if loop.n_iter == 5:
                folder.chmod(0o555)

    try:
        with pytest.warns(UserWarning, match="Could not write"):
            model = meta_train(
                X,
                y,
                _settings(checkpoint=str(folder / "c"), checkpoint_every=4),
                callbacks=[Lock()],
            )
    finally:
        folder.chmod(0o755)
    assert model.config["training"]["n_iter"] == 20
    assert saved_iteration(folder / "c") == 4


# -- warm starts --------------------------------------------------------------------


def test_a_warm_start_names_the_head_whose_classes_differ(blobs):
    X, y = blobs
    settings = _settings(method="pretrain", max_iter=3)
    first = meta_train(X[y < 16], y[y < 16], settings)
    with pytest.raises(
        ValueError,
        match="classifier head .* has 16 outputs in the model and 24 for this run",
    ):
        meta_train(X, y, settings, init=first)
    with pytest.raises(ValueError, match=r"backbone.layers.0.weight has shape"):
        meta_train(
            X,
            y,
            _settings(backbone_params={"hidden_sizes": (8,)}),
            init=meta_train(X, y, _settings(max_iter=2)),
        )


# -- warnings at the caller's line ----------------------------------------------


def test_the_interrupted_warning_points_at_the_callers_line(blobs, monkeypatch):
    X, y = blobs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta_train(X, y, _settings(), callbacks=[Interrupt()])
    [warning] = [w for w in caught if "interrupted" in str(w.message)]
    assert warning.filename == __file__
    step = History.on_step_end

    def interrupted(self, loop, loss, metrics):
        step(self, loop, loss, metrics)
        if loop.n_iter == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(History, "on_step_end", interrupted)
    extractor = MetaFeatureExtractor(max_iter=10, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        extractor.fit(X, y)  # the line the warning names
    [warning] = [w for w in caught if "interrupted" in str(w.message)]
    assert warning.filename == __file__
    assert extractor.meta_model_.config["training"]["interrupted"]


def test_temporary_files_of_killed_writes_are_removed_at_the_next_start(
    blobs, tmp_path
):
    X, y = blobs
    path = tmp_path / "run.ckpt"
    stale = tmp_path / ".run.ckpt.0123456789abcdef.tmp"  # a killed write's
    stale.write_bytes(b"partial")
    other = tmp_path / ".other.ckpt.0123456789abcdef.tmp"  # another file's
    other.write_bytes(b"partial")
    MetaFeatureExtractor(max_iter=2, checkpoint=path, random_state=0).fit(X, y)
    assert not stale.exists() and other.exists() and path.exists()


def test_checkpoints_written_before_normalize_y_still_resume():
    """The new setting's False is left out of the fingerprint, as checkpoints
    written before it lack it: they were refused ("normalize_y=None there,
    False here", a review)."""
    from skmeta.meta.fingerprint import run_fingerprint
    from skmeta.meta.settings import TrainSettings

    X, y = np.zeros((4, 2), np.float32), np.arange(4)
    base = dict(n_way=2, k_shot=1, n_query=1, input_shape=(2,))
    plain = run_fingerprint(TrainSettings(**base), X, y)
    assert "normalize_y" not in json.dumps(plain)
    scaled = run_fingerprint(TrainSettings(normalize_y=True, **base), X, y)
    assert '"normalize_y": true' in json.dumps(scaled)


def test_a_checkpoint_damaged_on_disk_is_refused(tmp_path):
    """One flipped bit in a tensor resumed silently to other weights (a
    reviewer); checkpoints now carry a SHA-256 that loading checks."""
    import torch

    from skmeta.meta import io

    path = tmp_path / "run.ckpt"
    io.save_checkpoint(path, {"state": {"w": torch.arange(64.0)}, "n_iter": 3})
    assert io.load_checkpoint(path)["n_iter"] == 3
    raw = bytearray(path.read_bytes())
    raw[-9] ^= 0x40  # a byte of the tensor data, at the end of the file
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum does not match") as error:
        io.load_checkpoint(path)
    # the way on, as a truncated, empty or foreign file's message gives it
    hint = "Delete it (or give another path) to meta-train afresh."
    assert str(error.value).endswith(hint)
