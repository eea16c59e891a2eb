"""Handwritten characters scaled to a box and centred on their ink."""

from __future__ import annotations

import numbers

import numpy as np
from PIL import Image

from ._optional import import_skimage_skeletonize

__all__ = ["ink_box"]

MAX_SHEAR = 1.0  # columns per row: deskewing shears by 45 degrees at most


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Ink-weighted mean (row, column) of `image`, at pixel centres."""
    weights = image.astype(np.float64)
    total = weights.sum()
    rows = np.arange(image.shape[0]) + 0.5
    cols = np.arange(image.shape[1]) + 0.5
    return (weights.sum(1) @ rows) / total, (weights.sum(0) @ cols) / total


def _skew(image: np.ndarray, centre: tuple[float, float]) -> float:
    """Ink-weighted covariance of column and row over the variance of the
    row: the horizontal shear per row that the ink's principal slant shows
    (the moment deskewing of handwritten digits), limited to one column per
    row (45 degrees). Ink in one row has none; nearly flat ink, whose row
    variance is small, would otherwise get shears of many columns per row."""
    weights = image.astype(np.float64)
    rows = np.arange(image.shape[0]) + 0.5 - centre[0]
    cols = np.arange(image.shape[1]) + 0.5 - centre[1]
    var_rows = weights.sum(1) @ rows**2
    if var_rows <= 0:
        return 0.0
    return float(np.clip(rows @ weights @ cols / var_rows, -MAX_SHEAR, MAX_SHEAR))


def adaptive_aspect(ratio: np.ndarray | float) -> np.ndarray | float:
    """Liu et al.'s (2004) aspect ratio adaptive mapping, square root of sine.

    A character whose ink box has sides in the ratio `ratio` (shorter over
    longer, in (0, 1]) is rendered with sides in the ratio
    ``sqrt(sin(pi / 2 * ratio))``: squares stay square, and a wide or tall
    character is widened along its short side (ratio 1/3 becomes 0.71), so
    its strokes get more pixels while its shape still tells it apart.
    """
    return np.sqrt(np.sin(np.pi / 2 * np.asarray(ratio, dtype=np.float64)))


def _redrawn(
    image, scales, centre, shear: float, big: int, radius: float, skeletonize
) -> Image.Image:
    """`image`'s ink thinned to its skeleton (`skeletonize`), each skeleton
    pixel sheared by `shear` columns per row about `centre`, mapped to the
    `big` x `big` canvas by `scales` (rows, columns) about `centre`, and
    redrawn as strokes of `radius` canvas pixels, antialiased."""
    from scipy import ndimage

    rows, cols = np.nonzero(skeletonize(image > 127))
    dy, dx = (
        rows + 0.5 - centre[0],
        cols + 0.5 - centre[1] - shear * (rows + 0.5 - centre[0]),
    )
    u = np.rint(dy * scales[0] + big / 2 - 0.5).astype(int)
    v = np.rint(dx * scales[1] + big / 2 - 0.5).astype(int)
    inside = (u >= 0) & (u < big) & (v >= 0) & (v < big)
    line = np.zeros((big, big), dtype=bool)
    line[u[inside], v[inside]] = True
    distance = ndimage.distance_transform_edt(~line)
    ink = np.clip(radius + 0.5 - distance, 0, 1)
    return Image.fromarray(np.rint(255 * ink).astype(np.uint8))


def _check(images, image_size, box, supersample) -> tuple[np.ndarray, bool]:
    images = np.asarray(images)
    if images.ndim != 3 or min(images.shape) < 1:
        raise ValueError(
            "images must be an array of shape (n_images, height, width) with "
            f"no empty axis, got shape {images.shape}"
        )
    is_uint8 = images.dtype == np.uint8
    if not is_uint8:
        if not np.issubdtype(images.dtype, np.floating):
            raise TypeError(
                f"images must be uint8 (ink 255) or floats in [0, 1] (ink 1), "
                f"got dtype {images.dtype}"
            )
        if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise ValueError(
                "float images must be finite and in [0, 1] (ink 1); scale them "
                "or pass uint8"
            )
        images = np.rint(images * 255).astype(np.uint8)
    for name, value in (("image_size", image_size), ("supersample", supersample)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
        if value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if box is not None and (
        isinstance(box, bool) or not isinstance(box, numbers.Real) or not 0 < box <= 1
    ):
        raise ValueError(f"box must be None or a float in (0, 1], got {box!r}")
    return images, is_uint8


def ink_box(
    images,
    image_size: int = 28,
    *,
    box: float | None = 20 / 28,
    aspect: str = "keep",
    stroke_width: float | None = None,
    deskew: float = 0.0,
    supersample: int = 4,
) -> np.ndarray:
    """Scale each character to a box and centre it on its ink.

    The normalisation of handwritten digits in MNIST (LeCun et al. 1998):
    the larger side of the character's ink bounding box (pixels above half
    the ink level) is scaled to ``box * image_size`` pixels, the aspect
    ratio kept, and the ink's centre of mass is put at the image's centre.
    Drawers vary a character's size and place as well as its shape; a
    few-shot model trained and applied on such images is left with the
    shape. On Omniglot's within-alphabet one-shot runs of held-out alphabets
    a ProtoNet meta-trained and scored on such rows gained 3.05 points
    inductive and 1.50 with PT-MAP over the plain rows
    (``benchmarks/RESULTS.md``, the twenty-fourth try).

    Each image is rendered by one affine map at ``supersample * image_size``
    pixels (bicubic), then reduced to ``image_size`` with Lanczos
    resampling, so thin strokes stay antialiased.

    .. versionadded:: 0.1

    Parameters
    ----------
    images : array-like of shape (n_images, height, width)
        Grey images with ink high: uint8 (ink 255, paper 0) or floats in
        [0, 1] (ink 1). Pass them at full resolution (Omniglot's 105x105
        originals, your scans as read): the result is rendered from them.
    image_size : int, default=28
        Side of the square images returned.
    box : float or None, default=20/28
        Share of ``image_size`` that the larger side of each ink box fills.
        ``None`` keeps each character's size relative to its canvas: the
        image is only resized and centred on its ink.
    aspect : {"keep", "adaptive"}, default="keep"
        ``"keep"``: both sides of the ink box scaled alike. ``"adaptive"``:
        the shorter side scaled further, to ``sqrt(sin(pi / 2 * r))`` of
        the box, ``r`` the ratio of the shorter side to the longer (Liu et
        al.'s aspect ratio adaptive normalisation, 2004, "Handwritten
        digit recognition: investigation of normalization and feature
        extraction techniques"): squares stay square, and a character three
        times as wide as high is rendered 0.71 times as high as wide, not
        left a few pixels high. Needs a ``box``.
    stroke_width : float or None, default=None
        ``None`` keeps the strokes as scaled with the character: after the
        box, a pen of one width becomes thicker on characters drawn small.
        A float: each character is thinned to its skeleton (scikit-image's
        ``skeletonize``, at the input's resolution), mapped by the same
        transform, and redrawn with strokes this many pixels wide in the
        output image. Needs scikit-image. On Omniglot, whose pen has one
        width at the source, it lost 1.17 points inductive on held-out
        runs (``stroke_width=1.6``, the median after the box;
        ``benchmarks/RESULTS.md``, the twenty-seventh try): use it for
        scans written with pens of different widths.
    deskew : float, default=0.0
        Share of each character's slant removed, in [0, 1]: the ink is
        sheared along the rows so that the covariance of its columns with
        its rows (ink-weighted, about the centre of mass) falls by that
        share, before the box is measured (moment deskewing, as for
        handwritten digits), the shear limited to one column per row (45
        degrees) so that nearly flat characters are not smeared. ``0``
        leaves the slant as drawn; ``1`` removes it; a slant that tells two
        characters apart goes with it.
        On Omniglot's held-out runs it lost 1.43 points inductive (``1``)
        and 0.47 (``0.5``; ``benchmarks/RESULTS.md``, the thirtieth try,
        run before the limit, which 1.3% of the characters exceed): there
        a character's slant is as much its own as its drawer's.
    supersample : int, default=4
        Factor of the intermediate rendering before the Lanczos reduction.

    Returns
    -------
    ndarray of shape (n_images, image_size, image_size)
        uint8 if ``images`` is uint8, else float32 in [0, 1]. An image
        without ink is resized as it is.

    Raises
    ------
    ValueError
        If ``images`` is not 3-d, float images leave [0, 1] or are not
        finite, or ``image_size``, ``box``, ``aspect``, ``stroke_width``,
        ``deskew`` or ``supersample`` is invalid.
    ImportError
        If ``stroke_width`` is set and scikit-image is not installed.
    TypeError
        If ``images`` is neither uint8 nor floating point.

    Examples
    --------
    >>> import numpy as np
    >>> from skmeta.datasets import ink_box
    >>> image = np.zeros((1, 105, 105), dtype=np.uint8)
    >>> image[0, 10:30, 60:70] = 255  # a small bar, off centre
    >>> out = ink_box(image, 28)
    >>> out.shape, out.dtype
    ((1, 28, 28), dtype('uint8'))
    >>> rows, cols = np.nonzero(out[0] > 127)
    >>> int(np.ptp(rows)) + 1  # the bar's height now fills the 20-pixel box
    20
    """
    images, is_uint8 = _check(images, image_size, box, supersample)
    if aspect not in ("keep", "adaptive"):
        raise ValueError(f"aspect must be 'keep' or 'adaptive', got {aspect!r}")
    if aspect == "adaptive" and box is None:
        raise ValueError("aspect='adaptive' needs a box (a float in (0, 1])")
    if stroke_width is not None and (
        isinstance(stroke_width, bool)
        or not isinstance(stroke_width, numbers.Real)
        or not 0 < stroke_width < image_size
    ):
        raise ValueError(
            f"stroke_width must be None or a positive float below image_size, "
            f"got {stroke_width!r}"
        )
    if (
        isinstance(deskew, bool)
        or not isinstance(deskew, numbers.Real)
        or not 0 <= deskew <= 1
    ):
        raise ValueError(f"deskew must be a float in [0, 1], got {deskew!r}")
    if stroke_width is not None:
        skeletonize = import_skimage_skeletonize("ink_box(stroke_width=...)")
    n, height, width = images.shape
    big = supersample * image_size
    out = np.empty((n, image_size, image_size), dtype=np.uint8)
    for i, image in enumerate(images):
        ink_rows, ink_cols = np.nonzero(image > 127)
        shear = 0.0
        if ink_rows.size == 0:
            scale = big / max(height, width)
            scale_y, scale_x, (cy, cx) = scale, scale, (height / 2, width / 2)
        else:
            cy, cx = _centre_of_mass(image)
            if deskew:
                shear = deskew * _skew(image, (cy, cx))
            if box is None:
                scale_y = scale_x = big / max(height, width)
            else:
                tall = np.ptp(ink_rows) + 1
                wide = np.ptp(ink_cols - shear * (ink_rows + 0.5 - cy)) + 1
                scale_y = scale_x = box * big / max(tall, wide)
                if aspect == "adaptive":
                    short = (
                        box * big * adaptive_aspect(min(tall, wide) / max(tall, wide))
                    )
                    if tall < wide:
                        scale_y = short / tall
                    else:
                        scale_x = short / wide
        if stroke_width is not None and ink_rows.size:
            radius = stroke_width * supersample / 2
            rendered = _redrawn(
                image, (scale_y, scale_x), (cy, cx), shear, big, radius, skeletonize
            )
            out[i] = np.asarray(
                rendered.resize((image_size, image_size), Image.Resampling.LANCZOS)
            )
            continue
        # output pixel (row u, column v) samples input row
        # r = cy + (u - big / 2) / scale_y and column
        # cx + (v - big / 2) / scale_x + shear * (r - cy)
        inv_x, inv_y = 1 / scale_x, 1 / scale_y
        rendered = Image.fromarray(image).transform(
            (big, big),
            Image.Transform.AFFINE,
            (
                inv_x,
                shear * inv_y,
                cx - big / 2 * (inv_x + shear * inv_y),
                0,
                inv_y,
                cy - big / 2 * inv_y,
            ),
            resample=Image.Resampling.BICUBIC,
        )
        out[i] = np.asarray(
            rendered.resize((image_size, image_size), Image.Resampling.LANCZOS)
        )
    if is_uint8:
        return out
    return out.astype(np.float32) / np.float32(255)
