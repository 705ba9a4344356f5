r"""Dual-AMN: the :class:`~torch_geometric_ea.nn.DualAMN` model and the
fixed graph structure it runs on (:func:`~torch_geometric_ea.nn.dual_amn_graph`)."""
from typing import NamedTuple, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch_geometric.data import Data

from ..conv import ProxyMatchingConv, RelationalAttentionConv
from ..functional import (
    fixed_sparse_product,
    normalize_rows,
    sparse_product,
)
from ..layout import RelationalLayout, relational_layout

__all__ = ['DualAMN', 'dual_amn_graph', 'SparseMean', 'row_mean_matrix']


def row_mean_matrix(row: Tensor, col: Tensor, num_rows: int, num_cols: int) -> Tensor:
    r"""Sparse :math:`(R \times C)` matrix averaging, for each row, the
    distinct columns listed in ``(row, col)``."""
    key = torch.unique(row * num_cols + col)
    row, col = key // num_cols, key % num_cols
    deg = torch.bincount(row, minlength=num_rows).clamp_min(1)
    value = 1.0 / deg[row].float()
    return torch.sparse_coo_tensor(torch.stack([row, col]), value,
                                   (num_rows, num_cols), check_invariants=False,
                                   device=row.device).coalesce()


class SparseMean(NamedTuple):
    r"""A fixed sparse averaging matrix :math:`\mathbf{A}` in CSR form with
    its transpose, so that :math:`\mathbf{A}\mathbf{X}` and its gradient
    :math:`\mathbf{A}^\top \mathbf{G}` are each one CSR product (a COO
    product transposes and sorts :math:`\mathbf{A}` in every backward)."""
    matrix: Tensor
    transpose: Tensor

    @classmethod
    def from_coo(cls, matrix: Tensor) -> 'SparseMean':
        r"""Builds it from a sparse COO matrix :math:`\mathbf{A}`, converting
        :math:`\mathbf{A}` and :math:`\mathbf{A}^\top` to CSR."""
        return cls(matrix.to_sparse_csr(), matrix.t().coalesce().to_sparse_csr())

    def to_dense(self) -> Tensor:
        r"""The matrix :math:`\mathbf{A}` as a dense tensor."""
        return self.matrix.to_dense()

    def __matmul__(self, x: Tensor) -> Tensor:
        return fixed_sparse_product(self.matrix, self.transpose, x)


