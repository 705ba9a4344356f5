r"""The score blocks of
:class:`~torch_geometric_ea.nn.NormalizedHardSampleMiningLoss`: a block of
shifted margin scores as one matrix product, and the loss's forward pass
with the products in a low precision (bfloat16, see
:mod:`torch_geometric_ea.precision`)."""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

__all__ = ['blocks', 'block_scores', 'masked', 'exp_scores', 'forward_low']

#: Rows of a low-precision score block transformed at a time: a 32-row
#: slice of 40,000 bfloat16 scores (2.4 MiB, half per core of two) stays in
#: cache through the several element-wise passes, which so cost about one
#: pass over memory (16 rows are as fast, but twice the operations, each a
#: parallel region: slower where another process shares the cores).
CACHE_ROWS = 32


def blocks(size: int, chunk: Optional[int]) -> List[Tuple[int, int]]:
    r"""``[start, end)`` ranges of ``chunk`` (all when :obj:`None`) of
    ``size`` rows; one empty range when ``size`` is 0."""
    step = size if chunk is None else max(1, chunk)
    return [(s, min(s + step, size)) for s in range(0, size, step)] or [(0, 0)]


def masked(mask_cols: Tensor, start: int, width: int) -> Tuple[Tensor, Tensor]:
    r"""Rows and block columns of the masked entries ``mask_cols``
    :math:`(R, 2)` that fall in the candidate block ``[start, start +
    width)``."""
    local = mask_cols - start
    valid = (local >= 0) & (local < width)
    rows = torch.arange(mask_cols.size(0), device=mask_cols.device)
    return rows.unsqueeze(1).expand_as(local)[valid], local[valid]


def block_scores(a_aug: Tensor, c_aug: Tensor, mask_cols: Tensor, start: int,
                 fill: Tensor) -> Tensor:
    r"""Shifted margin scores :math:`l - \rho` of one block of candidates,
    as a single product: ``a_aug`` holds :math:`[2a, \gamma + d(a, p) -
    \|a\|^2 - \rho, 1]` per row, ``c_aug`` :math:`[x_k, 1, -\|x_k\|^2]`.
    Masked entries (:math:`l = 0`) are set to ``fill`` = :math:`-\rho`."""
    y = a_aug @ c_aug.t()
    rows, cols = masked(mask_cols, start, y.size(1))
    y[rows, cols] = fill[rows]
    return y


def exp_scores(y: Tensor, row_max: Tensor, scale: Tensor) -> Tensor:
    r"""In place: :math:`\exp(\max(c (y - y_{max}), -60))`. The floor keeps
    every value a normal float: with :math:`\lambda = 30` most would
    otherwise be subnormal, which makes the following matrix products many
    times slower on CPUs; it changes a row's sum by at most
    :math:`N e^{-60}`."""
    return y.sub_(row_max.unsqueeze(1)).mul_(scale.unsqueeze(1)) \
        .clamp_min_(-60.0).exp_()


def _split(value: Tensor, out: Tensor):
    r"""Writes ``value`` into the two columns of ``out`` as the sum of two
    low-precision numbers, so that a large per-row constant (a squared
    norm, a row offset) enters the product with 16 significant bits."""
    out[:, 0] = value
    out[:, 1] = value - out[:, 0].float()


