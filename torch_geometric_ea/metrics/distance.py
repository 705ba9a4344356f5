r"""Rank-based evaluation of entity alignment under :math:`L_p` distances,
as GCN-Align (`Wang et al., EMNLP 2018
<https://aclanthology.org/D18-1032>`_) evaluates: a candidate ranks higher
the closer it is, and ties get the realistic rank of
:mod:`~torch_geometric_ea.metrics.ranks`.

Distances are computed :obj:`chunk_size` query rows at a time with
:func:`torch.cdist`, whose value for a pair of rows does not depend on the
rest of the batch, so the true distances computed on their own are bitwise
equal to the entries of the chunks and exact ties stay ties.
"""
from typing import Dict, Sequence, Tuple

import torch
from torch import Tensor

from torch_geometric_ea.metrics.ranks import (
    DEFAULT_TIE_ATOL,
    check_test_links,
    no_links_metrics,
    rank_metrics,
    realistic_rank,
    sign_sum,
)
from torch_geometric_ea.metrics.similarity import (
    DEFAULT_CHUNK_SIZE,
    check_pair,
    row_chunks,
)

__all__ = ['paired_distance_ranks', 'evaluate_alignment_distance']

_NO_MM = 'donot_use_mm_for_euclid_dist'  # per-pair kernel for p = 2 too


def paired_distance_ranks(
    x: Tensor,
    y: Tensor,
    *,
    p: float = 1.0,
    tie_atol: float = DEFAULT_TIE_ATOL,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tuple[Tensor, Tensor]:
    r"""Realistic ranks in both directions for the pairs :obj:`(x[i], y[i])`
    under the scores :math:`s_{ij} = -\|\mathbf{x}_i - \mathbf{y}_j\|_p`,
    from one chunked pass: the second direction sums signs down the
    columns of the same chunks."""
    num = x.size(0)
    # (N, 1, D) x (N, 1, D): the same per-pair kernel as the chunks.
    true = -torch.cdist(x.unsqueeze(1), y.unsqueeze(1), p=p,
                        compute_mode=_NO_MM).view(-1)
    sums_x, sums_y = [], 0
    buf = x.new_empty(min(chunk_size, num), num)
    for rows in row_chunks(num, chunk_size):
        scores = torch.cdist(x[rows], y, p=p, compute_mode=_NO_MM).neg_()
        sums_x.append(sign_sum(scores, true[rows].unsqueeze(1), 1, buf, num,
                               tie_atol))
        sums_y = sums_y + sign_sum(scores, true, 0, buf, num, tie_atol)
    return (realistic_rank(torch.cat(sums_x), num),
            realistic_rank(sums_y, num))


@torch.no_grad()
def evaluate_alignment_distance(
    src_emb: Tensor,
    tgt_emb: Tensor,
    test_links: Tensor,
    *,
    p: float = 1.0,
    ks: Sequence[int] = (1, 5, 10),
    tie_atol: float = DEFAULT_TIE_ATOL,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Dict[str, Dict[str, float]]:
    r"""Evaluates entity alignment in both directions by :math:`L_p`
    distance, as GCN-Align does (:math:`p = 1`).

    Every test source entity is ranked against the test target entities
    only (and vice versa) by

    .. math::
        d(i, j) = \|\mathbf{x}_i - \mathbf{y}_j\|_p,

    the closest first, without normalising the embeddings. Ranks are
    realistic (see :func:`~torch_geometric_ea.metrics.rank_of_true`):
    distances closer than :obj:`tie_atol` to the true one tie with it.

    Args:
        src_emb (torch.Tensor): The source KG's entity embeddings.
        tgt_emb (torch.Tensor): The target KG's entity embeddings.
        test_links (torch.Tensor): The one-to-one test alignment links,
            source indices in the first row and target indices in the
            second.
        p (float, optional): The norm :math:`p`. (default: :obj:`1.0`)
        ks (Sequence[int], optional): The Hits@k cut-offs.
            (default: :obj:`(1, 5, 10)`)
        tie_atol (float, optional): Distances closer than this tie;
            :obj:`0` for exact ties. (default: :obj:`1e-5`)
        chunk_size (int, optional): The number of queries scored at once.
            (default: :obj:`1024`)

    Returns:
        Dict[str, Dict[str, float]]: The metrics of
        :func:`~torch_geometric_ea.metrics.ranks.rank_metrics` under
        :obj:`'src->tgt'` and :obj:`'tgt->src'`.

    Shapes:
        - **inputs:** :math:`(N_s, D)`, :math:`(N_t, D)`, :math:`(2, L)`

    .. note::
        Peak memory is :math:`O(\text{chunk\_size} \cdot L)`; both
        directions share one chunked pass over the :math:`L \times L`
        distances.
    """
    check_test_links(test_links)
    if p < 1:
        raise ValueError(f"'p' must be at least 1 (got {p})")
    if test_links.size(1) == 0:  # seed links only: undefined, NaN
        return no_links_metrics(ks)
    x = src_emb[test_links[0]].contiguous()
    y = tgt_emb[test_links[1]].contiguous()
    check_pair(x, y)
    ranks_src, ranks_tgt = paired_distance_ranks(x, y, p=p, tie_atol=tie_atol,
                                                 chunk_size=chunk_size)
    return {
        'src->tgt': rank_metrics(ranks_src, ks=ks),
        'tgt->src': rank_metrics(ranks_tgt, ks=ks),
    }
