r"""An entity-alignment pair built from an OGB knowledge graph, for scale
runs on real graph structure: the two-noisy-views procedure of
:func:`~torch_geometric_ea.data.synthetic_pair` applied to a real KG.

The KG is read from OGB's raw layout (``ogbl-wikikg2``: 2.5M Wikidata
entities, 535 relations, 16M triples)::

    <root>/ogbl_wikikg2/raw/edge.csv.gz          head,tail per line
    <root>/ogbl_wikikg2/raw/edge_reltype.csv.gz  relation per line
    <root>/ogbl_wikikg2/raw/num-node-list.csv.gz number of entities

which ``ogb.linkproppred.LinkPropPredDataset('ogbl-wikikg2', root)``
downloads (``pip install -e ".[ogb]"``; about 0.5 GB).
"""
import os.path as osp
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.download import DatasetError
from torch_geometric_ea.data.synthetic import two_views
from torch_geometric_ea.data.tsv import int_table, line_error

__all__ = ['read_ogb_kg', 'ogb_pair']

RAW_FILES = ('edge.csv.gz', 'edge_reltype.csv.gz', 'num-node-list.csv.gz')


def _raw_dir(root: str, name: str) -> str:
    return osp.join(root, name.replace('-', '_'), 'raw')


def _download(root: str, name: str):
    r"""Has the ``ogb`` package download ``name``'s raw files. It unpickles
    ``processed/data_processed`` when that exists (as ``torch.load`` of the
    installed torch allows), so a folder holding one is refused first."""
    raw_dir = _raw_dir(root, name)
    processed = osp.join(osp.dirname(raw_dir), 'processed', 'data_processed')
    if osp.exists(processed):
        raise DatasetError(f"{processed}: the ogb package would unpickle this "
                           f"file to download {name}; delete it, or put OGB's "
                           f"raw files in {raw_dir}")
    try:
        from ogb.linkproppred import LinkPropPredDataset
    except ImportError:
        raise DatasetError(f"{raw_dir}: no raw files of {name}; "
                           f"downloading them needs the ogb package (pip "
                           f"install -e \".[ogb]\"), or put them there") from None
    try:
        LinkPropPredDataset(name=name, root=root)
    except OSError as e:  # URLError, HTTPError, a full disk
        raise DatasetError(f"{raw_dir}: cannot download {name} "
                           f"({e}); check your network, or put OGB's raw "
                           f"files there") from None


def read_ogb_kg(raw_dir: str) -> Tuple[Tensor, int, int]:
    r"""Reads a KG in OGB's raw layout (see the module documentation).

    Returns:
        (torch.Tensor, int, int): ``[T, 3]`` (head, relation, tail)
        triples, the number of entities and the number of relations.

    Raises:
        ValueError: naming the file and line of a malformed line, an id out
            of range, or a relation file whose length differs from the
            edges'; a :class:`~torch_geometric_ea.data.DatasetError` for a
            missing file.
    """
    edge_path, type_path, count_path = (osp.join(raw_dir, f) for f in RAW_FILES)
    for path in (edge_path, type_path):
        if not osp.exists(path):
            raise DatasetError(
                f"{path} not found: OGB's raw KG layout is expected in {raw_dir} "
                f"(see torch_geometric_ea.data.ogb); put it there, or pass "
                f"download=True")
    edges, _, _ = int_table(edge_path, ('head', 'tail'), ',')
    rel, _, _ = int_table(type_path, ('relation', ), ',')
    if rel.shape[0] != edges.shape[0]:
        raise line_error(type_path, min(rel.shape[0], edges.shape[0]) + 1,
                         f"{rel.shape[0]} relation lines for the {edges.shape[0]} "
                         f"edges of {edge_path}")
    if osp.exists(count_path):
        num_nodes = int(int_table(count_path, ('num_nodes', ), ',')[0][0, 0])
        bad = np.flatnonzero((edges >= num_nodes).any(1))
        if bad.size:
            raise line_error(edge_path, int(bad[0]) + 1,
                             f"entity id {int(edges[bad[0]].max())} out of range: "
                             f"{count_path} says {num_nodes} entities")
    else:
        num_nodes = int(edges.max()) + 1
    if edges.shape[0] == 0:
        raise line_error(edge_path, 1, "empty KG")
    triples = torch.from_numpy(np.stack([edges[:, 0], rel[:, 0], edges[:, 1]], 1))
    return triples, num_nodes, int(rel.max()) + 1


def ogb_pair(root: str, num_entities: Optional[int] = None, *,
             name: str = 'ogbl-wikikg2', unique_fraction: float = 0.1,
             edge_dropout: float = 0.3, relation_merge: float = 0.1,
             train_ratio: float = 0.3, seed: int = 0,
             download: bool = False) -> HeteroData:
    r"""A KG pair made of two noisy views of an OGB KG (see
    :func:`~torch_geometric_ea.data.two_views`): its ``num_entities +
    round(unique_fraction * num_entities)`` entities of highest degree
    (the whole KG when :obj:`None`) are assigned at random to be shared or
    unique to one side; each view keeps the triples among its entities
    minus ``edge_dropout`` of them, merges ``relation_merge`` of the
    relations, and renumbers everything.

    Args:
        root (str): The folder holding ``<name with _>/raw/``.
        num_entities (int, optional): Entities per side.
        name (str, optional): The OGB dataset. (default: ``'ogbl-wikikg2'``)
        download (bool, optional): Download through the ``ogb`` package
            when the raw files are missing. (default: :obj:`False`)
    """
    raw_dir = _raw_dir(root, name)
    if download and not osp.exists(osp.join(raw_dir, RAW_FILES[0])):
        _download(root, name)
    triples, num_nodes, num_relations = read_ogb_kg(raw_dir)
    if num_entities is None:  # the most that fit: n + round(f n) <= N
        num_entities = int(num_nodes / (1 + unique_fraction))
        while (num_entities + 1 + round(unique_fraction * (num_entities + 1))
               <= num_nodes):
            num_entities += 1
    num_base = num_entities + int(round(unique_fraction * num_entities))
    if num_base > num_nodes:
        raise ValueError(f"{name} has {num_nodes} entities; two views of "
                         f"{num_entities} need {num_base}")
    generator = torch.Generator().manual_seed(seed)
    degree = torch.bincount(triples[:, [0, 2]].reshape(-1), minlength=num_nodes)
    chosen = torch.sort(degree, descending=True, stable=True).indices[:num_base]
    base = torch.full((num_nodes, ), -1, dtype=torch.long)
    base[chosen] = torch.randperm(num_base, generator=generator)  # random roles
    h, t = base[triples[:, 0]], base[triples[:, 2]]
    keep = (h >= 0) & (t >= 0) & (h != t)
    return two_views(torch.stack([h[keep], triples[keep, 1], t[keep]], 1),
                     num_base, num_relations, num_entities,
                     unique_fraction=unique_fraction, edge_dropout=edge_dropout,
                     relation_merge=relation_merge, train_ratio=train_ratio,
                     seed=seed, generator=generator)
