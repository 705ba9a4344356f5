r"""The literal channel of Dual-AMN (Lit): rank by structure similarity plus
name similarity."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['fuse_literal']


def fuse_literal(structure: Tensor, names: Tensor, weight: float = 1.0) -> Tensor:
    r"""Joins structure embeddings and name vectors so that the cosine
    similarity of two joined rows is the weighted sum of the two channels'
    cosine similarities, the ranking score :math:`s_{ij} + l_{ij}` of
    Dual-AMN (Lit) (`Mao et al., WWW 2021
    <https://arxiv.org/abs/2103.15452>`_) for ``weight=1``:

    .. math::
        \mathbf{z}_i = \frac{[\hat{\mathbf{h}}_i \,\|\, \sqrt{w}\,
        \hat{\mathbf{n}}_i]}{\sqrt{1 + w}}, \qquad
        \mathbf{z}_i^\top \mathbf{z}_j = \frac{s_{ij} + w\, l_{ij}}{1 + w}

    with :math:`\hat{\cdot}` the :math:`L_2`-normalised rows. Every
    evaluation and decoding of the package (CSLS, Sinkhorn, top-k) then
    ranks by the fused score unchanged. A row whose name vector is zero
    (no name) has norm :math:`1 / \sqrt{1 + w}`; the evaluations normalise
    it, so it is ranked by its structure similarity alone.

    Args:
        structure (torch.Tensor): Structure embeddings.
        names (torch.Tensor): Name vectors of the same rows.
        weight (float, optional): The weight :math:`w \geq 0` of the names.
            (default: :obj:`1.0`)

    Shapes:
        - **inputs:** :math:`(N, D)`, :math:`(N, D')`
        - **output:** :math:`(N, D + D')`
    """
    if structure.size(0) != names.size(0):
        raise ValueError(f"'structure' has {structure.size(0)} rows but "
                         f"'names' has {names.size(0)}")
    if weight < 0:
        raise ValueError(f"'weight' must be non-negative (got {weight})")
    out = torch.cat([F.normalize(structure, dim=-1),
                     math.sqrt(weight) * F.normalize(names.to(structure.dtype), dim=-1)],
                    dim=-1)
    return out / math.sqrt(1 + weight)
