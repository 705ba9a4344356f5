r"""The datasets by name, as the command line and the benchmarks take them.

:data:`DATASETS` is the one list: each :class:`DatasetInfo` says what its
loader needs (the pairs it holds, the folder under ``root`` it keeps its
files in, the pair taken when none is given) and :func:`get_pair` loads a
pair of any of them::

    from torch_geometric_ea.data import get_pair

    data = get_pair('dbp15k', 'zh_en', root='data', seed=0)   # data/dbp15k
    data = get_pair('synthetic', num_entities=2000)           # no files

- ``'synthetic'``: :func:`~torch_geometric_ea.data.synthetic_pair`, made
  without files; it has no pairs (``pair`` is ignored).
- ``'dbp15k'``, ``'srprs'``, ``'dwy100k'``, ``'openea'``: the benchmarks
  :class:`~torch_geometric_ea.data.DBP15K`,
  :class:`~torch_geometric_ea.data.SRPRS`,
  :class:`~torch_geometric_ea.data.DWY100K` and
  :class:`~torch_geometric_ea.data.OpenEA`, kept in ``root/<name>``; a pair
  must be given.
- ``'ogb'``: :func:`~torch_geometric_ea.data.ogb_pair`, two noisy views of
  an OGB KG kept in ``root/ogb``, by default ``ogbl-wikikg2``.
"""
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from torch_geometric.data import HeteroData

from torch_geometric_ea.data.datasets import DBP15K, DWY100K, SRPRS, OpenEA
from torch_geometric_ea.data.ogb import ogb_pair
from torch_geometric_ea.data.synthetic import synthetic_pair

__all__ = ['DatasetInfo', 'DATASETS', 'DATASET_NAMES', 'dataset_pairs', 'get_pair']

#: ``load(folder, pair, *, seed, num_entities, names) -> HeteroData``.
Loader = Callable[..., HeteroData]


@dataclass(frozen=True)
class DatasetInfo:
    r"""What :func:`get_pair` needs to load a dataset's pairs.

    Args:
        name (str): the dataset's name in :data:`DATASETS`.
        load (callable): ``load(folder, pair, *, seed, num_entities, names)``
            returns the pair as a :class:`~torch_geometric.data.HeteroData`;
            ``folder`` is ``root/<folder>`` (:obj:`None` for a dataset
            without files), each of the keyword arguments is passed and the
            loader uses those it has.
        pairs (tuple of str): the pairs the dataset holds, for messages
            (empty: the dataset has no pairs to choose from).
            (default: :obj:`()`)
        folder (str, optional): the folder under ``root`` that holds the
            dataset's files; :obj:`None` for a dataset made without files.
            (default: :obj:`None`)
        default_pair (str, optional): the pair loaded when none is given;
            :obj:`None` with :attr:`pairs` set: a pair must be given.
            (default: :obj:`None`)
    """
    name: str
    load: Loader
    pairs: Tuple[str, ...] = ()
    folder: Optional[str] = None
    default_pair: Optional[str] = None

    @property
    def needs_pair(self) -> bool:
        r"""Whether :func:`get_pair` refuses to load without a pair."""
        return bool(self.pairs) and self.default_pair is None


def _synthetic(folder, pair, *, seed, num_entities, names) -> HeteroData:
    return synthetic_pair(num_entities, seed=seed)


def _ogb(folder, pair, *, seed, num_entities, names) -> HeteroData:
    return ogb_pair(folder, num_entities, name=pair, seed=seed, download=True)


def _dbp15k(folder, pair, *, seed, num_entities, names) -> HeteroData:
    return DBP15K(folder, pair, seed=seed, names=names)[0]


def _srprs(folder, pair, *, seed, num_entities, names) -> HeteroData:
    return SRPRS(folder, pair, names=names)[0]


def _dwy100k(folder, pair, *, seed, num_entities, names) -> HeteroData:
    return DWY100K(folder, pair)[0]


