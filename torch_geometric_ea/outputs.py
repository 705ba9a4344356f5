r"""A run's output folder: files written whole or not at all, and one run
at a time.

:func:`atomic_file` writes to a temporary file beside the target, flushes
it to disk and renames it over the target, so a reader (or the next run)
sees the old file or the new one, never part of either; a failed write
(a full disk, say) removes the temporary file and leaves the old file as
it was. :func:`claim_folder` takes a lock on the folder that the process
holds until it ends (the kernel releases it even on SIGKILL), so a second
run into the same folder stops at once instead of mixing its files with
the first one's.
"""
import os
import os.path as osp
from contextlib import contextmanager, suppress
from typing import IO, Iterator

__all__ = ['atomic_file', 'sync_folder', 'claim_folder', 'FolderInUse', 'LOCK']

#: The lock file in a claimed folder; it holds the holder's process id.
LOCK = '.lock'


class FolderInUse(ValueError):
    r"""Another process holds the output folder's lock."""


def sync_folder(path: str):
    r"""Flushes the folder holding ``path`` (its renames) to disk."""
    folder = os.open(osp.dirname(osp.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


@contextmanager
def atomic_file(path: str, mode: str = 'w') -> Iterator[IO]:
    r"""Yields a file whose contents replace ``path`` when the block ends
    without error (temporary file, flush, fsync, rename, folder fsync);
    otherwise ``path`` is untouched and the temporary file removed."""
    tmp = f'{path}.tmp-{os.getpid()}'
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.remove(tmp)
        raise
    sync_folder(path)


def claim_folder(folder: str) -> int:
    r"""Makes ``folder`` and takes its lock (file :data:`LOCK`, holding this
    process's id) for as long as the process lives or until the returned
    descriptor is closed. Raises :class:`FolderInUse` naming the holder's
    process id when another process holds it, :class:`OSError` when the
    folder cannot be made or written."""
    import fcntl
    os.makedirs(folder, exist_ok=True)
    fd = os.open(osp.join(folder, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors='replace').strip() or 'unknown'
        os.close(fd)
        raise FolderInUse(f"{folder}: another run writes there (pid {holder}); "
                          f"wait for it to end or give another folder") from None
    os.ftruncate(fd, 0)
    os.write(fd, f'{os.getpid()}\n'.encode())
    return fd
