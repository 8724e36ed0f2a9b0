"""Emptying a directory that hostile code filled: any depth, any names, any permissions.

Used inside the sandbox by the worker (as ``tmpwipe``: standard library only) after every run, and by
the bot (as ``bot.sandbox.tmpwipe``) to remove a plain worker's directory when it stops.

Nothing here recurses (a tree 100,000 levels deep is fine) and no path grows with the depth (no
``ENAMETOOLONG``): each pass works on the entries of the top directory only. A directory that is not
empty has its entries moved up into the top directory, so it is empty on the next pass; files are
unlinked; permissions are restored on the way (``chmod 0700``). Symbolic links are removed, never
followed. The caller gives a deadline: a tree too large to remove in time is reported, not waited
for (the worker is then retired and its tmpfs thrown away with it).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
import time

#: Names given to entries moved up into the top directory (a learner's own names may be anything).
_MOVED_PREFIX = ".wipe-"


def wipe(directory: str, keep: frozenset[str] = frozenset(), deadline: float | None = None) -> bool:
    """Remove everything in ``directory`` except the names in ``keep``; ``True`` when it is empty of
    everything else before ``deadline`` (a ``time.monotonic()`` value), ``False`` otherwise."""
    try:
        top = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    counter = itertools.count()
    try:
        while True:
            names = [name for name in _names(top) if name not in keep]
            if not names:
                return True
            progress = False
            for name in names:
                if deadline is not None and time.monotonic() > deadline:
                    return False
                progress |= _remove_or_flatten(top, name, counter)
            if not progress:
                return False
    finally:
        os.close(top)


def leftovers(directory: str, keep: frozenset[str] = frozenset()) -> list[str]:
    """What is in ``directory`` besides ``keep`` (an unreadable directory counts as not clean)."""
    try:
        return sorted(name for name in os.listdir(directory) if name not in keep)
    except OSError as exc:
        return [f"<unreadable: {exc.strerror}>"]


def _names(dir_fd: int) -> list[str]:
    with os.scandir(dir_fd) as entries:
        return [entry.name for entry in entries]


def _remove_or_flatten(top: int, name: str, counter: itertools.count) -> bool:
    """Remove ``name`` (in ``top``), or move its children up into ``top``; ``True`` on progress."""
    try:
        info = os.stat(name, dir_fd=top, follow_symlinks=False)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        try:
            os.unlink(name, dir_fd=top)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False
    try:
        os.rmdir(name, dir_fd=top)
        return True
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EACCES, errno.EPERM):
            return False
    # Not empty (or not ours to look into yet): open it up, then move its entries up one level.
    if stat.S_IMODE(info.st_mode) & 0o700 != 0o700:
        with contextlib.suppress(OSError):
            os.chmod(name, 0o700, dir_fd=top)  # a directory (checked above), not a link: nothing followed
    try:
        inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
    except OSError:
        return False
    moved = False
    try:
        for child in _names(inner):
            target = f"{_MOVED_PREFIX}{os.getpid()}-{next(counter)}"
            try:
                os.rename(child, target, src_dir_fd=inner, dst_dir_fd=top)
                moved = True
                continue
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EPERM):
                    continue
            # Moving a directory rewrites its "..": it must be writable. Make it so (a directory, not a link).
            try:
                if not stat.S_ISDIR(os.stat(child, dir_fd=inner, follow_symlinks=False).st_mode):
                    continue
                os.chmod(child, 0o700, dir_fd=inner)
                os.rename(child, target, src_dir_fd=inner, dst_dir_fd=top)
                moved = True
            except OSError:
                continue
    except OSError:
        return moved
    finally:
        os.close(inner)
    return moved
