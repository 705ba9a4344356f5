r"""Rank-based evaluation with low-precision (bfloat16) score products
that counts as float32 would (issue 31).

A bfloat16 product on the CPU returns its entries rounded to 8 significant
bits, so scores within about :math:`2^{-8} |s|` of each other may tie or
swap. Each block is therefore one product of operands that carry the CSLS
offsets too (:func:`low_score_operands`), compared with the exact float32
true scores with a margin that bounds every error
(:func:`low_paired_ranks`); the few entries inside the margin, near-ties
that rounding could decide, are re-scored in float32
(:func:`~torch_geometric_ea.metrics.similarity.exact_scores`).
"""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_ea.metrics.ranks import DEFAULT_TIE_ATOL, realistic_rank, sign_sum
from torch_geometric_ea.metrics.similarity import (
    DEFAULT_CHUNK_SIZE,
    LowPair,
    Radii,
    exact_scores,
    low_similarity_pass,
    pad_columns,
    row_chunks,
)

__all__ = ['low_score_operands', 'low_paired_ranks']


def _split(r: Tensor, dtype: torch.dtype) -> Tuple[Tensor, float]:
    r"""``r`` as three ``dtype`` columns summing to it (exact for bfloat16,
    whose 3 x 8 bits hold float32's 24) and the largest residual."""
    parts, rest = [], r
    for _ in range(3):
        parts.append(rest.to(dtype))
        rest = rest - parts[-1].float()
    return torch.stack(parts, dim=1), float(rest.abs().max())


def _halves(full: Tensor, high: Tensor) -> Tuple[Tensor, Tensor, float, float, float]:
    r"""The low part :math:`\mathrm{fl}(\mathbf{x} - \hat{\mathbf{x}})` of
    ``full`` beside ``high`` :math:`\hat{\mathbf{x}}`, and the row maxima
    of :math:`\|\mathbf{x}\|`, of the low part's norm and of the rest's,
    :math:`\|\mathbf{x} - \hat{\mathbf{x}} - \mathbf{x}_{lo}\|` (each
    difference exact in float32)."""
    rest = full - high.float()
    low = rest.to(high.dtype)
    rest = rest - low.float()
    return (low, float(full.norm(dim=1).max()), float(low.float().norm(dim=1).max()),
            float(rest.norm(dim=1).max()))


def low_score_operands(pair: LowPair, radii: Radii) -> Tuple[Tensor, Tensor, float]:
    r"""Low-precision operands :math:`\mathbf{A}, \mathbf{B}` whose one
    product :math:`\mathbf{A} \mathbf{B}^{\top}` is the score block of
    :func:`~torch_geometric_ea.metrics.similarity.score_chunks`, and a
    bound :math:`\delta` on its error before the output rounding.

    With :math:`\mathbf{x} = \hat{\mathbf{x}} + \mathbf{x}_{lo} +
    \mathbf{a}` (two bfloat16 parts and a rest), :math:`[\hat{\mathbf{x}},
    \mathbf{x}_{lo}, \hat{\mathbf{x}}] [\hat{\mathbf{y}}, \hat{\mathbf{y}},
    \mathbf{y}_{lo}]^{\top}` misses only :math:`\mathbf{x}_{lo}^{\top}
    \mathbf{y}_{lo}` and the rests (Cauchy-Schwarz: about :math:`2^{-18}`
    against :math:`2^{-8}` for :math:`\hat{\mathbf{x}}^{\top}
    \hat{\mathbf{y}}`), at three times the product's width. Radii add
    :math:`[2 \cdot, -\mathbf{r}_x, \mathbf{1}]` and :math:`[\cdot,
    \mathbf{1}, -\mathbf{r}_y]`, each radius split into three exact
    columns, so the float32 accumulator sums :math:`2 \cos_{ij} -
    r_{\mathbf{x}}(i) - r_{\mathbf{y}}(j)` before the one rounding."""
    (x_lo, nx, ex, ax), (y_lo, ny, ey, ay) = (_halves(pair.x, pair.x_low),
                                              _halves(pair.y, pair.y_low))
    error = ex * ey + (nx + ax) * ay + ax * (ny + ay) + ax * ay
    width = 3 * pair.x.size(1) + 6
    error += 2 * width * 2.0**-24 * (nx + ex + ax) * (ny + ey + ay)  # both sums
    a = [pair.x_low, x_lo, pair.x_low]
    b = [pair.y_low, pair.y_low, y_lo]
    if radii is not None:
        dtype = pair.x_low.dtype
        (r_x, res_x), (r_y, res_y) = _split(-radii[0], dtype), _split(-radii[1], dtype)
        a = [part * 2 for part in a] + [r_x, torch.ones_like(r_y[:1]).expand_as(r_x)]
        b = b + [torch.ones_like(r_x[:1]).expand_as(r_y), r_y]
        largest = float(radii[0].abs().max() + radii[1].abs().max())
        error = 2 * error + 2 * width * 2.0**-24 * largest + res_x + res_y
    return (pad_columns(torch.cat(a, 1)), pad_columns(torch.cat(b, 1)),
            error * (1 + 1e-3) + 1e-7)


