r"""The normalized hard sample mining loss of Dual-AMN, with a hand-derived
backward pass so that one training step costs three matrix products."""
from typing import Optional, Tuple

import torch
from torch import Tensor

__all__ = ['NormalizedHardSampleMiningLoss']


def _row_scores(a: Tensor, sq_a: Tensor, offset: Tensor, cand: Tensor,
                sq_cand: Tensor, mask_cols: Tensor, col_start: int) -> Tensor:
    r"""Margin scores :math:`l = \gamma + d(a, p) - d(a, k)` for one block of
    candidates, with masked entries set to zero. ``offset`` holds
    :math:`\gamma + d(a, p) - \|a\|^2` per row."""
    scores = torch.addmm(offset.unsqueeze(1) - sq_cand.unsqueeze(0), a, cand.t(),
                         alpha=2.0)
    local = mask_cols - col_start
    valid = (local >= 0) & (local < cand.size(0))
    rows = torch.arange(a.size(0), device=a.device).unsqueeze(1).expand_as(local)
    scores[rows[valid], local[valid]] = 0.0
    return scores


class _NHSMFunction(torch.autograd.Function):
    r"""Sum over rows of :math:`\mathrm{logsumexp}_k(\lambda \hat{l}_k +
    \tau)` where :math:`\hat{l}` is the row-standardised margin score.

    The gradient of a row with respect to its scores is
    :math:`w_k = \mathrm{softmax}_k(\lambda \hat{l}_k) \lambda / \sigma`
    (zero at masked entries; mean and deviation are constants), from which

    .. math::
        \nabla_a = 2 W k_w - 2 W p, \quad
        \nabla_p = 2 W (p - a), \quad
        \nabla_{x_k} = 2 w_k (a - x_k)

    with :math:`W = \sum_k w_k` and :math:`k_w = \sum_k w_k x_k / W`.
    """
    @staticmethod
    def forward(ctx, anchor: Tensor, positive: Tensor, cand: Tensor,
                mask_cols: Tensor, gamma: float, lam: float, tau: float,
                chunk_size: Optional[int]):
        num_cand = cand.size(0)
        chunk = num_cand if chunk_size is None else max(1, chunk_size)
        sq_a = anchor.pow(2).sum(-1)
        sq_cand = cand.pow(2).sum(-1)
        offset = gamma + (anchor - positive).pow(2).sum(-1) - sq_a

        if chunk >= num_cand:  # Dense: one product, scores kept for backward.
            z = _row_scores(anchor, sq_a, offset, cand, sq_cand, mask_cols, 0)
            std, mean = torch.std_mean(z, dim=1, correction=0)
            std = std.clamp_min(1e-12)
            z.sub_(mean.unsqueeze(1)).mul_((lam / std).unsqueeze(1))
            lse = torch.logsumexp(z, dim=1)
            ctx.save_for_backward(anchor, positive, cand, mask_cols, z, lse, std)
        else:  # Chunked: statistics first, then logsumexp, recompute later.
            count = torch.zeros((), dtype=torch.float64, device=anchor.device)
            mean = torch.zeros_like(sq_a, dtype=torch.float64)
            m2 = torch.zeros_like(mean)
            for start in range(0, num_cand, chunk):
                s = _row_scores(anchor, sq_a, offset, cand[start:start + chunk],
                                sq_cand[start:start + chunk], mask_cols, start)
                c_std, c_mean = torch.std_mean(s, dim=1, correction=0)
                n = s.size(1)
                delta = c_mean.double() - mean
                total = count + n
                mean = mean + delta * n / total
                m2 = m2 + c_std.double().pow(2) * n + delta.pow(2) * count * n / total
                count = total
            std = (m2 / count).sqrt().to(anchor.dtype).clamp_min(1e-12)
            mean = mean.to(anchor.dtype)
            lse = torch.full_like(sq_a, -float('inf'))
            for start in range(0, num_cand, chunk):
                s = _row_scores(anchor, sq_a, offset, cand[start:start + chunk],
                                sq_cand[start:start + chunk], mask_cols, start)
                s.sub_(mean.unsqueeze(1)).mul_((lam / std).unsqueeze(1))
                lse = torch.logaddexp(lse, torch.logsumexp(s, dim=1))
            ctx.save_for_backward(anchor, positive, cand, mask_cols, mean, lse, std)
        ctx.lam, ctx.chunk, ctx.dense = lam, chunk, chunk >= num_cand
        ctx.gamma = gamma
        return (lse + tau).sum()

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        anchor, positive, cand, mask_cols, saved, lse, std = ctx.saved_tensors
        lam, chunk = ctx.lam, ctx.chunk
        scale = grad_out * lam / std  # [rows]
        grad_cand = torch.empty_like(cand)
        if ctx.dense:
            w = _softmax_weights(saved, lse, scale)  # z reused in place.
            _zero_masked(w, mask_cols, 0)
            weight_sum = w.sum(dim=1)
            weighted = w @ cand
            torch.mm(w.t(), anchor, out=grad_cand)
            grad_cand.sub_(w.sum(dim=0).unsqueeze(1) * cand)
        else:
            mean = saved
            sq_a = anchor.pow(2).sum(-1)
            sq_cand = cand.pow(2).sum(-1)
            offset = ctx.gamma + (anchor - positive).pow(2).sum(-1) - sq_a
            weight_sum = torch.zeros_like(lse)
            weighted = torch.zeros_like(anchor)
            for start in range(0, cand.size(0), chunk):
                c = cand[start:start + chunk]
                w = _row_scores(anchor, sq_a, offset, c,
                                sq_cand[start:start + chunk], mask_cols, start)
                w.sub_(mean.unsqueeze(1)).mul_((lam / std).unsqueeze(1))
                w = _softmax_weights(w, lse, scale)
                _zero_masked(w, mask_cols, start)
                weight_sum += w.sum(dim=1)
                weighted.addmm_(w, c)
                g = grad_cand[start:start + chunk]
                torch.mm(w.t(), anchor, out=g)
                g.sub_(w.sum(dim=0).unsqueeze(1) * c)
        ws = weight_sum.unsqueeze(1)
        grad_anchor = 2 * (weighted - ws * positive)
        grad_positive = 2 * ws * (positive - anchor)
        return (grad_anchor, grad_positive, grad_cand.mul_(2), None, None, None,
                None, None)


