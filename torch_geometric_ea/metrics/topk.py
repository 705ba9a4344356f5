r"""Exact top-:math:`k` of every row and every column of a product too
large to hold: the candidates of the ``'sparse_sinkhorn'`` decoder
(:mod:`~torch_geometric_ea.metrics.sinkhorn`) and of
:func:`~torch_geometric_ea.metrics.ranking.evaluate_top_k`.

:func:`topk_inner_products` (rows) and :func:`topk_both_ways` (rows and
columns) score ``chunk_size`` rows at a time; for a few of many
(:func:`few_of_many`) they hand over to :func:`blocked_topk`, blocks with
running thresholds.

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

The products take their inputs in the run's precision from 1,024
columns (:func:`~torch_geometric_ea.metrics.similarity.search_dtype`:
the targets cast once, each chunk of queries as it comes); in bfloat16
the scores are rounded to 8 significant bits and selected as they are,
and the values returned are float32.
"""
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_ea.metrics.similarity import (
    DEFAULT_CHUNK_SIZE,
    check_pair,
    search_dtype,
)
from torch_geometric_ea.precision import for_products

__all__ = ['blocked_topk', 'few_of_many', 'GatheredRows', 'topk_inner_products',
           'topk_both_ways']


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
    :func:`~torch_geometric_ea.metrics.topk.topk_both_ways` returns
    them, in :math:`O(N k + M k + \text{row\_block} \cdot
    \text{col\_block})` memory (see the module). The columns' maxima cost
    two to three times the rows' (a reduction across rows), so a search that
    needs only the rows leaves them out. A score equal to a row's
    :math:`k`-th best may be left out in favour of one seen earlier."""
    check_pair(x, y)
    row_v, row_i = _running_topk(x.size(0), min(k, y.size(0)), x)
    if columns:
        col_v, col_i = _running_topk(y.size(0), min(k, x.size(0)), x)
    dtype = search_dtype(y.size(1), y.device)
    yt = for_products(y, dtype).t().contiguous()  # column slices multiply faster
    buffer = yt.new_empty(min(row_block, x.size(0)) * min(col_block, y.size(0)))
    for r0 in range(0, x.size(0), row_block):
        q = for_products(x[r0:r0 + row_block], dtype)
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


def few_of_many(k: int, rows: int, cols: int) -> bool:
    r"""Whether a top-``k`` search of ``rows`` queries among ``cols``
    targets is for so few of so many (``k`` at most 64 and a 64th of both
    sizes) that blocks with thresholds pay off
    (:func:`~torch_geometric_ea.metrics.topk.blocked_topk`)."""
    return k <= 64 and 64 * k <= min(rows, cols)


class GatheredRows:
    r"""The rows ``x[index]``, each passed through ``transform`` (row-wise,
    e.g. made unit), gathered only when sliced: as the queries of
    :func:`topk_inner_products` and :func:`topk_both_ways` (read
    ``chunk_size`` rows at a time) they cost one chunk of memory instead
    of a copy of all the rows."""
    def __init__(self, x: Tensor, index: Tensor,
                 transform: Callable[[Tensor], Tensor] = lambda rows: rows):
        self.x, self.index, self.transform = x, index, transform
        self.shape = torch.Size((index.numel(), x.size(1)))
        self.dtype, self.device = x.dtype, x.device

    def size(self, dim: Optional[int] = None):
        r"""The shape :math:`(|index|, D)`, or its size ``dim``."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        r"""2: a matrix."""
        return 2

    def new_empty(self, *size) -> Tensor:
        r"""An empty tensor of ``x``'s dtype and device."""
        return self.x.new_empty(*size)

    def __getitem__(self, rows: slice) -> Tensor:
        return self.transform(self.x[self.index[rows]])


