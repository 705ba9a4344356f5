r"""The margin ranking loss of GCN-Align (and many translation-based
aligners) over :math:`L_1` distances, and RDGCN's chunked form of it."""
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from torch_geometric_ea.nn.functional import eager_float_kernel
from torch_geometric_ea.nn.sampling import chunks, uniform_negatives

__all__ = ['MarginRankingL1Loss', 'uniform_negatives', 'chunked_margin_l1_loss']


class MarginRankingL1Loss(torch.nn.Module):
    r"""The margin ranking loss over :math:`L_1` distances from the
    `"Cross-lingual Knowledge Graph Alignment via Graph Convolutional
    Networks" <https://aclanthology.org/D18-1032>`_ paper.

    For seed pairs :math:`(a_i, b_i)` with distance :math:`d(u, v) =
    \|\mathbf{x}_u - \mathbf{x}_v\|_1`, corrupted left entities
    :math:`a'_{ij}` and corrupted right entities :math:`b'_{ij}`
    (:math:`j = 1, \ldots, k`):

    .. math::
        \mathcal{L} = \frac{1}{2 B k} \sum_{i=1}^{B} \sum_{j=1}^{k} \Big(
        \big[d(a_i, b_i) + \gamma - d(a'_{ij}, b_i)\big]_+ +
        \big[d(a_i, b_i) + \gamma - d(a_i, b'_{ij})\big]_+ \Big).

    The mean over all :math:`2Bk` terms is the official normalisation.

    Args:
        gamma (float, optional): The margin :math:`\gamma`.
            (default: :obj:`3.0`)

    Shapes:
        - **input:** embeddings :math:`(N, D)`, pairs :math:`(2, B)`,
          negatives :math:`(2, B, k)` (see :func:`uniform_negatives`)
        - **output:** scalar
    """
    def __init__(self, gamma: float = 3.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, x: Tensor, pairs: Tensor, negatives: Tensor) -> Tensor:
        r"""The loss of embeddings ``x`` :math:`(N, D)` for seed ``pairs``
        :math:`(2, B)` and ``negatives`` :math:`(2, B, k)`: row :obj:`0`
        replaces the left entities, row :obj:`1` the right ones."""
        if negatives.dim() != 3 or negatives.shape[:2] != (2, pairs.size(1)):
            raise ValueError(f"Expected 'negatives' of shape [2, {pairs.size(1)}, "
                             f"k] (got {list(negatives.shape)})")
        left, right = x[pairs[0]], x[pairs[1]]
        pos = (left - right).abs().sum(-1, keepdim=True) + self.gamma
        neg_left = (x[negatives[0]] - right.unsqueeze(1)).abs().sum(-1)
        neg_right = (left.unsqueeze(1) - x[negatives[1]]).abs().sum(-1)
        loss = (pos - neg_left).relu().sum() + (pos - neg_right).relu().sum()
        return loss / (2 * negatives[0].numel())

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(gamma={self.gamma})'


class _ChunkedMarginL1(torch.autograd.Function):
    r"""The margin loss of :class:`~torch_geometric_ea.nn.MarginRankingL1Loss`
    (sum, not mean) computed over blocks of seed pairs, each block's
    gradient with respect to :math:`\mathbf{x}` accumulated while its
    differences exist: with :math:`\mathbf{s} = \mathrm{sign}(\mathbf{x}_u -
    \mathbf{x}_v)`, an active term :math:`[d(a, b) + \gamma - d(u, v)]_+`
    sends :math:`\pm\mathbf{s}_{ab}` to :math:`a, b` and
    :math:`\mp\mathbf{s}_{uv}` to :math:`u, v`. The gradient is formed in
    the forward pass, so it is first-order only (``once_differentiable``)."""
    @staticmethod
    def forward(ctx, x: Tensor, pairs: Tensor, negatives: Tensor, gamma: float,
                chunk_size: int) -> Tensor:
        grad = torch.zeros_like(x)
        grad_neg = torch.zeros_like(x)  # subtracted from grad at the end
        total = x.new_zeros(())
        for rows in chunks(pairs.size(1), chunk_size):
            left, right = pairs[0, rows], pairs[1, rows]
            x_left, x_right = x[left], x[right]
            sign_pos = x_left - x_right
            pos = sign_pos.abs().sum(-1, keepdim=True)
            pos += gamma
            sign_pos.sign_()
            grad_left = torch.zeros_like(x_left)
            grad_right = torch.zeros_like(x_right)
            count = 0
            # Side 0 replaces the left entity: d(u, b); side 1 the right: d(a, v).
            for neg, other, grad_other in (
                    (negatives[0, rows], x_right, grad_right),
                    (negatives[1, rows], x_left, grad_left)):
                k, flat = neg.size(1), neg.reshape(-1)
                diff = x.index_select(0, flat).view(-1, k, x.size(1))
                diff = diff.sub_(other.unsqueeze(1)).view(flat.numel(), -1)
                viol = pos - diff.abs().sum(-1).view(-1, k)
                active = viol > 0
                total += viol.clamp_min_(0).sum()
                count = count + active.sum(1, keepdim=True)
                idx = active.view(-1).nonzero().view(-1)
                if idx.numel() < flat.numel():  # keep the active terms only
                    diff, flat = diff.index_select(0, idx), flat.index_select(0, idx)
                sign = diff.sign_()  # d/dx_u of d(u, b) (or of d(v, a))
                grad_neg.index_add_(0, flat, sign)
                grad_other.index_add_(0, idx // k, sign)
            grad_left.addcmul_(count, sign_pos)
            grad_right.addcmul_(count, sign_pos, value=-1.0)
            grad.index_add_(0, left, grad_left)
            grad.index_add_(0, right, grad_right)
        grad -= grad_neg
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        grad, = ctx.saved_tensors
        return grad * grad_out, None, None, None, None


def chunked_margin_l1_loss(x: Tensor, pairs: Tensor, negatives: Tensor,
                           gamma: float = 1.0, chunk_size: int = 64) -> Tensor:
    r"""The loss of :class:`~torch_geometric_ea.nn.MarginRankingL1Loss`,

    .. math::
        \mathcal{L} = \frac{1}{2 B k} \sum_{i, j} \Big(
        \big[d(a_i, b_i) + \gamma - d(a'_{ij}, b_i)\big]_+ +
        \big[d(a_i, b_i) + \gamma - d(a_i, b'_{ij})\big]_+ \Big),

    computed ``chunk_size`` seed pairs at a time with the gradient formed in
    the same pass, so memory is :math:`O(\text{chunk\_size} \cdot k \cdot
    D)` instead of autograd's several :math:`B k D` tensors.

    Args:
        x (torch.Tensor): Embeddings :math:`(N, D)`.
        pairs (torch.Tensor): Seed pairs :math:`(2, B)`.
        negatives (torch.Tensor): :math:`(2, B, k)`: row 0 replaces the
            left entity, row 1 the right one.
        gamma (float, optional): The margin. (default: :obj:`1.0`)
        chunk_size (int, optional): Seed pairs per block (small blocks
            stay in cache). (default: :obj:`64`)
    """
    if negatives.dim() != 3 or negatives.shape[:2] != (2, pairs.size(1)):
        raise ValueError(f"Expected 'negatives' of shape [2, {pairs.size(1)}, "
                         f"k] (got {list(negatives.shape)})")
    total = eager_float_kernel(_ChunkedMarginL1.apply)(x, pairs, negatives, gamma,
                                                       chunk_size)
    return total / (2 * negatives[0].numel())
