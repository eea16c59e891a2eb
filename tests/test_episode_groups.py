"""EpisodicSplit with groups: episodes within a group, and the support and
queries from two different sources (Lake et al.'s one-shot runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from skmeta import EpisodicSplit, episodic_score
from skmeta.meta.source_episodes import SourcePlan


def families(n_families=3, classes_each=6, rows_each=8):
    """Labels, family (group) and source of each row: `rows_each` rows per
    class, one per source."""
    y = np.repeat(np.arange(n_families * classes_each), rows_each)
    family = y // classes_each
    source = np.tile(np.arange(rows_each), n_families * classes_each)
    return y, family, source


def test_classes_of_an_episode_share_a_group():
    y, family, _ = families()
    cv = EpisodicSplit(n_way=4, k_shot=2, n_query=3, n_episodes=200, random_state=0)
    seen = set()
    for support, query in cv.split(np.zeros(len(y)), y, family):
        assert len(support) == 8 and len(query) == 12
        assert not set(support) & set(query)
        assert len(set(family[support]) | set(family[query])) == 1
        assert set(y[support]) == set(y[query]) and len(set(y[support])) == 4
        assert (np.bincount(y[support]) <= 2).all()
        seen.add(family[support[0]])
    assert seen == {0, 1, 2}  # every group is drawn


def test_random_episodes_mix_groups_and_the_seed_repeats():
    y, family, _ = families()
    mixed = EpisodicSplit(n_way=4, n_query=2, n_episodes=50, random_state=0)
    spans = [len(set(family[s])) for s, _ in mixed.split(np.zeros(len(y)), y)]
    assert max(spans) > 1  # without groups, episodes cross families
    cv = EpisodicSplit(n_way=4, n_query=2, n_episodes=20, random_state=3)
    first = [s.tolist() for s, _ in cv.split(np.zeros(len(y)), y, family)]
    again = [s.tolist() for s, _ in cv.split(np.zeros(len(y)), y, family)]
    other = EpisodicSplit(n_way=4, n_query=2, n_episodes=20, random_state=4)
    assert first == again
    assert first != [s.tolist() for s, _ in other.split(np.zeros(len(y)), y, family)]


def test_support_and_queries_come_from_two_sources():
    y, family, source = families()
    groups = np.c_[family, source]
    cv = EpisodicSplit(n_way=5, k_shot=1, n_query=1, n_episodes=400, random_state=1)
    pairs = set()
    for support, query in cv.split(np.zeros(len(y)), y, groups):
        assert len(set(family[support]) | set(family[query])) == 1
        (first,), (second,) = set(source[support]), set(source[query])
        assert first != second
        np.testing.assert_array_equal(y[support], y[query])  # class-major, alike
        pairs.add((first, second))
    assert len(pairs) > 40 and (2, 5) in pairs and (5, 2) in pairs  # both ways


def test_sources_with_several_rows_give_k_shot_and_n_query_distinct_rows():
    y, family, source = families(rows_each=12)
    source = source % 3  # 3 sources, 4 rows each per class
    groups = np.c_[family, source]
    cv = EpisodicSplit(n_way=3, k_shot=4, n_query=2, n_episodes=30, random_state=0)
    for support, query in cv.split(np.zeros(len(y)), y, groups):
        assert len(set(support)) == 12 and len(set(query)) == 6
        assert len(set(source[support])) == 1 and len(set(source[query])) == 1


def test_only_pairs_sharing_enough_classes_are_drawn():
    # Family 0: sources 0 and 1 draw every class; source 2 draws one class only.
    y = np.repeat(np.arange(4), 3)
    source = np.array([0, 1, 2, 0, 1, 1, 0, 1, 1, 0, 1, 1])
    groups = np.c_[np.zeros(12, dtype=int), source]
    cv = EpisodicSplit(n_way=3, k_shot=1, n_query=1, n_episodes=100, random_state=0)
    drawn = {(source[s[0]], source[q[0]]) for s, q in cv.split(np.zeros(12), y, groups)}
    assert drawn == {(0, 1), (1, 0)}


@pytest.mark.parametrize(
    "n_way, groups_of, message",
    [
        (7, lambda f, s: f, "no group has 7 classes .* largest has 6"),
        (7, lambda f, s: np.c_[f, s], "most any two sources share is 6"),
        (3, lambda f, s: np.c_[f, np.zeros_like(s)], "from one source and 1"),
        (3, lambda f, s: np.c_[f, s, s], r"\(n_samples, 2\).*shape \(144, 3\)"),
        (3, lambda f, s: f[:-1], "y has 144 samples but groups has 143"),
    ],
)
def test_bad_groups_are_refused_with_a_reason(n_way, groups_of, message):
    y, family, source = families()
    cv = EpisodicSplit(n_way=n_way, n_query=1, n_episodes=5)
    with pytest.raises(ValueError, match=message):
        next(cv.split(np.zeros(len(y)), y, groups_of(family, source)))


def test_a_class_in_two_groups_is_named():
    y = np.array(["a", "a", "b", "b", "c", "c"])
    groups = np.array([0, 1, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="class 'a' has rows in several groups"):
        next(EpisodicSplit(n_way=2, n_query=1).split(np.zeros(6), y, groups))


def test_groups_of_mixed_types_are_a_type_error():
    y = np.repeat([0, 1, 2], 2)
    groups = np.array(["x", 1, "x", 1, 2, 2], dtype=object)
    with pytest.raises(TypeError, match="groups mixes labels"):
        next(EpisodicSplit(n_way=2, n_query=1).split(np.zeros(6), y, groups))


def test_a_billion_grouped_episodes_cost_nothing_until_drawn():
    y, family, source = families()
    cv = EpisodicSplit(n_way=3, n_query=1, n_episodes=10**9, random_state=0)
    assert len(next(cv.split(np.zeros(len(y)), y, family))[0]) == 3
    assert len(next(cv.split(np.zeros(len(y)), y, np.c_[family, source]))[0]) == 3


def test_within_group_episodes_are_harder_through_scikit_learn():
    """Classes of a family lie close together: a 1-NN scores lower on
    episodes within a family than on random ones, through cross_val_score,
    GridSearchCV and episodic_score alike."""
    y, family, _ = families(n_families=6, classes_each=5, rows_each=10)
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (6, 2))[family] + rng.normal(0, 1.2, (30, 2))[y]
    X = centres + rng.normal(0, 0.6, (len(y), 2))
    knn = KNeighborsClassifier(n_neighbors=1)
    cv = EpisodicSplit(n_way=5, k_shot=1, n_query=5, n_episodes=300, random_state=0)
    random = cross_val_score(knn, X, y, cv=cv).mean()
    within = cross_val_score(knn, X, y, cv=cv, groups=family).mean()
    assert within < random - 0.1
    result = episodic_score(
        knn, X, y, n_way=5, n_query=5, n_episodes=300, random_state=0, groups=family
    )
    assert result.mean == pytest.approx(within)
    search = GridSearchCV(knn, {"n_neighbors": [1]}, cv=cv).fit(X, y, groups=family)
    assert search.best_score_ == pytest.approx(within)


def test_source_plan_lists_each_groups_usable_pairs():
    y, family, source = families(n_families=2, classes_each=3, rows_each=3)
    plan = SourcePlan.build(y, np.array([0, 0, 0, 1, 1, 1]), source, 3, 1, 1)
    assert len(plan.group_classes) == 2
    for pairs in plan.group_pairs:  # every ordered pair of 3 sources
        assert sorted(map(tuple, pairs.tolist())) == [
            (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)
        ]  # fmt: skip


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"


@pytest.mark.omniglot
@pytest.mark.skipif(
    not (REAL / "evaluation.npz").is_file(), reason="Omniglot data not on disk"
)
def test_lakes_one_shot_runs_on_omniglot():
    from skmeta.datasets import load_omniglot

    b = load_omniglot("evaluation", data_home=REAL)
    groups = np.c_[b.groups, b.drawer]
    cv = EpisodicSplit(n_way=20, k_shot=1, n_query=1, n_episodes=40, random_state=0)
    alphabets = set()
    for support, query in cv.split(b.data, b.target, groups):
        assert len(set(b.target[support])) == 20
        assert len(set(b.groups[support])) == 1
        assert len(set(b.drawer[support])) == 1 and len(set(b.drawer[query])) == 1
        assert b.drawer[support[0]] != b.drawer[query[0]]
        alphabets.add(b.groups[support[0]])
    assert len(alphabets) > 10  # of the 20 alphabets, all with >= 20 characters


def test_groups_reach_the_splitters_under_metadata_routing():
    import sklearn
    from sklearn.neighbors import KNeighborsRegressor

    from skmeta import TaskSplit

    y, family, _ = families()
    X = np.random.default_rng(0).normal(size=(len(y), 2)) + y[:, None]
    knn = KNeighborsClassifier(n_neighbors=1)
    cv = EpisodicSplit(n_way=4, n_query=2, n_episodes=30, random_state=0)
    tasks = TaskSplit(k_shot=2, n_query=2, n_tasks=10, random_state=0)
    plain = cross_val_score(knn, X, y, cv=cv, groups=family)
    plain_tasks = cross_val_score(
        KNeighborsRegressor(1), X, X[:, 0], cv=tasks, groups=y
    )
    with sklearn.config_context(enable_metadata_routing=True):
        routed = cross_val_score(knn, X, y, cv=cv, params={"groups": family})
        routed_tasks = cross_val_score(
            KNeighborsRegressor(1), X, X[:, 0], cv=tasks, params={"groups": y}
        )
    np.testing.assert_array_equal(routed, plain)
    np.testing.assert_array_equal(routed_tasks, plain_tasks)
    scored = dict(n_way=4, n_query=2, n_episodes=30, random_state=0, groups=family)
    with sklearn.config_context(enable_metadata_routing=True):
        routed_score = episodic_score(knn, X, y, **scored)  # raised before
    np.testing.assert_array_equal(routed_score.scores, plain)


def test_episodic_score_groups_only_draw_episodes_under_routing():
    """FewShotClassifier.fit takes groups (within-group meta-training), yet
    episodic_score's groups draw the episodes and reach no fit: the same
    scores with routing on and off, and no request to set."""
    import matplotlib
    import sklearn

    from skmeta import EpisodicScoreDisplay, FewShotClassifier, MetaFeatureExtractor

    matplotlib.use("Agg")
    y, family, source = families()
    X = np.random.default_rng(0).normal(size=(len(y), 2)) + y[:, None]
    model = MetaFeatureExtractor(max_iter=3, random_state=0).fit(X, y).meta_model_
    clf = FewShotClassifier(pretrained=model)
    for groups in (family, np.c_[family, source]):
        scored = dict(n_way=4, n_query=1, n_episodes=10, random_state=0, groups=groups)
        plain = episodic_score(clf, X, y, **scored)
        with sklearn.config_context(enable_metadata_routing=True):
            routed = episodic_score(clf, X, y, **scored)  # raised before
            display = EpisodicScoreDisplay.from_estimators({"clf": clf}, X, y, **scored)
        np.testing.assert_array_equal(routed.scores, plain.scores)
        assert np.ravel(display.means)[0] == pytest.approx(plain.mean)
    folds = list(EpisodicSplit(4, n_query=1, n_episodes=2).split(X, y))
    with pytest.raises(ValueError, match="groups draw the episodes of a splitter"):
        episodic_score(clf, X, y, cv=folds, groups=family)  # was AttributeError


def test_grouped_episodes_are_drawn_in_blocks_of_bounded_keys(monkeypatch):
    """Each block's random keys (the classes', then n_way rows' per episode)
    stay near BLOCK_KEYS, however many rows a class has."""
    import skmeta._episode_folds as folds
    from skmeta.meta.episodes import BLOCK_KEYS

    sizes, draw = [], folds.sample_group_episodes

    def record(index, by_class, n_way, k_shot, n_query, n, rng):
        sizes.append(n * (index.n_classes + n_way * index.rows.shape[1]))
        return draw(index, by_class, n_way, k_shot, n_query, n, rng)

    monkeypatch.setattr(folds, "sample_group_episodes", record)
    y = np.repeat(np.arange(6), 5000)  # few classes, many rows each
    cv = EpisodicSplit(n_way=3, n_query=1, n_episodes=300, random_state=0)
    next(cv.split(np.zeros(len(y)), y, y // 3))
    assert sizes and max(sizes) <= BLOCK_KEYS
