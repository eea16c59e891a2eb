import numpy as np
import pytest

from skmeta.meta.episodes import ClassIndex, iter_episode_blocks, sample_episodes


def test_class_index_pads():
    index = ClassIndex.from_labels(np.array([3, 1, 3, 3, 1, 7]))
    assert index.counts.tolist() == [2, 3, 1]
    assert index.rows.tolist() == [[1, 4, -1], [0, 2, 3], [5, -1, -1]]


def test_episode_shapes_and_class_purity():
    y = np.repeat(np.arange(12), 7)
    episodes = sample_episodes(
        ClassIndex.from_labels(y),
        5,
        2,
        3,
        n_episodes=40,
        rng=np.random.default_rng(0),
    )
    assert episodes.support.shape == (40, 10)
    assert episodes.query.shape == (40, 15)
    for s, q, classes in zip(
        episodes.support, episodes.query, episodes.classes, strict=True
    ):
        assert len(set(classes)) == 5
        rows = np.concatenate([s, q])
        assert len(set(rows)) == rows.size  # no row twice in an episode
        # each way's rows belong to that way's class
        assert (y[s].reshape(5, 2) == classes[:, None]).all()
        assert (y[q].reshape(5, 3) == classes[:, None]).all()


def test_episodes_are_seeded_and_cover_classes_uniformly():
    y = np.repeat(np.arange(10), 5)
    index = ClassIndex.from_labels(y)
    a = sample_episodes(index, 3, 1, 1, 2000, np.random.default_rng(1))
    b = sample_episodes(index, 3, 1, 1, 2000, np.random.default_rng(1))
    np.testing.assert_array_equal(a.support, b.support)
    freq = np.bincount(a.classes.ravel(), minlength=10) / a.classes.size
    np.testing.assert_allclose(freq, 0.1, atol=0.02)
    # the support row of a class is uniform over its 5 rows (any way position)
    rows_of_class_0 = a.support[a.classes == 0]
    assert rows_of_class_0.size > 500
    np.testing.assert_allclose(
        np.bincount(rows_of_class_0, minlength=5) / rows_of_class_0.size, 0.2, atol=0.04
    )


def test_small_classes_are_skipped_not_sampled():
    y = np.array([0] * 5 + [1] * 5 + [2] * 2 + [3] * 5)
    ep = sample_episodes(
        ClassIndex.from_labels(y), 3, 2, 2, 50, np.random.default_rng(0)
    )
    assert 2 not in set(y[ep.support.ravel()])


def test_too_few_classes_raises_clear_error():
    y = np.repeat(np.arange(4), 3)
    with pytest.raises(ValueError, match="only 4 classes have at least 3"):
        sample_episodes(ClassIndex.from_labels(y), 5, 1, 2, 1, np.random.default_rng(0))


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("n_episodes", [1, 9, 250])
@pytest.mark.parametrize("block_size", [1, 4, 64, None])
def test_episode_blocks_are_the_episodes_of_one_draw(seed, n_episodes, block_size):
    y = np.random.default_rng(seed).integers(0, 12, 150)  # unequal class sizes
    index = ClassIndex.from_labels(y)
    whole = sample_episodes(index, 4, 2, 3, n_episodes, np.random.default_rng(seed))
    blocks = list(
        iter_episode_blocks(
            index, 4, 2, 3, n_episodes, np.random.default_rng(seed), block_size
        )
    )
    if block_size is not None:
        assert [len(b.support) for b in blocks[:-1]] == [block_size] * (len(blocks) - 1)
    for field in ("support", "query", "classes"):
        joined = np.concatenate([getattr(block, field) for block in blocks])
        np.testing.assert_array_equal(joined, getattr(whole, field))


def test_episode_blocks_check_at_the_call_and_leave_rng_alone():
    index = ClassIndex.from_labels(np.repeat(np.arange(4), 3))
    with pytest.raises(ValueError, match="only 4 classes have at least 3"):
        iter_episode_blocks(index, 5, 1, 2, 10, np.random.default_rng(0))
    with pytest.raises(TypeError, match="PCG64"):
        iter_episode_blocks(
            index, 2, 1, 1, 10, np.random.Generator(np.random.MT19937(0))
        )
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    next(iter_episode_blocks(index, 2, 1, 1, 10**12, rng))
    assert rng.bit_generator.state == state
