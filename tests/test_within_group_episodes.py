"""``within_group_episodes`` with ``fit(X, y, groups=...)``: meta-training
episodes drawn within one group, through the estimators' public API."""

import numpy as np
import pytest
import sklearn
from sklearn.datasets import make_blobs
from sklearn.model_selection import GroupKFold, cross_validate
from sklearn.utils._param_validation import InvalidParameterError

import skmeta.meta.batches as batches
from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor

# 16 classes in 4 groups of 4 (classes 4g..4g+3 in group g), 10 rows each
X, Y = make_blobs(160, n_features=6, centers=16, random_state=0)
X = X.astype(np.float32)
GROUPS = np.array(["abcd"[c // 4] for c in Y])  # any labels, as for GroupKFold
SETTINGS = dict(n_way=3, k_shot=2, n_query=2, max_iter=40, random_state=0)


@pytest.fixture
def drawn(monkeypatch):
    """The episodes meta-training really draws (the real sampler, recorded)."""
    seen = []

    def recording(*args):
        episodes = real(*args)
        seen.append(episodes.classes)
        return episodes

    real = batches.mixed_episodes
    monkeypatch.setattr(batches, "mixed_episodes", recording)
    return seen


@pytest.mark.parametrize("augment", [None, "rot90"])
def test_all_episodes_are_drawn_within_one_group(drawn, augment):
    images = np.repeat(X, 6, axis=1)[:, :16]  # 4x4 "images" for rot90
    MetaFeatureExtractor(
        within_group_episodes=1.0,
        class_augmentation=augment,
        input_shape=(1, 4, 4) if augment else None,
        backbone="mlp",
        **SETTINGS,
    ).fit(images if augment else X, Y, groups=GROUPS)
    classes = np.concatenate(drawn)  # positions of (virtual) classes: k*16+c
    assert classes.shape[0] >= 40
    group = (classes % 16) // 4  # a rotated class keeps its group
    assert (group == group[:, :1]).all()
    assert np.unique(group[:, 0]).size == 4  # every group drawn
    if augment:
        assert (classes >= 16).any()


def test_half_the_episodes_within_a_group_the_rest_random(drawn):
    FewShotClassifier(within_group_episodes=0.5, **SETTINGS).fit(X, Y, GROUPS)
    group = np.concatenate(drawn) // 4
    within = (group == group[:, :1]).all(axis=1).mean()
    # 64 episodes drawn: 32 within, and of the random ones 3/35 by chance
    assert 0.3 < within < 0.75


def test_default_is_unchanged_and_ignores_groups_with_a_warning(drawn):
    plain = MetaFeatureExtractor(**SETTINGS).fit(X, Y)
    with pytest.warns(UserWarning, match="within_group_episodes=0 they are ignored"):
        given = MetaFeatureExtractor(**SETTINGS).fit(X, Y, groups=GROUPS)
    assert not drawn  # the mixed sampler never ran
    np.testing.assert_array_equal(plain.transform(X), given.transform(X))
    assert plain.meta_model_.config["training"]["within_group_episodes"] == 0.0


def test_within_group_training_differs_from_random_training():
    plain = MetaFeatureExtractor(**SETTINGS).fit(X, Y)
    grouped = MetaFeatureExtractor(within_group_episodes=1.0, **SETTINGS)
    grouped.fit(X, Y, groups=GROUPS)
    assert not np.allclose(plain.transform(X), grouped.transform(X))
    assert grouped.meta_model_.config["training"]["within_group_episodes"] == 1.0


def test_errors_name_the_parameter():
    with pytest.raises(ValueError, match="pass fit\\(X, y, groups=...\\)"):
        FewShotClassifier(within_group_episodes=0.5, **SETTINGS).fit(X, Y)
    with pytest.raises(ValueError, match="within_group_episodes.*no group has 5"):
        FewShotClassifier(within_group_episodes=0.5, **{**SETTINGS, "n_way": 5}).fit(
            X, Y, GROUPS
        )
    split = GROUPS.copy()
    split[0] = "z" if split[0] != "z" else "y"
    with pytest.raises(ValueError, match=f"class 'L{Y[0]}' has rows in several groups"):
        # the user's label, not an internal class code
        FewShotClassifier(within_group_episodes=0.5, **SETTINGS).fit(
            X, np.char.add("L", Y.astype(str)), split
        )
    with pytest.raises(ValueError, match="groups has 3 values but X has 160"):
        FewShotClassifier(within_group_episodes=0.5, **SETTINGS).fit(X, Y, [1, 2, 3])
    with pytest.raises(InvalidParameterError, match="within_group_episodes"):
        FewShotClassifier(within_group_episodes=1.5).fit(X, Y, GROUPS)
    with pytest.raises(ValueError, match="episodic classification only"):
        FewShotClassifier(method="pretrain", within_group_episodes=0.5, **SETTINGS).fit(
            X, Y, GROUPS
        )
    with pytest.raises(InvalidParameterError, match="within_group_episodes"):
        FewShotRegressor(within_group_episodes=0.5).fit(X, Y.astype(float), Y)


def test_too_few_rows_per_class_with_groups_name_the_episode_size():
    # an EpisodicSplit support set: 5 classes of 1 row, none with k_shot +
    # n_query = 2 (was numpy's "zero-size array to reduction operation")
    rows = np.array([np.flatnonzero(Y == c)[0] for c in range(5)])
    clf = FewShotClassifier(max_iter=10, within_group_episodes=0.5)
    with pytest.raises(
        ValueError, match="at least 2 classes with 2 samples each.*y has 0"
    ):
        clf.fit(X[rows], Y[rows], groups=GROUPS[rows])
    # enough rows, but each class alone in its group: the message says so
    apart = np.isin(Y, [0, 4, 8, 12])
    with pytest.raises(ValueError, match="in one group for within_group_episodes"):
        clf.fit(X[apart], Y[apart], groups=GROUPS[apart])


def test_automatic_n_way_fits_the_largest_group(drawn):
    # n_way left None: as many ways as a group holds (4 here), not min(20, 16)
    settings = {k: v for k, v in SETTINGS.items() if k != "n_way"}
    clf = FewShotClassifier(within_group_episodes=0.5, **settings).fit(X, Y, GROUPS)
    assert {c.shape[1] for c in drawn} == {4}
    assert clf.meta_model_.config["training"]["n_way"] == 4
    assert clf.score(X, Y) > 0.25  # a working classifier of all 16 classes
    plain = FewShotClassifier(**settings).fit(X, Y)  # no groups: all 16 classes
    assert plain.meta_model_.config["training"]["n_way"] == 16


def test_extractor_partial_fit_refuses_the_setting():
    # partial_fit takes no groups: it cannot draw within-group episodes
    ext = MetaFeatureExtractor(within_group_episodes=0.5, **SETTINGS)
    with pytest.raises(ValueError, match="within_group_episodes=0.5 does not apply"):
        ext.partial_fit(X, Y)
    ext.set_params(within_group_episodes=0.0).partial_fit(X, Y)
    ext.set_params(within_group_episodes=0.5)
    with pytest.raises(ValueError, match="within_group_episodes=0.5 does not apply"):
        ext.partial_fit(X, Y)  # on later calls too


def test_a_checkpoint_is_of_its_groups(tmp_path):
    path = tmp_path / "run.ckpt"
    settings = dict(SETTINGS, within_group_episodes=0.5, checkpoint=path)
    FewShotClassifier(**settings).fit(X, Y, GROUPS)
    other = np.where(GROUPS == "a", "b", np.where(GROUPS == "b", "a", GROUPS))
    other[Y == 0] = "c"  # class 0 moves to another group
    with pytest.raises(ValueError, match=r"other data \(the groups\)"):
        FewShotClassifier(**settings).fit(X, Y, other)
    FewShotClassifier(**settings).fit(X, Y, GROUPS)  # the same groups resume


def test_pretrained_warns_that_the_setting_is_unused():
    base = FewShotClassifier(**SETTINGS).fit(X, Y)
    clf = FewShotClassifier(pretrained=base.meta_model_, within_group_episodes=0.5)
    with pytest.warns(UserWarning, match="within_group_episodes=0.5, groups"):
        clf.fit(X, Y, groups=GROUPS)


def test_groups_of_cross_validate_without_routing_name_the_request():
    """Without metadata routing, cross_validate's groups reach the splitter
    only: the error of the fit that lacks them says how to route them."""
    clf = FewShotClassifier(within_group_episodes=1.0, **{**SETTINGS, "max_iter": 2})
    request = r"FewShotClassifier\(\.\.\.\)\.set_fit_request\(groups=True\)"
    with pytest.raises(ValueError, match=request):
        cross_validate(clf, X, Y, groups=GROUPS, cv=GroupKFold(2), error_score="raise")


def test_groups_reach_fit_through_metadata_routing(drawn):
    clf = FewShotClassifier(within_group_episodes=1.0, **{**SETTINGS, "max_iter": 5})
    with sklearn.config_context(enable_metadata_routing=True):
        routed = clf.set_fit_request(groups=True)
        cross_validate(routed, X, Y, params={"groups": GROUPS}, cv=GroupKFold(2))
    assert len(drawn) == 2  # one block of episodes per fold
    for classes in drawn:
        # the fold's classes are re-coded 0..7: two whole groups of 4
        group = classes // 4
        assert (group == group[:, :1]).all()
