r"""The margin ranking loss of GCN-Align (and many translation-based
aligners) over :math:`L_1` distances, and its uniform negative sampler."""
from typing import Optional

import torch
from torch import Tensor

__all__ = ['MarginRankingL1Loss', 'uniform_negatives']


def uniform_negatives(pairs: Tensor, num_negatives: int, num_nodes: int,
                      generator: Optional[torch.Generator] = None) -> Tensor:
    r"""Corrupted entities for every seed pair, drawn uniformly with
    replacement from all :obj:`num_nodes` entities (both KGs, the true
    partner included), as the official GCN-Align code does.

    Args:
        pairs (torch.Tensor): Seed pairs :math:`(2, B)`.
        num_negatives (int): Negatives :math:`k` per side and pair.
        num_nodes (int): Number of entities to draw from.
        generator (torch.Generator, optional): The random generator.

    Returns:
        torch.Tensor: :math:`(2, B, k)`: row :obj:`0` replaces the left
        entity of each pair, row :obj:`1` the right one.
    """
    if num_negatives < 1:
        raise ValueError(f"'num_negatives' must be positive (got {num_negatives})")
    # drawn on the CPU generator, so a seed gives the same draws everywhere
    return torch.randint(num_nodes, (2, pairs.size(1), num_negatives),
                         generator=generator).to(pairs.device)


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
