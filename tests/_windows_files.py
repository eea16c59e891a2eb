"""Windows' rules for files in use, simulated on Linux: a file this process
has open or memory-mapped can be neither renamed, replaced nor removed
(``PermissionError``, as Windows' "The process cannot access the file
because it is being used by another process"). Read from ``/proc/self``:
tests using it skip elsewhere."""

import os
import sys

import pytest

needs_proc = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/self"
)


def _in_use() -> set[tuple[int, int]]:
    """(device, inode) of the files this process has open or mapped."""
    used = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            info = os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        used.add((info.st_dev, info.st_ino))
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            if len(parts) >= 6 and parts[4] != "0":
                major, minor = (int(n, 16) for n in parts[3].split(":"))
                used.add((os.makedev(major, minor), int(parts[4])))
    return used


def _refuse_if_in_use(*paths) -> None:
    in_use = None
    for path in paths:
        try:
            info = os.stat(path)
        except (OSError, TypeError, ValueError):
            continue
        in_use = _in_use() if in_use is None else in_use
        if (info.st_dev, info.st_ino) in in_use:
            raise PermissionError(
                32, "the file is in use (simulated Windows rule)", os.fspath(path)
            )


def windows_file_rules(monkeypatch) -> None:
    """Make ``os.replace``, ``os.rename``, ``os.unlink`` and ``os.remove``
    (``Path.unlink``, ``Path.replace`` too) refuse a file in use."""
    for name in ("replace", "rename"):
        real = getattr(os, name)

        def move(src, dst, *args, _real=real, **kwargs):
            _refuse_if_in_use(src, dst)
            return _real(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, name, move)
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        _refuse_if_in_use(path)
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.setattr(os, "remove", unlink)
