"""Loader for the Omniglot data set (NumPy copy or the official zips)."""

from __future__ import annotations

import functools
import io
import numbers
import os
import re
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Literal, overload

import numpy as np
from PIL import Image
from sklearn.utils import Bunch

from ._ink_box import ink_box as _ink_box

__all__ = ["load_omniglot"]

_SPLITS = ("background", "evaluation")
_URL = "https://github.com/brendenlake/omniglot/raw/master/python/images_{}.zip"
_DESCR = """\
Omniglot
--------
1623 handwritten characters from 50 alphabets, each drawn once by 20 people
(background split: 964 characters of 30 alphabets; evaluation split: 659
characters of 20 alphabets). Images are grey levels with ink high (1) on paper
(0), Lanczos-resampled from the 105x105 1-bit originals. ``target`` is the
character, ``groups`` the alphabet.

Lake, Salakhutdinov & Tenenbaum, "Human-level concept learning through
probabilistic program induction", Science 350(6266):1332-1338, 2015.
Data: https://github.com/brendenlake/omniglot (MIT license).
"""


def _data_home(data_home: str | os.PathLike | None) -> Path:
    if data_home is None:
        data_home = os.environ.get("SKMETA_DATA") or Path("~") / "skmeta_data"
    return Path(os.path.expanduser(data_home))


def _candidates(
    home: Path, split: str, image_size: int, original: bool = False
) -> list[tuple[str, Path]]:
    """Places to look, best first: (kind, path) with kind npz, zip or folder;
    the 28x28 copy only for ``image_size=28`` and not `original`."""
    roots = (home, home / "omniglot")
    names = [("npz", f"{split}_105.npz"), ("zip", f"images_{split}.zip")]
    names.append(("folder", f"images_{split}"))
    if image_size == 28 and not original:
        names.insert(0, ("npz", f"{split}.npz"))
    return [(kind, root / name) for kind, name in names for root in roots]


def _find(
    home: Path, split: str, image_size: int, original: bool = False
) -> tuple[str, Path] | None:
    for kind, path in _candidates(home, split, image_size, original):
        if path.is_dir() if kind == "folder" else path.is_file():
            return kind, path
    return None


def _not_found(
    home: Path, split: str, image_size: int, original: bool = False
) -> FileNotFoundError:
    candidates = _candidates(home, split, image_size, original)
    tried = "\n".join(f"  {p}" for _, p in candidates)
    msg = (
        f"Omniglot split {split!r} (image_size={image_size}) not found. "
        f"Looked at:\n{tried}\n"
    )
    small = (home / f"{split}.npz", home / "omniglot" / f"{split}.npz")
    if (image_size != 28 or original) and any(p.is_file() for p in small):
        needs = "ink_box" if image_size == 28 else f"image_size={image_size}"
        msg += (
            f"(a 28x28 {split}.npz is there, but {needs} needs "
            "the 105x105 source: "
            f"{split}_105.npz, images_{split}.zip or images_{split}/.)\n"
        )
    msg += (
        f"Get the official zip {_URL.format(split)} into {home} or "
        f"{home / 'omniglot'} (no need to extract it), or pass download=True, "
        "or point data_home / the SKMETA_DATA environment variable at a folder "
        "that holds it."
    )
    return FileNotFoundError(msg)


def _download(home: Path, split: str) -> Path:
    url = _URL.format(split)
    folder = home / "omniglot"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"images_{split}.zip"
    fd, tmp = tempfile.mkstemp(prefix=f".images_{split}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as r:
            while chunk := r.read(1 << 20):
                out.write(chunk)
        if not zipfile.is_zipfile(tmp):
            raise OSError(f"the file downloaded from {url} is not a zip archive")
        os.replace(tmp, target)
    except OSError as exc:  # urllib.error.URLError is an OSError
        Path(tmp).unlink(missing_ok=True)
        raise ConnectionError(
            f"Could not download Omniglot {split!r} from {url}: {exc}. Fetch it by "
            f"hand into {folder} (or {home}) and call again without download=True."
        ) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


#: The official file names, ``<character id>_<drawer>.png``.
_DRAWER = re.compile(r"\d+_(\d+)\.png", re.IGNORECASE)


def _decode_png(raw: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(raw)) as img:
        return 255 - np.asarray(img.convert("L"), dtype=np.uint8)  # ink high


@functools.lru_cache(maxsize=2)
def _read_official(path: str, _stamp: tuple[int, int]) -> dict:
    """Decode an official zip or extracted folder (cached on path and mtime)."""
    if os.path.isdir(path):
        pngs = Path(path).glob("*/*/*.png")
        return _assemble({p.relative_to(path).as_posix(): p.read_bytes for p in pngs})
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.lower().endswith(".png")]
        return _assemble({n: functools.partial(zf.read, n) for n in names})


