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
block costs one product and two maxima (about 0.1 and 0.25 ns per score
on two AVX2 cores, against 2 ns for the product at :math:`D = 128`).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_ea.metrics.similarity import _check_pair

__all__ = ['blocked_topk']


def _merge(best_v: Tensor, best_i: Tensor, at: Tensor, values: Tensor,
           index: Tensor) -> None:
    r"""Merges candidates into the sorted running top-k of rows ``at``."""
    values = torch.cat([best_v[at], values], dim=1)
    index = torch.cat([best_i[at], index], dim=1)
    best_v[at], keep = values.topk(best_v.size(1), dim=1)
    best_i[at] = index.gather(1, keep)


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
    three times the rows' (a reduction across rows), so a search that
    needs only the rows leaves them out. A score equal to a row's
    :math:`k`-th best may be left out in favour of one seen earlier."""
    _check_pair(x, y)
    k_row, k_col = min(k, y.size(0)), min(k, x.size(0))
    row_v = x.new_full((x.size(0), k_row), float('-inf'))
    row_i = torch.full(row_v.shape, -1, dtype=torch.long, device=x.device)
    col_v = x.new_full((y.size(0), k_col), float('-inf'))
    col_i = torch.full(col_v.shape, -1, dtype=torch.long, device=x.device)
    yt = y.t().contiguous()  # column slices multiply faster than row blocks
    buffer = x.new_empty(min(row_block, x.size(0)) * min(col_block, y.size(0)))
    for r0 in range(0, x.size(0), row_block):
        q = x[r0:r0 + row_block]
        rv, ri = row_v[r0:r0 + row_block], row_i[r0:r0 + row_block]
        for c0 in range(0, y.size(0), col_block):
            block = yt[:, c0:c0 + col_block]
            scores = torch.mm(q, block, out=buffer[:q.size(0) * block.size(1)].view(
                q.size(0), block.size(1)))  # no fresh pages per block
            at = (scores.amax(dim=1) > rv[:, -1]).nonzero().squeeze(1)
            if at.numel():
                values, index = scores[at].topk(min(k_row, scores.size(1)), dim=1)
                _merge(rv, ri, at, values, index + c0)
            if not columns:
                continue
            cv, ci = col_v[c0:c0 + col_block], col_i[c0:c0 + col_block]
            at = (scores.amax(dim=0) > cv[:, -1]).nonzero().squeeze(1)
            if at.numel():
                values, index = scores[:, at].t().topk(min(k_col, q.size(0)), dim=1)
                _merge(cv, ci, at, values, index + r0)
    return (row_v, row_i) + ((col_v, col_i) if columns else (None, None))