def _augment_low(anchor: Tensor, positive: Tensor, cand: Tensor, gamma: float,
                 dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The score product's operands, cast once: :math:`[2a, \gamma + d(a,
    p) - \|a\|^2 - \rho \text{ (2 columns)}, 1, 1]` per row and
    :math:`[x_k, 1, 1, -\|x_k\|^2 \text{ (2 columns)}]` per candidate, and
    the masked entries' fill :math:`-\rho` (float32)."""
    d = cand.size(1)
    sq_cand = torch.linalg.vector_norm(cand, dim=1).square_()
    offset = gamma + (anchor - positive).pow(2).sum(-1) - anchor.pow(2).sum(-1)
    shift = offset - sq_cand.mean() + 2 * anchor @ cand.mean(0)
    a_low = anchor.new_empty(anchor.size(0), d + 4, dtype=dtype)
    a_low[:, :d], a_low[:, d + 2:] = 2 * anchor, 1.0
    _split(offset - shift, a_low[:, d:d + 2])
    c_low = cand.new_empty(cand.size(0), d + 4, dtype=dtype)
    c_low[:, :d], c_low[:, d:d + 2] = cand, 1.0
    _split(-sq_cand, c_low[:, d + 2:])
    return a_low, c_low, -shift


def _row_stats(y: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Row sums, sums of squares and maxima (float32) of a low-precision
    block, :data:`CACHE_ROWS` rows at a time. The sums accumulate in
    float32 and are rounded to the block's dtype; the maxima are read as
    16-bit integers on the CPU (several times faster), which order
    non-negative floats as the floats do: rows whose maximum is negative
    take the float maximum."""
    total, norm = y.new_empty(y.size(0)), y.new_empty(y.size(0))
    top = y.new_empty(y.size(0), dtype=torch.int16)
    as_int = y.device.type == 'cpu'
    for r in range(0, y.size(0), CACHE_ROWS):
        b = y[r:r + CACHE_ROWS]
        torch.sum(b, 1, out=total[r:r + CACHE_ROWS])
        torch.linalg.vector_norm(b, dim=1, out=norm[r:r + CACHE_ROWS])
        if as_int:
            torch.amax(b.view(torch.int16), 1, out=top[r:r + CACHE_ROWS])
    row_max = top.view(y.dtype) if as_int else y.amax(1)
    negative = top < 0 if as_int else None
    if as_int and bool(negative.any()):
        row_max[negative] = y[negative].amax(1)
    return total.float(), norm.float().square_(), row_max.float()


def _exp_rows(y: Tensor, row_max: Tensor, scale: Tensor) -> Tensor:
    r""":func:`exp_scores` in place, :data:`CACHE_ROWS` rows at a time;
    returns the row sums (float32)."""
    total = y.new_empty(y.size(0))
    for r in range(0, y.size(0), CACHE_ROWS):
        rows = slice(r, r + CACHE_ROWS)
        torch.sum(exp_scores(y[rows], row_max[rows], scale[rows]), 1, out=total[rows])
    return total.float()


def _row_block_low(a_low: Tensor, anchor: Tensor, positive: Tensor, c_low: Tensor,
                   fill: Tensor, mask_cols: Tensor, lam: float,
                   cand_blocks: List[Tuple[int, int]],
                   acc: Optional[Tuple[Tensor, Tensor]], first: bool):
    r"""Loss of a block of anchor rows and, when ``acc`` is given, the
    gradients with respect to its anchors and positives, from scores
    :math:`y` computed as one low-precision product per block of
    candidates and used in place; adds (or writes, in the ``first`` row
    block) :math:`\sum_i w_{ik} a_i` and :math:`\sum_i w_{ik}` to ``acc``.

    Sums, norms and maxima accumulate in float32, their results rounded to
    the dtype (relative error :math:`2^{-9}` in bfloat16). With
    :math:`c = \lambda / \sigma` (rounded to the dtype) and the row's
    exponential sum :math:`S`, the weights are :math:`w = e \cdot c / S`
    with :math:`e = \exp(c (y - y_{max}))`: the factor :math:`c / S`
    scales the products' small operands and outputs, never the scores."""
    d, dtype, num_cand = anchor.size(1), a_low.dtype, c_low.size(0)
    fill = fill.to(dtype)

    def scores(s, e):
        return block_scores(a_low, c_low[s:e], mask_cols, s, fill)

    total, total_sq = anchor.new_zeros(anchor.size(0)), anchor.new_zeros(anchor.size(0))
    row_max = torch.full_like(total, -float('inf'))
    kept = None
    for s, e in cand_blocks:
        y = scores(s, e)
        block_sum, block_sq, block_max = _row_stats(y)
        total, total_sq = total + block_sum, total_sq + block_sq
        row_max = torch.maximum(row_max, block_max)
        kept = y if len(cand_blocks) == 1 else None
    mean = total / num_cand
    std = (total_sq / num_cand - mean ** 2).clamp_min(0).sqrt()
    scale = (lam / std.clamp_min(1e-12)).to(dtype)  # rounded once, used throughout
    low_max = row_max.to(dtype)
    exp_sum = torch.zeros_like(total)
    for s, e in cand_blocks:
        exp_sum += _exp_rows(kept if kept is not None else scores(s, e), low_max, scale)
    loss = scale.float() * (row_max - mean) + exp_sum.log()
    if acc is None:
        return loss, None, None

    coef = scale.float() / exp_sum
    coef_low, rhs = coef.to(dtype), (anchor * coef.unsqueeze(1)).to(dtype)
    weight_sum = torch.zeros_like(exp_sum)
    weighted = torch.zeros_like(anchor)
    for s, e in cand_blocks:
        u = kept
        if u is None:
            u = scores(s, e)
            _exp_rows(u, low_max, scale)
        rows, cols = masked(mask_cols, s, u.size(1))
        u[rows, cols] = 0.0
        weight_sum += u.sum(1)
        weighted += u @ c_low[s:e, :d]
        for out, product in zip(acc, (u.t() @ rhs, u.t() @ coef_low)):
            if first:  # the first row block writes, the others add
                out[s:e] = product
            else:
                out[s:e] += product
    ws = (weight_sum * coef).unsqueeze(1)
    weighted.mul_(coef.unsqueeze(1))
    return loss, 2 * (weighted - ws * positive), 2 * ws * (positive - anchor)


def forward_low(anchor: Tensor, positive: Tensor, cand: Tensor, mask_cols: Tensor,
                gamma: float, lam: float, chunk_size: Optional[int], rows: int,
                need_grad: bool, dtype: torch.dtype):
    r"""The loss of each row (without :math:`\tau`) in blocks of ``rows``
    rows and, with ``need_grad``, the gradients with respect to anchors,
    positives and candidates (float32), with the products in ``dtype``.
    The candidates and anchors are cast once; the gradient products'
    outputs are added up in float32. The loss is invariant to a common
    translation, so all are first centred on the candidates' mean: the
    products' rounding is then relative to the embeddings' spread, not to
    their common offset (four times smaller gradient errors where that
    offset dominates, as in an untrained Dual-AMN)."""
    center = cand.mean(0)
    anchor, positive, cand = anchor - center, positive - center, cand - center
    cand_blocks = blocks(cand.size(0), chunk_size)
    acc = grads = None
    if need_grad:
        acc = cand.new_empty(cand.size()), cand.new_empty(cand.size(0))
        grads = torch.empty_like(anchor), torch.empty_like(positive)
    a_low, c_low, fill = _augment_low(anchor, positive, cand, gamma, dtype)
    losses = []
    for r0, r1 in blocks(anchor.size(0), rows):
        loss, g_a, g_p = _row_block_low(
            a_low[r0:r1], anchor[r0:r1], positive[r0:r1], c_low, fill[r0:r1],
            mask_cols[r0:r1], lam, cand_blocks, acc, r0 == 0)
        losses.append(loss)
        if need_grad:
            grads[0][r0:r1], grads[1][r0:r1] = g_a, g_p
    if need_grad:  # 2 (sum_i w_ik a_i - W_k x_k)
        cand_acc, col_weight = acc
        grads = (*grads, cand_acc.addcmul_(col_weight.unsqueeze(1), cand,
                                           value=-1.0).mul_(2))
    return losses, grads
