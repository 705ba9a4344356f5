r"""Exact top-:math:`k` of every row and every column of a product too
large to hold, for small :math:`k`: blocks with running thresholds.

Scoring :math:`N` queries against :math:`M` targets costs :math:`N M D`
multiply-adds, which no method that must find every row's exact top-k can
avoid; what it can avoid is selecting from every score. The product is
formed a block of ``row_block`` :math:`\times` ``col_block`` at a time.
Each row keeps its best :math:`k` so far, sorted, and a block is searched
for a row only if the block's largest score in that row beats the row's
:math:`k`-th best; likewise for columns. With the blocks in random order
a block beats the :math:`k`-th best of the :math:`j` before it with
probability about :math:`k / j`, so beyond the first blocks nearly every
block costs one product and two maxima (about 0.1 and 0.2 ns per score
on two AVX2 cores, against 2 ns for the product at :math:`D = 128`).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_ea.metrics.similarity import check_pair

__all__ = ['blocked_topk']


def _search(scores: Tensor, best_v: Tensor, best_i: Tensor, offset: int) -> None:
    r"""Merges the rows of a score block whose maximum beats their running
    (sorted) :math:`k`-th best into their top-k; ``offset`` is the block's
    first column."""
    at = (scores.amax(dim=1) > best_v[:, -1]).nonzero().squeeze(1)
    if at.numel() == 0:
        return
    values, index = scores[at].topk(min(best_v.size(1), scores.size(1)), dim=1)
    values = torch.cat([best_v[at], values], dim=1)
    index = torch.cat([best_i[at], index + offset], dim=1)
    best_v[at], keep = values.topk(best_v.size(1), dim=1)
    best_i[at] = index.gather(1, keep)


def _running_topk(num: int, k: int, like: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Empty running top-k lists: values :math:`-\infty`, indices -1."""
    values = like.new_full((num, k), float('-inf'))
    return values, torch.full(values.shape, -1, dtype=torch.long, device=like.device)


@torch.no_grad()
def blocked_topk(x: Tensor, y: Tensor, k: int, *, columns: bool = True,
                 row_block: int = 4096, col_block: int = 1024
                 ) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
    r"""The exact top-``k`` of every row of :math:`\mathbf{x}
    \mathbf{y}^{\top}` and, with ``columns``, of every column, best first:
    row values and indices :math:`(N, k)`, column values and indices
    :math:`(M, k)` (:obj:`None` without ``columns``), as
    :func:`~torch_geometric_ea.metrics.decoding.topk_both_ways` returns
    them, in :math:`O(N k + M k + \text{row\_block} \cdot
    \text{col\_block})` memory (see the module). The columns' maxima cost
    two to three times the rows' (a reduction across rows), so a search that
    needs only the rows leaves them out. A score equal to a row's
    :math:`k`-th best may be left out in favour of one seen earlier."""
    check_pair(x, y)
    row_v, row_i = _running_topk(x.size(0), min(k, y.size(0)), x)
    if columns:
        col_v, col_i = _running_topk(y.size(0), min(k, x.size(0)), x)
    yt = y.t().contiguous()  # column slices multiply faster than row blocks
    buffer = x.new_empty(min(row_block, x.size(0)) * min(col_block, y.size(0)))
    for r0 in range(0, x.size(0), row_block):
        q = x[r0:r0 + row_block]
        rows = slice(r0, r0 + row_block)
        for c0 in range(0, y.size(0), col_block):
            block = yt[:, c0:c0 + col_block]
            scores = torch.mm(q, block, out=buffer[:q.size(0) * block.size(1)].view(
                q.size(0), block.size(1)))  # no fresh pages per block
            _search(scores, row_v[rows], row_i[rows], c0)
            if columns:
                cols = slice(c0, c0 + col_block)
                _search(scores.t(), col_v[cols], col_i[cols], r0)
    return (row_v, row_i) + ((col_v, col_i) if columns else (None, None))
