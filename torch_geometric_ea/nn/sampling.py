r"""Negative samplers and candidate sets of the aligners' losses, and the
row subsets they embed: nearest entities by squared Euclidean and by
:math:`L_1` distance (hard negatives), random loss candidates, a random
subset of links, and the rows a batch's loss reads. All are computed in
row chunks (memory :math:`O(\text{chunk} \cdot N)`)."""
from typing import Iterator, Optional, Tuple

import torch
from torch import Tensor

__all__ = ['uniform_negatives', 'nearest_squared', 'l1_nearest', 'loss_candidates',
           'sample_links', 'rows_to_embed', 'chunks']


def uniform_negatives(pairs: Tensor, num_negatives: int, num_nodes: int,
                      generator: Optional[torch.Generator] = None) -> Tensor:
    r"""Corrupted entities for every seed pair, drawn uniformly with
    replacement from all :obj:`num_nodes` entities (both KGs, the true
    partner included), as the official GCN-Align code does.

    Args:
        pairs (torch.Tensor): Seed pairs :math:`(2, B)`.
        num_negatives (int): Negatives :math:`k` per side and pair.
        num_nodes (int): Number of entities to draw from.
        generator (torch.Generator, optional): The random generator.

    Returns:
        torch.Tensor: :math:`(2, B, k)`: row :obj:`0` replaces the left
        entity of each pair, row :obj:`1` the right one.
    """
    if num_negatives < 1:
        raise ValueError(f"'num_negatives' must be positive (got {num_negatives})")
    # drawn on the CPU generator, so a seed gives the same draws everywhere
    return torch.randint(num_nodes, (2, pairs.size(1), num_negatives),
                         generator=generator).to(pairs.device)


def chunks(num: int, size: int) -> Iterator[slice]:
    r"""Slices of at most ``size`` of ``range(num)``."""
    if size < 1:
        raise ValueError(f"'chunk_size' must be positive (got {size})")
    for start in range(0, num, size):
        yield slice(start, min(start + size, num))


@torch.no_grad()
def nearest_squared(x: Tensor, query: Tensor, k: int, chunk_size: int = 1024) -> Tensor:
    r"""For each entity in ``query``, the ``k`` other entities nearest to it
    by squared Euclidean distance :math:`\|x_j\|^2 - 2 x_q^\top x_j` (+ a
    row constant), as a :math:`(N, k)` table filled on the query rows."""
    k = min(k, x.size(0) - 1)
    out = torch.full((x.size(0), k), -1, dtype=torch.long, device=x.device)
    sq = x.pow(2).sum(1)
    for start in range(0, query.numel(), chunk_size):
        q = query[start:start + chunk_size]
        dist = torch.addmm(sq, x[q], x.t(), alpha=-2)
        dist[torch.arange(q.numel(), device=x.device), q] = float('inf')  # not itself
        out[q] = dist.topk(k, dim=1, largest=False).indices
    return out


@torch.no_grad()
def l1_nearest(query: Tensor, x: Tensor, k: int, chunk_size: int = 256,
               candidates: Optional[int] = None) -> Tensor:
    r"""The :math:`k` rows of ``x`` nearest to each row of ``query`` by
    :math:`L_1` distance :math:`\|\mathbf{q}_i - \mathbf{x}_j\|_1` (the query
    itself included when it is a row of ``x``, as in the official code).

    Args:
        query (torch.Tensor): Queries :math:`(Q, D)`.
        x (torch.Tensor): Candidates :math:`(N, D)`.
        k (int): Neighbours per query (at most :math:`N`).
        chunk_size (int, optional): Queries ranked at once.
            (default: :obj:`256`)
        candidates (int, optional): If set, only the that many nearest
            rows by Euclidean distance are ranked by :math:`L_1` (an
            approximation). (default: :obj:`None`)

    Returns:
        torch.Tensor: Indices into ``x`` :math:`(Q, k)`, nearest first.

    .. note::
        Peak memory is :math:`O(\text{chunk\_size} \cdot N)`, plus
        :math:`O(\text{chunk\_size} \cdot \text{candidates} \cdot D)` with
        candidates.
    """
    num = x.size(0)
    if not 0 < k <= num:
        raise ValueError(f"'k' must be in [1, {num}] (got {k})")
    out = torch.empty(query.size(0), k, dtype=torch.long, device=x.device)
    use_candidates = candidates is not None and k <= candidates < num
    sq_norm = x.pow(2).sum(1) if use_candidates else None
    for rows in chunks(query.size(0), chunk_size):
        q = query[rows]
        if use_candidates:
            dist2 = torch.addmm(sq_norm, q, x.t(), alpha=-2)  # |x|^2 - 2 q.x
            cand = dist2.topk(candidates, dim=1, largest=False).indices
            dist = torch.empty(cand.shape, dtype=x.dtype, device=x.device)
            for sub in chunks(cand.size(0), 16):  # gathered rows stay in cache
                near = x.index_select(0, cand[sub].reshape(-1))
                near = near.view(-1, candidates, x.size(1)).sub_(q[sub].unsqueeze(1))
                dist[sub] = torch.linalg.vector_norm(near, ord=1, dim=-1)
            out[rows] = cand.gather(1, dist.topk(k, dim=1, largest=False).indices)
        else:
            dist = torch.cdist(q, x, p=1)
            out[rows] = dist.topk(k, dim=1, largest=False).indices
    return out


def loss_candidates(kind: str, num: int, batch: Tensor, num_nodes: int,
                    nearest: Optional[Tensor] = None) -> Optional[Tensor]:
    r"""The loss's candidate entities for a batch of pairs :math:`(2, B)`:
    every entity (:obj:`None`; ``kind='all'``, or ``num`` at least
    ``num_nodes``), ``num`` drawn at random (``'random'``, torch's global
    generator), or those plus the rows of ``nearest`` (a table of
    :func:`nearest_squared`) of the batch's entities (``'hard'``)."""
    if kind == 'all' or num >= num_nodes:
        return None
    sample = torch.randperm(num_nodes)[:num].to(batch.device)
    if kind == 'random':
        return sample
    return torch.unique(torch.cat([sample, nearest[batch.reshape(-1)].view(-1)]))


def sample_links(links: Tensor, num: Optional[int], seed: int) -> Tensor:
    r"""``num`` of the :math:`(2, L)` ``links`` drawn at random by their own
    generator seeded with ``seed`` (training's random stream is left as it
    is), in their order; all of them when ``num`` is :obj:`None` or at
    least :math:`L`."""
    if num is None or num >= links.size(1):
        return links
    if num < 1:
        raise ValueError(f"'eval_links' must be positive (got {num})")
    gen = torch.Generator().manual_seed(seed)
    keep = torch.randperm(links.size(1), generator=gen)[:num].sort().values
    return links[:, keep.to(links.device)]


def rows_to_embed(pairs: Tensor, others: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The entities that ``pairs`` :math:`(2, B)` and ``others`` :math:`(K)`
    name (a batch and its loss candidates; test links and the unaligned
    pool): their sorted ids, and ``pairs`` and ``others`` renumbered as
    positions in them. Embed those rows, then index with the two."""
    rows, inverse = torch.unique(torch.cat([pairs.reshape(-1), others]),
                                 return_inverse=True)
    return (rows, inverse[:pairs.numel()].view_as(pairs),
            inverse[pairs.numel():])
