"""Progress bars in log files: a bar written to a file or a pipe updates at
most once a minute (tqdm's carriage-return updates made one line grow by
about a kilobyte a second in a batch job's log); a terminal keeps its bar."""

import sys

import numpy as np
import pytest

from skmeta._tqdm_streams import LOG_INTERVAL, interactive, tqdm_options


class _Terminal:
    def isatty(self):
        return True

    def write(self, text):
        pass

    def flush(self):
        pass


def test_a_terminal_keeps_tqdms_bar_and_a_log_file_gets_few_lines(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert interactive(sys.stderr) and tqdm_options() == {}
    with open(__file__) as file:  # a file, as a batch job's stderr
        monkeypatch.setattr(sys, "stderr", file)
        assert not interactive(file)
        assert tqdm_options() == {"mininterval": LOG_INTERVAL}
    assert not interactive(file)  # closed
    assert not interactive(None)


def test_a_jupyter_kernels_output_keeps_the_bar(monkeypatch):
    """Without ipywidgets tqdm.auto falls back to the console bar, and
    ipykernel's OutStream says it is no terminal: the bars fell silent for a
    minute at a time in notebooks (a reviewer)."""
    OutStream = type("OutStream", (_Terminal,), {"isatty": lambda self: False})
    OutStream.__module__ = "ipykernel.iostream"
    monkeypatch.setattr(sys, "stderr", OutStream())
    assert interactive(sys.stderr) and tqdm_options() == {}


def test_decoding_an_image_folder_into_a_log_writes_two_lines(
    tmp_path, capsys, monkeypatch
):
    """300 images decoded in 1.5 s, each update of the bar kept by the log:
    one every 0.1 s before, the first and the last now."""
    import time

    Image = pytest.importorskip("PIL.Image")
    from skmeta import _image_folder
    from skmeta.datasets import load_image_folder

    decode = _image_folder.decode_image

    def slow(*args, **kwargs):
        time.sleep(0.005)
        return decode(*args, **kwargs)

    monkeypatch.setattr(_image_folder, "decode_image", slow)

    rng = np.random.default_rng(0)
    for c in range(3):
        (tmp_path / f"c{c}").mkdir()
        for i in range(100):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / f"c{c}" / f"{i}.png")
    capsys.readouterr()
    data = load_image_folder(tmp_path, image_size=(8, 8), color="grey", verbose=True)
    assert data.data.shape == (300, 64)
    err = capsys.readouterr().err
    assert "300/300" in err
    assert err.count("\r") <= 3, err.count("\r")
