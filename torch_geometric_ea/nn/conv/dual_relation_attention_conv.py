r"""The dual (relation graph) attention layer of RDGCN,
:class:`~torch_geometric_ea.nn.DualRelationAttentionConv`, and the fused
attention-weighted sum it shares with the primal layer."""
from typing import Union

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

from ..functional import eager_float_kernel
from ..layout import RelationalLayout, as_layout, attention_weights

__all__ = ['DualRelationAttentionConv']


class _AttentionSum(torch.autograd.Function):
    r"""The attention-weighted sum :math:`\mathbf{x}'_i = \sum_{(j, i)}
    \alpha_{ji} \mathbf{v}_j` as one sparse-dense product over a
    :class:`RelationalLayout` (:math:`\alpha` in its target order). With
    :math:`\mathbf{g}_i` the output gradient, :math:`\nabla_{\alpha_{ji}} =
    \mathbf{g}_i^\top \mathbf{v}_j` is a sampled product and
    :math:`\nabla_{\mathbf{v}_j} = \sum_{(j, i)} \alpha_{ji} \mathbf{g}_i`
    the transposed product, so no step holds :math:`|\mathcal{E}| \times C`
    values. First-order only (``once_differentiable``)."""
    @staticmethod
    def forward(ctx, alpha: Tensor, value: Tensor, layout: RelationalLayout):
        ctx.save_for_backward(alpha, value)
        ctx.layout = layout
        return layout.csr('dst', 'src', alpha) @ value

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        alpha, value = ctx.saved_tensors
        layout = ctx.layout
        grad = grad.contiguous()
        grad_alpha = grad_value = None
        if ctx.needs_input_grad[0]:
            grad_alpha = layout.sampled_dots('dst', 'src', grad, value)
        if ctx.needs_input_grad[1]:
            grad_value = layout.csr('src', 'dst', alpha) @ grad
        return grad_alpha, grad_value, None


@eager_float_kernel
def attention_sum(alpha: Tensor, value: Tensor, layout: RelationalLayout) -> Tensor:
    r""":math:`\mathbf{x}'_i = \sum_{(j, i)} \alpha_{ji} \mathbf{v}_j` for
    per-edge weights ``alpha`` in the target order of ``layout``, with
    :math:`O(|\mathcal{E}| + N C)` memory in both passes. Float16 and
    bfloat16 inputs are multiplied in float32 and the output cast back."""
    return _AttentionSum.apply(alpha, value, layout)


def attend(conv: MessagePassing, alpha: Tensor, value: Tensor,
           layout: RelationalLayout, edge_index: Union[Tensor, RelationalLayout],
           return_attention_weights: bool = False):
    r"""The output of an attention layer ``conv``: :func:`attention_sum`
    when it is fused with ``'add'`` aggregation, else its ``propagate``
    (whose ``message(value_j, alpha)`` weights the values); with
    ``return_attention_weights`` also ``(edge_index, alpha)`` as
    :class:`~torch_geometric.nn.conv.GATConv` returns them."""
    if conv.fused and conv.aggr == 'add':
        out = attention_sum(alpha, value, layout)
    else:
        out = conv.propagate(layout.edge_index(), value=value, alpha=alpha)
    if return_attention_weights:
        return out, attention_weights(edge_index, layout, alpha.detach())
    return out