@torch.no_grad()
def topk_inner_products(x: Tensor, y: Tensor, k: int,
                        chunk_size: int = DEFAULT_CHUNK_SIZE,
                        sorted: bool = True) -> Tuple[Tensor, Tensor]:
    r"""The exact ``k`` largest :math:`\mathbf{x}_i^{\top} \mathbf{y}_j` of
    every row :math:`i`, best first (in no order without ``sorted``): values
    and column indices
    :math:`(N, k)`, computed ``chunk_size`` rows at a time
    (:math:`O(\text{chunk\_size} \cdot M)` memory); for a few of many
    (see :func:`topk_both_ways`) by
    :func:`~torch_geometric_ea.metrics.topk.blocked_topk`."""
    check_pair(x, y)
    if few_of_many(k, x.size(0), y.size(0)):
        return blocked_topk(x[:], y, k, columns=False)[:2]
    k = min(k, y.size(0))
    values = x.new_empty(x.size(0), k)
    index = torch.empty(x.size(0), k, dtype=torch.long, device=x.device)
    dtype = search_dtype(y.size(1), y.device)
    yt = for_products(y, dtype).t().contiguous()
    buffer = yt.new_empty(min(chunk_size, x.size(0)), y.size(0))  # no fresh pages
    for start in range(0, x.size(0), chunk_size):
        rows = slice(start, min(start + chunk_size, x.size(0)))
        scores = torch.matmul(for_products(x[rows], dtype), yt,
                              out=buffer[:rows.stop - rows.start])
        values[rows], index[rows] = scores.topk(k, dim=1, sorted=sorted)
    return values, index


@torch.no_grad()
def topk_both_ways(x: Tensor, y: Tensor, k: int,
                   chunk_size: int = DEFAULT_CHUNK_SIZE, sorted: bool = True
                   ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""The exact top-``k`` of every row of :math:`\mathbf{x}
    \mathbf{y}^{\top}` and of every column, from one chunked pass over the
    product (half the work of two :func:`topk_inner_products` calls): row
    values and indices :math:`(N, k)`, column values and indices
    :math:`(M, k)`, best first (in no order without ``sorted``: a sort of
    :math:`k` = 500 costs a fifth of the selection). For a few candidates
    of many (``k`` at most
    64 and a 64th of :math:`N` and :math:`M`) the pass is
    :func:`~torch_geometric_ea.metrics.topk.blocked_topk`, which selects
    only from the blocks that beat a row's or column's running
    :math:`k`-th best."""
    check_pair(x, y)
    if few_of_many(k, x.size(0), y.size(0)):
        return blocked_topk(x[:], y, k)
    k_row, k_col = min(k, y.size(0)), min(k, x.size(0))
    row_values = x.new_empty(x.size(0), k_row)
    row_index = torch.empty(x.size(0), k_row, dtype=torch.long, device=x.device)
    dtype = search_dtype(y.size(1), y.device)
    yt = for_products(y, dtype).t().contiguous()
    col_values = yt.new_empty(y.size(0), 0)
    col_index = torch.empty(y.size(0), 0, dtype=torch.long, device=x.device)
    # One buffer for the transposed chunks: writing to fresh pages each
    # time cost 2.5 times the copy (0.64 against 0.26 s per 2,048 x 63K).
    buffer = yt.new_empty(y.size(0) * min(chunk_size, x.size(0)))
    product = yt.new_empty(min(chunk_size, x.size(0)), y.size(0))
    for start in range(0, x.size(0), chunk_size):
        rows = slice(start, min(start + chunk_size, x.size(0)))
        scores = torch.matmul(for_products(x[rows], dtype), yt,
                              out=product[:rows.stop - rows.start])
        row_values[rows], row_index[rows] = scores.topk(k_row, dim=1, sorted=sorted)
        # the columns' candidates, row-wise
        scores = buffer[:scores.numel()].view(scores.t().shape).copy_(scores.t())
        # Unsorted selections while merging: sorting 500 of 2,048 costs
        # more than selecting them.
        values, index = scores.topk(min(k_col, scores.size(1)), dim=1, sorted=False)
        values = torch.cat([col_values, values], dim=1)
        index = torch.cat([col_index, index + start], dim=1)
        col_values, keep = values.topk(min(k_col, values.size(1)), dim=1, sorted=False)
        col_index = index.gather(1, keep)
    if sorted:
        col_values, order = col_values.sort(dim=1, descending=True)
        col_index = col_index.gather(1, order)
    return row_values, row_index, col_values.to(x.dtype), col_index
