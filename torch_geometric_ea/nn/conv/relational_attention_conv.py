r"""The relational (Householder reflection) attention layer of Dual-AMN,
:class:`~torch_geometric_ea.nn.RelationalAttentionConv`."""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import Parameter
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.typing import OptTensor
from torch_geometric.utils import softmax

from ..functional import eager_float_kernel, normalize_rows
from ..layout import RelationalLayout, as_layout, attention_weights

__all__ = ['RelationalAttentionConv']


class _RelationalAttention(torch.autograd.Function):
    r"""The whole layer as one function over a :class:`RelationalLayout`,
    with relation table :math:`\mathbf{R}` (unit rows) and edge types
    :math:`t_{ij}`, so :math:`\mathbf{r}_{ij} = \mathbf{R}_{t_{ij}}`:

    .. math::
        \mathbf{x}'_i = \sum_{(j, i)} \alpha_{ij} \mathbf{x}_j - 2
        \sum_{(j, i)} \alpha_{ij} s_{ij} \mathbf{r}_{ij}, \quad
        s_{ij} = \mathbf{r}_{ij}^\top \mathbf{x}_j, \quad
        \alpha_{ij} = \mathrm{softmax}_i(\mathbf{v}^\top \mathbf{r}_{ij})

    Both sums are sparse-dense products (target x source with values
    :math:`\alpha`, target x type with values :math:`\alpha s`), and the
    :math:`s_{ij}` a sampled product, so no step touches
    :math:`|\mathcal{E}| \times C` memory. With :math:`\mathbf{g}_i` the
    output gradient and :math:`u_{ij} = \mathbf{r}_{ij}^\top \mathbf{g}_i`:

    .. math::
        \nabla_{\alpha_{ij}} &= \mathbf{g}_i^\top \mathbf{x}_j - 2 s_{ij}
        u_{ij}, \quad \nabla_{e_{ij}} = \alpha_{ij} \left(
        \nabla_{\alpha_{ij}} - \textstyle\sum_{(k, i)} \alpha_{ik}
        \nabla_{\alpha_{ik}}\right) \\
        \nabla_{\mathbf{x}_j} &= \textstyle\sum_{(j, i)} \alpha_{ij}
        (\mathbf{g}_i - 2 u_{ij} \mathbf{r}_{ij}), \quad
        \nabla_{\mathbf{R}_t} = \textstyle\sum_{t_{ij} = t} \left(
        \nabla_{e_{ij}} \mathbf{v} - 2 \alpha_{ij} (s_{ij} \mathbf{g}_i +
        u_{ij} \mathbf{x}_j)\right), \quad \nabla_{\mathbf{v}} =
        \textstyle\sum \nabla_{e_{ij}} \mathbf{r}_{ij}

    where :math:`e_{ij} = \mathbf{v}^\top \mathbf{r}_{ij}` is the logit.
    Parallel edges share one entry of each sparse matrix (their values
    summed), so the matrices are valid CSR on any graph. First-order only
    (``once_differentiable``): a second derivative raises "trying to
    differentiate twice a function that was marked with
    @once_differentiable"; ``fused=False`` runs on autograd and supports it.
    """
    @staticmethod
    def forward(ctx, x: Tensor, table: Tensor, att: Tensor,
                layout: RelationalLayout):
        alpha = softmax((table @ att).view(-1)[layout.type_d], layout.dst_d,
                        num_nodes=layout.num_nodes)
        proj = layout.sampled_dots('type', 'src', table, x)
        out = layout.csr('dst', 'src', alpha) @ x
        out -= layout.csr('dst', 'type', 2 * alpha * proj) @ table
        ctx.save_for_backward(x, table, att, alpha, proj)
        ctx.layout = layout
        ctx.mark_non_differentiable(alpha)
        return out, alpha

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, _):
        x, table, att, alpha, proj = ctx.saved_tensors
        layout = ctx.layout
        grad_out = grad_out.contiguous()
        u = layout.sampled_dots('dst', 'type', grad_out, table)
        grad_alpha = layout.sampled_dots('dst', 'src', grad_out, x)
        grad_alpha.sub_(2 * proj * u)
        weighted = alpha * grad_alpha
        total = x.new_zeros(layout.num_nodes).index_add_(0, layout.dst_d, weighted)
        grad_logit = weighted.sub_(alpha * total[layout.dst_d])

        alpha_u = alpha * u
        grad_x = layout.csr('src', 'dst', alpha) @ grad_out
        grad_x -= layout.csr('src', 'type', 2 * alpha_u) @ table
        grad_table = layout.csr('type', 'dst', alpha * proj) @ grad_out
        grad_table += layout.csr('type', 'src', alpha_u) @ x
        grad_table.mul_(-2.0)
        logit_sum = table.new_zeros(layout.num_types).index_add_(
            0, layout.type_d, grad_logit)
        grad_table.addr_(logit_sum, att.view(-1))
        grad_att = (table.t() @ logit_sum).view_as(att)
        return grad_x, grad_table, grad_att, None


