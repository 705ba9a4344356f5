r"""Running LightEA on a KG pair: features from the seed links, no
training; the iterative variant (LightEA-I) adds confident one-to-one pairs
as seeds between rounds."""
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from torch_geometric_ea.data.names import default_name_encoder, encode_names, names_info
from torch_geometric_ea.data.word_vectors import glove_vectors
from torch_geometric_ea.metrics.decoding import (
    GatheredRows,
    sparse_sinkhorn,
    sparse_sinkhorn_ranks,
    topk_both_ways,
    topk_inner_products,
)
from torch_geometric_ea.metrics.ranking import (
    duplicate_rows,
    expected_rank_metrics,
    no_links_metrics,
)
from torch_geometric_ea.nn.functional import unit_rows_
from torch_geometric_ea.nn.models.lightea import PROJECTIONS, LightEA, lightea_graph
from torch_geometric_ea.runtime import return_freed_memory
from torch_geometric_ea.train.checkpoint import Checkpoints
from torch_geometric_ea.train.config import check_config
from torch_geometric_ea.train.common import (
    BOOTSTRAP,
    TrainResult,
    bootstrap_pool,
    prepare_run,
)

__all__ = ['LightEAConfig', 'train_lightea']


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

    def __post_init__(self):
        check_config(self, minimum=dict(
            ent_dim=1, depth=1, rel_dim=1, mini_dim=1, name_dim=1, top_k=1,
            sinkhorn_iters=1, iterations=1, chunk_size=1),
            positive=('tau', 'threshold'),
            choices=dict(projection=PROJECTIONS, bootstrap=BOOTSTRAP))


#: Entries of a row block hashed at once by
#: :func:`~torch_geometric_ea.metrics.ranking.duplicate_rows` (it makes two
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
    (:class:`~torch_geometric_ea.metrics.decoding.GatheredRows`), the
    targets as the transpose of a contiguous matrix, filled a chunk at a
    time, which the searches multiply by as it is. Into ``groups['tgt']``
    go the targets' :func:`~torch_geometric_ea.metrics.ranking.duplicate_rows`."""
    x_src, x_tgt = GatheredRows(x, src, unit_rows_), GatheredRows(x, tgt, unit_rows_)
    if groups is not None:
        groups['tgt'] = duplicate_rows(x_tgt, _hash_rows(x))
    y_t = x.new_empty(x.size(1), tgt.numel())
    step = _hash_rows(x)
    for start in range(0, tgt.numel(), step):
        y_t[:, start:start + step] = x_tgt[start:start + step].t()
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
                                                    cfg.chunk_size)
    else:
        (row_v, row_i), col_v, col_i = topk_inner_products(
            x_src, x_tgt, cfg.top_k, cfg.chunk_size), None, None
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
    values, index = topk_inner_products(*_unit_pair(x, pool_src, pool_tgt),
                                        cfg.top_k, cfg.chunk_size)
    scores = sparse_sinkhorn(values, index, pool_tgt.numel(), tau=cfg.tau,
                             num_iters=cfg.sinkhorn_iters)
    best, at = scores.max(dim=1)
    keep = best > cfg.threshold
    return torch.stack([pool_src[keep], pool_tgt[index[keep, at[keep]]]])