class DualRelationAttentionConv(MessagePassing):
    r"""The dual attention layer from the `"Relation-Aware Entity Alignment
    for Heterogeneous Knowledge Graphs" <https://arxiv.org/abs/1908.08210>`_
    paper (RDGCN), on the dual relation graph whose nodes are relations.

    The attention logits are the additive GAT scores of a shared projection
    of the node features, scaled by the edge weights :math:`w_{ij}` of the
    dual graph (its head and tail overlaps, see
    :func:`~torch_geometric_ea.nn.rdgcn_dual_graph`):

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i)} \alpha_{i,j}
        \mathbf{v}_j, \qquad
        \alpha_{i,j} = \mathrm{softmax}_{j \in \mathcal{N}(i)}\left(
        \mathrm{LeakyReLU}\left(w_{ij} \left(\mathbf{a}_1^{\top}
        \mathbf{W} \mathbf{x}_i + \mathbf{a}_2^{\top} \mathbf{W}
        \mathbf{x}_j + b\right)\right)\right)

    The values :math:`\mathbf{v}` default to :math:`\mathbf{x}`; RDGCN's
    second interaction attends with the new relation features and
    aggregates the first layer's output. The layer has no output weight,
    so it keeps the width of the values; apply the activation (``relu`` in
    RDGCN) outside.

    Args:
        in_channels (int): Size of the features :math:`\mathbf{x}` that
            the attention reads.
        hidden_channels (int): Size of the projection :math:`\mathbf{W}
            \mathbf{x}` (600 in RDGCN).
        negative_slope (float, optional): LeakyReLU angle of the negative
            slope. (default: :obj:`0.2`)
        bias (bool, optional): If set to :obj:`False`, the projection
            :math:`\mathbf{W}` has no bias (RDGCN's first dual layer).
            (default: :obj:`True`)
        fused (bool, optional): If set to :obj:`True`, the weighted sum is
            one sparse-dense product with a hand-written backward pass
            instead of :meth:`message` and :meth:`propagate` (same result,
            no per-edge feature rows). (default: :obj:`True`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)`, edge indices
          :math:`(2, |\mathcal{E}|)` or a
          :class:`~torch_geometric_ea.nn.RelationalLayout`, edge weights
          :math:`(|\mathcal{E}|)` (optional), values
          :math:`(|\mathcal{V}|, C)` (optional)
        - **output:** node features :math:`(|\mathcal{V}|, C)`
          (:math:`C = F` without values)

    .. note::
        The official implementation scores all :math:`R \times R` relation
        pairs and masks the non-edges; this layer scores the edges only,
        :math:`O(|\mathcal{E}| + |\mathcal{V}| (F + C))` memory. Nodes
        without incoming edges receive zeros (RDGCN's dual graph has a
        self-loop on every relation with triples).
    """
    # propagate() is called by attend(), outside forward:
    propagate_type = {'value': Tensor, 'alpha': Tensor}

    def __init__(self, in_channels: int, hidden_channels: int,
                 negative_slope: float = 0.2, bias: bool = True,
                 fused: bool = True, **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.negative_slope = negative_slope
        self.fused = fused
        self.lin = Linear(in_channels, hidden_channels, bias=bias,
                          weight_initializer='glorot', bias_initializer='zeros')
        self.att_dst = Parameter(torch.empty(hidden_channels, 1))
        self.att_src = Parameter(torch.empty(hidden_channels, 1))
        self.att_bias = Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self):
        r"""Re-initialises the projection :math:`\mathbf{W}` (Glorot weight,
        zero bias) and the attention vectors :math:`\mathbf{a}_1,
        \mathbf{a}_2` (Glorot), and zeros the logit bias :math:`b`."""
        super().reset_parameters()
        self.lin.reset_parameters()
        glorot(self.att_dst)
        glorot(self.att_src)
        torch.nn.init.zeros_(self.att_bias)

    def forward(self, x: Tensor, edge_index: Union[Tensor, RelationalLayout],
                edge_weight: OptTensor = None, value: OptTensor = None,
                return_attention_weights: bool = False):
        r"""Runs the layer.

        Args:
            x (torch.Tensor): Node features :math:`(N, F)` the attention
                reads.
            edge_index (torch.Tensor or RelationalLayout): Edges
                :math:`(2, E)`, messages flow from ``edge_index[0]`` to
                ``edge_index[1]``; or an untyped layout of them built once
                with ``relational_layout(edge_index, None, N)``.
            edge_weight (torch.Tensor, optional): Weights :math:`(E)` that
                scale the logits, in the order of ``edge_index``.
                (default: :obj:`None`: all ones)
            value (torch.Tensor, optional): Aggregated features
                :math:`(N, C)`. (default: :obj:`None`: ``x``)
            return_attention_weights (bool, optional): If :obj:`True`, also
                returns ``(edge_index, alpha)`` as
                :class:`~torch_geometric.nn.conv.GATConv` does.
                (default: :obj:`False`)
        """
        layout = as_layout(edge_index, None, x.size(0))
        value = x if value is None else value
        if value.size(0) != x.size(0):
            raise ValueError(f"expected one value row per node ({x.size(0)}), "
                             f"got {value.size(0)}")
        h = self.lin(x)
        a_dst, a_src = (h @ self.att_dst).view(-1), (h @ self.att_src).view(-1)
        logit = a_dst[layout.dst_d] + a_src[layout.src_d] + self.att_bias
        if edge_weight is not None:
            logit = logit * edge_weight[layout.order].to(logit.dtype)
        alpha = softmax(F.leaky_relu(logit, self.negative_slope), layout.dst_d,
                        num_nodes=x.size(0))
        return attend(self, alpha, value, layout, edge_index,
                      return_attention_weights)

    def message(self, value_j: Tensor, alpha: Tensor) -> Tensor:
        r"""Each edge sends the source's value weighted by its attention,
        :math:`\alpha_{i,j} \mathbf{v}_j`."""
        return alpha.view(-1, 1) * value_j

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.hidden_channels})')