def _assemble(readers: dict) -> dict:
    """Order images by (character name, file name); characters sorted by name."""
    items = []
    for name, reader in readers.items():
        *_, alphabet, char, file = ["", "", *name.split("/")]
        if alphabet and not file.startswith(".") and "__MACOSX" not in name:
            items.append((f"{alphabet}/{char}", file, reader))
    if not items:
        raise OSError("no Alphabet/characterNN/*.png images found")
    items.sort(key=lambda t: t[:2])
    characters = sorted({c for c, _, _ in items})
    alphabets = sorted({c.split("/")[0] for c in characters})
    char_index = {c: i for i, c in enumerate(characters)}
    labels = np.array([char_index[c] for c, _, _ in items], dtype=np.int64)
    alpha_of_char = [alphabets.index(c.split("/")[0]) for c in characters]
    drawers = [_DRAWER.fullmatch(file) for _, file, _ in items]
    out = {
        "images": np.stack([_decode_png(reader()) for _, _, reader in items]),
        "labels": labels,
        "alphabet": np.array(alpha_of_char, dtype=np.int64)[labels],
        "alphabet_names": np.array(alphabets),
        "character_names": np.array(characters),
    }
    if all(drawers):  # official names, XXXX_YY.png: YY is who drew it
        out["drawer"] = np.array([int(m[1]) for m in drawers], dtype=np.int64)
    for arr in out.values():
        arr.flags.writeable = False
    return out


