r"""Compressed-row layouts of a typed graph, so that per-edge sums become
sparse-dense matrix products instead of gathers and scatters of
:math:`|\mathcal{E}| \times C` rows."""
import warnings
from typing import NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.typing import WITH_TORCH_SPARSE, OptTensor, SparseTensor

# The layers use CSR tensors only through products that are stable.
warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta')

__all__ = ['RelationalLayout', 'relational_layout', 'SparsePattern', 'edges_of_adjacency']

AXES = ('dst', 'src', 'type')

#: Whether the CSR tensors of the layouts are checked against PyTorch's
#: invariants when they are made (the tests turn it on; the layouts are
#: valid by construction, and the check costs a pass over the indices).
CHECK_INVARIANTS = False


class SparsePattern(NamedTuple):
    r"""The distinct (row, column) pairs of a list of edges as a valid CSR
    pattern (rows compressed, columns sorted and distinct within a row),
    with the entry ``slot[e]`` that edge :math:`e` falls on. Parallel
    edges share an entry: a product sums their values, a sampled product
    gives each the entry's value."""
    crow: Tensor
    col: Tensor
    slot: Tensor
    shape: Tuple[int, int]

    @classmethod
    def build(cls, rows: Tensor, cols: Tensor, shape: Tuple[int, int]
              ) -> 'SparsePattern':
        r"""The pattern of the pairs ``(rows[e], cols[e])`` in a matrix of
        ``shape``."""
        key, slot = torch.unique(rows * shape[1] + cols, return_inverse=True)
        count = torch.bincount(key // shape[1], minlength=shape[0])
        crow = torch.cat([count.new_zeros(1), count.cumsum(0)])
        return cls(crow, key % shape[1], slot, (int(shape[0]), int(shape[1])))

    def gather(self, values: Tensor) -> Tensor:
        r"""The entries: each the sum of the per-edge ``values`` on it."""
        nnz = self.col.numel()
        if nnz == self.slot.numel():  # no two edges share an entry
            return values.new_empty(nnz).index_copy_(0, self.slot, values)
        return values.new_zeros(nnz).index_add_(0, self.slot, values)

    def _csr(self, entries: Tensor) -> Tensor:
        return torch.sparse_csr_tensor(self.crow, self.col, entries, self.shape,
                                       check_invariants=CHECK_INVARIANTS,
                                       device=entries.device)

    def matrix(self, values: Tensor) -> Tensor:
        r"""The sparse CSR matrix whose entries sum the per-edge ``values``."""
        return self._csr(self.gather(values))

    def sampled_dots(self, a: Tensor, b: Tensor) -> Tensor:
        r"""Per-edge dot products :math:`\mathbf{a}_{row(e)}^\top
        \mathbf{b}_{col(e)}`, each distinct pair computed once (a sampled
        product: no per-edge feature rows)."""
        mask = self._csr(a.new_zeros(self.col.numel()))
        dots = torch.sparse.sampled_addmm(mask, a, b.t(), beta=0.0).values()
        return dots[self.slot]


class RelationalLayout(NamedTuple):
    r"""The edges :math:`j \to i` of a graph with one type per edge, in a
    canonical order (sorted by target, then source: ``src_d``, ``dst_d``,
    ``type_d``; ``order`` maps canonical positions to the input edges), and
    the six CSR patterns between targets, sources and types
    (``dst_src`` = rows are targets, columns sources, and so on) that
    turn per-edge sums into sparse-dense products."""
    num_nodes: int
    num_types: int
    order: Tensor
    src_d: Tensor
    dst_d: Tensor
    type_d: Tensor
    dst_src: SparsePattern
    dst_type: SparsePattern
    src_dst: SparsePattern
    src_type: SparsePattern
    type_src: SparsePattern
    type_dst: SparsePattern

    def to_input_order(self, values: Tensor) -> Tensor:
        r"""Per-edge ``values`` in canonical order, rearranged into the
        order of the edges the layout was built from."""
        return values.new_empty(values.shape).index_copy_(0, self.order, values)

    def edge_index(self) -> Tensor:
        r"""The edges :math:`(2, E)` in canonical order (source, target)."""
        return torch.stack([self.src_d, self.dst_d])

    def pattern(self, rows: str, cols: str) -> SparsePattern:
        r"""The CSR pattern with ``rows`` and ``cols``, each ``'dst'``,
        ``'src'`` or ``'type'``."""
        return getattr(self, f'{rows}_{cols}')

    def csr(self, rows: str, cols: str, values: Tensor) -> Tensor:
        r"""The sparse CSR matrix with (``rows``, ``cols``) whose entries sum
        the per-edge ``values`` (canonical order) falling on them."""
        return self.pattern(rows, cols).matrix(values)

    def sampled_dots(self, rows: str, cols: str, a: Tensor, b: Tensor) -> Tensor:
        r"""Per-edge :math:`\mathbf{a}_{rows(e)}^\top \mathbf{b}_{cols(e)}`
        in canonical order."""
        return self.pattern(rows, cols).sampled_dots(a, b)


def relational_layout(edge_index: Tensor, edge_type: Optional[Tensor],
                      num_nodes: int, num_types: Optional[int] = None
                      ) -> RelationalLayout:
    r"""Builds the :class:`RelationalLayout` of edges :math:`j \to i`
    (``edge_index[0]`` to ``edge_index[1]``). Without ``edge_type`` every
    edge is its own type. Any edges are valid: parallel edges, self-loops,
    isolated nodes, none at all."""
    src, dst = edge_index[0], edge_index[1]
    num_edges = src.numel()
    if edge_type is None:
        edge_type = torch.arange(num_edges, device=src.device)
        num_types = num_edges
    elif num_types is None:
        num_types = int(edge_type.max()) + 1 if num_edges else 0
    if num_edges and (int(src.min()) < 0 or int(dst.min()) < 0
                      or max(int(src.max()), int(dst.max())) >= num_nodes):
        raise ValueError(f"edge_index holds node ids outside [0, {num_nodes})")
    if num_edges and (int(edge_type.min()) < 0 or int(edge_type.max()) >= num_types):
        raise ValueError(f"edge_type holds ids outside [0, {num_types})")
    order = torch.sort(dst * num_nodes + src, stable=True)[1]
    ids = dict(src=src[order], dst=dst[order], type=edge_type[order])
    size = dict(src=num_nodes, dst=num_nodes, type=num_types)
    patterns = {f'{r}_{c}': SparsePattern.build(ids[r], ids[c], (size[r], size[c]))
                for r in AXES for c in AXES if r != c}
    return RelationalLayout(num_nodes, num_types, order, ids['src'], ids['dst'],
                            ids['type'], **patterns)


def attention_weights(edge_index: Union[Tensor, RelationalLayout],
                      layout: RelationalLayout, alpha: Tensor
                      ) -> Tuple[Tensor, Tensor]:
    r"""``(edge_index, alpha)`` as :class:`~torch_geometric.nn.conv.GATConv`
    returns them: the caller's edges with per-edge ``alpha`` (given in the
    layout's canonical order) in their order, or for a layout its
    canonical edges."""
    if isinstance(edge_index, RelationalLayout):
        return layout.edge_index(), alpha
    return edge_index, layout.to_input_order(alpha)


@torch.compiler.disable
def _build_layout(edge_index: Tensor, edge_type: Optional[Tensor], num_nodes: int,
                  num_types: Optional[int]) -> RelationalLayout:
    return relational_layout(edge_index, edge_type, num_nodes, num_types)


def as_layout(edge_index: Union[Tensor, RelationalLayout], edge_type: Optional[Tensor],
              num_nodes: int, rel: Optional[Tensor] = None) -> RelationalLayout:
    r"""The layout a layer runs on: ``edge_index`` itself when it is a
    :class:`RelationalLayout`, else the layout of the edges typed by
    ``edge_type`` (or one type per edge). Checks that the relation table
    ``rel``, if given, has one row per type."""
    if isinstance(edge_index, RelationalLayout):
        layout = edge_index
    else:
        num_types = None if rel is None else rel.size(0)
        if edge_type is None and rel is not None and num_types != edge_index.size(1):
            raise ValueError(f"expected one relation row per edge "
                             f"({edge_index.size(1)}), got {num_types}")
        layout = _build_layout(edge_index, edge_type, num_nodes, num_types)
    if rel is not None and rel.size(0) != layout.num_types:
        raise ValueError(f"expected a relation table of {layout.num_types} "
                         f"rows, got {rel.size(0)}")
    return layout


def edges_of_adjacency(adj_t, edge_type: OptTensor) -> Tuple[object, OptTensor]:
    r"""``(edge_index, edge_type)`` of a sparse adjacency ``adj_t``
    (``torch.sparse`` COO/CSR/CSC or ``SparseTensor``, entry :math:`(i, j)`
    for the edge :math:`j \to i`, its value the edge's relation type, as
    :class:`~torch_geometric.nn.conv.RGCNConv` reads it; parallel edges of
    an uncoalesced COO tensor stay apart); anything else is returned as it
    is. An adjacency without integer values, or given with ``edge_type``
    as well, raises a :class:`ValueError`."""
    if isinstance(adj_t, Tensor) and not (adj_t.is_sparse or adj_t.layout in (
            torch.sparse_csr, torch.sparse_csc)):
        return adj_t, edge_type
    if isinstance(adj_t, RelationalLayout):
        return adj_t, edge_type
    if isinstance(adj_t, Tensor):
        coo = adj_t if adj_t.is_sparse else adj_t.to_sparse_coo()
        (dst, src), value = coo._indices(), coo._values()
    elif WITH_TORCH_SPARSE and isinstance(adj_t, SparseTensor):
        dst, src, value = adj_t.coo()
    else:
        raise ValueError(f"the layer takes edge_index (2, E), a "
                         f"RelationalLayout or a sparse adjacency, not "
                         f"{type(adj_t).__name__}")
    if edge_type is not None or value is None or value.is_floating_point():
        raise ValueError("a sparse adjacency (adj_t) must hold each edge's relation "
                         "type as its integer value (and no separate edge_type), "
                         "as RGCNConv reads it; or pass edge_index and edge_type")
    return torch.stack([src, dst]), value.long()
