r"""The relational (Householder reflection) attention layer of Dual-AMN,
:class:`~torch_geometric_ea.nn.RelationalAttentionConv`."""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import Parameter
from torch.nn.parameter import UninitializedParameter, is_lazy
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.typing import OptTensor, PairTensor
from torch_geometric.utils import softmax

from ..functional import eager_float_kernel, normalize_rows
from ..layout import RelationalLayout, as_layout, attention_weights, edges_of_adjacency

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
        channels (int): Size of node and relation features; :obj:`-1`
            takes the width of ``x`` at the first call (lazy).
        bias (bool, optional): If set to :obj:`True`, adds a learnable bias
            to the output. (default: :obj:`False`)
        normalize (bool, optional): If set to :obj:`False`, relation vectors
            are taken as already :math:`L_2`-normalised (saves a pass when
            several layers share them). (default: :obj:`True`)
        fused (bool, optional): If set to :obj:`True`, the layer runs as one
            autograd function of sparse-dense products with a hand-derived
            backward pass instead of :meth:`message` and :meth:`propagate`
            (same result, several times less memory and time). Whenever an
            explainer's edge mask is set (``explain``, as
            :func:`torch_geometric.explain.algorithm.utils.set_masks` sets
            it) or a propagate, message or aggregate hook is registered, the
            layer hands over to :meth:`propagate`, which applies them.
            (default: :obj:`True`)
        cached (bool, optional): If set to :obj:`True`, the layer builds the
            :class:`RelationalLayout` of the first graph it sees and reuses
            it on every later call, as ``GCNConv(cached=True)`` does; only
            for a fixed graph (transductive learning).
            :meth:`reset_parameters` clears it; a later graph of another
            number of nodes raises an error. (default: :obj:`False`)
        num_relations (int, optional): If set, the layer owns a learnable
            relation table :math:`(R, C)` (Glorot initialised) and
            :meth:`forward` takes edge types only, ``conv(x, edge_index,
            edge_type)``, as :class:`~torch_geometric.nn.conv.RGCNConv`
            does; so the layer works in
            :func:`~torch_geometric.nn.to_hetero`. (default: :obj:`None`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`. ``flow`` is
            honoured on both paths (``'target_to_source'`` sends messages
            from ``edge_index[1]`` to ``edge_index[0]``); ``aggr`` must be
            ``'add'`` (the softmax normalises), any other raises a
            :class:`ValueError`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, C)` or a
          bipartite pair :math:`((|\mathcal{V}_s|, C), (|\mathcal{V}_t|, C))`,
          edge indices
          :math:`(2, |\mathcal{E}|)`, relation vectors
          :math:`(|\mathcal{E}|, C)` or a relation table :math:`(R, C)`
          with edge types :math:`(|\mathcal{E}|)`, or edge types only with
          ``num_relations``
        - **output:** node features :math:`(|\mathcal{V}|, C)` (of the
          receiving side for a pair), and with
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
                 fused: bool = True, cached: bool = False,
                 num_relations: Optional[int] = None, **kwargs):
        if not isinstance(channels, int) or not (channels >= 1 or channels == -1):
            raise ValueError(
                f"RelationalAttentionConv needs a positive channels, or -1 to take "
                f"the width of x at the first call (got {channels})")
        aggr = kwargs.setdefault('aggr', 'add')
        if aggr != 'add':
            raise ValueError(
                f"RelationalAttentionConv normalises its attention with a softmax "
                f"itself, so it only sums messages (aggr='add'); got aggr={aggr!r}")
        super().__init__(**kwargs)
        self.channels = channels
        self.normalize = normalize
        self.fused = fused
        self.cached = cached
        self.num_relations = num_relations
        self._cached_layout: Optional[RelationalLayout] = None
        self._cached_num_nodes: Optional[int] = None

        def weight(*shape):  # uninitialised while channels is -1
            return UninitializedParameter() if channels == -1 else Parameter(
                torch.empty(*shape))

        self.att = weight(channels, 1)
        if num_relations is not None:
            self.rel_table = weight(num_relations, channels)
        else:
            self.register_parameter('rel_table', None)
        if bias:
            self.bias = weight(channels)
        else:
            self.register_parameter('bias', None)
        if channels == -1:  # set by the first call (lazy, as PyG's Linear)
            self._lazy_hook = self.register_forward_pre_hook(
                RelationalAttentionConv._initialize, with_kwargs=True)
            self._register_load_state_dict_pre_hook(self._load_lazy)
        self.reset_parameters()

    def _load_lazy(self, state_dict, prefix, *args):
        r"""A lazy layer takes the width of the weights it loads."""
        att = state_dict.get(prefix + 'att')
        if is_lazy(self.att) and att is not None:
            self._materialize(att.size(0), dtype=att.dtype, device=att.device)
            self._lazy_hook.remove()

    @torch.no_grad()
    def _initialize(self, args, kwargs):
        r"""Makes the weights of a ``channels=-1`` layer for the width of
        the first call's ``x`` and initialises them."""
        x = args[0] if args else kwargs['x']
        x = x[0] if isinstance(x, (tuple, list)) else x
        self._materialize(x.size(-1), dtype=x.dtype, device=x.device)
        self.reset_parameters()
        self._lazy_hook.remove()

    def _materialize(self, channels: int, **like):
        self.channels = channels
        self.att.materialize((channels, 1), **like)
        if self.rel_table is not None:
            self.rel_table.materialize((self.num_relations, channels), **like)
        if self.bias is not None:
            self.bias.materialize((channels,), **like)

    def reset_parameters(self):
        r"""Re-initialises the attention vector :math:`\mathbf{v}` and the
        layer's own relation table, if any, with Glorot initialisation and
        the bias, if any, with zeros."""
        super().reset_parameters()
        self._cached_layout = None
        self._cached_num_nodes = None
        if is_lazy(self.att):  # initialised by the first call
            return
        glorot(self.att)
        if self.rel_table is not None:
            glorot(self.rel_table)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Union[Tensor, PairTensor],
                edge_index: Union[Tensor, RelationalLayout],
                rel: OptTensor = None, edge_type: OptTensor = None,
                return_attention_weights: bool = False):
        r"""Runs the layer.

        Args:
            x (torch.Tensor or (torch.Tensor, torch.Tensor)): Node features
                :math:`(N, C)`, or a bipartite pair ``(x_src, x_dst)``
                :math:`((N_s, C), (N_t, C))` (as :func:`~torch_geometric.nn.to_hetero`
                passes for an edge type between two node types): ``x[0]``
                is indexed by ``edge_index[0]`` and ``x[1]`` by
                ``edge_index[1]``, and the output has the rows of the
                receiving side.
            edge_index (torch.Tensor or RelationalLayout): Edges
                :math:`(2, E)` (any integer dtype), messages flow from
                ``edge_index[0]`` to ``edge_index[1]`` (the reverse with
                ``flow='target_to_source'``); or a :class:`RelationalLayout`
                of edges and types built once with :func:`relational_layout`
                (saves its sorts on every call on a fixed graph; so does
                ``cached=True``); or a sparse adjacency ``adj_t``
                (``torch.sparse`` COO/CSR or ``SparseTensor``, :math:`(N_t,
                N_s)`, entry :math:`(i, j)` for the edge :math:`j \to i`)
                whose values are the edges' relation types, as
                :class:`~torch_geometric.nn.conv.RGCNConv` reads it.
            rel (torch.Tensor, optional): Per-edge relation vectors
                :math:`(E, C)`, or, with ``edge_type`` or a layout, a
                relation table :math:`(R, C)`. They need not be normalised.
                On a layer that owns its table (``num_relations``), leave it
                out, or pass the edge types here: ``conv(x, edge_index,
                edge_type)``. (default: :obj:`None`)
            edge_type (torch.Tensor, optional): Relation id per edge
                :math:`(E)`. (default: :obj:`None`)
            return_attention_weights (bool, optional): If :obj:`True`, also
                returns ``(edge_index, alpha)`` as
                :class:`~torch_geometric.nn.conv.GATConv` does: the input
                edges with their attention in their order (for a layout, its
                edges in canonical order). The layer has one head and
                ``alpha`` is flat, :math:`(E)`, where ``GATConv`` gives
                :math:`(E, \text{heads})`.
                (default: :obj:`False`)
        """
        edge_index, edge_type = edges_of_adjacency(edge_index, edge_type)
        rel, edge_type = self._relations(rel, edge_type)
        bipartite = isinstance(x, (tuple, list))
        s2t = self.flow == 'source_to_target'
        if isinstance(edge_index, RelationalLayout):
            if bipartite or not s2t:
                raise ValueError(
                    "a RelationalLayout fixes the direction and the node set: build "
                    "it from the edges as the messages flow (edge_index.flip(0) for "
                    "flow='target_to_source') and pass one node feature matrix")
            graph, num_src = edge_index, 0
            x_all = x
        else:
            ei = edge_index.long()
            src, dst = (ei[0], ei[1]) if s2t else (ei[1], ei[0])
            if bipartite:
                x_src, x_dst = (x[0], x[1]) if s2t else (x[1], x[0])
                num_src = x_src.size(0)
                x_all = torch.cat([x_src, x_dst], dim=0)
                dst = dst + num_src
            else:
                num_src, x_all = 0, x
            if rel is None and edge_index.size(1) == 0:
                # an edge type without edges or types (a pair's link type
                # under to_hetero) contributes nothing
                rel = x_all.new_zeros(0, self.channels)
                edge_type = None
            graph = torch.stack([src, dst])
        if rel is None:
            raise ValueError("RelationalAttentionConv needs relation vectors, a relation "
                             "table with edge_type, or num_relations and edge_type")
        layout = self._layout(x_all, graph, rel, edge_type)
        if self.normalize:
            rel = normalize_rows(rel)
        if self.fused and not self._hands_over():
            out, alpha = relational_attention(x_all, rel, self.att, layout)
        else:
            # edges in the caller's order, so an explainer's edge mask and
            # the hooks see the edges as given
            # (a cached layout of the same number of edges is this graph)
            in_order = isinstance(graph, Tensor) and graph.size(1) == layout.order.numel()
            if not in_order:
                graph = layout.edge_index()
            perm = layout.order if in_order else None
            type_e = layout.to_input_order(layout.type_d) if in_order else layout.type_d
            rel_e = rel[type_e]
            index = graph[1]
            alpha = softmax((rel_e @ self.att).view(-1), index, num_nodes=x_all.size(0))
            prop = graph if s2t else graph.flip(0)
            out = self.propagate(prop, x=x_all, rel=rel_e, alpha=alpha)
            if perm is not None:
                alpha = alpha[perm]
        out = out[num_src:]
        if self.bias is not None:
            out = out + self.bias
        if return_attention_weights:
            return out, attention_weights(edge_index, layout, alpha)
        return out

    def _hands_over(self) -> bool:
        # an explainer's edge mask or any message passing hook needs the
        # per-edge messages of propagate
        if self._explain:
            return True
        hooks = (self._propagate_forward_pre_hooks, self._propagate_forward_hooks,
                 self._message_forward_pre_hooks, self._message_forward_hooks,
                 self._aggregate_forward_pre_hooks, self._aggregate_forward_hooks,
                 self._message_and_aggregate_forward_pre_hooks,
                 self._message_and_aggregate_forward_hooks)
        return any(len(h) > 0 for h in hooks)

    def _relations(self, rel: OptTensor, edge_type: OptTensor
                   ) -> Tuple[OptTensor, OptTensor]:
        if self.rel_table is None:
            return rel, edge_type
        if rel is not None and not rel.is_floating_point():
            if edge_type is not None:
                raise ValueError("edge types given twice")
            rel, edge_type = None, rel
        if rel is not None:
            raise ValueError(
                f"this layer owns its relation table (num_relations={self.num_relations}): "
                f"pass edge_type, not relation vectors")
        if edge_type is None:
            return None, None
        return self.rel_table, edge_type

    def _layout(self, x: Tensor, edge_index: Union[Tensor, RelationalLayout],
                rel: Tensor, edge_type: OptTensor) -> RelationalLayout:
        if self.cached and self._cached_layout is not None:
            if x.size(0) != self._cached_num_nodes:
                raise ValueError(
                    f"cached=True: the cache holds the layout of another graph "
                    f"({self._cached_num_nodes} nodes, this one has {x.size(0)}); "
                    f"call reset_parameters() or use cached=False")
            return as_layout(self._cached_layout, None, x.size(0), rel)
        layout = as_layout(edge_index, edge_type, x.size(0), rel)
        if self.cached:
            self._cached_layout = layout
            self._cached_num_nodes = x.size(0)
        return layout

    def message(self, x_j: Tensor, rel: Tensor, alpha: Tensor) -> Tensor:
        r"""Each edge sends its source features reflected by the edge's
        relation vector, :math:`\alpha_{i,j} (\mathbf{x}_j - 2
        (\mathbf{r}_{i,j}^{\top} \mathbf{x}_j) \mathbf{r}_{i,j})`."""
        proj = (x_j * rel).sum(dim=-1, keepdim=True)
        return alpha.view(-1, 1) * (x_j - 2 * proj * rel)

    def __repr__(self) -> str:
        if self.num_relations is None:
            return f'{self.__class__.__name__}({self.channels})'
        return (f'{self.__class__.__name__}({self.channels}, '
                f'num_relations={self.num_relations})')
