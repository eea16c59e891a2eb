"""The files of an image folder (``root/<class>/...``) for load_image_folder.

Class folders are read recursively, links followed, with no loop: a class
folder's walk never enters a folder it has already read, `root` or a folder
above it, or a folder of another class (see :func:`list_tree`).
"""

from __future__ import annotations

import heapq
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["IMG_EXTENSIONS", "is_image", "list_tree"]

IMG_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


def is_image(name: str) -> bool:
    """Whether a file name has an image extension and is not hidden."""
    return not name.startswith(".") and name.lower().endswith(IMG_EXTENSIONS)


def _with_parents(path: str) -> set[str]:
    """`path` and every folder above it."""
    found = {path}
    while (parent := os.path.dirname(path)) != path:
        found.add(parent)
        path = parent
    return found


def _may_enter(real: str, name: str, owners: dict[str, str], above: set[str]) -> bool:
    """Whether class `name`'s walk may enter the folder of real path `real`
    (reached through a link): not `root` or above it (`above`), not in the
    tree of another class folder (`owners`: real path to class name)."""
    if real in above:
        return False
    for folder in sorted(_with_parents(real), key=len, reverse=True):
        if folder in owners:  # the nearest class folder holding `real`
            return owners[folder] == name
    return True


def _walk_class(
    root: Path, name: str, owners: dict[str, str], above: set[str]
) -> list[str]:
    """Image files under ``root / name`` and its subfolders (hidden ones
    skipped), as paths relative to `root`, in torchvision's ImageFolder order.

    Folders are visited in sorted order of their paths, each at most once (by
    device and inode): a folder reached again (a link loop, or a second link
    to it) is skipped, so it is read at the first of its paths.
    """
    start = os.path.realpath(root / name)
    if not _may_enter(start, name, owners, above):  # a link to root or above
        return []
    seen = set()
    found = []
    todo = [(name, os.fspath(root / name), start)]
    while todo:
        rel, path, real = heapq.heappop(todo)
        try:
            info = os.stat(path)
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(path) as scan:
                entries = list(scan)
        except OSError:  # unreadable folder: skipped, as os.walk does
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if not entry.is_dir():
                if is_image(entry.name):
                    found.append((rel, entry.name))
            elif not entry.is_symlink():
                sub = os.path.join(real, entry.name)
                if owners.get(sub, name) == name:
                    heapq.heappush(todo, (f"{rel}/{entry.name}", entry.path, sub))
            elif _may_enter(sub := os.path.realpath(entry.path), name, owners, above):
                heapq.heappush(todo, (f"{rel}/{entry.name}", entry.path, sub))
    return [f"{rel}/{file}" for rel, file in sorted(found)]


def _scan_root(root: Path) -> tuple[list[str], list[str]]:
    """The sorted class folder names of `root`, and its image files."""
    folders, images = [], []
    with os.scandir(root) as scan:
        for entry in scan:
            if entry.is_dir():
                if not entry.name.startswith("."):
                    folders.append(entry.name)
            elif is_image(entry.name):
                images.append(entry.name)
    return sorted(folders), sorted(images)


def _select_classes(root: Path, found: list[str], classes: object) -> list[str]:
    """Sorted names of the class folders of `root` to load."""
    if classes is None:
        return found
    if (
        isinstance(classes, str)
        or not isinstance(classes, Iterable)
        or not (classes := list(classes))
        or not all(isinstance(c, str) for c in classes)
    ):
        raise ValueError(
            f"classes must be a non-empty list of folder names, got {classes!r}"
        )
    missing = sorted(set(classes) - set(found))
    if missing:
        raise ValueError(
            f"classes: no folder {missing} in {str(root)!r}; it has "
            f"{len(found)} class folders, the first being {found[:5]}."
        )
    return sorted(set(classes))


def list_tree(
    root: Path, classes: object, max_per_class: int | None, on_empty: str
) -> tuple[list[str], list[str], np.ndarray]:
    """The class names, file paths relative to `root`, and their int targets.

    Image files directly in `root` belong to no class: they are skipped with a
    warning, or named in the error if `root` has no class folder.
    """
    found, loose = _scan_root(root)
    if not found:
        msg = f"No class folder in {str(root)!r}: expected one subfolder per class."
        if loose:
            msg += (
                f" It holds {len(loose)} image file(s) directly (e.g. "
                f"{loose[0]!r}), which look like unlabelled images: the label "
                "of an image is the name of its class folder, so move them "
                "into one subfolder per class."
            )
        raise ValueError(msg)
    if loose:
        warnings.warn(
            f"{len(loose)} image file(s) directly in {str(root)!r} (e.g. "
            f"{loose[0]!r}) are in no class folder, so have no label: skipped.",
            UserWarning,
            stacklevel=3,
        )
    real = os.path.realpath(root)
    owners = {os.path.realpath(root / f): f for f in found}
    above = _with_parents(real)
    names, files, targets = [], [], []
    empty = []
    for name in _select_classes(root, found, classes):
        images = _walk_class(root, name, owners, above)[:max_per_class]
        if not images:
            empty.append(name)
            continue
        files.extend(images)
        targets.extend([len(names)] * len(images))
        names.append(name)
    if empty:
        where = ", ".join(repr(str(root / e)) for e in empty)
        msg = f"No image ({', '.join(IMG_EXTENSIONS)}) in the class folder(s) {where}"
        if not names:
            raise ValueError(f"{msg}: no class has an image.")
        if on_empty == "raise":
            raise ValueError(f"{msg}. Pass on_empty='warn' to skip them.")
        warnings.warn(f"{msg}: skipped.", UserWarning, stacklevel=3)
    return names, files, np.asarray(targets, dtype=np.int64)
