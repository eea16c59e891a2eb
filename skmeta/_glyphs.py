"""An Omniglot-like synthetic data set rendered from the fonts shipped with matplotlib.

One class per Unicode character; each sample is the character drawn in a random
font face with random affine and elastic jitter and a random stroke width.
"""

from __future__ import annotations

import functools
import os
import unicodedata
from typing import Literal, overload

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.ft2font import FT2Font, LoadFlags
from scipy import ndimage

_FACES = (
    "DejaVuSans",  # first face: the reference used to deduplicate characters
    "DejaVuSans-Bold",
    "DejaVuSans-Oblique",
    "DejaVuSans-BoldOblique",
    "DejaVuSansMono",
    "DejaVuSansMono-Bold",
    "DejaVuSansMono-Oblique",
    "DejaVuSansMono-BoldOblique",
    "DejaVuSerif",
    "DejaVuSerif-Bold",
    "DejaVuSerif-Italic",
    "DejaVuSerif-BoldItalic",
    "STIXGeneral",
    "STIXGeneralBol",
    "STIXGeneralItalic",
    "STIXGeneralBolIta",
)
_CANVAS = 64  # side in pixels of the canonical glyph bitmaps
_FILL = 0.8  # largest glyph extent, as a fraction of the canvas side
_MIN_EM = 0.5  # glyphs smaller than this (in em) are not magnified further
_REF_CANVAS = 32  # canvas side of the renderings compared for deduplication
_DUP_TOL = 0.002  # mean squared pixel difference below which characters match
_MIN_INK = 0.01  # mean ink below which a rendering counts as empty
_BLUR = 1.2  # Gaussian blur (canvas pixels) before the stroke-width threshold
_RAMP = 0.2  # width of the soft threshold
_KNOTS = 4  # elastic field: _KNOTS x _KNOTS Gaussian bumps
_ELASTIC = 0.03  # standard deviation of the elastic bump amplitudes
_CHUNK = 1024  # samples warped per batch


@functools.cache
def _font(face: int) -> FT2Font:
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", _FACES[face])
    return FT2Font(path + ".ttf")


def _render(face: int, code: int, canvas: int) -> np.ndarray:
    """Render one character centred in a ``(canvas, canvas)`` uint8 bitmap.

    The glyph is scaled so that its larger extent spans ``_FILL * canvas``
    pixels, except that glyphs smaller than ``_MIN_EM`` em are magnified no more
    than a glyph of that size.
    """
    font = _font(face)
    font.set_size(64, 72)  # 72 dpi: one point is one pixel, the em is 64 px
    glyph = font.load_char(code, flags=LoadFlags.NO_HINTING)
    extent = max(glyph.width, glyph.height) / 64 / 64  # 26.6 fixed point -> em
    font.set_size(_FILL * canvas / max(extent, _MIN_EM), 72)
    font.set_text(chr(code), 0, flags=LoadFlags.NO_HINTING)
    font.draw_glyphs_to_bitmap(antialiased=True)
    img = np.asarray(font.get_image())
    out = np.zeros((canvas, canvas), np.uint8)
    rows, cols = np.nonzero(img)
    if rows.size:
        img = img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        img = img[:canvas, :canvas]
        r, c = (canvas - img.shape[0]) // 2, (canvas - img.shape[1]) // 2
        out[r : r + img.shape[0], c : c + img.shape[1]] = img
    return out


