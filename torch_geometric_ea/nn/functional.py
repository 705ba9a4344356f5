r"""Row-wise and sparse-product helpers shared by the layers and models,
with lean backward passes."""
import functools
from typing import Callable, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..precision import Precision, using

__all__ = ['rowdot', 'unit_rows', 'unit_rows_', 'unit_rows_backward', 'normalize_rows',
           'fixed_sparse_product', 'sparse_product', 'eager_float_kernel',
           'as_operand_of']

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _cast(value, dtype: torch.dtype, source=_LOW_PRECISION):
    if isinstance(value, Tensor) and value.dtype in source:
        return value.to(dtype)
    if isinstance(value, tuple) and not hasattr(value, '_fields'):
        return tuple(_cast(v, dtype, source) for v in value)
    return value


def _autocast_precision(dtype: torch.dtype) -> Precision:
    if dtype == torch.bfloat16:
        return Precision('bfloat16', 'bfloat16', 'bfloat16 autocast')
    return Precision('float32', 'float32', f'{dtype} autocast: float32 kernels')


def eager_float_kernel(fn: Callable) -> Callable:
    r"""Wraps a hand-written kernel (a custom :class:`torch.autograd.Function`
    over sparse tensors or with a hand-derived backward) so that it runs
    the same under every caller:

    - under :func:`torch.compile` it is not traced: the compiled graph
      breaks around it and it runs eagerly (sparse CSR tensors and NumPy
      random streams are outside what the compiler traces);
    - under autocast it runs in float32 with autocast off, as autocast runs
      its own float32 operations (softmax, norms): float16 and bfloat16
      inputs are cast up and the output is float32; under bfloat16
      autocast it runs in the ``'bfloat16'`` precision
      (:func:`~torch_geometric_ea.precision.using`), so that the kernels
      that cast their large products' inputs
      (:func:`~torch_geometric_ea.precision.for_products`) multiply in
      bfloat16 while their reductions stay float32;
    - on float16 or bfloat16 inputs without autocast (a ``.half()`` or
      ``.bfloat16()`` module) it computes in float32 as well, since the
      sparse products have no half-precision kernels on the CPU, and casts
      its output back to the inputs' dtype, as
      :class:`~torch_geometric.nn.conv.GCNConv` returns the module's dtype.

    Tensors keep their device and every other dtype (float64 stays
    float64, float32 runs untouched)."""
    @functools.wraps(fn)
    @torch.compiler.disable
    def kernel(*args, **kwargs):
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        device = tensors[0].device.type if tensors else 'cpu'
        low = next((a.dtype for a in tensors if a.dtype in _LOW_PRECISION), None)
        if low is None and not torch.is_autocast_enabled(device):
            return fn(*args, **kwargs)
        args = _cast(args, torch.float32)
        kwargs = {key: _cast(value, torch.float32) for key, value in kwargs.items()}
        if torch.is_autocast_enabled(device):
            with torch.autocast(device, enabled=False), \
                    using(_autocast_precision(torch.get_autocast_dtype(device))):
                return fn(*args, **kwargs)
        return _cast(fn(*args, **kwargs), low, (torch.float32,))
    return kernel


def rowdot(a: Tensor, b: Tensor) -> Tensor:
    r"""Row-wise dot products of two :math:`(N, C)` matrices, without an
    :math:`N \times C` temporary."""
    return torch.einsum('pc,pc->p', a, b)


def unit_rows(x: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Rows scaled to unit :math:`L_2` norm, and the norms :math:`(N, 1)`
    (clamped below at :math:`10^{-12}`)."""
    norm = rowdot(x, x).sqrt_().clamp_min_(1e-12).unsqueeze(1)
    return x / norm, norm


def unit_rows_(x: Tensor) -> Tensor:
    r"""``torch.nn.functional.normalize(x, dim=-1)`` in place, equal to it
    bit for bit, without a copy of ``x``."""
    return x.div_(x.norm(2, 1, keepdim=True).clamp_min(1e-12))


def unit_rows_backward(grad: Tensor, unit: Tensor, norm: Tensor) -> Tensor:
    r"""The gradient through :func:`unit_rows`: :math:`(\mathbf{g} -
    \mathbf{y} (\mathbf{y}^\top \mathbf{g})) / \|\mathbf{x}\|`."""
    return torch.addcmul(grad, unit, -rowdot(unit, grad).unsqueeze(1)).div_(norm)


class _RowNormalize(torch.autograd.Function):
    r"""Row-wise :math:`L_2` normalisation with a three-pass backward.
    First-order only (``once_differentiable``): a second derivative raises
    "trying to differentiate twice a function that was marked with
    @once_differentiable"; use ``torch.nn.functional.normalize`` for it."""
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        unit, norm = unit_rows(x)
        ctx.save_for_backward(unit, norm)
        return unit

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tensor:
        return unit_rows_backward(grad, *ctx.saved_tensors)


def normalize_rows(x: Tensor) -> Tensor:
    r"""Row-wise :math:`L_2` normalisation whose backward takes three passes
    instead of autograd's eight (see :func:`unit_rows_backward`)."""
    return _row_normalize(x)


class _FixedSparseProduct(torch.autograd.Function):
    r""":math:`\mathbf{A} \mathbf{X}` whose backward multiplies by a prebuilt
    :math:`\mathbf{A}^\top`. First-order only (``once_differentiable``)."""
    @staticmethod
    def forward(ctx, x: Tensor, matrix: Tensor, transpose: Tensor) -> Tensor:
        ctx.transpose = transpose
        return matrix @ x

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        return ctx.transpose @ grad.contiguous(), None, None


@eager_float_kernel
def _row_normalize(x: Tensor) -> Tensor:
    return _RowNormalize.apply(x)


def as_operand_of(matrix: Tensor, x: Tensor) -> Tensor:
    r"""A fixed (sparse) ``matrix`` on ``x``'s device and in its dtype, cast
    only when they differ (a float64 model on a float32 structure)."""
    if matrix.dtype != x.dtype or matrix.device != x.device:
        return matrix.to(x.device, x.dtype)
    return matrix


@eager_float_kernel
def _fixed_sparse_product(x: Tensor, matrix: Tensor, transpose: Tensor) -> Tensor:
    return _FixedSparseProduct.apply(x, as_operand_of(matrix, x),
                                     as_operand_of(transpose, x))


def fixed_sparse_product(matrix: Tensor, transpose: Tensor, x: Tensor) -> Tensor:
    r""":math:`\mathbf{A} \mathbf{X}` for a fixed sparse (CSR)
    :math:`\mathbf{A}`, differentiable in :math:`\mathbf{X}` only: the
    backward multiplies by the prebuilt ``transpose`` :math:`\mathbf{A}^\top`
    instead of transposing and sorting :math:`\mathbf{A}` on every call.
    A matrix of another dtype or device is cast to ``x``'s first."""
    return _fixed_sparse_product(x, matrix, transpose)


@eager_float_kernel
def sparse_product(matrix: Tensor, x: Tensor) -> Tensor:
    r""":math:`\mathbf{A} \mathbf{X}` for a fixed sparse (COO or CSR)
    :math:`\mathbf{A}`, cast to ``x``'s dtype and device when they differ
    (float16 and bfloat16 multiply in float32, see
    :func:`eager_float_kernel`)."""
    return torch.sparse.mm(as_operand_of(matrix, x), x)