def _softmax_weights(z: Tensor, lse: Tensor, scale: Tensor) -> Tensor:
    r"""In place: :math:`\exp(z - \mathrm{lse}) \cdot \mathrm{scale}`, with
    weights below :math:`e^{-60}` of the row total set to exact zero. With
    :math:`\lambda = 30` most weights would otherwise be subnormal floats,
    which make the following matrix products many times slower on CPUs."""
    z.sub_(lse.unsqueeze(1))
    z.masked_fill_(z < -60.0, -float('inf'))
    return z.exp_().mul_(scale.unsqueeze(1))


def _zero_masked(w: Tensor, mask_cols: Tensor, col_start: int):
    local = mask_cols - col_start
    valid = (local >= 0) & (local < w.size(1))
    rows = torch.arange(w.size(0), device=w.device).unsqueeze(1).expand_as(local)
    w[rows[valid], local[valid]] = 0.0


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
            blocks of this many rows, so memory is :math:`O(B \times
            \text{chunk})` at the price of recomputing the products.
            (default: :obj:`None`)

    Shapes:
        - **input:** embeddings :math:`(N, D)`, pairs :math:`(2, B)`,
          optional node types :math:`(N)` with values 0 and 1
        - **output:** scalar

    .. note::
        The backward pass is hand-derived: one product forward and two
        backward, and one :math:`2B \times N` buffer (without chunking).
        It supports a single backward per forward.
    """
    def __init__(self, gamma: float = 1.0, lam: float = 30.0, tau: float = 10.0,
                 negatives: str = 'all', chunk_size: Optional[int] = None):
        super().__init__()
        if negatives not in ('all', 'other'):
            raise ValueError(f"negatives must be 'all' or 'other', got {negatives!r}")
        self.gamma, self.lam, self.tau = gamma, lam, tau
        self.negatives = negatives
        self.chunk_size = chunk_size

    def forward(self, x: Tensor, pairs: Tensor, node_type: Optional[Tensor] = None
                ) -> Tensor:
        r"""Computes the loss.

        Args:
            x (torch.Tensor): Embeddings of all entities :math:`(N, D)`.
            pairs (torch.Tensor): Training pairs :math:`(2, B)` as row ids
                of ``x`` (one side's entity, the other side's entity).
            node_type (torch.Tensor, optional): KG of each entity
                :math:`(N)`; needed for ``negatives='other'``.
        """
        i, j = pairs[0], pairs[1]
        args = (self.gamma, self.lam, self.tau, self.chunk_size)
        if self.negatives == 'all':
            anchor = torch.cat([i, j])
            positive = torch.cat([j, i])
            mask = torch.stack([anchor, positive], dim=1)
            total = _NHSMFunction.apply(x[anchor], x[positive], x, mask, *args)
        else:
            if node_type is None:
                raise ValueError("negatives='other' needs node_type")
            total = x.new_zeros(())
            for a, p in ((i, j), (j, i)):
                cand = (node_type == node_type[p[0]]).nonzero().view(-1)
                position = torch.full((x.size(0),), -1, dtype=torch.long,
                                      device=x.device)
                position[cand] = torch.arange(cand.numel(), device=x.device)
                mask = torch.stack([position[a], position[p]], dim=1)
                total = total + _NHSMFunction.apply(x[a], x[p], x[cand], mask, *args)
        return total / pairs.size(1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(gamma={self.gamma}, lam={self.lam}, '
                f'tau={self.tau}, negatives={self.negatives!r})')
