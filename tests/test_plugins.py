"""Methods from other distributions: the ``skmeta.methods`` entry points.

Each test installs small distributions in a folder (a package and its
``.dist-info`` with ``entry_points.txt``, as pip would) and runs Python in a
fresh process with that folder on ``PYTHONPATH``: the loader is the real
``importlib.metadata`` one, in every process that imports skmeta.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np

PLUGIN = '''
"""A method from outside skmeta: ProtoNet under another name."""
import skmeta.meta.algorithms  # the registry loads this module from its end
from skmeta.meta.algorithms import Algorithm
from skmeta.meta.algorithms.protonet import ProtoNet


class ShiftedCosine(ProtoNet):
    name = "shifted_cosine"
    summary = "ProtoNet under another name (a plugin)"


assert issubclass(ShiftedCosine, Algorithm)
'''


def install(site, package, source, entry_points, version="0.1"):
    """Write package `package` (its ``__init__.py`` is `source`) and its
    distribution's metadata, with `entry_points` in group skmeta.methods."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
    )
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[skmeta.methods]\n{lines}")


def run(code, site=None, argv=None, **env):
    """Run ``python -c code`` (or `argv`) with `site` on PYTHONPATH; returns
    the finished process."""
    paths = [str(site)] if site is not None else []
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    environ |= {"SKMETA_PLUGINS": "1", **env}  # on, whatever the suite runs with
    command = argv or [sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(command, env=environ, capture_output=True, text=True)


def checked(done):
    assert done.returncode == 0, done.stderr
    return done


def test_a_plugin_method_works_in_every_process(tmp_path):
    site = tmp_path / "site"
    install(site, "myplugin", PLUGIN, {"shifted_cosine": "myplugin:ShiftedCosine"})
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(80, 4)) + np.repeat(np.arange(8), 10)[:, None]) * 2
    y = np.repeat(np.arange(8), 10)
    np.savez(tmp_path / "rows.npz", X=X.astype(np.float32), y=y)
    model = tmp_path / "plugin.safetensors"
    # The plugin's module imported first: it imports skmeta before its class
    # exists. Then meta-training, and a search in loky worker processes,
    # which import skmeta (and so the plugin) afresh.
    done = checked(
        run(
            f"""
            import warnings
            warnings.simplefilter("error")
            import myplugin
            import numpy as np
            from sklearn.model_selection import GridSearchCV
            from skmeta import EpisodicSplit, FewShotClassifier, available_methods
            from skmeta.meta.algorithms import ALGORITHMS

            assert ALGORITHMS["shifted_cosine"] is myplugin.ShiftedCosine
            assert "shifted_cosine" in available_methods()
            data = np.load({str(tmp_path / "rows.npz")!r})
            X, y = data["X"], data["y"]
            clf = FewShotClassifier(
                method="shifted_cosine", max_iter=3, n_way=3, k_shot=2, n_query=2,
                random_state=0, verbose=0,
            ).fit(X[y < 5], y[y < 5])
            clf.meta_model_.save({str(model)!r})
            search = GridSearchCV(
                FewShotClassifier(pretrained=clf.meta_model_, method="shifted_cosine"),
                {{"method": ["shifted_cosine"]}},
                cv=EpisodicSplit(n_way=3, k_shot=2, n_query=3, n_episodes=2,
                                 random_state=0),
                n_jobs=2,
            ).fit(X[y >= 5], y[y >= 5])
            print("score", search.best_score_)
            """,
            site,
        )
    )
    assert "score" in done.stdout
    # The command line: the method among --method's choices, in a fresh process.
    cli_model = tmp_path / "cli.safetensors"
    argv = [sys.executable, "-m", "skmeta", "train", str(tmp_path / "rows.npz")]
    argv += ["--method", "shifted_cosine", "--out", str(cli_model)]
    checked(run("", site, argv + ["--max-iter", "2", "--n-way", "3", "--quiet"]))
    # Loading in a fresh process, with the plugin installed: the file and
    # `skmeta info` say where the method came from.
    done = checked(
        run(
            f"""
            from skmeta import MetaModel
            from skmeta.cli import main

            for path in ({str(model)!r}, {str(cli_model)!r}):
                assert MetaModel.load(path).method == "shifted_cosine"
                main(["info", path])
            main(["info"])
            """,
            site,
        )
    )
    assert done.stdout.count("plugin:       myplugin 0.1 (skmeta.methods:") == 2
    assert "plugin:       shifted_cosine from myplugin 0.1" in done.stdout
    # Without the plugin: the error names the method, its distribution and
    # the entry point group.
    done = run(f"from skmeta import MetaModel; MetaModel.load({str(model)!r})")
    assert done.returncode == 1
    message = done.stderr.strip().splitlines()[-1]
    assert "needs the method 'shifted_cosine'" in message
    assert "entry point group 'skmeta.methods'" in message
    assert "distribution myplugin 0.1" in message


BROKEN = """
import no_such_module_anywhere
"""