def _openea(folder, pair, *, seed, num_entities, names) -> HeteroData:
    return OpenEA(folder, pair)[0]


#: The datasets :func:`get_pair` loads, by name (a :class:`DatasetInfo`
#: each), in the order the command line lists them: a synthetic pair, the
#: benchmarks, two views of an OGB KG. An entry added here is loaded the
#: same way.
#:
#: :meta hide-value:
DATASETS: Dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo('synthetic', _synthetic),
    DatasetInfo('dbp15k', _dbp15k, DBP15K.pairs, folder='dbp15k'),
    DatasetInfo('srprs', _srprs, SRPRS.pairs, folder='srprs'),
    DatasetInfo('dwy100k', _dwy100k, DWY100K.pairs, folder='dwy100k'),
    DatasetInfo('openea', _openea, OpenEA.pairs, folder='openea'),
    # two noisy views of one OGB KG; the pair names the KG
    DatasetInfo('ogb', _ogb, ('ogbl-wikikg2',), folder='ogb',
                default_pair='ogbl-wikikg2'),
)}
#: The names of :data:`DATASETS`, in its order.
DATASET_NAMES: Tuple[str, ...] = tuple(DATASETS)


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from "
                         f"{', '.join(DATASETS)}")
    return DATASETS[name]


def dataset_pairs(name: str) -> Tuple[str, ...]:
    r"""The pairs of dataset ``name`` (empty for ``'synthetic'``), for
    messages and choices.

    Raises:
        ValueError: ``name`` is not in :data:`DATASETS`.
    """
    return _info(name).pairs


def get_pair(name: str, pair: Optional[str] = None, root: str = 'data', *,
             seed: int = 0, num_entities: int = 2000,
             names: str = 'translated') -> HeteroData:
    r"""Loads ``pair`` of dataset ``name`` (see :data:`DATASETS`) as one
    :class:`~torch_geometric.data.HeteroData`.

    A benchmark's files go to ``root/<name>`` (fetched and verified on
    first use, see :mod:`~torch_geometric_ea.data.datasets`), an OGB KG's
    to ``root/ogb`` (downloaded by the ``ogb`` package when missing); a
    synthetic pair is made without files. The same arguments give the same
    pair, bit for bit.

    Args:
        name (str): a dataset of :data:`DATASETS`, for example
            :obj:`"dbp15k"`.
        pair (str, optional): one of the dataset's pairs (see
            :func:`dataset_pairs`); needed by all but ``'synthetic'``
            (which ignores it) and ``'ogb'`` (default: the OGB KG
            :obj:`"ogbl-wikikg2"`). (default: :obj:`None`)
        root (str): the folder holding the datasets' folders.
            (default: :obj:`"data"`)
        seed (int): the seed of DBP15K's split of the links and of a
            synthetic or OGB pair; the other benchmarks have a fixed split.
            (default: :obj:`0`)
        num_entities (int): entities per side of a synthetic or OGB pair.
            (default: :obj:`2000`)
        names (str): DBP15K's and SRPRS's entity names:
            :obj:`"translated"` for the published translated names where a
            pair has them, :obj:`"uri"` for the URIs' local names.
            (default: :obj:`"translated"`)

    Raises:
        ValueError: in one line, for an unknown dataset or a missing pair;
            :class:`~torch_geometric_ea.data.DatasetError` (a
            :class:`ValueError`) for an unknown pair or files that cannot
            be fetched, verified or read.
    """
    info = _info(name)
    if pair is None and info.needs_pair:
        raise ValueError(f"--pair is required for {name} "
                         f"(one of {', '.join(info.pairs)})")
    if not pair and info.default_pair is not None:
        pair = info.default_pair
    folder = None if info.folder is None else osp.join(root, info.folder)
    return info.load(folder, pair, seed=seed, num_entities=num_entities,
                     names=names)
