r"""Compressed-row layouts of a typed graph, so that per-edge sums become
sparse-dense matrix products instead of gathers and scatters of
:math:`|\mathcal{E}| \times C` rows."""
import warnings
from typing import NamedTuple, Optional, Union

import torch
from torch import Tensor

# The layers use CSR tensors only through products that are stable.
warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta')

__all__ = ['RelationalLayout', 'relational_layout']


class RelationalLayout(NamedTuple):
    r"""The edges of a graph with one type per edge, sorted three ways:
    by target (suffix ``_d``, the canonical order in which per-edge values
    live), by source (``_s``) and by type (``_t``). ``by_src`` and
    ``by_type`` list canonical positions in the other two orders;
    ``order`` maps canonical positions to the input edge order; ``crow_*``
    are compressed row pointers."""
    num_nodes: int
    num_types: int
    order: Tensor
    crow_d: Tensor
    src_d: Tensor
    dst_d: Tensor
    type_d: Tensor
    by_src: Tensor
    crow_s: Tensor
    dst_s: Tensor
    type_s: Tensor
    by_type: Tensor
    crow_t: Tensor
    src_t: Tensor
    dst_t: Tensor

    def to_input_order(self, values: Tensor) -> Tensor:
        r"""Per-edge ``values`` in canonical order, rearranged into the
        order of the edges the layout was built from."""
        return values.new_empty(values.shape).index_copy_(0, self.order, values)

    def csr(self, rows: str, cols: str, values: Tensor) -> Tensor:
        r"""The sparse CSR matrix with one entry per edge at (``rows``,
        ``cols``), each ``'dst'``, ``'src'`` or ``'type'``, and ``values``
        given in the order of ``rows``."""
        key = rows[0]
        size = [self.num_types if k == 'type' else self.num_nodes
                for k in (rows, cols)]
        return torch.sparse_csr_tensor(getattr(self, f'crow_{key}'),
                                       getattr(self, f'{cols}_{key}'), values,
                                       size, check_invariants=False)


def _crow(sorted_rows: Tensor, num_rows: int) -> Tensor:
    count = torch.bincount(sorted_rows, minlength=num_rows)
    return torch.cat([count.new_zeros(1), count.cumsum(0)])


def relational_layout(edge_index: Tensor, edge_type: Optional[Tensor],
                      num_nodes: int, num_types: Optional[int] = None
                      ) -> RelationalLayout:
    r"""Builds the :class:`RelationalLayout` of edges :math:`j \to i`
    (``edge_index[0]`` to ``edge_index[1]``). Without ``edge_type`` every
    edge is its own type."""
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
    src_d, dst_d, type_d = src[order], dst[order], edge_type[order]
    by_src = torch.sort(src_d * num_nodes + dst_d, stable=True)[1]
    by_type = torch.sort(type_d * num_nodes + src_d, stable=True)[1]
    return RelationalLayout(
        num_nodes, num_types, order,
        _crow(dst_d, num_nodes), src_d, dst_d, type_d,
        by_src, _crow(src_d[by_src], num_nodes), dst_d[by_src], type_d[by_src],
        by_type, _crow(type_d[by_type], num_types), src_d[by_type],
        dst_d[by_type])


def as_layout(edge_index: Union[Tensor, RelationalLayout], edge_type: Optional[Tensor],
              num_nodes: int, rel: Tensor) -> RelationalLayout:
    r"""The layout a relational layer runs on: ``edge_index`` itself when it
    is a :class:`RelationalLayout`, else the layout of the edges typed by
    ``edge_type`` (or one type per edge). Checks that the relation table
    ``rel`` has one row per type."""
    if isinstance(edge_index, RelationalLayout):
        layout = edge_index
    else:
        if edge_type is None and rel.size(0) != edge_index.size(1):
            raise ValueError(f"expected one relation row per edge "
                             f"({edge_index.size(1)}), got {rel.size(0)}")
        layout = relational_layout(edge_index, edge_type, num_nodes, rel.size(0))
    if rel.size(0) != layout.num_types:
        raise ValueError(f"expected a relation table of {layout.num_types} "
                         f"rows, got {rel.size(0)}")
    return layout
