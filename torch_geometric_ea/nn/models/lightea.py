r"""LightEA: training-free entity alignment by three-view label propagation,
:class:`~torch_geometric_ea.nn.LightEA`, and the fixed graph it runs on
(:func:`~torch_geometric_ea.nn.lightea_graph`)."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

__all__ = ['LightEA', 'lightea_graph']


def _csr(row: Tensor, col: Tensor, value: Tensor, shape) -> Tensor:
    r"""The CSR matrix of the distinct ``(row, col)`` entries, values summed."""
    coo = torch.sparse_coo_tensor(torch.stack([row, col]), value, shape,
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


def _random_projection(x: Tensor, out_dim: int, generator: torch.Generator) -> Tensor:
    r""":math:`\mathbf{X} \mathbf{P}` with :math:`\mathbf{P}` Gaussian, each
    row scaled to unit norm (the official ``random_projection``)."""
    p = torch.randn(x.size(1), out_dim, generator=generator).to(x.device, x.dtype)
    return x @ _unit(p)


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

    The official code draws each :math:`\mathbf{P}_c` from the
    :math:`3 d`-column :math:`\mathbf{E}` (about 2 TFLOP on DBP15K); with
    ``proj_dim`` set, :math:`\mathbf{E}` is first projected once to
    ``proj_dim`` columns by a Gaussian :math:`\mathbf{Q}` and each
    :math:`\mathbf{P}_c` drawn from those: :math:`\mathbf{Q}\mathbf{P}_c` is
    again a random projection (Johnson-Lindenstrauss), at a fraction of the
    products. The model has no parameters: :meth:`forward` is the whole
    method, deterministic for a given ``generator``.

    Args:
        ent_dim (int, optional): Label dimension :math:`d`.
            (default: :obj:`1024`)
        depth (int, optional): Propagation rounds. (default: :obj:`2`)
        rel_dim (int, optional): Relation dimensions (the official: ``d //
            2`` for cross-lingual pairs, ``d // 3`` otherwise).
            (default: :obj:`512`)
        mini_dim (int, optional): Columns per relation dimension.
            (default: :obj:`16`)
        proj_dim (int, optional): If set, the width :math:`\mathbf{E}` is
            projected to once before the per-dimension projections.
            (default: :obj:`None`: the official computation)
        chunk_size (int, optional): Relation dimensions propagated at once
            (bounds the working memory). (default: :obj:`64`)

    Shapes:
        - **input:** the graph from :func:`lightea_graph`, seed pairs
          :math:`(2, S)` of its node ids
        - **output:** entity features :math:`(N, \text{rel\_dim} \cdot
          \text{mini\_dim})`, unit rows
    """
    def __init__(self, ent_dim: int = 1024, depth: int = 2, rel_dim: int = 512,
                 mini_dim: int = 16, proj_dim: Optional[int] = None,
                 chunk_size: int = 64):
        super().__init__()
        self.ent_dim, self.depth = ent_dim, depth
        self.rel_dim, self.mini_dim = rel_dim, mini_dim
        self.proj_dim, self.chunk_size = proj_dim, chunk_size

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

    def propagate(self, graph: Data, ent: Tensor):
        r"""Step 2: the concatenated, normalised entity and relation
        features after ``depth`` rounds of three-view propagation."""
        rel = ent.new_zeros(graph.num_relations, ent.size(1))
        ents, rels = [ent], [rel]
        for _ in range(self.depth):
            new_rel = _unit(graph.rel_ent @ ent)
            ent = _unit(graph.ent_ent @ ent + graph.ent_rel @ rel)
            rel = new_rel
            ents.append(ent)
            rels.append(rel)
        return _unit(torch.cat(ents, dim=1)), _unit(torch.cat(rels, dim=1))

    def relation_aware(self, graph: Data, ent: Tensor, rel: Tensor,
                       generator: torch.Generator) -> Tensor:
        r"""Step 3: ``rel_dim`` relation-weighted propagations of random
        ``mini_dim``-column projections of the entity features."""
        weight = graph.tuple_rel @ _random_projection(rel, self.rel_dim, generator)
        if self.proj_dim is not None and self.proj_dim < ent.size(1):
            q = torch.randn(ent.size(1), self.proj_dim, generator=generator)
            ent = ent @ (q / self.proj_dim ** 0.5).to(ent.device, ent.dtype)
        head, tail = graph.tuple_index
        crow = torch.cat([head.new_zeros(1),
                          torch.bincount(head, minlength=ent.size(0)).cumsum(0)])
        m = self.mini_dim
        out = ent.new_empty(ent.size(0), self.rel_dim * m)
        for start in range(0, self.rel_dim, self.chunk_size):
            dims = range(start, min(start + self.chunk_size, self.rel_dim))
            proj = torch.cat([_unit(torch.randn(ent.size(1), m, generator=generator))
                              for _ in dims], dim=1).to(ent.device, ent.dtype)
            y = (ent @ proj).view(-1, len(dims), m).transpose(0, 1).contiguous()
            for i, d in enumerate(dims):  # (head, tail) pairs are sorted: CSR
                adj = torch.sparse_csr_tensor(crow, tail, weight[:, d].contiguous(),
                                              (ent.size(0), ent.size(0)))
                out[:, d * m:(d + 1) * m] = adj @ y[i]
        return _unit(out)

    @torch.no_grad()
    def forward(self, graph: Data, pairs: Tensor,
                generator: Optional[torch.Generator] = None) -> Tensor:
        r"""The features of every entity of ``graph`` given the seed
        ``pairs`` :math:`(2, S)`; ``generator`` (a CPU generator) draws the
        labels and projections."""
        generator = generator or torch.Generator().manual_seed(0)
        dtype = graph.ent_ent.dtype
        ent = self.labels(graph.num_nodes, pairs, generator, dtype)
        ent, rel = self.propagate(graph, ent)
        return self.relation_aware(graph, ent, rel, generator)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ent_dim={self.ent_dim}, '
                f'depth={self.depth}, rel_dim={self.rel_dim}, '
                f'mini_dim={self.mini_dim})')
