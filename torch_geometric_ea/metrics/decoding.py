r"""Global decodings of an alignment: Sinkhorn normalisation and the
Hungarian algorithm, as alternatives to greedy (CSLS) nearest neighbours.

Greedy decoding lets many sources pick the same target. Both decodings
here use that the alignment is (nearly) one-to-one:

- Sinkhorn (`Cuturi, 2013 <https://arxiv.org/abs/1306.0895>`_) scales the
  similarity kernel :math:`\exp(\cos(\mathbf{x}_i, \mathbf{y}_j) / \tau)` to
  a doubly stochastic matrix
  :math:`P_{ij} = \exp(\cos(\mathbf{x}_i, \mathbf{y}_j) / \tau + u_i + v_j)`.
  Ranking row :math:`i` of :math:`P` ranks the targets by
  :math:`\cos(\mathbf{x}_i, \mathbf{y}_j) + \tau v_j`: a target that many
  sources like gets a lower :math:`v_j`, as CSLS penalises hubs, but with
  the penalty fitted to all rows at once.
- The Hungarian algorithm (via SciPy's ``linear_sum_assignment``) finds the
  one-to-one matching of largest total similarity; it gives one target per
  source, so only Hits@1 is defined.

The potentials are computed in the log domain over row chunks, so Sinkhorn
needs :math:`O(\text{chunk\_size} \cdot M)` memory at any size; the
Hungarian algorithm needs the dense :math:`N \times M` matrix.
"""
import math
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_ea.metrics.similarity import (
    DEFAULT_CHUNK_SIZE,
    check_pair,
    score_chunks,
)
from torch_geometric_ea.metrics.topk import blocked_topk

__all__ = ['sinkhorn_potentials', 'hungarian_matching', 'GatheredRows',
           'topk_inner_products',
           'topk_both_ways', 'sparse_sinkhorn', 'sparse_sinkhorn_ranks',
           'candidate_ranks']


