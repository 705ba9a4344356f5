r"""A synthetic KG pair with known alignment, for tests and scaling runs."""
from typing import Optional

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.pair import kg_pair, split_links

__all__ = ['synthetic_pair', 'two_views']


def _zipf(num: int, exponent: float, size: int,
          generator: torch.Generator) -> Tensor:
    r"""``size`` ranks in ``[0, num)`` with ``P(k) ~ (k + 1)^-exponent``,
    drawn by inverting the CDF of the continuous power law (no search)."""
    u = torch.rand(size, generator=generator, dtype=torch.float64)
    if exponent == 1.0:
        x = torch.pow(float(num + 1), u)
    else:
        a = 1.0 - exponent
        x = (1.0 + u * ((num + 1.0) ** a - 1.0)).pow(1.0 / a)
    return (x.floor().long() - 1).clamp_(0, num - 1)


def _unique(key: Tensor) -> Tensor:
    r"""The sorted distinct values of a 1-D integer tensor."""
    key = torch.from_numpy(np.sort(key.numpy()))
    keep = torch.ones(key.numel(), dtype=torch.bool)
    keep[1:] = key[1:] != key[:-1]
    return key[keep]


def _base_triples(num_entities: int, num_relations: int, num_triples: int,
                  degree_exponent: float, generator: torch.Generator) -> Tensor:
    r"""``[T, 3]`` distinct triples without self-loops in the Chung-Lu model:
    every entity gets a random power-law rank, so heads and tails are drawn
    with weights ``rank^(-1 / (degree_exponent - 1))``; relations are drawn
    with Zipf weights ``rank^-1``."""
    num_samples = int(num_triples * 1.15) + 16
    entity = torch.randperm(num_entities, generator=generator)
    weight = 1.0 / (degree_exponent - 1.0)
    head = entity[_zipf(num_entities, weight, num_samples, generator)]
    tail = entity[_zipf(num_entities, weight, num_samples, generator)]
    relation = torch.randperm(num_relations, generator=generator)
    rel = relation[_zipf(num_relations, 1.0, num_samples, generator)]
    key = _unique(((head * num_relations + rel) * num_entities + tail)[head != tail])
    key = key[torch.randperm(key.numel(), generator=generator)[:num_triples]]
    tail, key = key % num_entities, key // num_entities
    return torch.stack([key // num_relations, key % num_relations, tail], dim=1)


def _view(triples: Tensor, members: Tensor, num_base: int, num_relations: int,
          edge_dropout: float, relation_merge: float,
          generator: torch.Generator):
    r"""One noisy view of the base KG restricted to the base entities
    ``members``: returns its ``[2, E]`` edges, ``[E]`` relations, relation
    count, and the local id of every base entity (``-1`` outside)."""
    local = torch.full((num_base,), -1, dtype=torch.long)
    local[members] = torch.randperm(members.numel(), generator=generator)
    h, r, t = local[triples[:, 0]], triples[:, 1], local[triples[:, 2]]
    keep = (h >= 0) & (t >= 0)
    keep &= torch.rand(keep.numel(), generator=generator) >= edge_dropout
    h, r, t = h[keep], r[keep], t[keep]

    # Merge some relations into others, then rename the rest at random.
    order = torch.randperm(num_relations, generator=generator)
    num_merged = min(int(round(relation_merge * num_relations)), num_relations - 1)
    merged, kept = order[:num_merged], order[num_merged:]
    rel_map = torch.empty(num_relations, dtype=torch.long)
    rel_map[kept] = torch.randperm(kept.numel(), generator=generator)
    into = torch.randint(kept.numel(), (num_merged,), generator=generator)
    rel_map[merged] = rel_map[kept[into]]
    r = rel_map[r]

    n, num_rel = members.numel(), kept.numel()
    key = _unique((h * num_rel + r) * n + t)  # sorted, merged copies gone
    t, key = key % n, key // n
    edge_index = torch.stack([key // num_rel, t])
    return edge_index, key % num_rel, num_rel, local


def synthetic_pair(
    num_entities: int = 10000,
    *,
    num_relations: int = 300,
    num_triples: Optional[int] = None,
    unique_fraction: float = 0.1,
    edge_dropout: float = 0.3,
    relation_merge: float = 0.1,
    degree_exponent: float = 2.5,
    train_ratio: float = 0.3,
    seed: int = 0,
) -> HeteroData:
    r"""A KG pair made of two noisy views of one random KG, with the true
    alignment as links.

    The base KG has ``S = num_entities - U`` shared entities and ``U =
    round(unique_fraction * num_entities)`` entities unique to each side. Its
    triples follow a Chung-Lu model: heads and tails are drawn with power-law
    weights (degree tail ``d^-degree_exponent``), relations with Zipf weights;
    self-loops and repeats are removed. Each view then

    * keeps the base triples between its ``num_entities`` entities, each
      dropped independently with probability ``edge_dropout``;
    * merges ``round(relation_merge * num_relations)`` random relations into
      other relations and renumbers the remaining ones at random;
    * numbers its entities by an independent random permutation, so ids do
      not reveal the alignment. Entity names are ``'http://kg<k>.example.org/
      entity/ent<local id>'``, relation names ``'.../relation/rel<local id>'``
      with ``k`` 1 or 2.

    The ``S`` links (sorted by KG1 id) are split at random with
    :func:`~torch_geometric_ea.data.pair.split_links`.

    The defaults give about 4.5 triples per entity and view, like DWY100K
    (about 100K entities and 450K-500K triples per KG). Everything is
    vectorised: one million entities per side (7.7M base triples by default,
    or 10M) build in 5 to 15 seconds on two CPU cores.

    Args:
        num_entities (int): entities per KG. (default: :obj:`10000`)
        num_relations (int): relations of the base KG. (default: :obj:`300`)
        num_triples (int, optional): base triples (at most; fewer when the
            graph is too small to hold that many distinct ones).
            (default: :obj:`7 * (S + 2 * U)`)
        unique_fraction (float): fraction of each KG's entities with no
            counterpart. (default: :obj:`0.1`)
        edge_dropout (float): probability to drop a triple from a view.
            (default: :obj:`0.3`)
        relation_merge (float): fraction of relations merged per view.
            (default: :obj:`0.1`)
        degree_exponent (float): power-law exponent of the degrees, above 1.
            (default: :obj:`2.5`)
        train_ratio (float): fraction of training links. (default: :obj:`0.3`)
        seed (int): seed of everything random. (default: :obj:`0`)

    Returns:
        HeteroData: the KG pair.
    """
    if num_entities < 1 or num_relations < 1:
        raise ValueError("num_entities and num_relations must be positive")
    if not 0.0 <= unique_fraction < 1.0:
        raise ValueError(f"unique_fraction must be in [0, 1), got {unique_fraction}")
    if degree_exponent <= 1.0:
        raise ValueError(f"degree_exponent must be above 1, got {degree_exponent}")
    generator = torch.Generator().manual_seed(seed)
    num_unique = int(round(unique_fraction * num_entities))
    num_base = num_entities + num_unique
    if num_triples is None:
        num_triples = 7 * num_base
    if num_base * num_base * num_relations >= 2 ** 62:
        raise ValueError("graph too large for 64-bit triple keys")
    triples = _base_triples(num_base, num_relations, num_triples,
                            degree_exponent, generator)
    return two_views(triples, num_base, num_relations, num_entities,
                     unique_fraction=unique_fraction, edge_dropout=edge_dropout,
                     relation_merge=relation_merge, train_ratio=train_ratio,
                     generator=generator, seed=seed)


def two_views(triples: Tensor, num_base: int, num_relations: int,
              num_entities: int, *, unique_fraction: float = 0.1,
              edge_dropout: float = 0.3, relation_merge: float = 0.1,
              train_ratio: float = 0.3, seed: int = 0,
              generator: Optional[torch.Generator] = None) -> HeteroData:
    r"""A KG pair made of two noisy views of a base KG with ``num_base``
    entities and ``[T, 3]`` (head, relation, tail) ``triples``: base
    entities ``0 .. S - 1`` are shared (``S = num_entities - U``,
    ``U = round(unique_fraction * num_entities)``), the next ``U`` belong
    to KG1 only and the ``U`` after them to KG2 only (entities beyond
    ``S + 2 U`` are left out). Each view drops triples, merges relations
    and renumbers entities as :func:`synthetic_pair` describes; the ``S``
    links are split with :func:`~torch_geometric_ea.data.pair.split_links`.
    """
    for name, value in (('unique_fraction', unique_fraction),
                        ('edge_dropout', edge_dropout),
                        ('relation_merge', relation_merge)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    num_unique = int(round(unique_fraction * num_entities))
    num_shared = num_entities - num_unique
    if num_shared + 2 * num_unique > num_base:
        raise ValueError(f"two views of {num_entities} entities need "
                         f"{num_shared + 2 * num_unique} base entities "
                         f"(got {num_base})")
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    shared = torch.arange(num_shared)
    views, locals_ = [], []
    for k in range(2):
        start = num_shared + k * num_unique
        members = torch.cat([shared, torch.arange(start, start + num_unique)])
        *view, local = _view(triples, members, num_base, num_relations,
                             edge_dropout, relation_merge, generator)
        views.append(view)
        locals_.append(local)

    link_index = torch.stack([locals_[0][shared], locals_[1][shared]])
    link_index = link_index[:, torch.argsort(link_index[0])]
    prefixes = ('http://kg1.example.org/', 'http://kg2.example.org/')
    return kg_pair(
        num_nodes=(num_entities, num_entities),
        edge_index=(views[0][0], views[1][0]),
        edge_type=(views[0][1], views[1][1]),
        num_relations=(views[0][2], views[1][2]),
        link_index=link_index,
        uri=tuple([f'{p}entity/ent{i}' for i in range(num_entities)]
                  for p in prefixes),
        relation_uri=tuple([f'{p}relation/rel{i}' for i in range(v[2])]
                           for p, v in zip(prefixes, views)),
        **split_links(num_shared, train_ratio, seed=seed))
