"""The annotations users' type checkers read (the package ships ``py.typed``):
correct user code passes ``mypy --strict``, wrong code fails. Runs only where
mypy is installed; torch and the other heavy libraries are skipped (Any), so
the check takes seconds."""

from pathlib import Path

import pytest

import skmeta

api = pytest.importorskip("mypy.api")

CONFIG = """\
[mypy]
strict = True
follow_imports = silent
ignore_missing_imports = True
mypy_path = {root}
[mypy-torch.*,scipy.*,matplotlib.*,PIL.*,safetensors.*,tqdm.*,joblib.*]
follow_imports = skip
"""

# NDArray[Any] rather than a bare np.ndarray: under --strict, mypy flags the
# bare form with numpy 1.24's stubs (type-arg), not with numpy 2.4's.
GOOD = """\
from typing import Any

from numpy.typing import NDArray
from sklearn.utils import Bunch

import skmeta
from skmeta import EpisodicSplit, FewShotClassifier, MetaFeatureExtractor, MetaModel
from skmeta import FewShotRegressor, TaskSplit, episodic_score
from skmeta.cli import main
from skmeta.datasets import load_image_folder, load_omniglot, make_glyphs
from skmeta.datasets import make_sinusoid_tasks
from skmeta.model_selection import EpisodicScore

X, y = make_glyphs(5, 3, random_state=0)
X3, y3, chars = make_glyphs(5, 3, return_characters=True)
first: str = chars[0]
Xs, ys, groups = make_sinusoid_tasks(3, 5)
Xp, yp, gp, amplitude, phase = make_sinusoid_tasks(3, 5, return_params=True)
folder: Bunch = load_image_folder("imgs", image_size=32)
Xi, yi = load_image_folder("imgs", return_X_y=True)
rows: NDArray[Any] = load_omniglot(data_home=None).data
Xo, yo = load_omniglot(return_X_y=True)

clf: FewShotClassifier = FewShotClassifier(max_iter=5).fit(X, y)
labels: NDArray[Any] = clf.predict(X)
proba: NDArray[Any] = clf.predict_proba(X)
accuracy: float = clf.score(X, y)
model: MetaModel = clf.meta_model_
ext: MetaFeatureExtractor = MetaFeatureExtractor(pretrained=model).fit(X)
reg: FewShotRegressor = FewShotRegressor().fit(Xs, ys, groups=groups)
predicted: NDArray[Any] = reg.predict(Xs)
cv = EpisodicSplit(n_way=2, k_shot=1, n_query=1, n_episodes=3, random_state=0)
for support, query in cv.split(X, y):
    picked: NDArray[Any] = X[support]
result: EpisodicScore = episodic_score(clf, X, y, cv=cv, n_jobs=None)
mean: float = result.mean
task = episodic_score(reg, Xs, ys, cv=TaskSplit(k_shot=2), groups=groups)

loaded: MetaModel = MetaModel.load(Path("model.safetensors"))
loaded.save(Path("copy.safetensors"))
width: int = loaded.with_feature_names(["a", "b"]).embedding_dim
noted: MetaModel = loaded.with_evaluation(result, task="2-way 1-shot")
status: int = main(("info", "model.safetensors"))
version: str = skmeta.__version__
"""

BAD = """\
import skmeta
from skmeta import MetaModel
from skmeta.datasets import make_glyphs

X, y, chars = make_glyphs(5, 3)
skmeta.FewShotClasifier
name: str = MetaModel.load("model.safetensors").embedding_dim
"""


def test_user_code_is_checked_as_documented(tmp_path):
    """One mypy run over both scripts: the good one clean, each line of the
    bad one an error."""
    root = Path(skmeta.__file__).parent.parent  # this checkout's skmeta
    config = tmp_path / "mypy.ini"
    config.write_text(CONFIG.format(root=root), encoding="utf-8")
    scripts = []
    for name, source in (("good.py", GOOD), ("bad.py", BAD)):
        scripts.append(tmp_path / name)
        scripts[-1].write_text("from pathlib import Path\n" + source, encoding="utf-8")
    out, err, status = api.run(
        [*map(str, scripts), "--config-file", str(config), "--cache-dir", str(tmp_path)]
    )
    errors = [line for line in (out + err).splitlines() if ": error:" in line]
    assert not [line for line in errors if "good.py" in line], out + err
    # line numbers count the Path import put first in each script
    for line, code in ((6, "misc"), (7, "attr-defined"), (8, "assignment")):
        assert any(
            f"bad.py:{line}: error:" in e and e.endswith(f"[{code}]") for e in errors
        ), out + err
    assert status == 1
