r"""RDGCN: the :class:`~torch_geometric_ea.nn.RDGCN` model and the dual
relation graph it runs on (:func:`~torch_geometric_ea.nn.rdgcn_dual_graph`)."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import remove_self_loops, to_undirected

from ..conv import DualRelationAttentionConv, HighwayGCNConv, PrimalRelationAttentionConv
from ..functional import normalize_rows, sparse_product
from ..layout import relational_layout
from .dual_amn import row_mean_matrix

__all__ = ['RDGCN', 'rdgcn_dual_graph']


def _jaccard(incidence: Tensor) -> Tensor:
    r"""For a coalesced binary sparse :math:`(R \times N)` matrix, the
    sparse :math:`(R \times R)` matrix of Jaccard overlaps
    :math:`|S_i \cap S_j| / |S_i \cup S_j|` of its row sets, stored where
    they are non-zero."""
    size = torch.bincount(incidence.indices()[0], minlength=incidence.size(0))
    inter = torch.sparse.mm(incidence, incidence.t()).coalesce()
    (i, j), count = inter.indices(), inter.values()
    return torch.sparse_coo_tensor(inter.indices(),
                                   count / (size[i] + size[j] - count),
                                   inter.shape, check_invariants=False,
                                   device=count.device)


def rdgcn_dual_graph(edge_index: Tensor, edge_type: Tensor, num_nodes: int,
                     num_relations: int) -> Data:
    r"""The fixed structure RDGCN runs on, computed once per graph: the
    primal entity graph, its GCN adjacency and the dual relation graph.

    The dual graph has a node per relation and an edge between relations
    :math:`r_i, r_j` whose head sets :math:`H` or tail sets :math:`T`
    overlap, weighted as in the paper and the official implementation by

    .. math::
        w_{ij} = \frac{|H_i \cap H_j|}{|H_i \cup H_j|} +
        \frac{|T_i \cap T_j|}{|T_i \cup T_j|}

    (so :math:`w_{ii} = 2`: every relation with triples has a self-loop).
    Products of sparse incidence matrices give the intersections, so no
    :math:`R \times R` matrix is formed.

    Returns a :class:`~torch_geometric.data.Data` with

    - ``layout``: the :class:`~torch_geometric_ea.nn.RelationalLayout` of
      the primal edges :math:`t \to h` typed by relation (each entity
      attends to the tails of its triples, as in the official code);
    - ``adj`` :math:`(N, N)` sparse CSR: :math:`\hat{\mathbf{D}}^{-1/2}
      \hat{\mathbf{A}} \hat{\mathbf{D}}^{-1/2}` of the undirected entity
      graph without parallel edges and with self-loops (the official
      ``get_sparse_tensor``);
    - ``dual_edge_index`` :math:`(2, E_d)`, ``dual_weight``
      :math:`(E_d)` and their untyped ``dual_layout``;
    - ``rel_head``, ``rel_tail`` :math:`(R, N)` sparse: the mean over the
      distinct heads (tails) of each relation, from which the dual node
      features :math:`[\mathbf{H} \mathbf{x} \,\|\, \mathbf{T}
      \mathbf{x}]` are computed.

    Args:
        edge_index (torch.Tensor): Triples' heads and tails :math:`(2, E)`.
        edge_type (torch.Tensor): Triples' relations :math:`(E)`.
        num_nodes (int): Number of entities :math:`N`.
        num_relations (int): Number of relations :math:`R`.
    """
    n, num_rel = int(num_nodes), int(num_relations)
    head, tail = edge_index
    layout = relational_layout(torch.stack([tail, head]), edge_type, n, num_rel)

    dual = None
    for ent in (head, tail):
        key = torch.unique(edge_type * n + ent)
        incidence = torch.sparse_coo_tensor(
            torch.stack([key // n, key % n]),
            torch.ones(key.numel(), device=key.device),
            (num_rel, n), check_invariants=False, device=key.device).coalesce()
        jac = _jaccard(incidence)
        dual = jac if dual is None else dual + jac
    dual = dual.coalesce()
    dual_edge_index, dual_weight = dual.indices(), dual.values()

    simple = to_undirected(remove_self_loops(edge_index)[0], num_nodes=n)
    norm_index, norm_weight = gcn_norm(simple, None, n, add_self_loops=True)
    adj = torch.sparse_coo_tensor(norm_index.flip(0), norm_weight, (n, n),
                                  check_invariants=False, device=norm_weight.device)
    return Data(
        edge_index=edge_index, edge_type=edge_type, layout=layout,
        adj=adj.coalesce().to_sparse_csr(),
        dual_edge_index=dual_edge_index, dual_weight=dual_weight,
        dual_layout=relational_layout(dual_edge_index, None, num_rel),
        rel_head=row_mean_matrix(edge_type, head, num_rel, n),
        rel_tail=row_mean_matrix(edge_type, tail, num_rel, n),
        num_nodes=n, num_relations=num_rel)


class RDGCN(torch.nn.Module):
    r"""The Relation-aware Dual-Graph Convolutional Network from the
    `"Relation-Aware Entity Alignment for Heterogeneous Knowledge Graphs"
    <https://arxiv.org/abs/1908.08210>`_ paper, as its official
    implementation runs it.

    The input :math:`\mathbf{X}^{(0)}` is a trainable entity table
    (initialised from entity name features in the paper), :math:`L_2`
    normalised per row. Two interactions between the dual relation graph
    and the primal entity graph follow; with :math:`\mathbf{x}^d_r(\mathbf{X})
    = [\mathrm{mean}_{h \in H_r} \mathbf{x}_h \,\|\, \mathrm{mean}_{t \in
    T_r} \mathbf{x}_t]` the relation features,

    .. math::
        \mathbf{D}^{(1)} &= \mathrm{ReLU}(\mathrm{DualAtt}_1(
        \mathbf{x}^d(\mathbf{X}^{(0)}))), &
        \mathbf{X}^{(1)} &= \mathbf{X}^{(0)} + \alpha\,
        \mathrm{ReLU}(\mathrm{PrimalAtt}_1(\mathbf{X}^{(0)},
        \mathbf{D}^{(1)})), \\
        \mathbf{D}^{(2)} &= \mathrm{ReLU}(\mathrm{DualAtt}_2(
        \mathbf{x}^d(\mathbf{X}^{(1)}), \mathbf{D}^{(1)})), &
        \mathbf{X}^{(2)} &= \mathbf{X}^{(0)} + \beta\,
        \mathrm{ReLU}(\mathrm{PrimalAtt}_2(\mathbf{X}^{(1)},
        \mathbf{D}^{(2)}))

    (:class:`DualRelationAttentionConv`, whose second layer attends with
    the new relation features and aggregates :math:`\mathbf{D}^{(1)}`, and
    :class:`PrimalRelationAttentionConv`), then ``num_layers``
    :class:`HighwayGCNConv` layers with ReLU.

    Args:
        num_nodes (int): Number of entities (both KGs).
        num_relations (int): Number of relations (both KGs).
        channels (int, optional): Embedding size :math:`C`, kept through
            the network. (default: :obj:`300`)
        x (torch.Tensor, optional): Initial entity features :math:`(N, C)`,
            e.g. :func:`~torch_geometric_ea.data.name_features`; copied into
            the trainable table (the official code trains its word-vector
            input). :obj:`None` draws random unit rows (structure only).
            (default: :obj:`None`)
        hidden_channels (int, optional): Projection size of the dual
            attention. (default: :obj:`2 * channels`, 600 in the paper)
        alpha (float, optional): Weight of the first interaction.
            (default: :obj:`0.1`)
        beta (float, optional): Weight of the second interaction.
            (default: :obj:`0.3`)
        num_layers (int, optional): Highway GCN layers. (default: :obj:`2`)
        negative_slope (float, optional): LeakyReLU slope of the attention
            logits. (default: :obj:`0.2`)

    Shapes:
        - **input:** the graph from :func:`rdgcn_dual_graph`
        - **output:** :math:`(N, C)`
    """
    def __init__(self, num_nodes: int, num_relations: int, channels: int = 300,
                 x: Optional[Tensor] = None, hidden_channels: Optional[int] = None,
                 alpha: float = 0.1, beta: float = 0.3, num_layers: int = 2,
                 negative_slope: float = 0.2):
        super().__init__()
        if x is not None and tuple(x.shape) != (num_nodes, channels):
            raise ValueError(f"expected features of shape ({num_nodes}, "
                             f"{channels}), got {tuple(x.shape)}")
        self.num_nodes, self.num_relations = num_nodes, num_relations
        self.channels = channels
        self.hidden_channels = hidden_channels or 2 * channels
        self.alpha, self.beta = alpha, beta
        self.num_layers = num_layers
        self.emb = torch.nn.Embedding(num_nodes, channels)
        self.register_buffer('x_init', None if x is None else x.detach().clone(),
                             persistent=False)
        self.dual_convs = torch.nn.ModuleList([
            DualRelationAttentionConv(2 * channels, self.hidden_channels,
                                      negative_slope, bias=bias)
            for bias in (False, True)])
        self.primal_convs = torch.nn.ModuleList([
            PrimalRelationAttentionConv(2 * channels, negative_slope)
            for _ in range(2)])
        self.convs = torch.nn.ModuleList(
            HighwayGCNConv(channels, normalize=False) for _ in range(num_layers))
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        r"""The output size :math:`C` (equal to the embedding size)."""
        return self.channels

    @torch.no_grad()
    def reset_parameters(self):
        r"""Re-initialises every weight; the entity table gets the features
        given at construction again, or random unit rows."""
        if self.x_init is not None:
            self.emb.weight.copy_(self.x_init)
        else:
            torch.nn.init.normal_(self.emb.weight, std=self.channels ** -0.5)
        for conv in [*self.dual_convs, *self.primal_convs, *self.convs]:
            conv.reset_parameters()

    @staticmethod
    def _relation_features(x: Tensor, graph: Data) -> Tensor:
        return torch.cat([sparse_product(graph.rel_head, x),
                          sparse_product(graph.rel_tail, x)], dim=-1)

    def forward(self, graph: Data) -> Tensor:
        r"""Embeds every entity of ``graph`` (see :func:`rdgcn_dual_graph`)."""
        x0 = normalize_rows(self.emb.weight)
        x, dual = x0, None
        for t, (dual_conv, primal_conv) in enumerate(zip(self.dual_convs,
                                                         self.primal_convs)):
            dual = F.relu(dual_conv(self._relation_features(x, graph),
                                    graph.dual_layout, graph.dual_weight,
                                    value=dual))
            weight = self.alpha if t == 0 else self.beta
            x = x0 + weight * F.relu(primal_conv(x, graph.layout, dual))
        for conv in self.convs:
            x = conv(x, graph.adj)
        return x

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_nodes}, '
                f'num_relations={self.num_relations}, channels={self.channels})')
