"""MetaTrainingDisplay and EpisodicScoreDisplay, drawn with the Agg backend."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skmeta import (  # noqa: E402
    EpisodicScoreDisplay,
    FewShotClassifier,
    MetaFeatureExtractor,
    MetaModel,
    MetaTrainingDisplay,
    episodic_score,
)

SETTINGS = dict(n_way=5, k_shot=2, n_query=5, max_iter=20, random_state=0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def early_stopped(blobs):
    """An extractor meta-trained with early stopping (validation records)."""
    X, y = blobs
    base = y < 16
    return MetaFeatureExtractor(
        early_stopping=True, validation_fraction=0.25, **SETTINGS
    ).fit(X[base], y[base])


@pytest.fixture(scope="module")
def plain(blobs):
    """An extractor meta-trained without validation."""
    X, y = blobs
    base = y < 16
    return MetaFeatureExtractor(**SETTINGS).fit(X[base], y[base])


def _column(history, key):
    return np.array([record[key] for record in history])


# -- MetaTrainingDisplay ---------------------------------------------------------


def test_training_lines_are_the_history(early_stopped):
    history = early_stopped.history_
    display = MetaTrainingDisplay.from_estimator(early_stopped)
    assert sorted(display.lines_) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for key, line in display.lines_.items():
        np.testing.assert_array_equal(line.get_xdata(), _column(history, "iter"))
        np.testing.assert_allclose(line.get_ydata(), _column(history, key))
    loss_ax, metric_ax = display.axes_
    assert display.ax_ is loss_ax and display.figure_ is loss_ax.figure
    assert loss_ax.get_ylabel() == "Loss" and metric_ax.get_ylabel() == "Accuracy"
    assert display.lines_["val_loss"].axes is loss_ax
    assert display.lines_["val_loss"].get_color() == display.lines_["loss"].get_color()
    assert display.lines_["loss"].get_label() == "protonet training"


def test_the_best_iteration_is_marked(early_stopped):
    best = early_stopped.meta_model_.config["training"]["best_iter"]
    display = MetaTrainingDisplay.from_estimator(early_stopped)
    assert display.best_iter == best
    assert len(display.best_lines_) == 2
    for axis, line in zip(display.axes_, display.best_lines_, strict=True):
        assert line.axes is axis
        np.testing.assert_array_equal(line.get_xdata(), [best, best])


def test_without_early_stopping_no_marker_and_no_validation(plain):
    display = MetaTrainingDisplay.from_estimator(plain)
    assert display.best_iter is None and display.best_lines_ is None
    assert sorted(display.lines_) == ["accuracy", "loss"]
    with pytest.raises(ValueError, match="no validation records.*early_stopping"):
        MetaTrainingDisplay.from_estimator(plain, validation=True)
    with pytest.raises(ValueError, match="validation='yes'"):
        MetaTrainingDisplay.from_estimator(plain, validation="yes")


def test_validation_false_leaves_the_validation_curves_out(early_stopped):
    display = MetaTrainingDisplay.from_estimator(early_stopped, validation=False)
    assert sorted(display.lines_) == ["accuracy", "loss"]


def test_unfitted_or_foreign_estimator_is_refused(plain):
    with pytest.raises(NotFittedError):
        MetaTrainingDisplay.from_estimator(MetaFeatureExtractor())
    with pytest.raises(TypeError, match=r"not a Pipeline.*named_steps"):
        MetaTrainingDisplay.from_estimator(make_pipeline(plain, StandardScaler()))
    frozen = MetaTrainingDisplay.from_estimator(FrozenEstimator(plain))
    assert sorted(frozen.lines_) == ["accuracy", "loss"]


def test_existing_axes_are_used(early_stopped, plain):
    fig, axes = plt.subplots(1, 2)
    display = MetaTrainingDisplay.from_estimator(early_stopped, ax=axes)
    assert list(display.axes_) == list(axes) and display.figure_ is fig
    # a second model on the same Axes, told apart by its name
    MetaTrainingDisplay.from_estimator(plain, ax=display.axes_, name="plain")
    labels = [line.get_label() for line in axes[0].get_lines()]
    assert "plain training" in labels and "protonet validation" in labels

    _, ax = plt.subplots()
    single = MetaTrainingDisplay.from_estimator(plain, ax=ax, curves="loss")
    assert single.ax_ is ax and list(single.lines_) == ["loss"]
    with pytest.raises(ValueError, match="ax holds 1 Axes, but 2 plots"):
        MetaTrainingDisplay.from_estimator(plain, ax=ax)


def test_from_model_and_from_history(early_stopped):
    model = early_stopped.meta_model_
    from_model = MetaTrainingDisplay.from_model(model, curves=["learning_rate"])
    line = from_model.lines_["learning_rate"]
    np.testing.assert_allclose(
        line.get_ydata(), _column(model.history, "learning_rate")
    )
    assert from_model.best_iter == model.config["training"]["best_iter"]

    from_history = MetaTrainingDisplay.from_history(early_stopped.history_)
    assert from_history.best_lines_ is None and from_history.name is None
    assert from_history.lines_["loss"].get_label() == "training"


def test_regression_history_plots_its_mse():
    history = [
        {"iter": 5, "loss": 2.0, "mse": 2.0, "learning_rate": 1e-3},
        {"iter": 10, "loss": 1.0, "mse": 1.0, "learning_rate": 5e-4},
    ]
    display = MetaTrainingDisplay.from_history(history, best_iter=10)
    assert sorted(display.lines_) == ["loss", "mse"]
    assert display.axes_[1].get_ylabel() == "MSE"
    np.testing.assert_array_equal(display.lines_["mse"].get_xdata(), [5, 10])


def test_bad_histories_are_refused(plain):
    with pytest.raises(ValueError, match="history is empty"):
        MetaTrainingDisplay.from_history([])
    untrained = MetaModel.from_module(torch.nn.Linear(10, 4), input_shape=(10,))
    with pytest.raises(ValueError, match="history is empty.*from_module"):
        MetaTrainingDisplay.from_model(untrained)
    with pytest.raises(ValueError, match="no 'grad_norm'.*records hold"):
        MetaTrainingDisplay.from_estimator(plain, curves=["loss", "grad_norm"])
    with pytest.raises(TypeError, match="best_iter"):
        MetaTrainingDisplay.from_history(plain.history_, best_iter=2.5)


def test_history_of_a_pretrained_estimator(blobs, blob_model):
    X, y = blobs
    novel = y >= 16
    clf = FewShotClassifier(pretrained=blob_model).fit(X[novel], y[novel])
    display = MetaTrainingDisplay.from_estimator(clf)
    np.testing.assert_allclose(
        display.lines_["loss"].get_ydata(), _column(blob_model.history, "loss")
    )


# -- EpisodicScoreDisplay ------------------------------------------------------


def _band_vertices(band):
    return {tuple(np.round(v, 9)) for v in band.get_paths()[0].vertices}


def test_scores_lines_and_bands():
    scores = {"a": [(0.5, 0.1), (0.7, 0.05)], "b": [(0.4, 0.02), (0.9, 0.01)]}
    display = EpisodicScoreDisplay.from_scores(scores, x=[1, 5])
    assert [line.get_label() for line in display.lines_] == ["a", "b"]
    for (name, points), line, band in zip(
        scores.items(), display.lines_, display.fill_between_, strict=True
    ):
        means, halves = np.array(points).T
        np.testing.assert_array_equal(line.get_xdata(), [1, 5])
        np.testing.assert_array_equal(line.get_ydata(), means)
        assert band.get_facecolor()[0][:3] == pytest.approx(
            matplotlib.colors.to_rgb(line.get_color())
        ), name
        vertices = _band_vertices(band)
        for x, mean, half in zip([1, 5], means, halves, strict=True):
            assert (x, round(mean - half, 9)) in vertices
            assert (x, round(mean + half, 9)) in vertices
    assert display.ax_.get_xlabel() == "Shots per class (k_shot)"
    assert display.ax_.get_ylabel() == "Accuracy"
    assert list(display.ax_.get_xticks()) == [1, 5]

    no_bands = EpisodicScoreDisplay.from_scores(scores, x=[1, 5], ci=False)
    assert no_bands.fill_between_ is None


def test_from_estimators_plots_episodic_score(blobs):
    X, y = blobs
    estimators = {"1-NN": KNeighborsClassifier(1), "3-NN": KNeighborsClassifier(3)}
    _, ax = plt.subplots()
    display = EpisodicScoreDisplay.from_estimators(
        estimators,
        X,
        y,
        k_shot=[1, 3],
        n_query=5,
        n_episodes=10,
        random_state=0,
        ax=ax,
    )
    assert display.ax_ is ax and display.x_name == "k_shot"
    for row, (name, estimator) in enumerate(estimators.items()):
        for col, k in enumerate([1, 3]):
            expected = episodic_score(
                estimator, X, y, k_shot=k, n_query=5, n_episodes=10, random_state=0
            )
            assert display.means[row, col] == pytest.approx(expected.mean), name
            assert display.ci95[row, col] == pytest.approx(expected.ci95), name
        np.testing.assert_array_equal(
            display.lines_[row].get_ydata(), display.means[row]
        )
    assert len(display.fill_between_) == 2


def test_from_estimators_passes_groups_to_episodic_score(blobs):
    X, y = blobs
    groups = y % 3  # 8 classes in each group
    knn = KNeighborsClassifier(1)
    display = EpisodicScoreDisplay.from_estimators(
        {"1-NN": knn}, X, y, n_way=[4, 6], n_query=5, n_episodes=10,
        random_state=0, groups=groups,
    )  # fmt: skip
    for col, n_way in enumerate([4, 6]):
        within = episodic_score(
            knn, X, y, n_way=n_way, n_query=5, n_episodes=10, random_state=0,
            groups=groups,
        )  # fmt: skip
        assert display.means[0, col] == pytest.approx(within.mean)
    with pytest.raises(ValueError, match="no group has 9 classes"):
        EpisodicScoreDisplay.from_estimators(
            {"1-NN": knn}, X, y, n_way=9, n_query=5, n_episodes=2, groups=groups
        )


def test_from_estimators_over_ways_with_a_meta_trained_model(blobs, blob_model):
    X, y = blobs
    novel = y >= 16
    same = FewShotClassifier(pretrained=blob_model)
    display = EpisodicScoreDisplay.from_estimators(
        {"protonet": same, "protonet again": same},
        X[novel],
        y[novel],
        n_way=[2, 4],
        k_shot=1,
        n_query=3,
        n_episodes=5,
    )
    assert display.x_name == "n_way" and list(display.x) == [2, 4]
    assert display.ax_.get_xlabel() == "Classes per episode (n_way)"
    # random_state=None still gives every estimator the same episodes
    np.testing.assert_array_equal(display.means[0], display.means[1])


def test_from_estimators_refuses(blobs, plain):
    X, y = blobs
    knn = {"1-NN": KNeighborsClassifier(1)}
    with pytest.raises(ValueError, match="not both"):
        EpisodicScoreDisplay.from_estimators(knn, X, y, k_shot=[1, 2], n_way=[2, 3])
    with pytest.raises(TypeError, match="map names to estimators"):
        EpisodicScoreDisplay.from_estimators([KNeighborsClassifier(1)], X, y)
    with pytest.raises(ValueError, match=r"pretrained=estimator\.meta_model_"):
        EpisodicScoreDisplay.from_estimators({"p": plain}, X, y)
    with pytest.raises(ValueError, match="no pretrained model"):
        EpisodicScoreDisplay.from_estimators({"p": FewShotClassifier()}, X, y)
    for shots in ([1.5, 2], [], [0, 1]):  # plotted where they were not scored
        with pytest.raises(ValueError, match="k_shot must be a positive int"):
            EpisodicScoreDisplay.from_estimators(knn, X, y, k_shot=shots)


def test_from_scores_refuses():
    with pytest.raises(ValueError, match="2 scores for the 3 points"):
        EpisodicScoreDisplay.from_scores({"a": [(0.5, 0.1)] * 2}, x=[1, 2, 3])
    with pytest.raises(ValueError, match="EpisodicScore or a"):
        EpisodicScoreDisplay.from_scores({"a": [0.5, 0.6]}, x=[1, 2])
    with pytest.raises(TypeError, match="scores must map"):
        EpisodicScoreDisplay.from_scores([(0.5, 0.1)], x=[1])
    with pytest.raises(ValueError, match="at least one method and one point"):
        EpisodicScoreDisplay.from_scores({}, x=[1, 5])
    display = EpisodicScoreDisplay(
        x=[1, 2], means=[[0.5, 0.6]], ci95=[[0.1]], names=["a"]
    )
    with pytest.raises(ValueError, match="ci95 has shape"):
        display.plot()
