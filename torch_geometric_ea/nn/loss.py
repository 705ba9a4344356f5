r"""The normalized hard sample mining loss of Dual-AMN, with a hand-derived
backward pass so that one training step costs three matrix products."""
from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..precision import product_dtype
from .functional import eager_float_kernel
from .loss_blocks import block_scores, blocks, exp_scores, forward_low, masked

__all__ = ['NormalizedHardSampleMiningLoss', 'orient_pairs']

# The most entries of one rows x candidates score block (256 MiB in float32):
# row blocks shrink below ``row_chunk_size`` when the candidates are many.
BLOCK_ELEMENTS = 2 ** 26


def _row_block(anchor: Tensor, positive: Tensor, cand: Tensor, c_aug: Tensor,
               sq_cand: Tensor, cand_mean: Tensor, mask_cols: Tensor, gamma: float, lam: float,
               cand_blocks: List[Tuple[int, int]], cand_acc: Optional[Tensor],
               col_weight: Optional[Tensor]):
    r"""Loss (without :math:`\tau`) of a block of anchor rows and, when
    ``cand_acc`` is given, the gradients with respect to its anchors and
    positives; adds :math:`\sum_i w_{ik} a_i` to ``cand_acc`` and
    :math:`\sum_i w_{ik}` to ``col_weight``."""
    num_cand = cand.size(0)
    offset = gamma + (anchor - positive).pow(2).sum(-1) - anchor.pow(2).sum(-1)
    shift = offset - sq_cand.mean() + 2 * anchor @ cand_mean
    ones = anchor.new_ones(anchor.size(0), 1)
    a_aug = torch.cat([2 * anchor, (offset - shift).unsqueeze(1), ones], dim=1)
    fill = -shift

    def scores(s, e):
        return block_scores(a_aug, c_aug[s:e], mask_cols, s, fill)

    total = torch.zeros_like(offset, dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    row_max = torch.full_like(offset, -float('inf'))
    kept = None
    for s, e in cand_blocks:
        y = scores(s, e)
        total += y.sum(1).double()
        total_sq += torch.linalg.vector_norm(y, dim=1).double() ** 2
        row_max = torch.maximum(row_max, y.amax(1))
        kept = y if len(cand_blocks) == 1 else None
    mean = total / num_cand
    std = (total_sq / num_cand - mean ** 2).clamp_min(0).sqrt()
    scale = lam / std.to(offset.dtype).clamp_min(1e-12)

    exp_sum = torch.zeros_like(offset)
    for s, e in cand_blocks:
        u = exp_scores(kept if kept is not None else scores(s, e), row_max, scale)
        exp_sum += u.sum(1)
    loss = scale * (row_max - mean.to(offset.dtype)) + exp_sum.log()
    if cand_acc is None:
        return loss, None, None

    coef = (scale / exp_sum).unsqueeze(1)
    weight_sum = torch.zeros_like(exp_sum)
    weighted = torch.zeros_like(anchor)
    for s, e in cand_blocks:
        w = u if kept is not None else exp_scores(scores(s, e), row_max, scale)
        w.mul_(coef)
        rows, cols = masked(mask_cols, s, w.size(1))
        w[rows, cols] = 0.0
        weight_sum += w.sum(dim=1)
        weighted.addmm_(w, cand[s:e])
        cand_acc[s:e].addmm_(w.t(), anchor)
        col_weight[s:e] += w.sum(dim=0)
    ws = weight_sum.unsqueeze(1)
    return loss, 2 * (weighted - ws * positive), 2 * ws * (positive - anchor)


def _rows_per_block(width: int, row_chunk_size: Optional[int], per_float: int) -> int:
    r"""Rows of a score block of ``width`` candidates: at most
    ``row_chunk_size`` and :data:`BLOCK_ELEMENTS` entries, times
    ``per_float`` entries of a low precision per float32 one."""
    rows = max(1, per_float * BLOCK_ELEMENTS // max(width, 1))
    return rows if row_chunk_size is None else min(per_float * row_chunk_size, rows)


class _NHSMFunction(torch.autograd.Function):
    r"""Sum over rows of :math:`\mathrm{logsumexp}_k(\lambda \hat{l}_k +
    \tau)` where :math:`\hat{l}` is the row-standardised margin score.

    The gradient of a row with respect to its scores is
    :math:`w_k = \mathrm{softmax}_k(\lambda \hat{l}_k) \lambda / \sigma`
    (zero at masked entries; mean and deviation are constants), from which

    .. math::
        \nabla_a = 2 \sum_k w_k x_k - 2 W p, \quad
        \nabla_p = 2 W (p - a), \quad
        \nabla_{x_k} = 2 w_k (a - x_k)

    with :math:`W = \sum_k w_k`. Scores are shifted by the row mean
    :math:`\rho` of the unmasked scores (cheap to get from the mean
    candidate), so that the variance from sums of squares is exact enough
    in single precision.

    Rows are processed in blocks, and each block's gradient is computed in
    the forward pass while its scores are at hand, so no score matrix
    outlives its block; backward only scales the stored gradients. So it
    is first-order only (``once_differentiable``).
    """
    @staticmethod
    def forward(ctx, anchor: Tensor, positive: Tensor, cand: Tensor,
                mask_cols: Tensor, gamma: float, lam: float, tau: float,
                chunk_size: Optional[int], row_chunk_size: Optional[int]):
        need_grad = any(ctx.needs_input_grad[:3])
        dtype = product_dtype(anchor.device)
        if anchor.dtype == torch.float32 and dtype != torch.float32:
            rows = _rows_per_block(min(chunk_size or cand.size(0), cand.size(0)),
                                   row_chunk_size, 4 // dtype.itemsize)
            losses, grads = forward_low(anchor, positive, cand, mask_cols, gamma, lam,
                                        chunk_size, rows, need_grad, dtype)
            if need_grad:
                ctx.save_for_backward(*grads)
            return (torch.cat(losses) + tau).sum()
        sq_cand = cand.pow(2).sum(-1)
        cand_mean = cand.mean(0)
        c_aug = torch.cat([cand, cand.new_ones(cand.size(0), 1),
                           -sq_cand.unsqueeze(1)], dim=1)
        cand_blocks = blocks(cand.size(0), chunk_size)
        losses = []
        grad_cand = col_weight = None
        if need_grad:
            grad_anchor, grad_positive = torch.empty_like(anchor), torch.empty_like(positive)
            grad_cand, col_weight = torch.zeros_like(cand), sq_cand.new_zeros(cand.size(0))
        width = cand.size(0) if chunk_size is None else min(chunk_size, cand.size(0))
        rows = _rows_per_block(width, row_chunk_size, 1)  # bound the score block
        for r0, r1 in blocks(anchor.size(0), rows):
            loss, g_a, g_p = _row_block(
                anchor[r0:r1], positive[r0:r1], cand, c_aug, sq_cand, cand_mean,
                mask_cols[r0:r1], gamma, lam, cand_blocks, grad_cand, col_weight)
            losses.append(loss)
            if need_grad:
                grad_anchor[r0:r1], grad_positive[r0:r1] = g_a, g_p
        if need_grad:
            grad_cand.addcmul_(col_weight.unsqueeze(1), cand, value=-1.0).mul_(2)
            ctx.save_for_backward(grad_anchor, grad_positive, grad_cand)
        return (torch.cat(losses) + tau).sum()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        grads = [g.mul_(grad_out) for g in ctx.saved_tensors]  # single backward
        return (*grads, None, None, None, None, None, None)


@eager_float_kernel
def _nhsm(*args):
    return _NHSMFunction.apply(*args)


class _NHSMAllRows(torch.autograd.Function):
    r""":class:`_NHSMFunction` in a low product precision with every row of
    :math:`X` a candidate and the anchors and positives read by index
    inside: backward returns one gradient of :math:`X`, the candidates'
    with the anchors' and positives' added at their rows, instead of
    autograd's three :math:`N \times D` ones (two of them zero-filled)."""
    @staticmethod
    def forward(ctx, x: Tensor, a: Tensor, p: Tensor, gamma: float, lam: float,
                tau: float, chunk_size: Optional[int], row_chunk_size: Optional[int],
                dtype: torch.dtype):
        rows = _rows_per_block(min(chunk_size or x.size(0), x.size(0)),
                               row_chunk_size, 4 // dtype.itemsize)
        need_grad = ctx.needs_input_grad[0]
        losses, grads = forward_low(x[a], x[p], x, torch.stack([a, p], dim=1), gamma,
                                    lam, chunk_size, rows, need_grad, dtype)
        if need_grad:
            grad_anchor, grad_positive, grad = grads
            ctx.save_for_backward(grad.index_add_(0, a, grad_anchor)
                                  .index_add_(0, p, grad_positive))
        return (torch.cat(losses) + tau).sum()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        grad, = ctx.saved_tensors
        return (grad.mul_(grad_out), *[None] * 8)  # single backward


@eager_float_kernel
def _nhsm_all_rows(*args):
    return _NHSMAllRows.apply(*args)


def _check_candidates(candidates: Tensor, num_nodes: int):
    if candidates.dim() != 1 or candidates.numel() == 0:
        raise ValueError(f"'candidates' must be a non-empty 1-D tensor of "
                         f"entity ids (got shape {list(candidates.shape)})")
    if int(candidates.min()) < 0 or int(candidates.max()) >= num_nodes:
        raise ValueError(f"'candidates' out of range [0, {num_nodes})")
    if torch.bincount(candidates, minlength=num_nodes).max() > 1:
        raise ValueError("'candidates' must be distinct")


def orient_pairs(pairs: Tensor, node_type: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Orients each pair of ``pairs`` :math:`(2, B)` so that its first
    entity is in the KG with the lower ``node_type`` (KG1) and its second in
    the other; pairs already so are returned as they are. Raises
    :class:`ValueError` for a pair whose two entities are in the same KG."""
    i, j = pairs[0], pairs[1]
    ti, tj = node_type[i], node_type[j]
    same = ti == tj
    if bool(same.any()):
        k = int(same.nonzero()[0])
        raise ValueError(f"pair {k} ({int(i[k])}, {int(j[k])}) has both entities "
                         f"in the same KG (node_type {int(ti[k])}); a pair links "
                         f"an entity of each KG")
    swap = ti > tj
    if not bool(swap.any()):
        return i, j
    return torch.where(swap, j, i), torch.where(swap, i, j)


class NormalizedHardSampleMiningLoss(torch.nn.Module):
    r"""The normalized hard sample mining loss from the `"Boosting the Speed
    of Entity Alignment 10x: Dual Attention Matching Network with Normalized
    Hard Sample Mining" <https://arxiv.org/abs/2103.15452>`_ paper.

    For a training pair :math:`(i, j)` and every candidate :math:`k`, with
    squared Euclidean distance :math:`d`:

    .. math::
        l(i, j, k) &= \gamma + d(i, j) - d(i, k) \\
        \hat{l}(i, j, k) &= \frac{l(i, j, k) - \mu_i}{\sigma_i} \\
        \mathcal{L}_i &= \log \sum_k \exp\left(\lambda\, \hat{l}(i, j, k)
        + \tau\right)

    where :math:`\mu_i, \sigma_i` are the mean and (population) standard
    deviation of the row, treated as constants, and the entries
    :math:`k \in \{i, j\}` are set to zero. The same is computed from
    :math:`j`'s side; the loss is the mean over pairs of both sides' sum.

    Args:
        gamma (float, optional): Margin :math:`\gamma`. (default: :obj:`1.0`)
        lam (float, optional): Scale :math:`\lambda`. (default: :obj:`30.0`)
        tau (float, optional): Shift :math:`\tau`. (default: :obj:`10.0`)
        negatives (str, optional): ``'all'`` uses every entity of both KGs
            as a candidate (the paper), ``'other'`` only the entities of the
            other KG (requires ``node_type`` in :meth:`forward`).
            (default: :obj:`'all'`)
        chunk_size (int, optional): If set, candidates are processed in
            blocks of this many, so the working set is :math:`O(\text{rows}
            \times \text{chunk})` at the price of computing the scores
            three times instead of once. (default: :obj:`None`)
        row_chunk_size (int, optional): Anchor rows processed at a time
            (:obj:`None`: as many as fit); fewer when a block of
            :math:`\text{rows} \times \text{candidates}` scores would exceed
            :math:`2^{26}` entries, so memory stays bounded for millions of
            candidates. (default: :obj:`512`)

    Shapes:
        - **input:** embeddings :math:`(N, D)`, pairs :math:`(2, B)`,
          optional node types :math:`(N)` with values 0 and 1
        - **output:** scalar

    .. note::
        The gradient is hand-derived and computed in the forward pass, one
        block of rows at a time: three matrix products per block (one
        without gradients), and a working set of one
        :math:`\text{rows} \times N` score block instead of autograd's
        several :math:`2B \times N` matrices. It supports a single
        backward per forward.
    """
    def __init__(self, gamma: float = 1.0, lam: float = 30.0, tau: float = 10.0,
                 negatives: str = 'all', chunk_size: Optional[int] = None,
                 row_chunk_size: Optional[int] = 512):
        super().__init__()
        if negatives not in ('all', 'other'):
            raise ValueError(f"negatives must be 'all' or 'other', got {negatives!r}")
        self.gamma, self.lam, self.tau = gamma, lam, tau
        self.negatives = negatives
        self.chunk_size = chunk_size
        self.row_chunk_size = row_chunk_size

    def forward(self, x: Tensor, pairs: Tensor, node_type: Optional[Tensor] = None,
                candidates: Optional[Tensor] = None) -> Tensor:
        r"""Computes the loss.

        Args:
            x (torch.Tensor): Embeddings of all entities :math:`(N, D)`.
            pairs (torch.Tensor): Training pairs :math:`(2, B)` as row ids
                of ``x`` (one side's entity, the other side's entity). The
                loss is symmetric in each pair's order: with
                ``negatives='other'``, pairs in mixed directions are
                oriented by ``node_type`` (see :func:`orient_pairs`; a pair
                within one KG raises :class:`ValueError`). No pairs give a
                zero loss.
            node_type (torch.Tensor, optional): KG of each entity
                :math:`(N)`; needed for ``negatives='other'``.
            candidates (torch.Tensor, optional): Distinct entity ids
                :math:`(K)`: the candidates :math:`k` of every row instead
                of all :math:`N` entities (sampled or hard candidates; with
                ``negatives='other'``, those of the other KG).
        """
        i, j = pairs[0], pairs[1]
        args = (self.gamma, self.lam, self.tau, self.chunk_size,
                self.row_chunk_size)
        if candidates is not None:
            _check_candidates(candidates, x.size(0))
        if self.negatives == 'other' and node_type is None:
            raise ValueError("negatives='other' needs node_type")
        if pairs.size(1) == 0:  # no rows: zero, with zero gradients for x
            return x[:0].sum()
        if self.negatives == 'all':
            sides = [(torch.cat([i, j]), torch.cat([j, i]), candidates)]
        else:
            i, j = orient_pairs(pairs, node_type)
            if torch.equal(i, pairs[1]):  # all one way (KG2 first): as given
                i, j = pairs[0], pairs[1]
            pool = (torch.arange(x.size(0), device=x.device)
                    if candidates is None else candidates)
            sides = [(a, p, pool[node_type[pool] == node_type[p[0]]])
                     for a, p in ((i, j), (j, i))]
        total = x.new_zeros(())
        dtype = product_dtype(x.device)
        for a, p, cand in sides:
            if cand is None and x.dtype == torch.float32 and dtype != torch.float32:
                total = total + _nhsm_all_rows(x, a, p, *args, dtype)
                continue
            if cand is None:
                mask = torch.stack([a, p], dim=1)
                cand_x = x
            else:
                position = torch.full((x.size(0),), -1, dtype=torch.long,
                                      device=x.device)
                position[cand] = torch.arange(cand.numel(), device=x.device)
                mask = torch.stack([position[a], position[p]], dim=1)
                cand_x = x[cand]
            total = total + _nhsm(x[a], x[p], cand_x, mask, *args)
        return total / pairs.size(1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(gamma={self.gamma}, lam={self.lam}, '
                f'tau={self.tau}, negatives={self.negatives!r})')
