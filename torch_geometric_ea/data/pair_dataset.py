r"""The base of the benchmark datasets of
:mod:`torch_geometric_ea.data.datasets`: a PyG :class:`InMemoryDataset` of
one KG pair made of separately fetched raw files, processed once into one
file.

Nothing in a dataset folder is unpickled: the processed file is read by
:meth:`PairDataset.load` and the notes of its ``pre_transform`` and
``pre_filter`` by :meth:`PairDataset._process`, both with
``torch.load(weights_only=True)`` and no fallback. Any failure raises
:class:`~torch_geometric_ea.data.DatasetError` (a :class:`ValueError`) in
one line: the file, the problem, what to do.
"""
import os
import os.path as osp
import re
import sys
import warnings
from typing import Any, Callable, Dict, Optional

import torch
from torch_geometric.data import HeteroData, InMemoryDataset

from torch_geometric_ea.data import translated
from torch_geometric_ea.data.download import DatasetError, fetch, note_unchecked
from torch_geometric_ea.data.pair import SRC, TGT, KGPair

__all__ = ['PairDataset']

#: The version of the pair layout in processed files (2: links as
#: ``edge_label_index``, union relation ids as ``relation``); a new layout
#: gets new file names, so older processed files are never read.
PAIR_FORMAT = 2
#: Where a benchmark pair's entity names come from: the published machine
#: translations where the pair has them, or the URIs' local names.
NAMES = ('translated', 'uri')


def _repr(obj: Any) -> str:
    r"""How PyG notes a ``pre_transform`` or ``pre_filter``: its ``str``
    without memory addresses."""
    return 'None' if obj is None else re.sub(r'(<.*?)\s.*(>)', r'\1\2', str(obj))


class PairDataset(InMemoryDataset):
    r"""A dataset of one KG pair made of separately fetched raw files.
    Subclasses set :attr:`url` and :attr:`mirror` (templates with
    ``{pair}`` and ``{file}``), :attr:`checksums` (``{(pair, file):
    sha256}``) and implement :meth:`read`."""
    pairs: tuple = ()
    url: str = ''
    mirror: str = ''
    checksums: Dict[tuple, str] = {}
    #: The dataset's key in :data:`~torch_geometric_ea.data.translated.TRANSLATED_NAMES`
    #: (empty: no translated names).
    translations: str = ''

    def __init__(self, root: str, pair: str, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 force_reload: bool = False, names: str = 'translated'):
        if pair not in self.pairs:
            raise DatasetError(f"{type(self).__name__}: unknown pair {pair!r}, "
                               f"expected one of {', '.join(self.pairs)}")
        if names not in NAMES:
            raise DatasetError(f"{type(self).__name__}: 'names' must be one of "
                               f"{', '.join(NAMES)}, got {names!r}")
        self.pair = pair
        super().__init__(root, transform, pre_transform, force_reload=force_reload)
        self.load(self.processed_paths[0])
        if names == 'translated':
            self._attach_translated_names()

    def _attach_translated_names(self):
        r"""Sets ``data[side].name`` to the pair's published machine
        translations (fetched into ``raw_dir`` and verified by SHA-256) and
        ``data.name_source`` to ``'translated'``; a pair without
        translations keeps its URIs' names."""
        table = translated.translated_names(self.translations, self.pair, self.raw_dir)
        if table is None:
            return
        data = self._data
        data[SRC].name, data[TGT].name = translated.pair_names(data, table)
        data.name_source = 'translated'

    def _process(self):
        r"""PyG's :meth:`~torch_geometric.data.Dataset._process`, except
        that the notes of the ``pre_transform`` and ``pre_filter`` the
        processed file was made with (``pre_transform.pt`` and
        ``pre_filter.pt`` in :obj:`processed_dir`) are read with
        ``torch.load(weights_only=True)``: PyG unpickles them with
        ``weights_only=False``, which runs whatever a crafted file holds. A
        note that is not a plain string is warned about and the raw files
        are processed again, which rewrites it."""
        stale = self.force_reload or not all(map(osp.isfile, self.processed_paths))
        for key in ('pre_transform', 'pre_filter'):
            path = osp.join(self.processed_dir, f'{key}.pt')
            if self.force_reload or not osp.exists(path):
                continue
            try:
                note = torch.load(path, map_location='cpu', weights_only=True)
            except Exception:  # unpickling refused, truncated, not a file
                note = None
            if not isinstance(note, str):
                warnings.warn(f"{path}: not a note of the {key} this package can "
                              f"read safely; processing the raw files again",
                              stacklevel=2)
                stale = True
            elif note != _repr(getattr(self, key)):
                warnings.warn(f"{path}: the {key} differs from the one the "
                              f"processed file was made with; pass "
                              f"force_reload=True to process again", stacklevel=2)
        if not stale:
            return
        if self.log and 'PYTEST_CURRENT_TEST' not in os.environ:
            print('Processing...', file=sys.stderr)
        os.makedirs(self.processed_dir, exist_ok=True)
        self.process()
        for key in ('pre_transform', 'pre_filter'):
            torch.save(_repr(getattr(self, key)),
                       osp.join(self.processed_dir, f'{key}.pt'))
        if self.log and 'PYTEST_CURRENT_TEST' not in os.environ:
            print('Done!', file=sys.stderr)

    def load(self, path: str, data_cls=KGPair) -> None:
        r"""Reads a processed file with ``torch.load(weights_only=True)``
        and no fallback: a file holding anything but tensors, plain values
        and PyG's data classes (a crafted file in the dataset folder, say) is
        refused, never unpickled. (PyG's own loader retries such a file
        with ``weights_only=False``, which runs whatever it holds.)"""
        try:
            out = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:  # unpickling refused, truncated, not a file
            raise DatasetError(
                f"{path}: not a processed file this package can load safely "
                f"({type(e).__name__}); delete it, or pass force_reload=True, "
                f"to process the raw files again") from None
        if not (isinstance(out, tuple) and len(out) in (2, 3)
                and isinstance(out[0], dict)):
            raise DatasetError(f"{path}: not a processed dataset file; delete "
                               f"it, or pass force_reload=True")
        self.slices = out[1]
        self.data = data_cls.from_dict(out[0])  # never a class from the file

    @property
    def raw_dir(self) -> str:
        r"""The pair's raw files: ``root/<pair>/raw``."""
        return osp.join(self.root, self.pair, 'raw')

    @property
    def processed_dir(self) -> str:
        r"""The pair's processed files: ``root/<pair>/processed``."""
        return osp.join(self.root, self.pair, 'processed')

    @property
    def processed_file_names(self) -> str:
        r"""One file, :obj:`"data_v<format>.pt"` (subclasses with several
        splits name one file per split)."""
        return f'data_v{PAIR_FORMAT}.pt'

    def download(self):
        unchecked = {}
        for file in self.raw_file_names:
            names = dict(pair=self.pair, file=file)
            digest = fetch(self.url.format(**names), self.mirror.format(**names),
                           osp.join(self.raw_dir, file),
                           self.checksums.get((self.pair, file)))
            if digest is not None:
                unchecked[file] = digest
        note_unchecked(repr(self), self.raw_dir, unchecked)

    def read(self) -> HeteroData:
        r"""The pair, read from the raw files in :obj:`raw_dir` (each
        subclass reads its layout)."""
        raise NotImplementedError

    def process(self):
        data = self.read()
        if self.pre_transform is not None:
            data = self.pre_transform(data)
        self.save([data], self.processed_paths[0])

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.pair})'
