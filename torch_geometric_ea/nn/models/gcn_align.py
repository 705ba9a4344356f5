r"""GCN-Align: graph convolutions over a relation-functionality weighted
adjacency, as in the official implementation."""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.data import Data

from ..functional import fixed_sparse_product, normalize_rows, sparse_product

__all__ = ['GCNAlign', 'gcn_align_adjacency', 'relation_functionality']


def relation_functionality(edge_index: Tensor, edge_type: Tensor,
                           num_relations: int) -> Tuple[Tensor, Tensor]:
    r"""The functionality and inverse functionality of every relation
    (`Suchanek et al., 2011 <https://arxiv.org/abs/1111.7164>`_):

    .. math::
        \mathrm{fun}(r) = \frac{|\{h : (h, r, t)\}|}{|\{(h, r, t)\}|},
        \qquad
        \mathrm{ifun}(r) = \frac{|\{t : (h, r, t)\}|}{|\{(h, r, t)\}|}.

    Triples are counted as given (repeated triples count twice, as in the
    official code); a relation without triples gets :obj:`0`.

    Shapes:
        - **input:** :math:`(2, E)`, :math:`(E)`
        - **output:** :math:`(R)`, :math:`(R)`
    """
    num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 1
    count = torch.bincount(edge_type, minlength=num_relations).double()

    def distinct(node: Tensor) -> Tensor:
        key = torch.unique(edge_type * num_nodes + node)
        return torch.bincount(key // num_nodes, minlength=num_relations).double()

    count = count.clamp_min(1)
    return distinct(edge_index[0]) / count, distinct(edge_index[1]) / count


def gcn_align_adjacency(edge_index: Tensor, edge_type: Tensor, num_nodes: int,
                        num_relations: int, min_weight: float = 0.3) -> Data:
    r"""The normalised propagation matrix of GCN-Align, computed once per
    graph.

    Every triple :math:`(e_i, r, e_j)` without :math:`i = j` weighs the
    entry :math:`a_{ij}` (entity :math:`i` reads :math:`j`) by the inverse
    functionality of :math:`r` and the entry :math:`a_{ji}` by its
    functionality, floored at :obj:`min_weight` and summed over parallel
    triples (`Wang et al., Eq. 3 <https://aclanthology.org/D18-1032>`_):

    .. math::
        a_{ij} = \sum_{(e_i, r, e_j)} \max(\mathrm{ifun}(r), w_0)
        + \sum_{(e_j, r, e_i)} \max(\mathrm{fun}(r), w_0).

    With self-loops added, :math:`\tilde{\mathbf{A}} = \mathbf{A} +
    \mathbf{I}`, the matrix is normalised symmetrically,

    .. math::
        \hat{\mathbf{A}} = \mathbf{D}^{-1/2} \tilde{\mathbf{A}}
        \mathbf{D}^{-1/2}, \qquad d_j = \sum_i \tilde{a}_{ij},

    where, as in the official code (which sums the rows of the transposed
    matrix), :math:`d_j` is the weight entity :math:`j` sends, its column
    sum, not its row sum; the two differ because
    :math:`\mathbf{A}` is not symmetric.

    Args:
        edge_index (torch.Tensor): The :math:`(h, t)` entity ids of every
            triple.
        edge_type (torch.Tensor): The relation of every triple.
        num_nodes (int): Number of entities :math:`N`.
        num_relations (int): Number of relations :math:`R`.
        min_weight (float, optional): The floor :math:`w_0`.
            (default: :obj:`0.3`)

    Returns a :class:`~torch_geometric.data.Data` with

    - ``edge_index`` :math:`(2, P)` in PyG's ``[source, target]`` order
      (entry :math:`\hat{a}_{ij}` is the edge :math:`j \to i`), self-loops
      included, sorted by target then source;
    - ``edge_weight`` :math:`(P)`: the entries of :math:`\hat{\mathbf{A}}`;
    - ``adj`` and ``adj_t``: :math:`\hat{\mathbf{A}}` and its transpose as
      sparse CSR :math:`(N, N)` matrices, for the layers' products.
    """
    n = int(num_nodes)
    fun, ifun = relation_functionality(edge_index, edge_type, num_relations)
    head, tail = edge_index
    keep = head != tail
    head, tail, rel = head[keep], tail[keep], edge_type[keep]
    loops = torch.arange(n, device=edge_index.device)
    dst = torch.cat([head, tail, loops])  # row i of A
    src = torch.cat([tail, head, loops])  # column j of A
    weight = torch.cat([ifun[rel].clamp_min(min_weight),
                        fun[rel].clamp_min(min_weight),
                        fun.new_ones(n)])

    key, inverse = torch.unique(dst * n + src, return_inverse=True)
    weight = weight.new_zeros(key.numel()).index_add_(0, inverse, weight)
    dst, src = key // n, key % n
    deg = weight.new_zeros(n).index_add_(0, src, weight)
    weight = (weight * deg[dst].rsqrt() * deg[src].rsqrt()).float()

    def csr(row: Tensor, col: Tensor) -> Tensor:
        return torch.sparse_coo_tensor(torch.stack([row, col]), weight, (n, n),
                                       check_invariants=False,
                                       device=row.device).coalesce() \
            .to_sparse_csr()

    return Data(edge_index=torch.stack([src, dst]), edge_weight=weight,
                adj=csr(dst, src), adj_t=csr(src, dst), num_nodes=n)


def propagate(graph: Data, x: Tensor) -> Tensor:
    r""":math:`\hat{\mathbf{A}} \mathbf{X}` for the graph of
    :func:`gcn_align_adjacency`."""
    return fixed_sparse_product(graph.adj, graph.adj_t, x)


def _official_init_(weight: Tensor) -> Tensor:
    r"""The official initialisation: truncated normal (at two standard
    deviations) with standard deviation :math:`1 / \sqrt{\text{rows}}`."""
    std = 1.0 / math.sqrt(weight.size(0))
    return torch.nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


class GCNAlign(torch.nn.Module):
    r"""The GCN-Align model from the `"Cross-lingual Knowledge Graph Alignment
    via Graph Convolutional Networks" <https://aclanthology.org/D18-1032>`_
    paper, as its official implementation runs it.

    The structure channel is featureless: a trainable entity table
    :math:`\mathbf{E}`, L2-normalised row-wise inside every forward pass,
    goes through :math:`L` propagations by :math:`\hat{\mathbf{A}}` (see
    :func:`gcn_align_adjacency`) with ReLU between them:

    .. math::
        \mathbf{H}^{(0)} = \mathrm{norm}(\mathbf{E}), \quad
        \mathbf{H}^{(l)} = \sigma_l\big(\hat{\mathbf{A}} \mathbf{H}^{(l-1)}
        \big), \quad \sigma_l = \mathrm{ReLU} \text{ for } l < L,
        \ \sigma_L = \mathrm{id}.

    The official layers have no weight matrix and no bias: in the
    featureless first layer the weight *is* the entity table, and the later
    layers keep the dimension without a transform. With
    :obj:`in_channels`, an attribute channel does the same on
    :math:`\mathbf{X} \, \mathrm{norm}(\mathbf{W})`, with node features
    :math:`\mathbf{X}` (``graph.x``, dense or sparse) and a trainable
    :math:`\mathbf{W} \in \mathbb{R}^{F \times C_a}`; the output is then
    :math:`[\beta \mathbf{H}_s \,\|\, (1 - \beta) \mathbf{H}_a]`. Both
    tables start truncated normal with standard deviation
    :math:`1 / \sqrt{\text{rows}}`, as in the official code.

    Args:
        num_nodes (int): Number of entities (both KGs).
        channels (int, optional): Structure embedding size :math:`C`.
            (default: :obj:`200`)
        num_layers (int, optional): Propagations :math:`L`.
            (default: :obj:`2`)
        in_channels (int, optional): Attribute feature size :math:`F`;
            :obj:`None` for structure only. (default: :obj:`None`)
        attr_channels (int, optional): Attribute embedding size
            :math:`C_a`. (default: :obj:`100`)
        beta (float, optional): Weight :math:`\beta` of the structure
            channel in the output. (default: :obj:`0.9`)

    Shapes:
        - **input:** the graph from :func:`gcn_align_adjacency`, with
          ``x`` :math:`(N, F)` when :obj:`in_channels` is set
        - **output:** :math:`(N, C)`, or :math:`(N, C + C_a)` with
          attributes

    .. note::
        :class:`~torch_geometric.nn.conv.GCNConv` always applies a weight
        matrix and, by default, normalises by the degree of the target;
        the official layers have neither, so each propagation is one
        sparse CSR product with :math:`\hat{\mathbf{A}}` (and one with
        its prebuilt transpose backward), a few times faster on CPU than
        message passing over the edge list.
    """
    def __init__(self, num_nodes: int, channels: int = 200, num_layers: int = 2,
                 in_channels: Optional[int] = None, attr_channels: int = 100,
                 beta: float = 0.9):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"'num_layers' must be positive (got {num_layers})")
        self.num_nodes, self.channels, self.num_layers = num_nodes, channels, num_layers
        self.in_channels, self.attr_channels, self.beta = (in_channels,
                                                           attr_channels, beta)
        self.ent_emb = Parameter(torch.empty(num_nodes, channels))
        if in_channels is not None:
            self.attr_weight = Parameter(torch.empty(in_channels, attr_channels))
        else:
            self.register_parameter('attr_weight', None)
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        r"""The output size: :math:`C`, or :math:`C + C_a` with attributes."""
        return self.channels + (self.attr_channels if self.in_channels else 0)

    def reset_parameters(self):
        r"""Re-initialises the entity table (and the attribute weight, if
        any) truncated normal with standard deviation
        :math:`1 / \sqrt{\text{rows}}`, as in the official code."""
        _official_init_(self.ent_emb)
        if self.attr_weight is not None:
            _official_init_(self.attr_weight)

    def _layers(self, graph: Data, h: Tensor) -> Tensor:
        for layer in range(self.num_layers):
            h = propagate(graph, h)
            if layer + 1 < self.num_layers:
                h = h.relu()
        return h

    def channel_outputs(self, graph: Data) -> Tuple[Tensor, Optional[Tensor]]:
        r"""The structure and the attribute channel's outputs
        :math:`(\mathbf{H}_s, \mathbf{H}_a)`, unweighted (:math:`\mathbf{H}_a`
        is :obj:`None` without attributes); each is trained with its own
        loss."""
        h_s = self._layers(graph, normalize_rows(self.ent_emb))
        if self.attr_weight is None:
            return h_s, None
        x, weight = graph.x, normalize_rows(self.attr_weight)
        x = (sparse_product(x, weight) if x.is_sparse
             else x.to(weight.dtype) @ weight)
        return h_s, self._layers(graph, x)

    def forward(self, graph: Data) -> Tensor:
        r"""Embeds every entity of ``graph`` (see :func:`gcn_align_adjacency`)."""
        h_s, h_a = self.channel_outputs(graph)
        if h_a is None:
            return h_s
        return torch.cat([self.beta * h_s, (1 - self.beta) * h_a], dim=-1)

    def __repr__(self) -> str:
        attr = (f', in_channels={self.in_channels}' if self.in_channels
                else '')
        return (f'{self.__class__.__name__}({self.num_nodes}, '
                f'channels={self.channels}, num_layers={self.num_layers}{attr})')
