r"""LightEA: training-free entity alignment by three-view label propagation,
:class:`~torch_geometric_ea.nn.LightEA`, and the fixed graph it runs on
(:func:`~torch_geometric_ea.nn.lightea_graph`)."""
import copy
import math
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from ...precision import for_products
from .. import layout

__all__ = ['LightEA', 'lightea_graph']

PROJECTIONS = ('gaussian', 'kronecker')
_FLOAT_KEYS = ('ent_ent', 'rel_ent', 'ent_rel', 'tuple_rel')


def _csr(row: Tensor, col: Tensor, value: Tensor, shape) -> Tensor:
    r"""The CSR matrix of the distinct ``(row, col)`` entries, values summed."""
    coo = torch.sparse_coo_tensor(torch.stack([row, col]), value, shape,
                                  check_invariants=layout.CHECK_INVARIANTS,
                                  device=row.device).coalesce()
    return coo.to_sparse_csr()


def lightea_graph(edge_index: Tensor, edge_type: Tensor, num_nodes: int,
                  num_relations: int) -> Data:
    r"""The fixed structure LightEA propagates over, as the official
    ``load_graph`` builds it.

    Every triple :math:`(h, r, t)` gives the directed triple :math:`h
    \xrightarrow{r} t` and its inverse :math:`t \xrightarrow{r + R} h`;
    repeated directed triples count once. With :math:`\mathcal{T}` those
    directed triples:

    - ``ent_ent`` :math:`(N, N)`: :math:`A_{ht}` = the number of relations
      from :math:`h` to :math:`t`, and :math:`A_{ii}` = the number of
      directed triples that :math:`i` takes part in (a self-loop weight);
    - ``rel_ent`` :math:`(2R, N)`: 1 where :math:`r` has head :math:`h`;
    - ``ent_rel`` :math:`(N, 2R)`: 1 where :math:`t` is a tail of :math:`r`;
    - ``tuple_index`` :math:`(2, T)`: the distinct (head, tail) pairs and
      ``tuple_rel`` :math:`(T, 2R)`: 1 for each relation of a pair.
    """
    n, num_rel = int(num_nodes), 2 * int(num_relations)
    head, tail = edge_index
    src, dst = torch.cat([head, tail]), torch.cat([tail, head])
    rel = torch.cat([edge_type, edge_type + num_relations])
    key = torch.unique((src * n + dst) * num_rel + rel)  # distinct triples
    pair, rel = key // num_rel, key % num_rel
    src, dst = pair // n, pair % n
    ones = torch.ones(key.numel(), device=key.device)

    degree = torch.bincount(torch.cat([src, dst]), minlength=n).float()
    loops = torch.arange(n, device=key.device)
    ent_ent = _csr(torch.cat([src, loops]), torch.cat([dst, loops]),
                   torch.cat([ones, degree]), (n, n))
    tuples, tuple_id = torch.unique(pair, return_inverse=True)
    return Data(
        ent_ent=ent_ent,
        rel_ent=_csr(rel, src, ones, (num_rel, n)).sign(),
        ent_rel=_csr(dst, rel, ones, (n, num_rel)).sign(),
        tuple_index=torch.stack([tuples // n, tuples % n]),
        tuple_rel=_csr(tuple_id, rel, ones, (tuples.numel(), num_rel)).sign(),
        num_nodes=n, num_relations=num_rel)


def _unit(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1)


def _inverse_norm(sq_norm: Tensor) -> Tensor:
    r"""The row scaling of :func:`torch.nn.functional.normalize` from the
    squared row norms: :math:`1 / \max(\lVert \mathbf{x} \rVert,
    10^{-12})`."""
    return sq_norm.sqrt().clamp(min=1e-12).reciprocal()


def kronecker_factors(size: int) -> Tuple[int, int]:
    r"""``(a, b)`` with :math:`a b` = ``size`` and :math:`a` the largest
    divisor not above :math:`\sqrt{\text{size}}`."""
    a = max(f for f in range(1, int(size ** 0.5) + 1) if size % f == 0)
    return a, size // a


class LightEA(torch.nn.Module):
    r"""LightEA from the `"LightEA: A Scalable, Robust, and Interpretable
    Entity Alignment Framework via Three-view Label Propagation"
    <https://arxiv.org/abs/2210.10436>`_ paper: alignment without training.

    1. **Random orthogonal labels.** Each seed pair :math:`(i, j)` gets one
       random unit vector :math:`\mathbf{l}_{ij} \in \mathbb{R}^{d}` as the
       label of both entities; the other entities start at zero. In high
       dimension random vectors are nearly orthogonal, so each seed pair is
       its own class.
    2. **Three-view propagation**, ``depth`` rounds, each L2-normalised:

       .. math::
           \mathbf{R}^{(k+1)} = \operatorname{norm}(\mathbf{A}_{re}
           \mathbf{E}^{(k)}), \qquad \mathbf{E}^{(k+1)} =
           \operatorname{norm}(\mathbf{A}_{ee} \mathbf{E}^{(k)} +
           \mathbf{A}_{er} \mathbf{R}^{(k)})

       (entity to entity, entity to relation, relation to entity; see
       :func:`lightea_graph`), then :math:`\mathbf{E} =
       \operatorname{norm}[\mathbf{E}^{(0)} \| \dots \| \mathbf{E}^{(K)}]`
       and likewise :math:`\mathbf{R}`, projected to ``rel_dim`` columns.
    3. **Relation-aware propagation per dimension.** Each of the
       ``rel_dim`` relation dimensions :math:`c` weighs every (head, tail)
       pair by the sum of its relations' features,
       :math:`w_{ht,c} = \sum_{r \in \mathcal{R}(h, t)} \tilde{R}_{rc}`, and
       propagates a fresh ``mini_dim``-column random projection of
       :math:`\mathbf{E}`:

       .. math::
           \mathbf{F}_{h, c} = \sum_{t} w_{ht,c}\, \mathbf{E}_t
           \mathbf{P}_c, \qquad \mathbf{F} =
           \operatorname{norm}[\mathbf{F}_{\cdot, 1} \| \dots \|
           \mathbf{F}_{\cdot, \text{rel\_dim}}]

       which gives ``rel_dim * mini_dim`` features per entity.

    The official code draws each :math:`\mathbf{P}_c` as a dense Gaussian
    (``projection='gaussian'``; about 2 TFLOP on DBP15K). With
    ``projection='kronecker'``, :math:`\mathbf{E}` is projected to all
    ``rel_dim * mini_dim`` columns at once by the Kronecker product of two
    small Gaussians, :math:`\mathbf{E} (\mathbf{G} \otimes \mathbf{H})`,
    applied as two thin products (80 multiply-adds per projected entry at
    the defaults instead of :math:`3d` = 3,072); Kronecker-structured
    projections keep the Johnson-Lindenstrauss guarantee (`Jin, Kolda and
    Ward, 2019 <https://arxiv.org/abs/1909.04801>`_). Neither materialises
    :math:`[\mathbf{E}^{(0)} \| \dots]`: its normalisation is a row
    scaling applied after the projection; the Kronecker projection sums
    each round's share as the round comes and keeps none of them (at the
    1M pair's :math:`2\text{M} \times 256` labels, 4 GiB less). The model
    has no parameters: :meth:`forward` is the whole method, deterministic
    for a given ``generator``.

    Args:
        ent_dim (int, optional): Label dimension :math:`d`.
            (default: :obj:`1024`)
        depth (int, optional): Propagation rounds. (default: :obj:`2`)
        rel_dim (int, optional): Relation dimensions (the official: ``d //
            2`` for cross-lingual pairs, ``d // 3`` otherwise).
            (default: :obj:`512`)
        mini_dim (int, optional): Columns per relation dimension.
            (default: :obj:`16`)
        projection (str, optional): ``'gaussian'`` (the official) or
            ``'kronecker'`` (structured, a fraction of the products).
            (default: :obj:`'gaussian'`)
        chunk_size (int, optional): Relation dimensions propagated at once
            (bounds the working memory; fewer where :math:`N` times
            ``mini_dim`` times them would pass :obj:`max_chunk_entries`).
            (default: :obj:`64`)

    Shapes:
        - **input:** the graph from :func:`lightea_graph`, seed pairs
          :math:`(2, S)` of its node ids
        - **output:** entity features :math:`(N, \text{rel\_dim} \cdot
          \text{mini\_dim})`, unit rows
    """
    #: At most this many projected entries per chunk of relation dimensions
    #: (512 MiB in float32), whatever ``chunk_size`` says.
    max_chunk_entries = 2 ** 27

    def __init__(self, ent_dim: int = 1024, depth: int = 2, rel_dim: int = 512,
                 mini_dim: int = 16, projection: str = 'gaussian',
                 chunk_size: int = 64):
        super().__init__()
        if projection not in PROJECTIONS:
            raise ValueError(f"'projection' must be one of {PROJECTIONS} "
                             f"(got {projection!r})")
        self.ent_dim, self.depth = ent_dim, depth
        self.rel_dim, self.mini_dim = rel_dim, mini_dim
        self.projection, self.chunk_size = projection, chunk_size

    def labels(self, num_nodes: int, pairs: Tensor, generator: torch.Generator,
               dtype=torch.float32) -> Tensor:
        r"""The initial labels :math:`\mathbf{E}^{(0)}`: one random unit
        vector per seed pair on both its entities, zeros elsewhere."""
        vec = _unit(torch.randn(pairs.size(1), self.ent_dim, generator=generator))
        out = torch.zeros(num_nodes, self.ent_dim, dtype=dtype, device=pairs.device)
        vec = vec.to(pairs.device, dtype)
        out[pairs[0]] = vec
        out[pairs[1]] = vec
        return out

    def rounds(self, graph: Data, ent: Tensor) -> Iterator[Tuple[Tensor, Tensor]]:
        r"""Step 2, one round at a time: :math:`(\mathbf{E}^{(k)},
        \mathbf{R}^{(k)})` for :math:`k = 0, \dots, K` (unit rows), so that
        a caller need not hold every round."""
        rel = ent.new_zeros(graph.num_relations, ent.size(1))
        yield ent, rel
        for _ in range(self.depth):
            new_rel = _unit(graph.rel_ent @ ent)
            ent = (graph.ent_rel @ rel).addmm_(graph.ent_ent, ent)  # one N x d
            ent = ent.div_(torch.linalg.vector_norm(ent, dim=1, keepdim=True)
                           .clamp_(min=1e-12))  # in place: N x d is large
            rel = new_rel
            yield ent, rel

    @staticmethod
    def _summarise(rounds: Iterable[Tuple[Tensor, Tensor]],
                   on_round: Callable[[int, Tensor], None],
                   kept: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        r"""Passes each round's entity features to ``on_round`` (and writes
        them into their columns of ``kept``, when given) and returns the row
        scaling :math:`1 / \lVert[\mathbf{E}^{(0)} \| \dots]\rVert` of
        their concatenation and the concatenated, normalised relation
        features; ``kept`` ends scaled: :math:`\operatorname{norm}
        [\mathbf{E}^{(0)} \| \dots]`."""
        sq_norm, rels = 0, []
        for k, (ent, rel) in enumerate(rounds):
            sq_norm = sq_norm + ent.pow(2).sum(1, keepdim=True)
            rels.append(rel)
            if kept is not None:
                kept[:, k * ent.size(1):(k + 1) * ent.size(1)] = ent
            on_round(k, ent)
        scale = _inverse_norm(sq_norm)
        if kept is not None:
            kept.mul_(scale)
        return scale, _unit(torch.cat(rels, dim=1))

    def _kronecker(self, rounds: Iterable[Tuple[Tensor, Tensor]], dim: int,
                   generator: torch.Generator, like: Tensor,
                   kept: Optional[Tensor] = None):
        r""":math:`\operatorname{norm}[\mathbf{E}^{(0)} \| \dots]\,
        (\mathbf{G} \otimes \mathbf{H})` by relation dimensions: each
        row, viewed as an :math:`a \times (K + 1) b` matrix
        :math:`\mathbf{X}`, maps to :math:`(\mathbf{X} \mathbf{H})^{\top}
        \mathbf{G}` (two thin products), whose entry :math:`(j, i)` is
        column :math:`j c + i`; relation dimension :math:`r` takes columns
        :math:`[r m, (r + 1) m)`. :math:`\mathbf{Z} = \mathbf{X}
        \mathbf{H}` (:math:`N \times a \times e`) is summed over the
        rounds as they come (the blocks :math:`\mathbf{H}_k` of
        :math:`\mathbf{H}` meet :math:`\mathbf{E}^{(k)}`), so no round is
        kept. Returns ``project(dims)`` :math:`(|\text{dims}|, N, m)` for
        ``dims`` that cover whole :math:`j`, their granularity, the row
        scaling and the relation features."""
        (a, b), (c, e) = kronecker_factors(dim), kronecker_factors(self.rel_dim * self.mini_dim)
        g = torch.randn(a, c, generator=generator).to(like)
        hs = torch.randn((self.depth + 1) * b, e, generator=generator).to(like).split(b)
        z: List[Tensor] = []  # the running sum, once the first round is in

        def add(k: int, ent: Tensor):
            zk = ent.reshape(-1, b) @ hs[k]
            if z:
                z[0].add_(zk)
            else:
                z.append(zk)

        scale, rel = self._summarise(rounds, add, kept)
        n, m = scale.size(0), self.mini_dim
        zs = z[0].view(n, a, e)

        def project(dims: range) -> Tensor:
            cols = slice(dims.start * m // c, dims.stop * m // c)
            y = (zs[:, :, cols] * scale.view(n, 1, 1)).transpose(1, 2)
            y = (y.reshape(-1, a) @ g).view(n, len(dims), m)
            return y.transpose(0, 1).contiguous()
        return project, self._granularity(), scale, rel

    def _gaussian(self, rounds: Iterable[Tuple[Tensor, Tensor]], kept: Tensor,
                  generator: torch.Generator):
        r"""The official draws: per relation dimension a Gaussian
        :math:`(K + 1) d \times m` projection with unit rows, drawn as the
        dimensions are reached, applied to :math:`\operatorname{norm}
        [\mathbf{E}^{(0)} \| \dots]` (written into ``kept``) as one product
        per chunk of dimensions, its inputs in the run's precision
        (:func:`~torch_geometric_ea.precision.for_products`). Returns as
        :meth:`_kronecker` does."""
        scale, rel = self._summarise(rounds, lambda k, ent: None, kept)
        stacked = for_products(kept)  # bfloat16: a half-size copy
        m, width, dtype = self.mini_dim, kept.size(1), kept.dtype

        def project(dims: range) -> Tensor:
            proj = torch.empty(len(dims), width, m)
            for i in range(len(dims)):  # the official stream: one draw each
                torch.randn(width, m, generator=generator, out=proj[i])
            proj = _unit(proj).to(stacked).permute(1, 0, 2).reshape(width, -1)
            y = (stacked @ proj).view(-1, len(dims), m).transpose(0, 1)
            return torch.empty(y.shape, dtype=dtype, device=y.device).copy_(y)
        return project, 1, scale, rel

    def _granularity(self) -> int:
        r"""The relation dimensions a projection block covers: :math:`c /
        \gcd(c, m)` for the Kronecker projection (``c`` its first factor),
        1 for the Gaussian."""
        if self.projection != 'kronecker':
            return 1
        c = kronecker_factors(self.rel_dim * self.mini_dim)[0]
        return c // math.gcd(c, self.mini_dim)

    def relation_chunk(self, num_nodes: int, unit: Optional[int] = None) -> int:
        r"""The relation dimensions :meth:`relation_aware` propagates at once
        on ``num_nodes`` entities: ``chunk_size``, fewer where ``num_nodes``
        times ``mini_dim`` times them would pass :obj:`max_chunk_entries`,
        a multiple of ``unit`` (default: the projection's granularity)."""
        unit = unit or self._granularity()
        chunk = max(1, min(self.chunk_size,
                           self.max_chunk_entries // (num_nodes * self.mini_dim)))
        return unit * max(chunk // unit, 1)

    def relation_aware(self, graph: Data, rel: Tensor,
                       project: Callable[[range], Tensor], unit: int,
                       out: Optional[Tensor] = None) -> Tensor:
        r"""Step 3: ``rel_dim`` relation-weighted propagations of the
        projected entity features ``project(dims)``, a chunk of relation
        dimensions (a multiple of ``unit``) at a time; ``rel`` are the
        projected relation features :math:`(2R, \text{rel\_dim})`. Written
        into ``out`` :math:`(N, \text{rel\_dim} \cdot \text{mini\_dim})`
        when given (its rows contiguous, e.g. columns of a wider matrix)."""
        head, tail = graph.tuple_index
        n, m = graph.num_nodes, self.mini_dim
        crow = torch.cat([head.new_zeros(1),
                          torch.bincount(head, minlength=n).cumsum(0)])
        out = (rel.new_empty(n, self.rel_dim, m) if out is None
               else out.view(n, self.rel_dim, m))
        chunk = self.relation_chunk(n, unit)
        for start in range(0, self.rel_dim, chunk):
            dims = range(start, min(start + chunk, self.rel_dim))
            y = project(dims)
            weight = (graph.tuple_rel @ rel[:, start:dims.stop]).t().contiguous()
            for i in range(len(dims)):  # (head, tail) pairs are sorted: CSR
                adj = torch.sparse_csr_tensor(
                    crow, tail, weight[i], (n, n),
                    check_invariants=layout.CHECK_INVARIANTS)
                y[i] = adj @ y[i]
            out[:, start:dims.stop] = y.transpose(0, 1)
        out = out.view(n, -1)
        norm = torch.linalg.vector_norm(out, dim=1, keepdim=True)
        return out.div_(norm.clamp_(min=1e-12))

    def num_features(self, label_dim: Optional[int] = None) -> int:
        r"""The columns of :meth:`forward`'s output: ``rel_dim * mini_dim``,
        and :math:`(K + 1) D` more given labels of :math:`D` =
        ``label_dim`` columns."""
        return self.rel_dim * self.mini_dim + (self.depth + 1) * (label_dim or 0)

    @torch.no_grad()
    def forward(self, graph: Data, pairs: Tensor,
                generator: Optional[torch.Generator] = None,
                labels: Optional[Tensor] = None,
                out: Optional[Tensor] = None) -> Tensor:
        r"""The features of every entity of ``graph`` given the seed
        ``pairs`` :math:`(2, S)`; ``generator`` (a CPU generator) draws the
        labels and projections. Given ``labels`` :math:`(N, D)` (entity
        name vectors, the official hybrid's name view), they replace the
        random seed labels, and the output is
        :math:`[\operatorname{norm}[\mathbf{E}^{(0)} \| \dots \|
        \mathbf{E}^{(K)}] \,\|\, \mathbf{F}]`, :math:`(N, (K + 1) D +
        \text{rel\_dim} \cdot \text{mini\_dim})`, as the official
        ``get_features(..., extra_feature)`` returns it. Given ``out``
        (that shape, see :meth:`num_features`; rows contiguous, so it may
        be columns of a wider matrix), the features are written there and
        ``out`` is returned.

        .. note::
            The name view's output is written as it is made: each round's
            :math:`\mathbf{E}^{(k)}` is scaled into its columns and freed,
            and :math:`\mathbf{F}` is propagated into its own, so no
            concatenated copy is made (on DBP15K zh_en, with 1,861 label
            columns, the output alone is 2 GiB).

        The features have the dtype of ``graph`` (its ``ent_ent``); a
        float16 or bfloat16 graph is computed in float32 and the features
        cast to its dtype."""
        generator = generator or torch.Generator().manual_seed(0)
        dtype = graph.ent_ent.dtype
        if dtype in (torch.float16, torch.bfloat16):
            return self._in_float32(graph, pairs, generator, labels, out)
        ent = (self.labels(graph.num_nodes, pairs, generator, dtype) if labels is None
               else labels.to(dtype))
        dim = ent.size(1)
        width = self.num_features(None if labels is None else dim)
        if out is not None and tuple(out.shape) != (graph.num_nodes, width):
            raise ValueError(f"'out' must have shape ({graph.num_nodes}, {width}) "
                             f"(got {tuple(out.shape)})")
        rel_proj = _unit(torch.randn((self.depth + 1) * dim, self.rel_dim,
                                     generator=generator)).to(ent)
        rounds = self.rounds(graph, ent)
        del ent  # held by the rounds only until its round is used
        if out is None and labels is not None:
            out = rel_proj.new_empty(graph.num_nodes, width)
        # norm[E^(0) || ...]: the name view's first columns, or what the
        # Gaussian projections read
        kept = None if labels is None else out[:, :(self.depth + 1) * dim]
        if self.projection == 'kronecker':
            project, unit, scale, rel = self._kronecker(rounds, dim, generator,
                                                        rel_proj, kept)
        else:
            if kept is None:
                kept = rel_proj.new_empty(graph.num_nodes, (self.depth + 1) * dim)
            project, unit, scale, rel = self._gaussian(rounds, kept, generator)
            if labels is None:
                del kept  # bfloat16 products read their own copy
        if labels is None:
            features = self.relation_aware(graph, rel @ rel_proj, project, unit, out)
            return features if out is None else out
        self.relation_aware(graph, rel @ rel_proj, project, unit,
                            out[:, (self.depth + 1) * dim:])
        return out

    def _in_float32(self, graph: Data, pairs: Tensor, generator: torch.Generator,
                    labels: Optional[Tensor], out: Optional[Tensor]) -> Tensor:
        r"""The features of a float16 or bfloat16 graph: computed in float32
        (the sparse products have no half-precision CPU kernels) from the
        same draws, and returned (or written into ``out``) in the graph's
        dtype."""
        dtype, graph = graph.ent_ent.dtype, copy.copy(graph)
        for key in _FLOAT_KEYS:
            graph[key] = graph[key].float()
        features = self(graph, pairs, generator,
                        None if labels is None else labels.float()).to(dtype)
        return features if out is None else out.copy_(features)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ent_dim={self.ent_dim}, '
                f'depth={self.depth}, rel_dim={self.rel_dim}, '
                f'mini_dim={self.mini_dim}, projection={self.projection!r})')