@functools.cache
def _candidates(min_faces: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Visually distinct characters found in at least ``min_faces`` faces.

    Characters must be in the reference face ``_FACES[0]``, whose normalised
    renderings are compared to drop empty glyphs and near-exact look-alikes.
    Returns ``(character, faces containing it)`` pairs in code point order.
    """
    faces_of: dict[int, list[int]] = {}
    for face in range(len(_FACES)):
        for code, glyph_index in _font(face).get_charmap().items():
            if glyph_index:
                faces_of.setdefault(code, []).append(face)
    codes = [
        code
        for code in sorted(faces_of)
        if len(faces_of[code]) >= min_faces
        and unicodedata.category(chr(code))[0] not in "ZCM"  # space, control, marks
        and faces_of[code][0] == 0
    ]
    if not codes:
        return ()
    refs = np.stack([_render(0, code, _REF_CANVAS) for code in codes])
    refs = refs.reshape(len(codes), -1).astype(np.float64) / 255
    sq = (refs**2).sum(1)
    dup = (sq[:, None] + sq[None, :] - 2 * refs @ refs.T) < _DUP_TOL * refs.shape[1]
    keep = refs.mean(1) >= _MIN_INK
    for i in range(len(codes)):  # keep the first character of each look-alike group
        if keep[i]:
            keep[i + 1 :] &= ~dup[i, i + 1 :]
    return tuple(
        (chr(code), tuple(faces_of[code]))
        for code, kept in zip(codes, keep, strict=True)
        if kept
    )


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _as_generator(random_state: object) -> np.random.Generator:
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**63 - 1, dtype=np.int64))
    return np.random.default_rng(random_state)


def _warp_coefficients(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random warps, as ``(n, 2, 2 + K, 2 + K)`` coefficients of :func:`_basis`.

    Block ``[:2, :2]`` holds the output-to-input affine map (rotation, shear,
    scale, aspect ratio, translation), block ``[2:, 2:]`` a smooth elastic field.
    """
    angle = np.deg2rad(rng.uniform(-12, 12, n))
    shear = rng.uniform(-0.25, 0.25, n)
    scale = rng.uniform(0.75, 1.05, n)
    aspect = np.exp(rng.uniform(-0.15, 0.15, n))
    shift = rng.uniform(-0.12, 0.12, (n, 2))
    cos, sin, zero, one = np.cos(angle), np.sin(angle), np.zeros(n), np.ones(n)
    rot = np.stack([cos, -sin, sin, cos], -1).reshape(n, 2, 2)
    shr = np.stack([one, shear, zero, one], -1).reshape(n, 2, 2)
    forward = rot @ shr * np.stack([scale * aspect, scale / aspect], -1)[:, None, :]
    inverse = np.linalg.inv(forward)  # rows: output (x, y) -> input x, input y
    coef = np.zeros((n, 2, 2 + _KNOTS, 2 + _KNOTS), np.float32)
    coef[:, :, 0, 0] = -(inverse @ shift[:, :, None])[:, :, 0]
    coef[:, :, 0, 1] = inverse[:, :, 0]
    coef[:, :, 1, 0] = inverse[:, :, 1]
    coef[:, :, 2:, 2:] = rng.normal(0.0, _ELASTIC, (n, 2, _KNOTS, _KNOTS))
    return coef


def _basis(side: int) -> torch.Tensor:
    """``(side, 2 + _KNOTS)`` basis over pixel centres: 1, coordinate, bumps."""
    x = (2 * np.arange(side) + 1) / side - 1
    knots = np.linspace(-1, 1, _KNOTS)
    bumps = np.exp(-0.5 * ((x[:, None] - knots) * (_KNOTS - 1) / 2) ** 2)
    return torch.as_tensor(
        np.column_stack([np.ones(side), x, bumps]), dtype=torch.float32
    )


def _warp(
    src: torch.Tensor, coef: np.ndarray, level: np.ndarray, image_size: int
) -> torch.Tensor:
    """Warp, threshold and downsample a batch of ``(b, 1, C, C)`` blurred glyphs."""
    factor = max(1, -(-_CANVAS // image_size))  # supersampling factor
    basis = _basis(image_size * factor)
    grid = basis @ torch.as_tensor(coef) @ basis.T  # (b, 2, side, side)
    img = F.grid_sample(src, grid.permute(0, 2, 3, 1), align_corners=False)
    offset = torch.as_tensor(0.5 - level / _RAMP, dtype=torch.float32)
    img = img.mul_(1 / _RAMP).add_(offset.view(-1, 1, 1, 1)).clamp_(0, 1)
    return F.avg_pool2d(img, factor).flatten(1)


_Seed = int | np.random.Generator | np.random.RandomState | None


@overload
def make_glyphs(
    n_classes: int = ...,
    n_samples_per_class: int = ...,
    image_size: int = ...,
    *,
    min_faces: int = ...,
    random_state: _Seed = ...,
    return_characters: Literal[False] = ...,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def make_glyphs(
    n_classes: int = ...,
    n_samples_per_class: int = ...,
    image_size: int = ...,
    *,
    min_faces: int = ...,
    random_state: _Seed = ...,
    return_characters: Literal[True],
) -> tuple[np.ndarray, np.ndarray, list[str]]: ...
@overload
def make_glyphs(
    n_classes: int = ...,
    n_samples_per_class: int = ...,
    image_size: int = ...,
    *,
    min_faces: int = ...,
    random_state: _Seed = ...,
    return_characters: bool,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, list[str]]: ...
def make_glyphs(
    n_classes: int = 1000,
    n_samples_per_class: int = 20,
    image_size: int = 28,
    *,
    min_faces: int = 10,
    random_state: _Seed = None,
    return_characters: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, list[str]]:
    """Generate an Omniglot-like few-shot data set of rendered Unicode characters.

    Each class is one Unicode character present in at least ``min_faces`` of the
    16 text faces shipped with matplotlib (DejaVu Sans/Serif/Mono and STIXGeneral,
    regular, bold, oblique/italic); visually identical characters (such as Latin
    ``A`` and Greek ``Α``) are merged. Each sample draws the character in a random
    face containing it, with a random affine warp (rotation, scale, shear,
    translation), a smooth elastic distortion and a random stroke width. Ink is
    bright (1.0) on a dark (0.0) background.

    Parameters
    ----------
    n_classes : int, default=1000
        Number of classes (characters), drawn at random without replacement.
    n_samples_per_class : int, default=20
        Number of images per class.
    image_size : int, default=28
        Side of the square images, in pixels (at least 8).
    min_faces : int, default=10
        Only characters present in at least this many of the 16 faces are used.
    random_state : int, numpy Generator or RandomState, default=None
        Selects the characters and all the jitter; an int gives identical
        output for the same versions of matplotlib (its fonts and
        rasteriser), NumPy and SciPy, and other pixels with others.
    return_characters : bool, default=False
        Also return the characters, ``characters[i]`` being class ``i``.

    Returns
    -------
    X : ndarray of shape (n_classes * n_samples_per_class, image_size**2)
        float32 images in [0, 1], each row a flattened ``(1, image_size,
        image_size)`` image, so ``input_shape=(1, image_size, image_size)``.
    y : ndarray of shape (n_classes * n_samples_per_class,)
        int64 labels ``0 .. n_classes - 1``, grouped by class in order.
    characters : list of str of length n_classes
        Only if ``return_characters``: the character of each class.

    Examples
    --------
    >>> from skmeta.datasets import make_glyphs
    >>> X, y, chars = make_glyphs(5, 3, random_state=0, return_characters=True)
    >>> X.shape, X.dtype, y.tolist()
    ((15, 784), dtype('float32'), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
    >>> len(set(chars)), float(X.min()) >= 0.0, float(X.max()) <= 1.0
    (5, True, True)
    """
    n_classes = _check_int("n_classes", n_classes, 1)
    n_per = _check_int("n_samples_per_class", n_samples_per_class, 1)
    image_size = _check_int("image_size", image_size, 8)
    min_faces = _check_int("min_faces", min_faces, 1)
    if min_faces > len(_FACES):
        raise ValueError(f"min_faces must be <= {len(_FACES)}, got {min_faces}")
    candidates = _candidates(min_faces)
    if n_classes > len(candidates):
        raise ValueError(
            f"n_classes={n_classes} exceeds the {len(candidates)} distinct characters "
            f"available with min_faces={min_faces}"
        )
    rng = _as_generator(random_state)
    chosen = [
        candidates[i] for i in rng.choice(len(candidates), n_classes, replace=False)
    ]
    n = n_classes * n_per
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per)
    n_faces = np.array([len(faces) for _, faces in chosen])
    faces = np.zeros((n_classes, len(_FACES)), np.int64)
    for i, (_, fs) in enumerate(chosen):
        faces[i, : len(fs)] = fs
    face = faces[y, (rng.random(n) * n_faces[y]).astype(np.int64)]
    coef = _warp_coefficients(rng, n)
    level = rng.uniform(0.25, 0.65, n)  # threshold: low = thick, high = thin strokes

    keys, inverse = np.unique(np.stack([y, face], 1), axis=0, return_inverse=True)
    bitmaps = np.stack([_render(int(f), ord(chosen[c][0]), _CANVAS) for c, f in keys])
    bitmaps = torch.as_tensor(ndimage.gaussian_filter(bitmaps, (0, _BLUR, _BLUR)))
    inverse = inverse.ravel()
    X = np.empty((n, image_size * image_size), np.float32)
    with torch.no_grad():
        for rows in (slice(s, s + _CHUNK) for s in range(0, n, _CHUNK)):
            src = bitmaps[inverse[rows]].unsqueeze(1).float().div_(255)
            X[rows] = _warp(src, coef[rows], level[rows], image_size).numpy()
    if return_characters:
        return X, y, [char for char, _ in chosen]
    return X, y
