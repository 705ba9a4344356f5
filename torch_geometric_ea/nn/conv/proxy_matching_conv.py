r"""The gated proxy matching attention layer of Dual-AMN,
:class:`~torch_geometric_ea.nn.ProxyMatchingConv`."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import Parameter
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import glorot
from torch_geometric.typing import OptTensor
from torch_geometric.utils import softmax

from ...precision import product_dtype
from ..functional import (
    eager_float_kernel,
    unit_rows,
    unit_rows_backward,
)

__all__ = ['ProxyMatchingConv']


def _row_blocks(num: int, size: Optional[int]):
    size = num if size is None else size
    if size < 1:
        raise ValueError(f"'chunk_size' must be positive (got {size})")
    return [slice(start, min(start + size, num)) for start in range(0, num, size)]


class _DenseProxyGate(torch.autograd.Function):
    r"""The dense layer as one function that keeps only its inputs for
    backward and recomputes the rest (an :math:`N \times C` and an
    :math:`N \times n` product), instead of autograd's dozen
    :math:`N \times C` intermediates. With :math:`\mathbf{a}_i = \sum_k
    \beta_{ik} \mathbf{q}_k` the output is :math:`\mathbf{h}_i -
    \mathbf{a}_i + \mathbf{g}_i \odot \mathbf{a}_i`. Rows are independent,
    so both passes go ``chunk_size`` rows at a time: the intermediates
    never exceed a few :math:`\text{chunk} \times C` blocks. First-order
    only (``once_differentiable``); the ``edge_index`` path of the layer is
    plain autograd.

    In a low product precision
    (:func:`~torch_geometric_ea.precision.product_dtype`) the three
    :math:`N \times C \times C` gate products take low-precision inputs
    (the weight cast once, :math:`\mathbf{h}^p` and the gate's gradient
    once per block); the rest of the layer and the gradients stay float32."""
    @staticmethod
    def _forward(x, proxy, weight, bias, low=None):
        x_unit, x_norm = unit_rows(x)
        q_unit, q_norm = unit_rows(proxy)
        beta = torch.softmax(x_unit @ q_unit.t(), dim=-1)
        attended = beta @ proxy
        x_p = x - attended
        if low is not None:  # the weight in the product dtype
            x_p_low = x_p.to(low.dtype)
            pre = x_p_low @ low.t()
            gate = (pre.float() if bias is None else torch.add(pre, bias)).sigmoid_()
            return x_unit, x_norm, q_unit, q_norm, beta, attended, x_p, gate, x_p_low
        gate = torch.sigmoid(torch.addmm(bias, x_p, weight.t()) if bias is not None
                             else x_p @ weight.t())
        return x_unit, x_norm, q_unit, q_norm, beta, attended, x_p, gate, None

    @staticmethod
    def forward(ctx, x, proxy, weight, bias, chunk_size):
        dtype = product_dtype(x.device)
        low = None  # the weight cast for low-precision products, if any
        if x.dtype == torch.float32 and dtype != torch.float32:
            low = weight.to(dtype)
        out = torch.empty_like(x)
        for rows in _row_blocks(x.size(0), chunk_size):
            *_, attended, x_p, gate, _ = _DenseProxyGate._forward(x[rows], proxy,
                                                                  weight, bias, low)
            out[rows] = x_p.addcmul_(gate, attended)
        ctx.chunk_size, ctx.low = chunk_size, low
        ctx.save_for_backward(x, proxy, weight, bias)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, proxy, weight, bias = ctx.saved_tensors
        grad_x = torch.empty_like(x)
        grad_proxy, grad_weight = torch.zeros_like(proxy), torch.zeros_like(weight)
        grad_bias = torch.zeros_like(bias) if bias is not None else None
        low = ctx.low
        for rows in _row_blocks(x.size(0), ctx.chunk_size):
            (x_unit, x_norm, q_unit, q_norm, beta, attended, x_p,
             gate, x_p_low) = _DenseProxyGate._forward(x[rows], proxy, weight, bias,
                                                       low)
            g = grad[rows]
            grad_pre = (g * attended).mul_(gate * (1 - gate))  # through sigmoid
            if low is None:
                g_x = torch.addmm(g, grad_pre, weight)  # via x_p
                grad_weight.addmm_(grad_pre.t(), x_p)
            else:
                grad_pre_low = grad_pre.to(low.dtype)
                g_x = torch.add(g, grad_pre_low @ low)
                grad_weight += grad_pre_low.t() @ x_p_low
            if grad_bias is not None:
                grad_bias += grad_pre.sum(0)
            grad_att = (g * gate).sub_(g_x)
            grad_proxy.addmm_(beta.t(), grad_att)
            grad_beta = grad_att @ proxy.t()
            grad_cos = beta * (grad_beta - (beta * grad_beta).sum(-1, keepdim=True))
            g_x += unit_rows_backward(grad_cos @ q_unit, x_unit, x_norm)
            grad_proxy += unit_rows_backward(grad_cos.t() @ x_unit, q_unit, q_norm)
            grad_x[rows] = g_x
        return grad_x, grad_proxy, grad_weight, grad_bias, None


@eager_float_kernel
def _dense_proxy_gate(x: Tensor, proxy: Tensor, weight: Tensor, bias: OptTensor,
                      chunk_size: Optional[int]) -> Tensor:
    return _DenseProxyGate.apply(x, proxy, weight, bias, chunk_size)


class ProxyMatchingConv(MessagePassing):
    r"""The gated proxy matching attention layer from the `"Boosting the
    Speed of Entity Alignment 10x: Dual Attention Matching Network with
    Normalized Hard Sample Mining" <https://arxiv.org/abs/2103.15452>`_ paper
    (Dual-AMN).

    Every entity attends over :math:`n` learnable proxy vectors
    :math:`\mathbf{q}_k`, subtracts the attended proxy, and a gate mixes the
    result with its input (the official code's form):

    .. math::
        \beta_{i,k} &= \mathrm{softmax}_k\left(\cos(\mathbf{h}_i,
        \mathbf{q}_k)\right) \\
        \mathbf{h}^{p}_i &= \mathbf{h}_i - \sum_k \beta_{i,k}\,\mathbf{q}_k \\
        \mathbf{g}_i &= \sigma(\mathbf{W} \mathbf{h}^{p}_i + \mathbf{b}) \\
        \mathbf{h}^{\prime}_i &= \mathbf{g}_i \odot \mathbf{h}_i +
        (1 - \mathbf{g}_i) \odot \mathbf{h}^{p}_i

    Without ``edge_index`` every entity attends over all proxies (a dense
    :math:`N \times n` product, the fast path). With ``edge_index`` the
    layer is message passing over the proxy-to-entity bipartite graph, so
    each entity may attend over its own subset of proxies.

    Args:
        channels (int): Size of entity features and proxies.
        num_proxies (int, optional): Number of proxies :math:`n`.
            (default: :obj:`64`)
        bias (bool, optional): If set to :obj:`False`, the gate has no bias
            :math:`\mathbf{b}`. (default: :obj:`True`)
        chunk_size (int, optional): Entities processed at once by the dense
            path, forward and backward (:obj:`None`: all). Bounds its
            working memory on large graphs. (default: :obj:`65536`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** entity features :math:`(N, C)`, optional proxy-to-entity
          edges :math:`(2, E)` (row 0 proxy ids, row 1 entity ids)
        - **output:** entity features :math:`(N, C)`, and with
          ``return_attention_weights`` the pair ``(edge_index, beta)``:
          the proxy-to-entity edges :math:`(2, E)` (all :math:`N n` pairs,
          entity-major, on the dense path) and their attention :math:`(E)`

    .. note::
        The dense path is one hand-written kernel: :func:`torch.compile`
        runs it eagerly (a graph break), autocast runs it in float32 (and
        so does a ``.half()`` or ``.bfloat16()`` layer, whose output keeps
        its dtype), and it is first-order only; the ``edge_index`` path is
        plain autograd.
    """
    def __init__(self, channels: int, num_proxies: int = 64, bias: bool = True,
                 chunk_size: Optional[int] = 65536, **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        self.channels = channels
        self.num_proxies = num_proxies
        self.chunk_size = chunk_size
        self.proxy = Parameter(torch.empty(num_proxies, channels))
        self.gate = Linear(channels, channels, bias=bias,
                           weight_initializer='glorot')
        self.reset_parameters()

    def reset_parameters(self):
        r"""Re-initialises the proxies and the gate weight :math:`\mathbf{W}`
        with Glorot initialisation and the gate bias :math:`\mathbf{b}`, if
        any, uniformly in :math:`[-1/\sqrt{C}, 1/\sqrt{C}]`."""
        super().reset_parameters()
        glorot(self.proxy)
        self.gate.reset_parameters()

    def forward(self, x: Tensor, edge_index: OptTensor = None,
                return_attention_weights: bool = False):
        r"""Runs the layer.

        Args:
            x (torch.Tensor): Entity features :math:`(N, C)`.
            edge_index (torch.Tensor, optional): Proxy-to-entity edges
                :math:`(2, E)`; all proxies for every entity when
                :obj:`None`. (default: :obj:`None`)
            return_attention_weights (bool, optional): If :obj:`True`, also
                returns ``(edge_index, beta)`` as
                :class:`~torch_geometric.nn.conv.GATConv` does.
                (default: :obj:`False`)
        """
        if edge_index is None:
            out = _dense_proxy_gate(x, self.proxy, self.gate.weight,
                                    self.gate.bias, self.chunk_size)
            if not return_attention_weights:
                return out
            return out, self._dense_attention(x)
        cos = (F.normalize(x, dim=-1)[edge_index[1]] *
               F.normalize(self.proxy, dim=-1)[edge_index[0]]).sum(-1)
        beta = softmax(cos, edge_index[1], num_nodes=x.size(0))
        attended = self.propagate(edge_index, x=(self.proxy, x), beta=beta,
                                  size=(self.num_proxies, x.size(0)))
        x_p = x - attended
        gate = torch.sigmoid(self.gate(x_p))
        out = gate * x + (1 - gate) * x_p
        if return_attention_weights:
            return out, (edge_index, beta)
        return out

    @torch.no_grad()
    def _dense_attention(self, x: Tensor):
        n, k = x.size(0), self.num_proxies
        beta = torch.softmax(F.normalize(x, dim=-1)
                             @ F.normalize(self.proxy, dim=-1).t(), dim=-1)
        edge_index = torch.stack([
            torch.arange(k, device=x.device).repeat(n),
            torch.arange(n, device=x.device).repeat_interleave(k)])
        return edge_index, beta.reshape(-1)

    def message(self, x_j: Tensor, beta: Tensor) -> Tensor:
        r"""Each proxy-to-entity edge sends the proxy weighted by its
        attention, :math:`\beta_{i,k} \mathbf{q}_k`."""
        return beta.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'num_proxies={self.num_proxies})')
