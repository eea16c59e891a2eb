"""Rows read by index: rotations as virtual rows, per-batch conversion, memory maps."""

import numpy as np
import pytest
import torch

from skmeta.meta.batches import labelled_batches, task_batches, training_index
from skmeta.meta.rows import Rows, input_statistics
from skmeta.meta.train import TrainSettings


def test_virtual_rows_are_the_rows_rotated_by_quarter_turns():
    images = np.arange(3 * 9, dtype=np.uint8).reshape(3, 1, 3, 3)
    rows = Rows(images.reshape(3, 9), (1, 3, 3), torch.device("cpu"), rotations=4)
    assert rows.n_rows == 12
    index = np.array([[0, 3 + 1], [6 + 2, 9 + 0]])  # (2, 2) virtual rows
    out = rows.gather(index)
    assert out.shape == (2, 2, 9) and out.dtype == torch.float32
    expected = [
        np.rot90(images[r], k, axes=(1, 2)).reshape(9)
        for r, k in [(0, 0), (1, 1), (2, 2), (0, 3)]
    ]
    np.testing.assert_array_equal(out.reshape(4, 9).numpy(), np.stack(expected))
    with pytest.raises(ValueError, match="square images"):
        Rows(np.zeros((2, 6)), (1, 2, 3), torch.device("cpu"), rotations=4)


def test_dihedral_virtual_rows_add_the_mirror_images_rotated():
    images = np.arange(2 * 9, dtype=np.uint8).reshape(2, 1, 3, 3)
    rows = Rows(images.reshape(2, 9), (1, 3, 3), torch.device("cpu"), rotations=8)
    assert rows.n_rows == 16
    out = rows.gather(np.arange(16)).reshape(8, 2, 9).numpy()
    for k in range(8):
        for r in range(2):
            image = images[r, :, :, ::-1] if k >= 4 else images[r]
            np.testing.assert_array_equal(
                out[k, r], np.rot90(image, k % 4, axes=(1, 2)).reshape(9)
            )
    # the 8 symmetries of an image with none of its own are 8 distinct images
    assert len({tuple(v) for v in out[:, 0]}) == 8
    with pytest.raises(ValueError, match="rotations must be 1, 4 or 8"):
        Rows(images.reshape(2, 9), (1, 3, 3), torch.device("cpu"), rotations=2)


def test_gather_reads_rows_in_any_order_and_augments_only_when_asked():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    calls = []

    def augment(batch):
        calls.append(batch.shape)
        return batch + 100

    rows = Rows(X, (2,), torch.device("cpu"), augment=augment)
    index = np.array([7, 2, 7, 0])
    np.testing.assert_array_equal(rows.gather(index, augment=False).numpy(), X[index])
    np.testing.assert_array_equal(rows.gather(index).numpy(), X[index] + 100)
    assert calls == [(4, 2)]


def test_training_index_maps_classes_to_virtual_rows():
    train_rows = np.array([1, 4, 5, 8])
    codes = np.array([0, 1, 0, 1])
    index, virtual_rows, virtual_codes = training_index(train_rows, codes, 10, 4)
    assert virtual_rows.tolist() == [
        1,
        4,
        5,
        8,
        11,
        14,
        15,
        18,
        21,
        24,
        25,
        28,
        31,
        34,
        35,
        38,
    ]
    assert index.n_classes == 8
    for c in range(8):
        members = index.rows[c][: index.counts[c]]
        assert set(members) == set(virtual_rows[virtual_codes == c])


def _rows(X):
    return Rows(X, (X.shape[1],), torch.device("cpu"))


def test_input_statistics_in_chunks_equal_numpy(monkeypatch):
    import skmeta.meta.rows as rows_module

    monkeypatch.setattr(rows_module, "_STATISTICS_CHUNK_VALUES", 7)  # many chunks
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (50, 6)).astype(np.uint8)
    mean, std = input_statistics(_rows(X), per_feature=True)
    np.testing.assert_allclose(mean, X.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std, X.std(0, ddof=1), rtol=1e-6)
    mean, std = input_statistics(
        _rows(X), per_feature=False, subset=np.array([4, 1, 30])
    )
    sub = X[[1, 4, 30]].astype(np.float64)
    np.testing.assert_allclose(mean, [sub.mean()], rtol=1e-6)
    np.testing.assert_allclose(std, [sub.std(ddof=1)], rtol=1e-6)


