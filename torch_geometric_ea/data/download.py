r"""Fetching a dataset's raw files, as PyG's ``torch_geometric/data/download.py``
does for its own: copied from a local mirror (``TORCH_GEOMETRIC_EA_MIRROR``)
or downloaded, then verified by SHA-256.

Every way this can fail raises :class:`DatasetError`, a :class:`ValueError`
whose message is one line: the file, the problem, and what to do.
"""
import hashlib
import logging
import os
import os.path as osp
import shutil
from typing import Dict, Optional

from torch_geometric.data import download_url

__all__ = ['MIRROR_ENV', 'DatasetError', 'sha256', 'verify', 'mirror_file',
           'download_file', 'fetch', 'note_unchecked']

MIRROR_ENV = 'TORCH_GEOMETRIC_EA_MIRROR'
_NETWORK_HINT = (f"check your network, or set {MIRROR_ENV} to a folder "
                 f"holding {{}}")

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    r"""A dataset that cannot be fetched, verified or read; its message is
    one line naming the file, the problem and what to do (line breaks of
    a quoted cause are joined)."""
    def __init__(self, message: str):
        super().__init__(' '.join(str(message).splitlines()))


def sha256(path: str) -> str:
    r"""The hex SHA-256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str, expected: Optional[str], source: str) -> Optional[str]:
    r"""Checks ``path`` against its ``expected`` SHA-256, removing it when it
    differs; returns the digest of a file without a known one."""
    digest = sha256(path)
    if expected is None:
        return digest
    if digest != expected:
        os.remove(path)
        raise DatasetError(
            f"{path}: SHA-256 {digest} does not match the expected {expected} "
            f"(from {source}); the file was removed: run again to fetch it "
            f"anew, or replace the copy at its source by the published file")
    return None


def mirror_file(relative: str) -> Optional[str]:
    r"""The mirror path of ``relative``, or :obj:`None` without a mirror."""
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return None
    if not osp.isdir(mirror):
        raise DatasetError(f"{mirror}: {MIRROR_ENV} names no folder; set it to "
                           f"the folder holding {relative}, or unset it to "
                           f"download")
    path = osp.join(mirror, relative)
    if not osp.isfile(path):
        raise DatasetError(f"{path}: missing from the mirror ({MIRROR_ENV}="
                           f"{mirror}); add the file there, or unset "
                           f"{MIRROR_ENV} to download it")
    return path


def download_file(url: str, dst: str, mirror_relative: str):
    r"""Downloads ``url`` to ``dst`` (a failed download leaves no file)."""
    try:
        download_url(url, osp.dirname(dst), filename=osp.basename(dst))
    except OSError as e:  # URLError, HTTPError, timeouts, a full disk
        if osp.isfile(dst):
            os.remove(dst)
        raise DatasetError(f"{dst}: cannot download {url} ({e}); "
                           + _NETWORK_HINT.format(mirror_relative)) from None


def fetch(url: str, mirror_relative: str, dst: str,
          expected: Optional[str]) -> Optional[str]:
    r"""Copies ``dst`` from the mirror, or downloads it from ``url``, then
    verifies it (see :func:`verify`)."""
    os.makedirs(osp.dirname(dst), exist_ok=True)
    src = mirror_file(mirror_relative)
    if src is not None:
        shutil.copyfile(src, dst)
        return verify(dst, expected, src)
    download_file(url, dst, mirror_relative)
    return verify(dst, expected, url)


def note_unchecked(name: str, folder: str, digests: Dict[str, str]):
    r"""One line for all the files of a dataset without a known checksum;
    their SHA-256 go to ``folder/SHA256SUMS`` (``sha256sum -c`` reads it)."""
    if not digests:
        return
    sums = osp.join(folder, 'SHA256SUMS')
    with open(sums, 'w') as f:
        f.writelines(f'{digest}  {file}\n' for file, digest in digests.items())
    log.warning("%s: %d file(s) without a known checksum (%s); their SHA-256 "
                "are in %s", name, len(digests), ', '.join(digests), sums)