def _relation_sets(edge_rel: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Groups the rows of a coalesced sparse :math:`(P \times R)` matrix by
    their column set: returns the id of each row's set :math:`(P)` and one
    representative row per set. Rows are grouped by their number of
    columns :math:`c` first, so each group is a dense :math:`(P_c \times
    c)` table (memory :math:`O(\text{nnz})`, and a 1-D sort for the
    common single-relation rows)."""
    row, col = edge_rel.indices()
    num_rows = edge_rel.size(0)
    count = torch.bincount(row, minlength=num_rows)
    start = torch.cat([count.new_zeros(1), count.cumsum(0)[:-1]])
    device = edge_rel.device
    set_id = torch.empty(num_rows, dtype=torch.long, device=device)
    num_sets = 0
    for size in torch.unique(count).tolist():
        rows = (count == size).nonzero().view(-1)
        cols = col[start[rows].unsqueeze(1) + torch.arange(size, device=device)]
        if size == 1:
            table, inverse = torch.unique(cols.view(-1), return_inverse=True)
        else:
            table, inverse = torch.unique(cols, dim=0, return_inverse=True)
        set_id[rows] = inverse + num_sets
        num_sets += table.size(0)
    first = torch.full((num_sets, ), num_rows, device=device)
    first.scatter_reduce_(0, set_id, torch.arange(num_rows, device=device), 'amin')
    return set_id, first


def dual_amn_graph(edge_index: Tensor, edge_type: Tensor, num_nodes: int,
                   num_relations: int) -> Data:
    r"""The fixed structure Dual-AMN runs on, computed once per graph.

    Every triple :math:`(h, r, t)` yields the edge :math:`h \to t` with
    relation :math:`r` and the inverse edge :math:`t \to h` with relation
    :math:`r + R`. Parallel edges between one ordered entity pair are
    merged into one edge whose relation vector is the mean of theirs, and
    an entity's relation input averages the relations of the edges it
    sends: both as in the official implementation. Merged edges with the
    same relation set share one row of a small table, so the layers see
    typed edges.

    Returns a :class:`~torch_geometric.data.Data` with

    - ``edge_index`` :math:`(2, P)`: the merged edges, sorted by target;
    - ``edge_set`` :math:`(P)`: the relation set of each merged edge;
    - ``set_rel`` :math:`(S, 2R)` sparse: the relation mean of each set;
    - ``layout``: the :class:`~torch_geometric_ea.nn.RelationalLayout` of
      the merged edges typed by their set;
    - ``ent_avg`` :math:`(N, N)` :class:`SparseMean`: uniform mean over
      each entity and its distinct neighbours;
    - ``rel_avg`` :math:`(N, 2R)` :class:`SparseMean`: uniform mean over
      the distinct relations of each entity's outgoing edges (head of
      :math:`r`: row :math:`r`; tail of :math:`r`: row :math:`r + R`).
    """
    n, num_rel = int(num_nodes), 2 * int(num_relations)
    head, tail = edge_index
    src = torch.cat([head, tail])
    dst = torch.cat([tail, head])
    rel = torch.cat([edge_type, edge_type + num_relations])

    pair_key, pair_id = torch.unique(dst * n + src, return_inverse=True)
    merged = torch.stack([pair_key % n, pair_key // n])
    edge_rel = row_mean_matrix(pair_id, rel, pair_key.numel(), num_rel)
    edge_set, first = _relation_sets(edge_rel)
    set_rel = torch.index_select(edge_rel, 0, first).coalesce()

    loops = torch.arange(n, device=edge_index.device)
    ent_avg = row_mean_matrix(torch.cat([merged[1], loops]),
                              torch.cat([merged[0], loops]), n, n)
    rel_avg = row_mean_matrix(src, rel, n, num_rel)
    return Data(edge_index=merged, edge_set=edge_set, set_rel=set_rel,
                layout=relational_layout(merged, edge_set, n, first.numel()),
                ent_avg=SparseMean.from_coo(ent_avg),
                rel_avg=SparseMean.from_coo(rel_avg), num_nodes=n)


class _Dropout(torch.autograd.Function):
    r"""Inverted dropout whose mask comes from NumPy's PCG64 generator
    (seeded from torch's), a few times faster on CPU than
    :func:`torch.nn.functional.dropout`'s Bernoulli sampling. The drop
    probability is quantised to :math:`1/65536`. First-order only
    (``once_differentiable``)."""
    @staticmethod
    def forward(ctx, x: Tensor, p: float, inplace: bool) -> Tensor:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (), device='cpu')))
        noise = torch.from_numpy(rng.integers(0, 2**16, x.shape, dtype=np.uint16)
                                 .view(np.int16))
        keep = noise >= round(p * 2**16) - 2**15
        ctx.scale = 1.0 / (1.0 - p)
        ctx.save_for_backward(keep)
        if inplace:
            ctx.mark_dirty(x)
            return x.mul_(keep).mul_(ctx.scale)
        return x.mul(keep).mul_(ctx.scale)  # several times faster than where

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        keep, = ctx.saved_tensors
        return grad.mul(keep).mul_(ctx.scale), None, None


def _dropout(x: Tensor, p: float, training: bool, inplace: bool = False) -> Tensor:
    if not training or p == 0.0:
        return x
    if x.device.type != 'cpu':
        return F.dropout(x, p, training, inplace)
    return _numpy_dropout(x, p, inplace)


@torch.compiler.disable
def _numpy_dropout(x: Tensor, p: float, inplace: bool) -> Tensor:
    return _Dropout.apply(x, p, inplace)


class _Encoder(torch.nn.Module):
    r"""One Dual-AMN channel: ``tanh`` input, ``num_layers`` relational
    attention layers with ``tanh``, outputs concatenated, then proxy
    matching."""
    def __init__(self, channels: int, num_layers: int, num_proxies: int):
        super().__init__()
        self.convs = torch.nn.ModuleList(
            RelationalAttentionConv(channels, normalize=False)
            for _ in range(num_layers))
        self.proxy = ProxyMatchingConv(channels * (num_layers + 1), num_proxies)

    def reset_parameters(self):
        for conv in self.convs:
            conv.reset_parameters()
        self.proxy.reset_parameters()

    def forward(self, x: Tensor, layout: RelationalLayout, rel: Tensor,
                index: Optional[Tensor] = None) -> Tensor:
        xs = [torch.tanh(x)]
        for conv in self.convs:
            xs.append(torch.tanh(conv(xs[-1], layout, rel)))
        if index is not None:  # the proxy layer is row-wise: only these rows
            xs = [x[index] for x in xs]
        return self.proxy(torch.cat(xs, dim=-1))


class DualAMN(torch.nn.Module):
    r"""The Dual Attention Matching Network from the `"Boosting the Speed of
    Entity Alignment 10x: Dual Attention Matching Network with Normalized
    Hard Sample Mining" <https://arxiv.org/abs/2103.15452>`_ paper.

    Two encoders share one relation table :math:`\mathbf{R}` (:math:`2R`
    rows: relations and their inverses). One reads a trainable entity table
    averaged over each entity and its neighbours, the other the relation
    table averaged over each entity's relations. Each runs
    :class:`RelationalAttentionConv` layers and a
    :class:`ProxyMatchingConv`; the output is the concatenation

    .. math::
        \mathbf{h}_i = \left[\mathbf{h}^{e}_i \,\|\, \mathbf{h}^{r}_i\right]
        \in \mathbb{R}^{2 (L + 1) C}

    Args:
        num_nodes (int): Number of entities (both KGs).
        num_relations (int): Number of relations :math:`R` (both KGs,
            without inverses).
        channels (int, optional): Embedding size :math:`C`.
            (default: :obj:`128`)
        num_layers (int, optional): Attention layers :math:`L`.
            (default: :obj:`2`)
        num_proxies (int, optional): Proxies per encoder. (default: :obj:`64`)
        dropout (float, optional): Dropout on the output in training.
            (default: :obj:`0.3`)

    Shapes:
        - **input:** the graph from :func:`dual_amn_graph`, optional entity
          ids :math:`(K)`
        - **output:** :math:`(N, 2 (L + 1) C)`, or :math:`(K, 2 (L + 1) C)`
    """
    def __init__(self, num_nodes: int, num_relations: int, channels: int = 128,
                 num_layers: int = 2, num_proxies: int = 64, dropout: float = 0.3):
        super().__init__()
        self.num_nodes, self.num_relations = num_nodes, num_relations
        self.channels, self.num_layers = channels, num_layers
        self.dropout = dropout
        self.ent_emb = torch.nn.Embedding(num_nodes, channels)
        self.rel_emb = torch.nn.Embedding(2 * num_relations, channels)
        self.ent_encoder = _Encoder(channels, num_layers, num_proxies)
        self.rel_encoder = _Encoder(channels, num_layers, num_proxies)
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        r"""The output size :math:`2 (L + 1) C`."""
        return 2 * (self.num_layers + 1) * self.channels

    def reset_parameters(self):
        r"""Re-initialises the entity and relation tables uniformly in
        :math:`[-0.05, 0.05]` (Keras' default) and resets both encoders."""
        # Keras' Embedding default, as in the official implementation.
        torch.nn.init.uniform_(self.ent_emb.weight, -0.05, 0.05)
        torch.nn.init.uniform_(self.rel_emb.weight, -0.05, 0.05)
        self.ent_encoder.reset_parameters()
        self.rel_encoder.reset_parameters()

    def forward(self, graph: Data, index: Optional[Tensor] = None) -> Tensor:
        r"""Embeds every entity of ``graph`` (see :func:`dual_amn_graph`),
        or only the entities ``index`` :math:`(K)`: the attention layers
        still run over the whole graph, but the proxy layers, the larger
        part of a pass on big graphs, see only those :math:`K` rows."""
        x_ent = graph.ent_avg @ self.ent_emb.weight
        x_rel = graph.rel_avg @ self.rel_emb.weight
        rel = normalize_rows(sparse_product(graph.set_rel, self.rel_emb.weight))
        out = torch.cat([
            self.ent_encoder(x_ent, graph.layout, rel, index),
            self.rel_encoder(x_rel, graph.layout, rel, index),
        ], dim=-1)
        return _dropout(out, self.dropout, self.training, inplace=True)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.num_nodes}, '
                f'num_relations={self.num_relations}, channels={self.channels})')