IMPOSTORS = """
from skmeta.meta.algorithms.protonet import ProtoNet


class Clash(ProtoNet):
    name = "protonet"


class Misnamed(ProtoNet):
    name = "something_else"


def not_a_class():
    pass
"""


def test_invalid_plugins_are_skipped_with_a_warning_each(tmp_path):
    site = tmp_path / "site"
    install(site, "brokenplugin", BROKEN, {"broken": "brokenplugin:Method"})
    install(
        site,
        "impostors",
        IMPOSTORS,
        {
            "protonet": "impostors:Clash",
            "misnamed": "impostors:Misnamed",
            "function": "impostors:not_a_class",
        },
        version="2.0",
    )
    install(site, "myplugin", PLUGIN, {"shifted_cosine": "myplugin:ShiftedCosine"})
    code = textwrap.dedent(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import skmeta
            from skmeta.meta.algorithms import ALGORITHMS
            from skmeta.meta.algorithms.protonet import ProtoNet
        for w in caught:
            print(w.category.__name__, w.message)
        assert ALGORITHMS["protonet"] is ProtoNet
        assert "misnamed" not in ALGORITHMS and "function" not in ALGORITHMS
        print("methods", sorted(set(ALGORITHMS) - {"protonet"})[-3:])
        skmeta.FewShotClassifier(method="shifted_cosine")._validate_params()
        """
    )
    done = checked(run(code, site))
    lines = done.stdout.splitlines()
    warned = [line for line in lines if line.startswith("PluginWarning")]
    assert len(warned) == 4, done.stdout
    text = "\n".join(warned)
    assert (
        "'broken = brokenplugin:Method' in group 'skmeta.methods') of distribution "
        "brokenplugin 0.1: it failed to import: ModuleNotFoundError" in text
    )
    assert "pip uninstall brokenplugin" in text and "SKMETA_PLUGINS=0" in text
    assert "impostors 2.0: a plugin may not replace the built-in method" in text
    assert "its class's name is 'something_else', not the entry point's" in text
    assert "is not a subclass of Algorithm" in text
    assert "'shifted_cosine'" in lines[-1]  # the valid one still loads
    # The switch: no plugin is imported, nothing warns.
    code += "\nassert 'myplugin' not in __import__('sys').modules"
    done = run(code.replace("shifted_cosine", "protonet"), site, SKMETA_PLUGINS="0")
    assert checked(done).stdout.splitlines() == [
        "methods ['relation', 'reptile', 'rfs']"
    ]


ESTIMATORS_FIRST = '''
"""A plugin package whose module imports skmeta's estimators before it
defines its method (the method's constraint is then built without it)."""
from skmeta import FewShotClassifier
from skmeta.meta.algorithms.protonet import ProtoNet


class Late(ProtoNet):
    name = "late"
    summary = "ProtoNet under another name, defined after the estimators' import"
'''


def test_a_plugin_importing_the_estimators_first_is_a_method_option(tmp_path):
    site = tmp_path / "site"
    install(site, "lateplugin", ESTIMATORS_FIRST, {"late": "lateplugin:Late"})
    checked(
        run(
            """
            import warnings
            warnings.simplefilter("error")
            import lateplugin
            import numpy as np
            from skmeta import FewShotClassifier, available_methods
            X = np.repeat(np.arange(4.0), 6)[:, None] + np.zeros((24, 3))
            y = np.repeat(np.arange(4), 6)
            FewShotClassifier(method="late", max_iter=2, n_way=2).fit(X, y)
            assert "late" in available_methods()
            """,
            site,
        )
    )


ALIASED = '''
"""A plugin package that imports skmeta's estimators first and names its
method by an alias in its entry point; a second entry point names a class
its module never defines."""
from skmeta import FewShotClassifier
from skmeta.meta.algorithms.protonet import ProtoNet


class Real(ProtoNet):
    name = "aliased"
    summary = "ProtoNet under another name, its entry point naming an alias"


Alias = Real
'''


def test_a_pending_alias_is_registered_and_a_missing_class_warns(tmp_path):
    site = tmp_path / "site"
    points = {"aliased": "aliasplugin:Alias", "ghost": "aliasplugin:Ghost"}
    install(site, "aliasplugin", ALIASED, points)
    done = checked(
        run(
            """
            import warnings
            import aliasplugin
            import numpy as np
            from skmeta import FewShotClassifier, available_methods
            from skmeta.meta.algorithms.plugins import PLUGINS
            X = np.repeat(np.arange(4.0), 6)[:, None] + np.zeros((24, 3))
            y = np.repeat(np.arange(4), 6)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                FewShotClassifier(method="aliased", max_iter=2, n_way=2).fit(X, y)
                methods = available_methods()
            assert "aliased" in methods and "ghost" not in methods
            assert PLUGINS["aliased"].distribution == "aliasplugin"
            for w in caught:
                print(w.category.__name__, w.message)
            """,
            site,
        )
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 1, lines  # the missing class warns once
    assert lines[0].startswith("PluginWarning") and "'ghost'" in lines[0]
    assert "its module aliasplugin defines no 'Ghost'" in lines[0]