def test_a_memory_map_is_read_from_its_file_not_through_the_mapping(tmp_path):
    path = tmp_path / "rows.npy"
    data = np.random.default_rng(0).integers(0, 256, (30, 7), dtype=np.uint8)
    np.save(path, data)
    mapped = np.load(path, mmap_mode="r")
    for X, expected in [
        (mapped, data),
        (np.asarray(mapped), data),  # what scikit-learn's checks hand over
        (mapped[11:], data[11:]),  # a view starts past the header
        (np.asarray(mapped)[5:20], data[5:20]),
    ]:
        rows = _rows(X)
        assert rows._file is not None
        index = np.array([0, 1, 2, 6, 7, 9])
        np.testing.assert_array_equal(rows.read(index), expected[index])
    strided = _rows(mapped[:, ::2])  # not C-contiguous: plain indexing
    assert strided._file is None
    np.testing.assert_array_equal(strided.read(np.array([3, 4])), data[[3, 4], ::2])
    assert _rows(data)._file is None


def test_batches_read_a_memory_map_without_copying_it(tmp_path):
    path = tmp_path / "rows.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(40, 4))
    X[:] = np.arange(40)[:, None]
    X.flush()
    X = np.load(path, mmap_mode="r")  # read-only
    y = np.repeat(np.arange(8), 5)
    rows = Rows(X, (4,), torch.device("cpu"))
    index, virtual_rows, codes = training_index(np.arange(40), y, 40, 1)
    settings = TrainSettings(n_way=3, k_shot=2, n_query=1, input_shape=(4,))
    batch = next(task_batches(rows, index, settings, np.random.default_rng(0), 3, 1, 2))
    # each row holds its own number: the ways' rows come from their classes
    support = batch.support_x[..., 0].long()
    assert batch.support_x.dtype == torch.float32
    assert ((support // 5).view(2, 3, 2) == (support // 5).view(2, 3, 2)[..., :1]).all()
    mini = next(
        labelled_batches(rows, virtual_rows, codes, 8, np.random.default_rng(0))
    )
    assert (mini.x[:, 0].long() // 5 == mini.y).all()


def test_input_statistics_of_a_large_array_come_from_a_sample(monkeypatch):
    import skmeta.meta.rows as rows_module

    monkeypatch.setattr(rows_module, "_SAMPLE_VALUES", 3000)  # 1,000 rows of 3
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 2.0, (20_000, 3)).astype(np.float32)
    rows, read = _rows(X), []
    original = rows.read
    monkeypatch.setattr(rows, "read", lambda r: read.append(r.size) or original(r))
    mean, std = input_statistics(rows, True, rng=np.random.default_rng(1))
    assert sum(read) == 2 * 1000  # two passes over the sample only
    np.testing.assert_allclose(mean, [5.0] * 3, atol=0.2)
    np.testing.assert_allclose(std, [2.0] * 3, atol=0.15)
    with pytest.raises(ValueError, match="needs rng"):
        input_statistics(_rows(X), True)


def test_validation_episodes_are_read_a_few_tasks_at_a_time():
    from skmeta.meta.batches import validation_batch

    X = np.arange(60, dtype=np.float32).reshape(60, 1)
    y = np.repeat(np.arange(6), 10)
    rows = Rows(X, (1,), torch.device("cpu"), augment=lambda b: b + 1000)
    settings = TrainSettings(
        n_way=3, k_shot=2, n_query=3, input_shape=(1,), n_val_episodes=7
    )
    episodes = validation_batch(
        rows, np.arange(60), y, settings, np.random.default_rng(0)
    )
    chunks = list(episodes.batches(max_rows=30))  # 15 rows a task: 2 tasks a chunk
    assert [c.n_tasks for c in chunks] == [2, 2, 2, 1]
    support = torch.cat([c.support_x for c in chunks])[..., 0]
    assert support.max() < 60  # never augmented
    ways = (support.long() // 10).view(7, 3, 2)
    assert (ways == ways[..., :1]).all()  # class-major, one class per way
