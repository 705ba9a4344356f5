r"""Row-wise and sparse-product helpers shared by the layers and models,
with lean backward passes."""
from typing import Tuple

import torch
from torch import Tensor

__all__ = ['rowdot', 'unit_rows', 'unit_rows_backward', 'normalize_rows',
           'fixed_sparse_product']


def rowdot(a: Tensor, b: Tensor) -> Tensor:
    r"""Row-wise dot products of two :math:`(N, C)` matrices, without an
    :math:`N \times C` temporary."""
    return torch.einsum('pc,pc->p', a, b)


def unit_rows(x: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Rows scaled to unit :math:`L_2` norm, and the norms :math:`(N, 1)`
    (clamped below at :math:`10^{-12}`)."""
    norm = rowdot(x, x).sqrt_().clamp_min_(1e-12).unsqueeze(1)
    return x / norm, norm


def unit_rows_backward(grad: Tensor, unit: Tensor, norm: Tensor) -> Tensor:
    r"""The gradient through :func:`unit_rows`: :math:`(\mathbf{g} -
    \mathbf{y} (\mathbf{y}^\top \mathbf{g})) / \|\mathbf{x}\|`."""
    return torch.addcmul(grad, unit, -rowdot(unit, grad).unsqueeze(1)).div_(norm)


class _RowNormalize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        unit, norm = unit_rows(x)
        ctx.save_for_backward(unit, norm)
        return unit

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return unit_rows_backward(grad, *ctx.saved_tensors)


def normalize_rows(x: Tensor) -> Tensor:
    r"""Row-wise :math:`L_2` normalisation whose backward takes three passes
    instead of autograd's eight (see :func:`unit_rows_backward`)."""
    return _RowNormalize.apply(x)


class _FixedSparseProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, matrix: Tensor, transpose: Tensor) -> Tensor:
        ctx.transpose = transpose
        return matrix @ x

    @staticmethod
    def backward(ctx, grad: Tensor):
        return ctx.transpose @ grad.contiguous(), None, None


def fixed_sparse_product(matrix: Tensor, transpose: Tensor, x: Tensor) -> Tensor:
    r""":math:`\mathbf{A} \mathbf{X}` for a fixed sparse (CSR)
    :math:`\mathbf{A}`, differentiable in :math:`\mathbf{X}` only: the
    backward multiplies by the prebuilt ``transpose`` :math:`\mathbf{A}^\top`
    instead of transposing and sorting :math:`\mathbf{A}` on every call."""
    return _FixedSparseProduct.apply(x, matrix, transpose)
