r"""A run's output folder: files written whole or not at all, and one run
at a time.

:func:`atomic_file` writes to a temporary file beside the target, flushes
it to disk and renames it over the target, so a reader (or the next run)
sees the old file or the new one, never part of either; a failed write
(a full disk, say) removes the temporary file and leaves the old file as
it was. :class:`Outputs` does the same for several files at once: all
are written before any replaces its target. :func:`claim_folder` takes a
lock on the folder that the process holds until it ends or calls
:func:`release_folder` (the kernel releases it even on SIGKILL), so a
second run into the same folder stops at once instead of mixing its
files with the first one's.
"""
import os
import os.path as osp
from contextlib import contextmanager, suppress
from typing import IO, Iterator

__all__ = ['Outputs', 'atomic_file', 'sync_folder', 'claim_folder', 'release_folder',
           'FolderInUse', 'LOCK']

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


class _Guarded:
    r"""A file being written that keeps its first error (``torch.save``
    and others report a failed write only as their own error)."""
    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def __getattr__(self, name):
        return getattr(self.file, name)


def _temporary(path: str) -> str:
    r"""The temporary file beside ``path`` that this process writes."""
    return f'{path}.tmp-{os.getpid()}'


@contextmanager
def _staged(path: str, mode: str) -> Iterator[IO]:
    r"""Yields the temporary file that will replace ``path``, written and
    synced when the block ends; on failure it is removed, and a failed
    write (a full disk) raises a one-line :class:`OSError` naming ``path``."""
    tmp = _temporary(path)
    guarded = None
    try:
        with open(tmp, mode) as f:
            guarded = _Guarded(f)
            yield guarded
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        with suppress(OSError):  # never made, or the folder is gone
            os.remove(tmp)
        cause = guarded.error if guarded is not None and guarded.error else e
        if isinstance(cause, OSError):
            raise _one_line(path, cause) from e
        raise


def _one_line(path: str, cause: OSError) -> OSError:
    r"""The error of a failed write of ``path``, in one line as the command
    line prints it, with the cause's ``errno``."""
    error = OSError(f"{path}: not written ({cause.strerror or cause}); "
                    f"the file there is as it was")
    error.errno = cause.errno
    return error


class Outputs:
    r"""Files that replace their targets together: each is written whole to
    a temporary file (:meth:`file`) and, once all are, :meth:`commit`
    renames them over their targets in order. A failed write (a full
    disk) leaves every target as it was and removes the temporary files."""
    def __init__(self):
        self.pending = []

    @contextmanager
    def file(self, path: str, mode: str = 'w') -> Iterator[IO]:
        r"""Yields the file that will replace ``path`` (see :func:`atomic_file`)."""
        try:
            with _staged(path, mode) as f:
                yield f
        except BaseException:
            self.discard()
            raise
        self.pending.append((_temporary(path), path))

    def commit(self):
        r"""Renames every written file over its target, in order."""
        for i, (tmp, path) in enumerate(self.pending):
            try:
                os.replace(tmp, path)
            except OSError as e:
                self.pending = self.pending[i:]
                self.discard()
                raise _one_line(path, e) from e
        for _, path in self.pending:
            sync_folder(path)
        self.pending = []

    def discard(self):
        r"""Removes the written files; their targets stay as they were."""
        for tmp, _ in self.pending:
            with suppress(OSError):
                os.remove(tmp)
        self.pending = []


@contextmanager
def atomic_file(path: str, mode: str = 'w') -> Iterator[IO]:
    r"""Yields a file whose contents replace ``path`` when the block ends
    without error (temporary file, flush, fsync, rename, folder fsync);
    otherwise ``path`` is left as it was (see :class:`Outputs`)."""
    outputs = Outputs()
    with outputs.file(path, mode) as f:
        yield f
    outputs.commit()


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


def release_folder(folder: str, fd: int):
    r"""Gives up the lock :func:`claim_folder` took (removing its file)."""
    with suppress(OSError):
        os.remove(osp.join(folder, LOCK))
    os.close(fd)
