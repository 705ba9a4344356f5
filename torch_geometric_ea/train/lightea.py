r"""LightEA (Mao et al., EMNLP 2022) as a registered model: features from
the seed links by three-view label propagation, no training, evaluated by
sparse Sinkhorn; the iterative variant (LightEA-I) adds confident
one-to-one pairs as seeds between rounds."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.names import (
    NameEncoder,
    default_name_encoder,
    encode_names,
    names_info,
)
from torch_geometric_ea.data.word_vectors import glove_vectors
from torch_geometric_ea.metrics.decoding import (
    GatheredRows,
    sparse_sinkhorn_pairs,
    sparse_sinkhorn_ranks,
    topk_both_ways,
    topk_inner_products,
)
from torch_geometric_ea.metrics.ranking import (
    duplicate_rows,
    expected_rank_metrics,
    no_links_metrics,
)
from torch_geometric_ea.metrics.ranks import key_groups, row_keys
from torch_geometric_ea.metrics.similarity import search_dtype
from torch_geometric_ea.nn.functional import unit_rows_
from torch_geometric_ea.nn.models.lightea import PROJECTIONS, LightEA, lightea_graph
from torch_geometric_ea.nn.models.lightea import kronecker_factors as factor
from torch_geometric_ea.runtime import return_freed_memory
from torch_geometric_ea.train.checkpoint import Checkpoints
from torch_geometric_ea.train.common import BOOTSTRAP, TrainResult
from torch_geometric_ea.train.config import check_config
from torch_geometric_ea.train.memory import (
    EVAL_ROWS,
    FLOAT,
    MemoryEstimate,
    PairSize,
    common_terms,
    largest_phase,
    name_terms,
    scoring_bytes,
)
from torch_geometric_ea.train.registry import register_model
from torch_geometric_ea.train import scale
from torch_geometric_ea.train.spec import AlignerSpec

__all__ = ['LightEAConfig', 'LightEASpec', 'train_lightea',
           'evaluate_sparse_sinkhorn', 'confident_pairs']

#: Bytes per merged edge of :func:`~torch_geometric_ea.nn.lightea_graph`
#: (its tensors' storage, measured: 81-87 on DBP15K zh_en and the
#: synthetic 20K and 100K pairs).
GRAPH_BYTES_PER_EDGE = 87


@dataclass
class LightEAConfig:
    r"""Settings of a LightEA run; the defaults are the official notebook's
    (``ent_dim`` 1024, depth 2, ``rel_dim`` ``ent_dim // 2`` as for its
    cross-lingual pairs, ``mini_dim`` 16, top-500 candidates, Sinkhorn at
    temperature 0.02 for 15 iterations).

    ``iterations`` is the number of rounds: 1 is LightEA-B, 3 the paper's
    LightEA-I, where each round but the last adds the pool's pairs whose
    sparse Sinkhorn score exceeds ``threshold`` (0.5: at most one per row
    and column, so one-to-one) as seeds. ``bootstrap`` picks the pool as
    for Dual-AMN: the test entities (``'transductive'``, the paper's) or
    every entity without a seed link (``'inductive'``). ``literal`` adds
    the official hybrid's name view: the entity name vectors
    (:func:`~torch_geometric_ea.data.names.default_name_encoder`: word +
    character-bigram features of translated names, or hashed n-grams with
    ``name_dim`` columns of the URIs' names) propagated in place of the
    random labels, computed once from the first seeds and joined to every
    round's structure features.
    ``projection`` picks the official Gaussian or the structured Kronecker
    projections (see :class:`~torch_geometric_ea.nn.LightEA`);
    ``chunk_size`` rows are scored at once; ``both_ways=False`` ranks
    src->tgt only (the columns' top-k cost a third more per score)."""
    ent_dim: int = 1024
    depth: int = 2
    rel_dim: Optional[int] = None
    mini_dim: int = 16
    projection: str = 'gaussian'
    literal: bool = False
    name_dim: int = 300
    top_k: int = 500
    both_ways: bool = True
    tau: float = 0.02
    sinkhorn_iters: int = 15
    iterations: int = 1
    threshold: float = 0.5
    bootstrap: str = 'transductive'
    chunk_size: int = 2048
    seed: int = 0
    device: Optional[str] = None
    precision: str = 'auto'

    def __post_init__(self):
        check_config(self, minimum=dict(
            ent_dim=1, depth=1, rel_dim=1, mini_dim=1, name_dim=1, top_k=1,
            sinkhorn_iters=1, iterations=1, chunk_size=1),
            positive=('tau', 'threshold'),
            choices=dict(projection=PROJECTIONS, bootstrap=BOOTSTRAP))


#: Entries of a row block hashed at once by
#: :func:`~torch_geometric_ea.metrics.ranks.duplicate_rows` (it makes two
#: int64 copies of the block: 64 MiB here, 1.4 GiB at its default 4,096
#: rows of the 21,967 columns of a DBP15K run with names).
DUPLICATE_ROWS_ENTRIES = 2 ** 22


def _hash_rows(x: Tensor) -> int:
    return max(1, DUPLICATE_ROWS_ENTRIES // max(x.size(1), 1))


def _unit_pair(x: Tensor, src: Tensor, tgt: Tensor,
               groups: Optional[Dict[str, Tensor]] = None
               ) -> Tuple[GatheredRows, Tensor]:
    r"""The unit rows ``x[src]`` and ``x[tgt]`` with one copy of rows in
    memory: the sources gathered a chunk at a time by the top-k searches
    (:class:`~torch_geometric_ea.metrics.topk.GatheredRows`), the
    targets as the transpose of a contiguous matrix in the products'
    precision, filled a chunk at a time, which the searches multiply by
    as it is. Into ``groups['tgt']`` go the targets'
    :func:`~torch_geometric_ea.metrics.ranks.duplicate_rows`, hashed from
    the same chunks."""
    x_src, x_tgt = GatheredRows(x, src, unit_rows_), GatheredRows(x, tgt, unit_rows_)
    dtype = search_dtype(x.size(1), x.device)
    y_t = x.new_empty(x.size(1), tgt.numel(), dtype=dtype)
    step, keys = _hash_rows(x), []
    for start in range(0, tgt.numel(), step):
        rows = x_tgt[start:start + step]
        y_t[:, start:start + step] = rows.t()
        if groups is not None:
            keys.append(row_keys(rows))
    if groups is not None:
        groups['tgt'] = key_groups(torch.cat(keys))
    return x_src, y_t.t()


def evaluate_sparse_sinkhorn(x: Tensor, links: Tensor, cfg: LightEAConfig
                             ) -> Dict[str, Dict[str, float]]:
    r"""Hits@1/5/10 and MRR of the one-to-one ``links`` :math:`(2, L)`
    (union ids) in both directions as LightEA evaluates: each query ranks
    the test entities of the other KG among its ``top_k`` nearest by
    sparse Sinkhorn score; a partner outside them is a miss. Both
    directions' candidates come from one pass over the scores; without
    ``cfg.both_ways`` only src->tgt is ranked (tgt->src is NaN)."""
    out = no_links_metrics()
    if links.size(1) == 0:
        return out
    groups = {}
    x_src, x_tgt = _unit_pair(x, links[0], links[1], groups)  # one-to-one links
    if cfg.both_ways:
        groups['src'] = duplicate_rows(x_src, _hash_rows(x))
        row_v, row_i, col_v, col_i = topk_both_ways(x_src, x_tgt, cfg.top_k,
                                                    cfg.chunk_size, sorted=False)
    else:
        (row_v, row_i), col_v, col_i = topk_inner_products(
            x_src, x_tgt, cfg.top_k, cfg.chunk_size, sorted=False), None, None
    del x_src, x_tgt
    true = torch.arange(links.size(1), device=x.device)
    for name, values, index, group in (('src->tgt', row_v, row_i, 'tgt'),
                                       ('tgt->src', col_v, col_i, 'src')):
        if values is None:
            continue
        greater, tied = sparse_sinkhorn_ranks(
            values, index, links.size(1), true, groups[group],
            tau=cfg.tau, num_iters=cfg.sinkhorn_iters)
        out[name] = expected_rank_metrics(greater, tied)
    return out


def confident_pairs(x: Tensor, pool_src: Tensor, pool_tgt: Tensor,
                    cfg: LightEAConfig) -> Tensor:
    r"""The pool's pairs whose sparse Sinkhorn score exceeds
    ``cfg.threshold``: each pool source with its best target (union ids,
    :math:`(2, P)`); above 0.5 they are one-to-one."""
    at_src, at_tgt = confident_positions(x, pool_src, pool_tgt, cfg)
    return torch.stack([pool_src[at_src], pool_tgt[at_tgt]])


def confident_positions(x: Tensor, pool_src: Tensor, pool_tgt: Tensor,
                        cfg: LightEAConfig) -> Tuple[Tensor, Tensor]:
    r"""The positions in ``pool_src`` and ``pool_tgt`` of
    :func:`confident_pairs`."""
    pairs = sparse_sinkhorn_pairs(*_unit_pair(x, pool_src, pool_tgt), cfg.top_k,
                                  threshold=cfg.threshold, tau=cfg.tau,
                                  num_iters=cfg.sinkhorn_iters, chunk_size=cfg.chunk_size)
    return pairs[0], pairs[1]


@register_model
class LightEASpec(AlignerSpec):
    r"""LightEA: the parameter-free :class:`~torch_geometric_ea.nn.LightEA`
    computes features from the seed links each round (with ``literal``,
    beside a name view computed once from the first seeds, as the
    official hybrid does); evaluated by sparse Sinkhorn
    (:func:`evaluate_sparse_sinkhorn`); with ``iterations`` above 1 the
    pool's confident pairs become seeds between rounds
    (:func:`confident_pairs`). ``result.features`` holds the final
    features (union order) and ``result.replay`` the seeds and random
    states that recompute them."""
    name = 'lightea'
    config_class = LightEAConfig
    module_class = LightEA

    @classmethod
    def build_graph(cls, union, data: HeteroData, config):
        return lightea_graph(union.edge_index, union.edge_type, union.num_nodes,
                             union.num_relations)

    def __init__(self, loop, name_encoder: Optional[NameEncoder] = None):
        super().__init__(loop)
        cfg = self.config
        rel_dim = cfg.rel_dim or cfg.ent_dim // 2
        self.init_args = dict(ent_dim=cfg.ent_dim, depth=cfg.depth, rel_dim=rel_dim,
                              mini_dim=cfg.mini_dim, projection=cfg.projection)
        self.model = LightEA(**self.init_args)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.protocol = dict(ranking='sparse sinkhorn'
                             + ('+names' if cfg.literal else ''))
        self.features = None  # with names: [structure || name view], in place
        if cfg.literal:  # the name view, from the first seeds (as the official)
            with loop.timed('features'):
                self._name_view(name_encoder)

    def _name_view(self, name_encoder: Optional[NameEncoder]):
        loop = self.loop
        self.replay_names = dict(pairs=loop.train_pairs.cpu(),
                                 generator_state=self.generator.get_state())
        encoder = name_encoder or default_name_encoder(loop.data, self.config.name_dim)
        labels = encode_names(loop.data, encoder, union=True).to(loop.device)
        self.protocol['names'] = names_info(loop.data, encoder)
        del encoder
        glove_vectors.cache_clear()  # 0.24 GiB of word vectors, read once
        return_freed_memory()
        self.width = self.model.num_features()
        self.features = torch.empty(loop.graph.num_nodes,
                                    self.width + self.model.num_features(labels.size(1)),
                                    dtype=loop.graph.ent_ent.dtype, device=loop.device)
        self.model(loop.graph, loop.train_pairs, self.generator, labels=labels,
                   out=self.features[:, self.width:])
        del labels
        return_freed_memory()

    def rounds(self) -> int:
        return self.config.iterations

    def begin_round(self, round_: int):
        loop = self.loop
        with loop.timed('features'):
            self.replay = dict(pairs=loop.train_pairs.cpu(),
                               generator_state=self.generator.get_state())
            if self.features is None:
                self.x = self.model(loop.graph, loop.train_pairs, self.generator)
            else:  # the structure's columns, beside the name view's
                self.model(loop.graph, loop.train_pairs, self.generator,
                           out=self.features[:, :self.width])
                self.x = self.features
                self.replay['names'] = self.replay_names

    def evaluate(self, pool) -> Dict:
        return_freed_memory()
        return evaluate_sparse_sinkhorn(self.x, self.loop.test_pairs, self.config)

    def propose(self, pool_src: Tensor, pool_tgt: Tensor) -> Tuple[Tensor, Tensor]:
        return confident_positions(self.x, pool_src, pool_tgt, self.config)

    def finish(self):
        self.loop.result.features, self.loop.result.replay = self.x, self.replay

    def state_dict(self) -> Dict:
        return dict(super().state_dict(), generator=self.generator.get_state())

    def load_state_dict(self, state: Dict):
        super().load_state_dict(state)
        self.generator.set_state(state['generator'])

    def where(self) -> str:
        return f"round {self.loop.at['round']}"

    @classmethod
    @torch.no_grad()
    def embed(cls, aligner, literal: Optional[bool] = None) -> Tensor:
        r"""The features replayed from the run's seeds and random states
        (with its name view unless ``literal=False``), unit rows."""
        model, graph, replay = aligner.model, aligner.graph, aligner.replay

        def features(state, labels=None, out=None):
            generator = torch.Generator()
            generator.set_state(state['generator_state'])
            pairs = state['pairs'].to(graph.ent_ent.device)
            return model(graph, pairs, generator, labels=labels, out=out)

        if 'names' not in replay or literal is False:
            return unit_rows_(features(replay))
        # [structure || name view], each written into its columns (as trained)
        names = aligner.name_vectors(graph.ent_ent.device)
        width = model.num_features()
        out = names.new_empty(names.size(0), width + model.num_features(names.size(1)))
        features(replay['names'], names, out=out[:, width:])
        features(replay, out=out[:, :width])
        return unit_rows_(out)

    @classmethod
    def huge_pages(cls, config) -> bool:
        r"""Not with names: there huge pages raised the peak and slowed the
        run (DBP15K zh_en, see the docs' memory page)."""
        return not config.literal

    @classmethod
    def estimate_memory(cls, size: PairSize, cfg, growth: float,
                        candidates: bool = False) -> MemoryEstimate:
        n, d, edges = size.entities, cfg.ent_dim, size.merged_edges
        rel_dim = cfg.rel_dim or d // 2
        cols, m = rel_dim * cfg.mini_dim, cfg.mini_dim
        model = LightEA(d, cfg.depth, rel_dim, m, cfg.projection)
        chunk = min(model.relation_chunk(n), rel_dim)
        common = common_terms(size, GRAPH_BYTES_PER_EDGE)

        def rounds_and_kept(dim: int, labels: bool):
            # While propagating (the rounds, the next and its sparse product)
            # and after (what the projection reads: the Kronecker's running
            # sum Z, every round for the Gaussian or given labels).
            if cfg.projection == 'kronecker':
                a, e = factor(dim)[0], factor(cols)[1]
                rounds, kept = 3 * n * dim + 2 * n * a * e, n * a * e
                if labels:
                    rounds += cfg.depth * n * dim
                    kept += (cfg.depth + 1) * n * dim
                return rounds, kept
            return (cfg.depth + 2) * n * dim, (cfg.depth + 1) * n * dim

        # a chunk of relation dimensions: its projections and edge weights
        relation = 3 * chunk * n * m + 2 * chunk * edges
        rounds, kept = rounds_and_kept(d, False)
        phases: Dict[str, Dict[str, int]] = {}
        if cfg.literal:
            # The name view is written into its columns of the evaluated
            # [structure || name view] matrix, each round's structure into the
            # others; the labels are freed once propagated.
            names = name_terms(size, cfg.name_dim, common, kept=False)
            width = cols + model.num_features(names['width'])
            name_rounds, name_kept = rounds_and_kept(names['width'], True)
            # the word vectors are dropped once the names are encoded
            phases['encoding'] = {'encoding': names['encoding'],
                                  'word vectors': common.pop('word vectors', 0)}
            phases['name view'] = dict(features=FLOAT * (n * width + max(
                name_rounds, name_kept + relation)))
            features = FLOAT * (n * width + max(rounds, kept + relation))
        else:
            width = cols
            features = FLOAT * max(rounds, kept + n * cols + relation)
        test = size.test_links
        # the top-k lists and the sparse Sinkhorn's kernels over them
        scoring = scoring_bytes(test, test, width, cfg.top_k, cfg.both_ways,
                                cfg.chunk_size, transposed=True) + 4 * FLOAT * test * cfg.top_k
        phases.update(features=dict(features=features),
                      evaluate=dict(features=FLOAT * n * width, evaluation=scoring))
        if candidates:  # align's: every entity's unit features replayed, then
            # the unlinked rows of both sides gathered and scored in blocks
            free = n - 2 * size.train_links
            phases['candidates'] = dict(
                features=FLOAT * n * width,
                candidates=FLOAT * free * (width + 2 * EVAL_ROWS),
                names=FLOAT * n * names['width'] if cfg.literal else 0)
        return largest_phase(common, phases, growth)

    @classmethod
    def fitting_steps(cls, size: PairSize, cfg) -> List[Dict]:
        steps: List[Dict] = []
        if cfg.projection != 'kronecker':
            steps.append(dict(projection='kronecker'))
        rel_dim = cfg.rel_dim or cfg.ent_dim // 2
        return steps + [dict(top_k=min(cfg.top_k, 50)), dict(ent_dim=cfg.ent_dim // 2),
                        dict(rel_dim=rel_dim // 2), dict(rel_dim=rel_dim // 4),
                        dict(mini_dim=max(1, cfg.mini_dim // 2))]

    @classmethod
    def scale_settings(cls, data: HeteroData) -> Dict:
        r"""The Kronecker projection, fewer columns and src->tgt ranking
        only; above :data:`~torch_geometric_ea.train.scale.MILLION_ENTITIES`
        fewer still and each source's 10 best candidates (see
        :mod:`~torch_geometric_ea.train.scale`)."""
        if scale.num_entities(data) > scale.MILLION_ENTITIES:
            return dict(projection='kronecker', ent_dim=256, rel_dim=32, mini_dim=4,
                        top_k=10, both_ways=False)
        return dict(projection='kronecker', rel_dim=128, mini_dim=8, both_ways=False)


def train_lightea(data: HeteroData, config: Optional[LightEAConfig] = None,
                  progress: bool = True, callback=None,
                  checkpoints: Optional[Checkpoints] = None,
                  name_encoder: Optional[NameEncoder] = None) -> TrainResult:
    r"""Runs LightEA on a KG pair: features from the seed links (no
    training), evaluated on the test links with sparse Sinkhorn; with
    ``config.iterations`` above 1, the confident pairs of the pool become
    seeds between rounds. See :class:`LightEASpec` and
    :func:`~torch_geometric_ea.train.loop.fit` for the arguments."""
    return LightEASpec.fit(data, config, progress=progress, callback=callback,
                           checkpoints=checkpoints, name_encoder=name_encoder)
