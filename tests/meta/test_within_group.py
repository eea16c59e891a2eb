"""Within-group episodes (skmeta.meta.episodes.sample_group_episodes,
skmeta.meta.within_group, task_batches' mix): every episode's classes share a
group, groups are drawn evenly, and the default stream is unchanged."""

import numpy as np
import pytest
import torch

from skmeta.meta.batches import task_batches
from skmeta.meta.episodes import ClassIndex, sample_episodes, sample_group_episodes
from skmeta.meta.rows import Rows
from skmeta.meta.train import TrainSettings, meta_train
from skmeta.meta.within_group import class_groups, mixed_episodes

# 24 classes of 6 rows in groups of 3, 4, 5, 12 classes (group 0 is too
# small for 4-way episodes)
SIZES = [3, 4, 5, 12]
GROUP_OF_CLASS = np.repeat(np.arange(4), SIZES)
Y = np.repeat(np.arange(24), 6)


def test_group_episodes_stay_in_one_group_and_skip_small_groups():
    index = ClassIndex.from_labels(Y)
    ep = sample_group_episodes(
        index, GROUP_OF_CLASS, 4, 2, 3, 600, np.random.default_rng(0)
    )
    assert ep.support.shape == (600, 8) and ep.query.shape == (600, 12)
    groups = GROUP_OF_CLASS[ep.classes]
    assert (groups == groups[:, :1]).all()  # one group per episode
    assert (ep.classes != ep.classes[:, [1, 2, 3, 0]]).all()  # distinct ways
    # rows are of their way's class, distinct within an episode
    assert (Y[ep.support].reshape(600, 4, 2) == ep.classes[..., None]).all()
    assert (Y[ep.query].reshape(600, 4, 3) == ep.classes[..., None]).all()
    rows = np.concatenate([ep.support, ep.query], axis=1)
    assert all(np.unique(r).size == r.size for r in rows)
    # groups 1-3 each about a third of the episodes, group 0 (3 classes) never
    share = np.bincount(groups[:, 0], minlength=4) / 600
    assert share[0] == 0
    np.testing.assert_allclose(share[1:], 1 / 3, atol=0.06)
    # within a group, every class is drawn
    assert set(ep.classes[groups[:, 0] == 3].ravel()) == set(range(12, 24))


def test_classes_too_small_for_the_episode_do_not_count():
    # classes 0-3 and the 2-row class 8 in group 0, classes 4-7 in group 1
    y = np.concatenate([np.repeat(np.arange(8), 6), [8, 8]])
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0])
    index = ClassIndex.from_labels(y)
    ep = sample_group_episodes(index, groups, 4, 1, 4, 50, np.random.default_rng(1))
    assert 8 not in ep.classes  # 2 rows < k_shot + n_query
    with pytest.raises(ValueError, match="no group has 5 classes.*largest has 4"):
        sample_group_episodes(index, groups, 5, 1, 4, 1, np.random.default_rng(1))


def test_no_group_large_enough_names_the_setting():
    index = ClassIndex.from_labels(Y)
    with pytest.raises(ValueError, match="largest has 12.*within_group_episodes=0"):
        sample_group_episodes(
            index, GROUP_OF_CLASS, 13, 1, 1, 1, np.random.default_rng(0)
        )
    with pytest.raises(ValueError, match="one group per class"):
        sample_group_episodes(
            index, GROUP_OF_CLASS[:5], 2, 1, 1, 1, np.random.default_rng(0)
        )


def test_rotated_classes_keep_their_group_and_split_classes_are_refused():
    codes = np.array([0, 0, 1, 2, 2])
    assert class_groups(np.array([7, 7, 3, 9, 9]), codes, 4).tolist() == [7, 3, 9] * 4
    with pytest.raises(ValueError, match="class code 2 has rows in several"):
        class_groups(np.array([7, 7, 3, 9, 8]), codes, 1)


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_mixed_episodes_draw_the_share_within_groups(share):
    index = ClassIndex.from_labels(Y)
    ep = mixed_episodes(
        index, GROUP_OF_CLASS, share, 4, 1, 1, 2000, np.random.default_rng(0)
    )
    groups = GROUP_OF_CLASS[ep.classes]
    within = (groups == groups[:, :1]).all(axis=1)
    # random 4-way episodes of these 24 classes are rarely within one group
    chance = sum(
        np.prod([(s - i) / (24 - i) for i in range(4)]) for s in SIZES if s >= 4
    )
    expected = share + (1 - share) * chance
    assert abs(within.mean() - expected) < 0.04
    assert (Y[ep.support].reshape(2000, 4) == ep.classes).all()


def _stream(within, groups=None, seed=0):
    X = np.arange(Y.size * 2, dtype=np.float32).reshape(-1, 2)
    rows = Rows(X, (2,), torch.device("cpu"))
    settings = TrainSettings(n_way=4, k_shot=1, n_query=2, input_shape=(2,))
    index = ClassIndex.from_labels(Y)
    stream = task_batches(
        rows,
        index,
        settings,
        np.random.default_rng(seed),
        4,
        2,
        n_tasks=2,
        groups=groups,
        within_group=within,
    )
    return stream, X


def test_default_stream_is_plain_sample_episodes_draw_for_draw():
    stream, X = _stream(0.0, GROUP_OF_CLASS)
    expected = sample_episodes(
        ClassIndex.from_labels(Y), 4, 1, 2, 128, np.random.default_rng(0)
    )
    for i in range(64):
        batch = next(stream)
        rows = expected.support[2 * i : 2 * i + 2]
        assert torch.equal(batch.support_x, torch.from_numpy(X[rows]))


def test_a_within_group_stream_yields_one_group_per_task():
    stream, X = _stream(1.0, GROUP_OF_CLASS)
    for _ in range(100):
        batch = next(stream)
        rows = batch.support_x[..., 0].numpy().astype(int) // 2  # X[r, 0] = 2r
        groups = GROUP_OF_CLASS[Y[rows]]
        assert (groups == groups[:, :1]).all()


def test_meta_train_checks_its_groups():
    X = np.random.default_rng(0).normal(size=(Y.size, 3)).astype(np.float32)
    settings = TrainSettings(
        n_way=4, k_shot=1, n_query=2, input_shape=(3,), within_group_episodes=0.5
    )
    groups = GROUP_OF_CLASS[Y]
    with pytest.raises(ValueError, match="needs the group of each row"):
        meta_train(X, Y, settings)
    with pytest.raises(ValueError, match="no group has 13"):
        meta_train(
            X, Y, TrainSettings(**{**vars(settings), "n_way": 13}), groups=groups
        )
    pretrain = TrainSettings(**{**vars(settings), "method": "pretrain"})
    with pytest.raises(ValueError, match="episodic classification only"):
        meta_train(X, Y, pretrain, groups=groups)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        meta_train(
            X, Y, TrainSettings(**{**vars(settings), "within_group_episodes": 2})
        )
    model = meta_train(
        X, Y, TrainSettings(**{**vars(settings), "max_iter": 3}), groups=groups
    )
    assert model.config["training"]["within_group_episodes"] == 0.5