def _rescore(code: Tensor, start: int, dim: int, pair: LowPair, radii: Radii,
             true: Tensor, tie_atol: float, sums: Tensor) -> int:
    r"""Adds to ``sums`` the signs :math:`\mathrm{sign}_\epsilon(s_{ij} -
    s_t)` of the entries of a chunk (rows from ``start``) left undecided
    (``code`` zero), re-scored in float32 against the row's true score
    (``dim=1``) or the column's (``dim=0``); the true pairs count zero.
    Returns how many entries it re-scored."""
    i, j = (code == 0).nonzero(as_tuple=True)
    i = i + start
    off = i != j
    i, j = i[off], j[off]
    if i.numel() == 0:
        return 0
    own = i if dim == 1 else j
    scores = exact_scores(pair.x, pair.y, i, j, radii).unsqueeze(1)
    signs = sign_sum(scores, true[own].unsqueeze(1), 1, torch.empty_like(scores),
                     1, tie_atol)
    sums.index_add_(0, own, signs.to(sums.dtype))
    return i.numel()


@torch.no_grad()
def low_paired_ranks(pair: LowPair, *, csls_k: int = 10,
                     tie_atol: float = DEFAULT_TIE_ATOL,
                     chunk_size: int = DEFAULT_CHUNK_SIZE, radii: Radii = None,
                     stats: Optional[Dict[str, int]] = None) -> Tuple[Tensor, Tensor]:
    r""":func:`paired_ranks` with low-precision score products that count
    as float32 ones would. The true scores :math:`s_t` are exact float32
    row dot products; the block :math:`\tilde{s} = \mathrm{fl}(v)`,
    :math:`v = \mathbf{A} \mathbf{B}^{\top}`
    (:func:`~torch_geometric_ea.metrics.similarity.low_score_operands`),
    has :math:`|v - s| \le \delta` and :math:`|\tilde{s} - v| \le u |v|`
    (:math:`u = 2^{-8}` for bfloat16), so :math:`|\tilde{s} - s_t| \ge w =
    (\epsilon + \delta + u |s_t|) / (1 - 2u)` decides the sign of
    :math:`s - s_t` beyond :math:`\epsilon`. Only the entries closer than
    :math:`w`, near-ties that rounding could decide, are re-scored in
    float32 and counted with their exact values. ``stats`` receives the
    number of entries and of re-scored ones."""
    x, num = pair.x, pair.x.size(0)
    if radii is None:
        radii, _ = low_similarity_pass(pair, csls_k, chunk_size)
    truth = torch.arange(num, device=x.device)
    true = exact_scores(pair.x, pair.y, truth, truth, radii)
    a, b, error = low_score_operands(pair, radii)
    unit = torch.finfo(a.dtype).eps / 2
    width = (tie_atol + error + 1e-6 + true.abs() * (unit + 1e-6)) / (1 - 2 * unit)
    width = width * (1 + 1e-5)
    dtype = torch.float64 if num >= 2**24 else torch.float32
    sums_x, sums_y = x.new_zeros(num, dtype=dtype), x.new_zeros(num, dtype=dtype)
    rescored = 0
    low = a.new_empty(min(chunk_size, num), num)
    block, code = (torch.empty_like(low, dtype=x.dtype) for _ in range(2))
    for rows in row_chunks(num, chunk_size):
        n = rows.stop - rows.start
        scores = block[:n].copy_(torch.matmul(a[rows], b.t(), out=low[:n]))
        for dim, sums, t, w in ((1, sums_x[rows], true[rows, None], width[rows, None]),
                                (0, sums_y, true, width)):
            sign = torch.sub(scores, t, out=code[:n]).div_(w).trunc_().clamp_(-1, 1)
            sums += sign.sum(dim, dtype=dtype)  # the decided entries' signs
            rescored += _rescore(sign, rows.start, dim, pair, radii, true, tie_atol,
                                 sums_x if dim == 1 else sums_y)
    if stats is not None:
        stats['entries'] = stats.get('entries', 0) + 2 * num * num
        stats['rescored'] = stats.get('rescored', 0) + rescored
    return realistic_rank(sums_x, num), realistic_rank(sums_y, num)
