"""``--transductive`` of ``skmeta predict`` and ``skmeta evaluate``: the query
rows labelled jointly with the support set."""

import json
import shutil

import numpy as np
import pytest
from scipy.special import softmax

from skmeta import EpisodicSplit, FewShotClassifier
from skmeta._cli_data import load_dataset, load_unlabelled_images
from skmeta.cli import _parser, main
from skmeta.meta.model import MetaModel
from skmeta.meta.transductive import TRANSDUCTIVE


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory):
    """8 classes of 6 grey 28x28 glyph PNGs, a trained model file, and a
    3-class support folder with a query folder of 2 other images per class."""
    from _cli_models import glyph_folder_and_model

    root = tmp_path_factory.mktemp("cli_transductive")
    glyph_folder_and_model(root, max_iter=5)
    (root / "query").mkdir()
    for name in sorted(p.name for p in (root / "data").iterdir())[:3]:
        files = sorted((root / "data" / name).iterdir())
        (root / "support" / name).mkdir(parents=True)
        for file in files[:2]:
            shutil.copy(file, root / "support" / name / file.name)
        for file in files[2:4]:
            shutil.copy(file, root / "query" / f"{name}_{file.name}")
    return root


def _printed(out: str):
    lines = out.strip().splitlines()
    assert lines[0] == "file,label,probability"
    rows = [line.split(",") for line in lines[1:]]
    return [r[0] for r in rows], [r[1] for r in rows], [float(r[2]) for r in rows]


@pytest.mark.parametrize("method", list(TRANSDUCTIVE))
def test_predict_labels_the_query_images_jointly(image_tree, capsys, method):
    model = str(image_tree / "model.safetensors")
    argv = ["predict", model, "--support", str(image_tree / "support")]
    argv += ["--query", str(image_tree / "query"), "--transductive", method]
    capsys.readouterr()
    assert main(argv) == 0
    names, labels, probabilities = _printed(capsys.readouterr().out)
    # the same fit in Python: the query images are the unlabelled rows
    meta_model = MetaModel.load(model)
    options = dict(image_size=(28, 28), color="grey")
    support = load_dataset(image_tree / "support", **options)
    query = load_unlabelled_images(image_tree / "query", meta_model.input_shape)
    X = np.vstack([support.X, query.X])
    y = np.concatenate([support.y.astype(object), np.full(len(query.X), -1)])
    clf = FewShotClassifier(pretrained=meta_model, transductive=method).fit(X, y)
    assert names == query.names.tolist() and len(names) == 6
    assert labels == clf.transduction_[len(support.X) :].tolist()
    expected = softmax(clf.adapted_["unlabelled_scores"].numpy(), axis=1).max(1)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)
    assert set(labels) <= set(support.y)


def test_evaluate_fits_each_episode_on_its_queries_too(image_tree, capsys):
    model, data = str(image_tree / "model.safetensors"), str(image_tree / "data")
    argv = ["evaluate", model, data, "--n-way", "3", "--n-query", "2"]
    argv += ["--n-episodes", "5", "--seed", "3", "--json"]
    capsys.readouterr()
    assert main([*argv, "--transductive", "bdcspn"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "3-way 1-shot, transductive bdcspn"
    # each episode by hand: support and queries in one fit, queries as -1
    dataset = load_dataset(data, image_size=(28, 28), color="grey")
    X, y = dataset.X, dataset.y
    meta_model = MetaModel.load(model)
    scores = []
    for support, query in EpisodicSplit(3, 1, 2, 5, random_state=3).split(X, y):
        rows = np.concatenate([support, query])
        labels = np.concatenate([y[support].astype(object), np.full(len(query), -1)])
        clf = FewShotClassifier(pretrained=meta_model, transductive="bdcspn")
        clf.fit(X[rows], labels)
        scores.append(np.mean(clf.transduction_[len(support) :] == y[query]))
    assert result["mean"] == pytest.approx(np.mean(scores))
    assert result["ci95"] == pytest.approx(1.96 * np.std(scores, ddof=1) / np.sqrt(5))


def test_transductive_flags_refuse_what_does_not_apply(image_tree, capsys):
    model = str(image_tree / "model.safetensors")
    argv = ["predict", model, "--support", str(image_tree / "support")]
    argv += ["--query", str(image_tree / "query"), "--transductive", "tim"]
    assert main([*argv, "--unknown-label", "none"]) == 2
    assert "--unknown-label does not apply with --transductive tim" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit) as exit_:
        main([*argv[:-1], "nope"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_transductive_help_names_every_method_from_the_docstring(command):
    parser = _parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    (action,) = [a for a in sub._actions if "--transductive" in a.option_strings]
    assert list(action.choices) == list(TRANSDUCTIVE)
    for name in TRANSDUCTIVE:
        assert f'"{name}"' in action.help  # each described, as in the docstring
    assert "prototype rectification (Liu et al. 2020)" in action.help