def train_lightea(data: HeteroData, config: Optional[LightEAConfig] = None,
                  progress: bool = True,
                  callback: Optional[Callable[[str, Dict], None]] = None,
                  checkpoints: Optional[Checkpoints] = None) -> TrainResult:
    r"""Runs LightEA on a KG pair: features from the seed links (no
    training), evaluated on the test links with sparse Sinkhorn
    (:func:`evaluate_sparse_sinkhorn`); with ``config.iterations`` above 1,
    the confident pairs of the pool become seeds between rounds.
    ``result.model`` is the parameter-free :class:`~torch_geometric_ea.nn.LightEA`
    and ``result.features`` the final features (union order).

    Args:
        data (HeteroData): A KG pair (see :mod:`torch_geometric_ea.data`).
        config (LightEAConfig, optional): Settings.
        progress (bool, optional): Show a progress bar. (default: :obj:`True`)
        callback (callable, optional): Called as ``callback('round', info)``
            after each round with its metrics.
        checkpoints (Checkpoints, optional): Write a checkpoint between
            rounds (and stop on request), or resume from its checkpoint
            (see :mod:`~torch_geometric_ea.train.checkpoint`).
    """
    cfg = config or LightEAConfig()
    timings: Dict[str, float] = {}
    t0 = time.perf_counter()
    run = prepare_run(data, cfg.seed, cfg.device, lambda union: lightea_graph(
        union.edge_index, union.edge_type, union.num_nodes, union.num_relations))
    union, graph = run.union, run.graph
    train_pairs, test_pairs = run.train_pairs, run.test_pairs
    rel_dim = cfg.rel_dim or cfg.ent_dim // 2
    model = LightEA(cfg.ent_dim, cfg.depth, rel_dim, cfg.mini_dim, cfg.projection)
    generator = torch.Generator().manual_seed(cfg.seed)
    pool_src, pool_tgt, protocol = bootstrap_pool(data, union.offset[0], test_pairs,
                                                  cfg.bootstrap)
    result = TrainResult(model, graph, metrics={}, init_args=dict(
        ent_dim=cfg.ent_dim, depth=cfg.depth, rel_dim=rel_dim,
        mini_dim=cfg.mini_dim, projection=cfg.projection),
        protocol=dict(bootstrapping=protocol if cfg.iterations > 1 else None,
                      ranking='sparse sinkhorn' + ('+names' if cfg.literal else '')))
    timings['prepare'] = time.perf_counter() - t0
    for key in ('features', 'evaluate', 'bootstrap', 'train'):
        timings[key] = 0.0
    features = None  # with names: [structure || name view], written in place
    if cfg.literal:  # the name view, from the first seeds (as the official)
        t = time.perf_counter()
        replay_names = dict(pairs=train_pairs.cpu(),
                            generator_state=generator.get_state())
        name_encoder = default_name_encoder(data, cfg.name_dim)
        labels = encode_names(data, name_encoder, union=True).to(run.device)
        result.protocol['names'] = names_info(data, name_encoder)
        del name_encoder
        glove_vectors.cache_clear()  # 0.24 GiB of word vectors, read once
        return_freed_memory()
        width = model.num_features()
        features = torch.empty(graph.num_nodes,
                               width + model.num_features(labels.size(1)),
                               dtype=graph.ent_ent.dtype, device=run.device)
        model(graph, train_pairs, generator, labels=labels, out=features[:, width:])
        del labels
        return_freed_memory()
        timings['features'] += time.perf_counter() - t
    saved = checkpoints.start('lightea', data, cfg) if checkpoints else None
    if saved is not None:  # the name view above is recomputed as it was
        generator.set_state(saved['generator'])
        train_pairs, pool_src, pool_tgt = (saved[k].to(run.device) for k in (
            'train_pairs', 'pool_src', 'pool_tgt'))
        for key in ('history', 'num_new_pairs', 'new_pairs'):
            setattr(result, key, saved[key])
        timings.update(saved['timings'], prepare=timings['prepare'])

    def state() -> Dict:
        return dict(generator=generator.get_state(), train_pairs=train_pairs,
                    pool_src=pool_src, pool_tgt=pool_tgt, history=result.history,
                    num_new_pairs=result.num_new_pairs, new_pairs=result.new_pairs,
                    timings=dict(timings))

    for round_ in tqdm(range(len(result.history), cfg.iterations), desc='lightea',
                       disable=not progress, leave=False):
        t = time.perf_counter()
        replay = dict(pairs=train_pairs.cpu(), generator_state=generator.get_state())
        if features is None:
            x = model(graph, train_pairs, generator)
        else:  # the structure's columns, beside the name view's
            model(graph, train_pairs, generator, out=features[:, :width])
            x = features
            replay['names'] = replay_names
        timings['features'] += time.perf_counter() - t
        t = time.perf_counter()
        return_freed_memory()
        metrics = evaluate_sparse_sinkhorn(x, test_pairs, cfg)
        timings['evaluate'] += time.perf_counter() - t
        info = dict(round=round_, epochs=0, loss=float('nan'), losses=[],
                    train_pairs=train_pairs.size(1), train_seconds=0.0, **metrics)
        result.history.append(info)
        if callback is not None:
            callback('round', info)
        if round_ + 1 < cfg.iterations and pool_src.numel() and pool_tgt.numel():
            t = time.perf_counter()
            new = confident_pairs(x, pool_src, pool_tgt, cfg)
            pool_src = pool_src[~torch.isin(pool_src, new[0])]
            pool_tgt = pool_tgt[~torch.isin(pool_tgt, new[1])]
            train_pairs = torch.cat([train_pairs, new], dim=1)
            result.num_new_pairs.append(new.size(1))
            result.new_pairs.append(new.cpu())
            timings['bootstrap'] += time.perf_counter() - t
        if checkpoints and round_ + 1 < cfg.iterations:
            checkpoints.epoch_end(state, f'round {round_ + 1}')
    result.features, result.replay = x, replay
    result.metrics = {k: v for k, v in result.history[-1].items() if '->' in k}
    timings['total'] = time.perf_counter() - t0
    result.timings = timings
    return result
