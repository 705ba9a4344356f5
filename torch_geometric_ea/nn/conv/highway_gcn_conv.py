r"""The highway-gated graph convolution of RDGCN,
:class:`~torch_geometric_ea.nn.HighwayGCNConv`."""
from typing import Any, Callable, Union

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.resolver import activation_resolver
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import spmm

from ..functional import as_operand_of

__all__ = ['HighwayGCNConv']


class HighwayGCNConv(MessagePassing):
    r"""A graph convolution with a diagonal weight and a highway gate, as
    in the `"Relation-Aware Entity Alignment for Heterogeneous Knowledge
    Graphs" <https://arxiv.org/abs/1908.08210>`_ paper (RDGCN) and
    GCN-Align:

    .. math::
        \mathbf{h} &= \sigma\left(\hat{\mathbf{D}}^{-1/2}
        \hat{\mathbf{A}} \hat{\mathbf{D}}^{-1/2} (\mathbf{x} \odot
        \mathbf{w})\right), \\
        \mathbf{T} &= \mathrm{sigmoid}(\mathbf{x} \mathbf{W}_T +
        \mathbf{b}_T), \qquad
        \mathbf{x}^{\prime} = \mathbf{T} \odot \mathbf{h} + (1 -
        \mathbf{T}) \odot \mathbf{x}

    where :math:`\hat{\mathbf{A}}` is the adjacency matrix with self-loops,
    :math:`\mathbf{w}` a per-channel weight (initialised to ones) and the
    gate :math:`\mathbf{T}` is computed from the layer input. The gate
    needs input and output of equal width.

    Args:
        channels (int): Size of node features.
        act (str or Callable, optional): The activation :math:`\sigma`
            before the gate; :obj:`None` for none. (default: :obj:`"relu"`)
        normalize (bool, optional): If set to :obj:`True`, adds self-loops
            to ``edge_index`` and normalises it symmetrically as
            :class:`~torch_geometric.nn.conv.GCNConv` does; set it to
            :obj:`False` to pass a normalised adjacency (RDGCN's is built
            once by :func:`~torch_geometric_ea.nn.rdgcn_dual_graph`).
            (default: :obj:`True`)
        bias (bool, optional): If set to :obj:`True`, adds a learnable bias
            before the activation. (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, C)`, edge indices
          :math:`(2, |\mathcal{E}|)` or a sparse adjacency matrix
          (targets as rows), edge weights :math:`(|\mathcal{E}|)`
          (optional)
        - **output:** node features :math:`(|\mathcal{V}|, C)`

    .. note::
        A sparse adjacency (``torch.sparse_csr_tensor``) takes the fused
        :meth:`message_and_aggregate` path, one sparse-dense product without
        :math:`|\mathcal{E}| \times C` messages; pass one for repeated
        calls on a fixed graph.
    """
    def __init__(self, channels: int, act: Union[str, Callable, None] = 'relu',
                 normalize: bool = True, bias: bool = False, **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        self.channels = channels
        self.normalize = normalize
        self.act = activation_resolver(act) if act is not None else None
        self.weight = Parameter(torch.empty(channels))
        self.gate = Linear(channels, channels, bias=True,
                           weight_initializer='glorot', bias_initializer='zeros')
        if bias:
            self.bias = Parameter(torch.empty(channels))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        r"""Resets the diagonal weight :math:`\mathbf{w}` to ones, the gate
        to a Glorot weight and zero bias, and the bias, if any, to zeros."""
        super().reset_parameters()
        torch.nn.init.ones_(self.weight)
        self.gate.reset_parameters()
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None) -> Tensor:
        r"""Runs the layer.

        Args:
            x (torch.Tensor): Node features :math:`(N, C)`.
            edge_index (torch.Tensor): Edges :math:`(2, E)` (messages flow
                from ``edge_index[0]`` to ``edge_index[1]``), or a sparse
                :math:`(N, N)` adjacency with targets as rows.
            edge_weight (torch.Tensor, optional): Edge weights :math:`(E)`.
                (default: :obj:`None`)
        """
        if self.normalize:
            edge_index, edge_weight = gcn_norm(edge_index, edge_weight,
                                               x.size(0), add_self_loops=True,
                                               dtype=x.dtype)
        h = self.propagate(edge_index, x=x * self.weight, edge_weight=edge_weight)
        if self.bias is not None:
            h = h + self.bias
        if self.act is not None:
            h = self.act(h)
        gate = torch.sigmoid(self.gate(x))
        return torch.addcmul(x, gate, h - x)

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        r"""Each edge sends the source's weighted features
        :math:`\mathbf{x}_j \odot \mathbf{w}`, scaled by the edge weight
        when one is given."""
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Any, x: Tensor) -> Tensor:
        r"""The fused path for a sparse adjacency: one sparse-dense product
        of ``adj_t`` (targets as rows) with the features, reduced by the
        layer's aggregation. Half-precision features are multiplied in
        float32 (the CPU has no half-precision sparse product) and the
        result is cast back; an adjacency of another dtype is cast to the
        features' dtype."""
        if not isinstance(adj_t, Tensor):
            return spmm(adj_t, x, reduce=self.aggr)
        if x.dtype in (torch.float16, torch.bfloat16):
            return spmm(adj_t.float(), x.float(), reduce=self.aggr).to(x.dtype)
        return spmm(as_operand_of(adj_t, x), x, reduce=self.aggr)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.channels})'
