r"""Conversions from other PyG layouts of entity alignment data to a KG pair
(see :mod:`torch_geometric_ea.data.pair`)."""
from typing import Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

from torch_geometric_ea.data.pair import SRC, TGT, kg_pair

__all__ = ['from_pyg_dbp15k']

_KEYS = ('x1', 'edge_index1', 'rel1', 'x2', 'edge_index2', 'rel2', 'train_y', 'test_y')


def _dense_relations(rel: Tensor) -> Tuple[Tensor, list]:
    r"""Relation ids renumbered densely in order of their original id, and
    the names ``'rel<original id>'`` of the new ids."""
    raw, dense = torch.unique(rel, return_inverse=True)
    return dense, [f'rel{int(r)}' for r in raw]


def _entity_features(x: Tensor, word_vectors: str) -> Tensor:
    r"""The entity features to keep: the padded word-vector sequences
    :math:`(N, L, D)` as they are (``'keep'``) or averaged over each
    entity's words, padding rows (all zeros) left out (``'mean'``)."""
    if x.dim() != 3 or word_vectors == 'keep':
        return x
    words = (x != 0).any(-1, keepdim=True)
    return (x * words).sum(1) / words.sum(1).clamp_min(1)


def from_pyg_dbp15k(data: Data, word_vectors: str = 'mean') -> HeteroData:
    r"""Converts one graph of PyG's :class:`torch_geometric.datasets.DBP15K`
    (the DGMC/GMNN copy: ``x1, edge_index1, rel1, x2, edge_index2, rel2,
    train_y, test_y``) to a KG pair.

    The entity features become ``data['src'].x`` and ``data['tgt'].x``
    (usable by GCN-Align's attribute channel and by models of one's own);
    each KG's relation ids are renumbered densely (``relation_uri`` keeps
    the original id as ``'rel<id>'``); ``train_y`` are the training links
    and ``test_y`` the test links. Entities have no names in that copy
    (``uri`` is ``'e<i>'``).

    Args:
        data (torch_geometric.data.Data): ``DBP15K(root, pair)[0]``.
        word_vectors (str, optional): ``'mean'`` averages each entity's
            word vectors :math:`(N, L, 300) \to (N, 300)`, ``'keep'``
            keeps the padded sequences. (default: :obj:`'mean'`)
    """
    missing = [key for key in _KEYS if key not in data]
    if missing:
        raise ValueError(f"not a PyG DBP15K graph: it lacks {', '.join(missing)}")
    if word_vectors not in ('mean', 'keep'):
        raise ValueError(f"'word_vectors' must be 'mean' or 'keep' "
                         f"(got {word_vectors!r})")
    rel1, names1 = _dense_relations(data.rel1)
    rel2, names2 = _dense_relations(data.rel2)
    train, test = data.train_y, data.test_y
    pair = kg_pair(
        num_nodes=(data.x1.size(0), data.x2.size(0)),
        edge_index=(data.edge_index1, data.edge_index2), edge_type=(rel1, rel2),
        num_relations=(len(names1), len(names2)),
        link_index=torch.cat([train, test], dim=1),
        train_mask=torch.arange(train.size(1) + test.size(1)) < train.size(1),
        test_mask=torch.arange(train.size(1) + test.size(1)) >= train.size(1),
        relation_uri=(names1, names2))
    pair[SRC].x = _entity_features(data.x1, word_vectors)
    pair[TGT].x = _entity_features(data.x2, word_vectors)
    return pair