@torch.no_grad()
def sinkhorn_potentials(
    x: Tensor,
    y: Tensor,
    *,
    tau: float = 0.02,
    num_iters: int = 10,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tuple[Tensor, Tensor]:
    r"""The log-domain Sinkhorn potentials :math:`\mathbf{u}, \mathbf{v}`
    that scale :math:`K_{ij} = \exp(\mathbf{x}_i^{\top} \mathbf{y}_j / \tau)`
    towards uniform marginals, :math:`\sum_j P_{ij} = 1/N` and
    :math:`\sum_i P_{ij} = 1/M` for :math:`P_{ij} = \exp(\mathbf{x}_i^{\top}
    \mathbf{y}_j / \tau + u_i + v_j)`. Each iteration updates

    .. math::
        u_i = -\log N - \operatorname{logsumexp}_j
        (\mathbf{x}_i^{\top} \mathbf{y}_j / \tau + v_j), \qquad
        v_j = -\log M - \operatorname{logsumexp}_i
        (\mathbf{x}_i^{\top} \mathbf{y}_j / \tau + u_i)

    in one chunked pass over :math:`\mathbf{x} \mathbf{y}^{\top}` (the
    column log-sum-exp is accumulated over row chunks with a running
    maximum), so it ends with exact column marginals.

    Args:
        x (torch.Tensor): L2-normalised source embeddings :math:`(N, D)`.
        y (torch.Tensor): L2-normalised target embeddings :math:`(M, D)`.
        tau (float, optional): The temperature (the literature's
            :math:`\exp(50 \cdot \cos)` is :math:`\tau = 0.02`).
            (default: :obj:`0.02`)
        num_iters (int, optional): Sinkhorn iterations. (default: :obj:`10`)
        chunk_size (int, optional): Rows of :math:`\mathbf{x}` per product.
            (default: :obj:`1024`)

    Returns:
        (torch.Tensor, torch.Tensor): :math:`\mathbf{u}` :math:`(N)` and
        :math:`\mathbf{v}` :math:`(M)`.
    """
    check_pair(x, y)
    if tau <= 0:
        raise ValueError(f"'tau' must be positive (got {tau})")
    if num_iters < 1:
        raise ValueError(f"'num_iters' must be positive (got {num_iters})")
    num_x, num_y = x.size(0), y.size(0)
    u, v = x.new_zeros(num_x), x.new_zeros(num_y)
    for _ in range(num_iters):
        col_max = x.new_full((num_y, ), -math.inf)
        col_sum = x.new_zeros(num_y)
        for rows, scores in score_chunks(x, y, None, chunk_size):
            scores.div_(tau)
            u[rows] = -math.log(num_x) - torch.logsumexp(scores + v, dim=1)
            scores.add_(u[rows].unsqueeze(1))
            new_max = torch.maximum(col_max, scores.max(dim=0).values)
            col_sum.mul_(torch.exp(col_max - new_max))
            col_sum.add_(scores.sub_(new_max).exp_().sum(dim=0))
            col_max = new_max
        v = -math.log(num_y) - (col_max + col_sum.log())
    return u, v


def sinkhorn_radii(x: Tensor, y: Tensor, *, tau: float = 0.02,
                   num_iters: int = 10,
                   chunk_size: int = DEFAULT_CHUNK_SIZE) -> Tuple[Tensor, Tensor]:
    r"""The Sinkhorn potentials as CSLS-shaped offsets
    :math:`(r_{\mathbf{x}}, r_{\mathbf{y}}) = (-2 \tau \mathbf{u}, -2 \tau
    \mathbf{v})`, so that :math:`2 \cos_{ij} - r_{\mathbf{x}}(i) -
    r_{\mathbf{y}}(j) = 2 \tau \log P_{ij}` (up to a constant) and the
    chunked CSLS scoring ranks by the Sinkhorn-normalised similarities."""
    u, v = sinkhorn_potentials(x, y, tau=tau, num_iters=num_iters,
                               chunk_size=chunk_size)
    return u.mul(-2 * tau), v.mul(-2 * tau)


@torch.no_grad()
def hungarian_matching(x: Tensor, y: Tensor, *, max_size: int = 30000) -> Tensor:
    r"""The one-to-one matching of largest total cosine similarity
    :math:`\max_\pi \sum_i \mathbf{x}_i^{\top} \mathbf{y}_{\pi(i)}`, by
    SciPy's ``linear_sum_assignment`` (the Hungarian algorithm's modern
    variant).

    Args:
        x (torch.Tensor): L2-normalised source embeddings :math:`(N, D)`.
        y (torch.Tensor): L2-normalised target embeddings :math:`(M, D)`.
        max_size (int, optional): The largest :math:`\max(N, M)` accepted:
            the dense matrix takes :math:`8 N M` bytes in SciPy.
            (default: :obj:`30000`)

    Returns:
        torch.Tensor: For every source, the index of its target, or
        :obj:`-1` where :math:`N > M` leaves it unmatched :math:`(N)`.
    """
    check_pair(x, y)
    if max(x.size(0), y.size(0)) > max_size:
        raise ValueError(f"hungarian_matching needs the dense {x.size(0)} x "
                         f"{y.size(0)} matrix; above 'max_size' ({max_size}) "
                         f"use Sinkhorn decoding")
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError as e:
        raise ImportError("hungarian_matching needs SciPy "
                          "(pip install scipy)") from e
    sim = (x @ y.t()).double().cpu().numpy()  # SciPy runs on the CPU
    rows, cols = linear_sum_assignment(sim, maximize=True)
    out = torch.full((x.size(0), ), -1, dtype=torch.long, device='cpu')
    out[torch.from_numpy(rows)] = torch.from_numpy(cols)
    return out.to(x.device)


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
                        chunk_size: int = DEFAULT_CHUNK_SIZE) -> Tuple[Tensor, Tensor]:
    r"""The exact ``k`` largest :math:`\mathbf{x}_i^{\top} \mathbf{y}_j` of
    every row :math:`i`, best first: values and column indices
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
    yt = y.t().contiguous()
    for start in range(0, x.size(0), chunk_size):
        rows = slice(start, min(start + chunk_size, x.size(0)))
        values[rows], index[rows] = (x[rows] @ yt).topk(k, dim=1)
    return values, index


@torch.no_grad()
def sparse_sinkhorn(values: Tensor, index: Tensor, num_cols: int, *,
                    tau: float = 0.02, num_iters: int = 15) -> Tensor:
    r"""Sinkhorn normalisation of a sparse kernel: each row :math:`i` keeps
    only its candidates ``index[i]`` (for example the top-:math:`k` of
    :func:`topk_inner_products`), with :math:`K_{ij} = \exp(s_{ij} /
    \tau)`; each iteration divides every row by its sum, then every column
    by its sum over the rows that list it (LightEA's sparse Sinkhorn).
    Returns the normalised :math:`P_{ij}` :math:`(N, k)` in the order of
    ``index`` (after a column normalisation, as the official code ends).
    Where :math:`k` covers every column it is the dense Sinkhorn iteration.

    Each row's kernel is shifted by its largest score, which the first row
    normalisation cancels, and floored at :math:`e^{-80}`, so that no entry
    underflows and no column sums to zero."""
    shifted = (values - values.max(dim=1, keepdim=True).values) / tau
    kernel = shifted.clamp(min=-80).exp()
    flat = index.reshape(-1)
    for _ in range(num_iters):
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        total = torch.zeros(num_cols, dtype=kernel.dtype, device=kernel.device)
        kernel = kernel / total.index_add_(0, flat, kernel.reshape(-1))[index]
    return kernel


@torch.no_grad()
def topk_both_ways(x: Tensor, y: Tensor, k: int,
                   chunk_size: int = DEFAULT_CHUNK_SIZE
                   ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""The exact top-``k`` of every row of :math:`\mathbf{x}
    \mathbf{y}^{\top}` and of every column, from one chunked pass over the
    product (half the work of two :func:`topk_inner_products` calls): row
    values and indices :math:`(N, k)`, column values and indices
    :math:`(M, k)`, best first. For a few candidates of many (``k`` at most
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
    col_values = x.new_empty(y.size(0), 0)
    col_index = torch.empty(y.size(0), 0, dtype=torch.long, device=x.device)
    yt = y.t().contiguous()
    # One buffer for the transposed chunks: writing to fresh pages each
    # time cost 2.5 times the copy (0.64 against 0.26 s per 2,048 x 63K).
    buffer = x.new_empty(y.size(0) * min(chunk_size, x.size(0)))
    for start in range(0, x.size(0), chunk_size):
        rows = slice(start, min(start + chunk_size, x.size(0)))
        scores = x[rows] @ yt
        row_values[rows], row_index[rows] = scores.topk(k_row, dim=1)
        # the columns' candidates, row-wise
        scores = buffer[:scores.numel()].view(scores.t().shape).copy_(scores.t())
        # Unsorted selections while merging: sorting 500 of 2,048 costs
        # more than selecting them.
        values, index = scores.topk(min(k_col, scores.size(1)), dim=1, sorted=False)
        values = torch.cat([col_values, values], dim=1)
        index = torch.cat([col_index, index + start], dim=1)
        col_values, keep = values.topk(min(k_col, values.size(1)), dim=1, sorted=False)
        col_index = index.gather(1, keep)
    col_values, order = col_values.sort(dim=1, descending=True)
    return row_values, row_index, col_values, col_index.gather(1, order)


@torch.no_grad()
def sparse_sinkhorn_ranks(values: Tensor, index: Tensor, num_cols: int,
                          true: Tensor, group: Optional[Tensor] = None, *,
                          tau: float = 0.02, num_iters: int = 15
                          ) -> Tuple[Tensor, Tensor]:
    r"""Where each row's true column ``true`` :math:`(N)` stands among its
    candidates ``index`` (with inner products ``values``, e.g. the top-k of
    :func:`topk_both_ways`), ordered by their :func:`sparse_sinkhorn`
    scores (LightEA's evaluation): the number of candidates scored above
    it, ``inf`` when it is not a candidate (a miss, as the official
    evaluation counts it), and the number tied with it. Columns with the
    same ``group`` id :math:`(M)` (identical feature vectors, see
    :func:`~torch_geometric_ea.metrics.ranking.duplicate_rows`) tie
    whatever rounding made of their scores; other candidates tie on equal
    scores. Feed both to
    :func:`~torch_geometric_ea.metrics.ranking.expected_rank_metrics`."""
    scores = sparse_sinkhorn(values, index, num_cols, tau=tau, num_iters=num_iters)
    return candidate_ranks(scores, index, true, group)


def candidate_ranks(scores: Tensor, index: Tensor, true: Tensor,
                    group: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    r"""Where each row's true column ``true`` :math:`(N)` stands among its
    candidates ``index`` :math:`(N, k)` with ``scores``: the number scored
    above it (``inf`` when it is not a candidate) and the number tied with
    it (equal score, or the same ``group`` id; see
    :func:`sparse_sinkhorn_ranks`)."""
    is_true = index == true.unsqueeze(1)
    true_score = torch.where(is_true, scores, torch.zeros_like(scores)).sum(1, True)
    tied = (scores == true_score) & ~is_true
    if group is not None:
        tied |= (group[index] == group[true].unsqueeze(1)) & ~is_true
    greater = ((scores > true_score) & ~tied).sum(1).to(scores.dtype)
    found = is_true.any(1)
    return (torch.where(found, greater, torch.full_like(greater, math.inf)),
            tied.sum(1) * found)