def _read_source(kind: str, path: Path) -> dict:
    """Raw arrays: uint8 ``images`` (n, H, W) ink high, labels, alphabet, names."""
    if kind == "npz":
        with np.load(path) as f:
            keys = ("images", "labels", "alphabet", "alphabet_names")
            out = {k: f[k] for k in (*keys, "character_names")}
            if "drawer" in f.files:
                out["drawer"] = f["drawer"]
            return out
    stat = path.stat()
    return _read_official(str(path), (stat.st_mtime_ns, stat.st_size))


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Lanczos (antialiased) resampling of uint8 images to ``size x size``."""
    if images.shape[1:] == (size, size):
        return images
    lanczos = Image.Resampling.LANCZOS
    out = np.empty((len(images), size, size), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).resize((size, size), lanczos))
    return out


def _ink_box_share(ink_box) -> float | None:
    """``load_omniglot``'s `ink_box` as :func:`ink_box`'s ``box`` (None: off)."""
    if isinstance(ink_box, bool | np.bool_):
        return 20 / 28 if ink_box else None
    if isinstance(ink_box, numbers.Real) and 0 < ink_box <= 1:
        return float(ink_box)
    raise ValueError(f"ink_box must be a bool or a float in (0, 1], got {ink_box!r}")


@overload
def load_omniglot(
    split: str = ...,
    *,
    data_home: str | os.PathLike | None = ...,
    image_size: int = ...,
    ink_box: bool | float = ...,
    ink_aspect: str = ...,
    return_X_y: Literal[False] = ...,
    download: bool = ...,
) -> Bunch: ...
@overload
def load_omniglot(
    split: str = ...,
    *,
    data_home: str | os.PathLike | None = ...,
    image_size: int = ...,
    ink_box: bool | float = ...,
    ink_aspect: str = ...,
    return_X_y: Literal[True],
    download: bool = ...,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def load_omniglot(
    split: str = ...,
    *,
    data_home: str | os.PathLike | None = ...,
    image_size: int = ...,
    ink_box: bool | float = ...,
    ink_aspect: str = ...,
    return_X_y: bool,
    download: bool = ...,
) -> Bunch | tuple[np.ndarray, np.ndarray]: ...
def load_omniglot(
    split: str = "background",
    *,
    data_home: str | os.PathLike | None = None,
    image_size: int = 28,
    ink_box: bool | float = False,
    ink_aspect: str = "keep",
    return_X_y: bool = False,
    download: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load the Omniglot handwritten characters (Lake et al., 2015).

    Reads, in this order of preference, from ``data_home`` or
    ``data_home/omniglot``: ``{split}.npz`` (28x28, used only when
    ``image_size=28``), ``{split}_105.npz``, the official ``images_{split}.zip``
    or its extracted folder ``images_{split}/``. Other sizes are Lanczos
    resampled from the 105x105 originals. Decoded zips and folders are cached
    in memory (not on disk).

    Parameters
    ----------
    split : {"background", "evaluation"}, default="background"
        The standard split: 964 characters of 30 alphabets for meta-training,
        659 characters of 20 alphabets for evaluation.
    data_home : str or path-like, default=None
        Folder holding the data. ``None`` means the ``SKMETA_DATA`` environment
        variable if set, else ``~/skmeta_data``.
    image_size : int, default=28
        Side of the square images returned.
    ink_box : bool or float, default=False
        Scale each character so that the larger side of its ink box fills
        this share of ``image_size`` (``True``: 20/28, as MNIST's digits),
        and centre it on its ink (:func:`skmeta.datasets.ink_box`); needs
        the 105x105 source. Models meta-trained on such images need them at prediction
        too: load both splits alike.

        .. versionadded:: 0.1
    ink_aspect : {"keep", "adaptive"}, default="keep"
        With ``ink_box``: ``"keep"`` scales both sides of the ink box alike;
        ``"adaptive"`` widens wide and tall characters along their short
        side (``ink_box(..., aspect="adaptive")``, Liu et al.'s aspect ratio
        adaptive normalisation), so a wide character is not left a few
        pixels high.

        .. versionadded:: 0.1
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    download : bool, default=False
        If the split is not found, download the official zip (about 9 MB for
        background) from GitHub into ``data_home/omniglot/``.

    Returns
    -------
    data : Bunch
        ``data`` : float32 ndarray of shape (n_images, image_size**2), ink high,
        values in [0, 1]. ``images`` : the same array viewed as shape
        (n_images, image_size, image_size). ``target`` : int64 ndarray of shape
        (n_images,), character label 0..n_characters-1 within the split.
        ``groups`` : int64 ndarray of shape (n_images,), alphabet index (for
        ``GroupKFold`` / ``GroupShuffleSplit``). ``alphabet_names`` : ndarray
        of str, shape (n_alphabets,). ``character_names`` : ndarray of str,
        shape (n_characters,), official ``Alphabet/characterNN`` folders.
        ``input_shape`` : ``(1, image_size, image_size)``. ``DESCR`` : str.
        ``drawer`` : int64 ndarray of shape (n_images,), who drew each image
        (1..20 within an alphabet, from the official file names), where the
        source records it; Lake et al.'s one-shot runs take the support from
        one drawer and the queries from another (``EpisodicSplit`` with
        ``groups=np.c_[groups, drawer]``).
    (data, target) : tuple of ndarray
        If ``return_X_y`` is True.

    Raises
    ------
    ValueError
        If ``split``, ``image_size``, ``ink_box`` or ``ink_aspect`` is
        invalid, or ``ink_aspect="adaptive"`` comes without ``ink_box``.
    FileNotFoundError
        If the split is absent and ``download`` is False; the message lists
        every path looked at.
    ConnectionError
        If ``download=True`` and the download fails.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    image_size = int(image_size)
    box = _ink_box_share(ink_box)
    if ink_aspect not in ("keep", "adaptive"):
        raise ValueError(f"ink_aspect must be 'keep' or 'adaptive', got {ink_aspect!r}")
    if ink_aspect == "adaptive" and box is None:
        raise ValueError("ink_aspect='adaptive' needs ink_box=True (or a share)")
    home = _data_home(data_home)
    found = _find(home, split, image_size, box is not None)
    if found is None:
        if not download:
            raise _not_found(home, split, image_size, box is not None)
        found = ("zip", _download(home, split))
    raw = _read_source(*found)
    if box is None:
        images = _resize(raw["images"], image_size)
    else:
        images = _ink_box(raw["images"], image_size, box=box, aspect=ink_aspect)
    data = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    target = np.array(raw["labels"], dtype=np.int64)  # copy: raw may be cached
    if return_X_y:
        return data, target
    extra = {}
    if "drawer" in raw:
        extra["drawer"] = np.array(raw["drawer"], dtype=np.int64)
    return Bunch(
        **extra,
        data=data,
        target=target,
        groups=np.array(raw["alphabet"], dtype=np.int64),
        images=data.reshape(-1, image_size, image_size),
        alphabet_names=np.array(raw["alphabet_names"], dtype=str),
        character_names=np.array(raw["character_names"], dtype=str),
        input_shape=(1, image_size, image_size),
        DESCR=_DESCR,
    )