@eager_float_kernel
def relational_attention(x: Tensor, table: Tensor, att: Tensor,
                         layout: RelationalLayout) -> Tuple[Tensor, Tensor]:
    r"""The fused layer (:class:`_RelationalAttention`): the output
    :math:`(N, C)` and the attention :math:`(E)` in the layout's canonical
    order. Runs eagerly under :func:`torch.compile` and in float32 under
    autocast (see :func:`~torch_geometric_ea.nn.functional.eager_float_kernel`).
    """
    return _RelationalAttention.apply(x, table, att, layout)


class RelationalAttentionConv(MessagePassing):
    r"""The simplified relational attention layer from the `"Boosting the
    Speed of Entity Alignment 10x: Dual Attention Matching Network with
    Normalized Hard Sample Mining" <https://arxiv.org/abs/2103.15452>`_ paper
    (Dual-AMN).

    Each neighbour is projected by the reflection (Householder) matrix of
    the relation on its edge and weighted by an attention that depends on
    the relation only:

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i)} \alpha_{i,j}
        \left(\mathbf{x}_j - 2\, (\mathbf{r}_{i,j}^{\top} \mathbf{x}_j)\,
        \mathbf{r}_{i,j}\right),
        \qquad
        \alpha_{i,j} = \frac{\exp(\mathbf{v}^{\top} \mathbf{r}_{i,j})}
        {\sum_{k \in \mathcal{N}(i)} \exp(\mathbf{v}^{\top} \mathbf{r}_{i,k})}

    where :math:`\mathbf{r}_{i,j}` is the :math:`L_2`-normalised relation
    vector of edge :math:`(j, i)` and :math:`\mathbf{v}` the layer's
    attention vector. The layer has no weight matrix, so it keeps the
    feature width; apply the activation (``tanh`` in Dual-AMN) outside.

    Args:
        channels (int): Size of node and relation features.
        bias (bool, optional): If set to :obj:`True`, adds a learnable bias
            to the output. (default: :obj:`False`)
        normalize (bool, optional): If set to :obj:`False`, relation vectors
            are taken as already :math:`L_2`-normalised (saves a pass when
            several layers share them). (default: :obj:`True`)
        fused (bool, optional): If set to :obj:`True`, the layer runs as one
            autograd function of sparse-dense products with a hand-derived
            backward pass instead of :meth:`message` and :meth:`propagate`
            (same result, several times less memory and time).
            (default: :obj:`True`)
        cached (bool, optional): If set to :obj:`True`, the layer builds the
            :class:`RelationalLayout` of the first graph it sees and reuses
            it on every later call, as ``GCNConv(cached=True)`` does; only
            for a fixed graph (transductive learning).
            :meth:`reset_parameters` clears it. (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, C)`, edge indices
          :math:`(2, |\mathcal{E}|)`, relation vectors
          :math:`(|\mathcal{E}|, C)` or a relation table :math:`(R, C)`
          with edge types :math:`(|\mathcal{E}|)`
        - **output:** node features :math:`(|\mathcal{V}|, C)`, and with
          ``return_attention_weights`` the pair ``(edge_index, alpha)``
          with :math:`(2, |\mathcal{E}|)` and :math:`(|\mathcal{E}|)`

    .. note::
        The fused path needs :math:`O(|\mathcal{E}| + (|\mathcal{V}| + R)
        C)` memory: it never forms per-edge feature rows, which
        :meth:`propagate` does (:math:`O(|\mathcal{E}| \cdot C)`). Nodes
        without incoming edges receive zeros (plus the bias). It is one
        hand-written kernel: :func:`torch.compile` runs it eagerly (a graph
        break), autocast runs it in float32, and it is first-order only;
        ``fused=False`` is plain autograd throughout.
    """
    def __init__(self, channels: int, bias: bool = False, normalize: bool = True,
                 fused: bool = True, cached: bool = False, **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        self.channels = channels
        self.normalize = normalize
        self.fused = fused
        self.cached = cached
        self._cached_layout: Optional[RelationalLayout] = None
        self.att = Parameter(torch.empty(channels, 1))
        if bias:
            self.bias = Parameter(torch.empty(channels))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        r"""Re-initialises the attention vector :math:`\mathbf{v}` with
        Glorot initialisation and the bias, if any, with zeros."""
        super().reset_parameters()
        self._cached_layout = None
        glorot(self.att)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Union[Tensor, RelationalLayout],
                rel: Tensor, edge_type: OptTensor = None,
                return_attention_weights: bool = False):
        r"""Runs the layer.

        Args:
            x (torch.Tensor): Node features :math:`(N, C)`.
            edge_index (torch.Tensor or RelationalLayout): Edges
                :math:`(2, E)`, messages flow from ``edge_index[0]`` to
                ``edge_index[1]``; or a :class:`RelationalLayout` of edges
                and types built once with :func:`relational_layout` (saves
                its sorts on every call on a fixed graph; so does
                ``cached=True``).
            rel (torch.Tensor): Per-edge relation vectors :math:`(E, C)`,
                or, with ``edge_type`` or a layout, a relation table
                :math:`(R, C)`. They need not be normalised.
            edge_type (torch.Tensor, optional): Relation id per edge
                :math:`(E)`. (default: :obj:`None`)
            return_attention_weights (bool, optional): If :obj:`True`, also
                returns ``(edge_index, alpha)`` as
                :class:`~torch_geometric.nn.conv.GATConv` does: the input
                edges with their attention :math:`(E)` in their order (for
                a layout, its edges in canonical order).
                (default: :obj:`False`)
        """
        layout = self._layout(x, edge_index, rel, edge_type)
        if self.normalize:
            rel = normalize_rows(rel)
        if self.fused and self.aggr == 'add':
            out, alpha = relational_attention(x, rel, self.att, layout)
        else:
            rel = rel[layout.type_d]
            alpha = softmax((rel @ self.att).view(-1), layout.dst_d,
                            num_nodes=x.size(0))
            out = self.propagate(layout.edge_index(), x=x, rel=rel, alpha=alpha)
        if self.bias is not None:
            out = out + self.bias
        if return_attention_weights:
            return out, attention_weights(edge_index, layout, alpha)
        return out

    def _layout(self, x: Tensor, edge_index: Union[Tensor, RelationalLayout],
                rel: Tensor, edge_type: OptTensor) -> RelationalLayout:
        if self.cached and self._cached_layout is not None:
            return as_layout(self._cached_layout, None, x.size(0), rel)
        layout = as_layout(edge_index, edge_type, x.size(0), rel)
        if self.cached:
            self._cached_layout = layout
        return layout

    def message(self, x_j: Tensor, rel: Tensor, alpha: Tensor) -> Tensor:
        r"""Each edge sends its source features reflected by the edge's
        relation vector, :math:`\alpha_{i,j} (\mathbf{x}_j - 2
        (\mathbf{r}_{i,j}^{\top} \mathbf{x}_j) \mathbf{r}_{i,j})`."""
        proj = (x_j * rel).sum(dim=-1, keepdim=True)
        return alpha.view(-1, 1) * (x_j - 2 * proj * rel)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.channels})'
