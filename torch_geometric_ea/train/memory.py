r"""Memory foresight: the peak resident memory of a CPU run, estimated
before any work from the pair's size and the run's settings, and the
settings that would bring it under a limit.

The estimate is a sum of bytes: the runtime (Python, torch, PyG),
the pair's triples, the model's fixed graph, the parameters with their
gradients and optimiser state, and the tensors of the fullest phase
(training step, embedding, evaluation; LightEA's features), each counted
from its shape. For example Dual-AMN's step keeps, with :math:`N`
entities, :math:`P` merged edges, :math:`C` channels and :math:`L`
layers, :math:`2 [(L + 1) N C + 2 L P]` floats of both encoders' saved
activations besides the loss's rows and score blocks. A heap that keeps
freed memory (:func:`~torch_geometric_ea.runtime.keep_freed_memory`)
grows past the live tensors, since blocks of changing sizes seldom fit
the holes earlier ones left; :data:`HEAP_GROWTH` says by how much.

The constants that are not shapes (the runtime, the graphs' bytes per
edge, the heap growth) were measured; ``benchmarks/memory.py`` sets the
estimates beside measured peaks and ``tests/test_memory.py`` checks the
tensor terms against the allocator's count.
"""
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional

import torch
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.names import name_columns, name_source
from torch_geometric_ea.data.pair import SRC, TGT, to_union
from torch_geometric_ea.metrics.decoding import few_of_many
from torch_geometric_ea.nn.models.lightea import LightEA, _factor
from torch_geometric_ea.runtime import cgroup_memory_limit, proc_bytes

__all__ = ['PairSize', 'pair_size', 'MemoryEstimate', 'estimate_memory',
           'fitting_settings', 'available_memory', 'GIB']

GIB = 2 ** 30
FLOAT = 4
INDEX = 8
#: Python, torch, PyG and this package imported (``ru_maxrss``, measured).
RUNTIME = int(0.36 * GIB)
#: Bytes per merged edge of :func:`~torch_geometric_ea.nn.dual_amn_graph`
#: (its tensors' storage, measured: 224-233 on DBP15K zh_en and the
#: synthetic 20K and 100K pairs) and of
#: :func:`~torch_geometric_ea.nn.lightea_graph` (81-87).
DUAL_AMN_GRAPH_PER_EDGE = 232
LIGHTEA_GRAPH_PER_EDGE = 87
#: The loss's and the metrics' score blocks (see their modules).
LOSS_BLOCK_ELEMENTS = 2 ** 26
LOSS_ROWS = 512
EVAL_ROWS = 1024
PROXY_ROWS = 65536
#: GloVe 6B 50d once loaded, for the hybrid name features (400,000 words:
#: their vectors and vocabulary; 0.24 GiB measured).
WORD_VECTORS = int(0.24 * GIB)
#: Floats per name-vector entry while the names are encoded: the
#: character view's counts and their normalised copy, the joined views and
#: theirs (DBP15K zh_en: 0.80 GiB for 38,960 x 1,861 entries).
NAME_ENCODING = 4


@dataclass
class PairSize:
    r"""What the estimate reads of a pair: entities and relations of both
    KGs, triples, merged edges and links."""
    entities: int
    relations: int
    triples: int
    merged_edges: int
    train_links: int
    test_links: int
    attributes: int = 0
    #: The columns of the pair's hybrid name vectors (translated names or
    #: a names file: word and character-bigram views); 0 where the names
    #: are the URIs', hashed to as many columns as the run asks.
    name_columns: int = 0


def pair_size(data: HeteroData) -> PairSize:
    r"""The :class:`PairSize` of ``data``; the merged edges are counted
    from the triples (one sort of :math:`2T` keys)."""
    union = to_union(data)
    n, (head, tail) = union.num_nodes, union.edge_index
    keys = torch.cat([head * n + tail, tail * n + head])
    return PairSize(entities=n, relations=union.num_relations,
                    triples=head.numel(), merged_edges=int(torch.unique(keys).numel()),
                    train_links=int(union.train_mask.sum()),
                    test_links=int(union.test_mask.sum()),
                    attributes=_attribute_columns(data),
                    name_columns=(0 if name_source(data) == 'uri'
                                  else name_columns(data)))


def _attribute_columns(data: HeteroData) -> int:
    x_src, x_tgt = data[SRC].get('x'), data[TGT].get('x')
    return 0 if x_src is None or x_tgt is None else int(x_src.size(1))


@dataclass
class MemoryEstimate:
    r"""An estimated peak: the bytes of each part at the fullest phase."""
    phase: str
    parts: Dict[str, int] = field(default_factory=dict)
    #: The tensors of every phase beyond the runtime, pair, graph and
    #: parameters (bytes), before heap growth.
    phases: Dict[str, int] = field(default_factory=dict)

    @property
    def peak(self) -> int:
        r"""The estimated peak in bytes: the sum of the parts."""
        return sum(self.parts.values())

    @property
    def gib(self) -> float:
        r"""The estimated peak in GiB."""
        return self.peak / GIB

    def describe(self) -> str:
        r"""One line: the peak, its phase and the parts in GiB."""
        parts = ', '.join(f'{k} {v / GIB:.2f}' for k, v in self.parts.items())
        return f'{self.gib:.2f} GiB at {self.phase} ({parts} GiB)'

    def as_dict(self) -> Dict[str, Any]:
        r"""The estimate as ``results.json`` keeps it (GiB)."""
        return dict(gib=round(self.gib, 3), phase=self.phase,
                    parts_gib={k: round(v / GIB, 3) for k, v in self.parts.items()})


#: Phases that run once, before any step: the heap does not grow past
#: their tensors (:data:`HEAP_GROWTH` is the growth of repeated steps).
ONCE = ('encoding',)


def _largest(common: Dict[str, int], phases: Dict[str, Dict[str, int]],
             growth: float) -> MemoryEstimate:
    r"""The estimate at the phase whose tensors take the most memory; a
    heap that keeps freed memory grows to ``growth`` times that, except in
    the phases that run once (:data:`ONCE`)."""
    totals = {name: sum(parts.values()) for name, parts in phases.items()}
    grown = {name: total * (1 if name in ONCE else growth)
             for name, total in totals.items()}
    name = max(grown, key=grown.get)
    parts = {**common, **phases[name]}
    if grown[name] > totals[name]:
        parts['heap growth'] = int(grown[name] - totals[name])
    return MemoryEstimate(name, parts, totals)


def _common(size: PairSize, graph_per_edge: int) -> Dict[str, int]:
    # The pair's triples (index and type, int64) twice: as read and merged.
    return dict(runtime=RUNTIME, pair=2 * 3 * INDEX * size.triples
                + 4 * INDEX * (size.train_links + size.test_links),
                graph=graph_per_edge * size.merged_edges)


def _names(size: PairSize, dim: int, common: Dict[str, int], kept: bool = True,
           holes: bool = False) -> Dict[str, int]:
    r"""Adds to ``common`` what a run's name vectors :math:`(N, D)` hold
    for the whole run: the vectors if ``kept`` (``'names'``), the word
    vectors of the hybrid features and, with ``holes`` (a heap that keeps
    freed memory), the encoding's freed copies, whose holes the steps'
    blocks do not fit (Dual-AMN (Lit) on DBP15K zh_en: 4.28 GiB against
    2.14 without names; RDGCN's fill them, 2.93 GiB against an estimate
    of 3.06 without names); returns :math:`D` (``'width'``: the pair's
    hybrid width, else ``dim`` hashed columns) and the bytes of the
    encoding's copies (``'encoding'``, a phase of its own)."""
    n, width = size.entities, size.name_columns or dim
    encoding = FLOAT * NAME_ENCODING * n * width
    if kept:
        common['names'] = FLOAT * n * width
    if size.name_columns:
        common['word vectors'] = WORD_VECTORS
    if holes:
        common['encoding (freed)'] = encoding
    return dict(width=width, encoding=encoding)


def _scoring(rows: int, cols: int, dim: int, k: int, both_ways: bool = True,
             chunk: int = EVAL_ROWS, transposed: bool = False) -> int:
    r"""Bytes of each query's top-``k`` among ``cols`` targets (both ways):
    the unit embeddings and the targets transposed, the score blocks
    (:func:`~torch_geometric_ea.metrics.topk.blocked_topk`'s
    :math:`4096 \times 1024` for a few of many, else ``chunk`` rows of
    scores and their transposed copy), the lists and their merges. With
    ``transposed``, the targets are written transposed a chunk at a time
    and the queries gathered a chunk at a time (LightEA's evaluation): one
    copy of the targets."""
    entries = (rows + (cols if both_ways else 0)) * k
    embeddings = (FLOAT * (cols + min(chunk, rows)) * dim if transposed
                  else FLOAT * (rows + 2 * cols) * dim)
    if few_of_many(k, rows, cols):
        return embeddings + FLOAT * 4096 * 1024 + (FLOAT + INDEX) * entries
    if not transposed:
        embeddings += FLOAT * max(rows, cols) * dim  # a side gathered, then unit
    blocks = FLOAT * min(chunk, rows) * cols * (2 if both_ways else 1)
    merges = (FLOAT + INDEX) * (cols * 3 * k if both_ways else 0)
    return embeddings + blocks + merges + (FLOAT + INDEX) * entries


def _csls(rows: int, cols: int, dim: int) -> int:
    r"""Bytes of CSLS ranks: unit embeddings and two blocks of
    :data:`EVAL_ROWS` x ``cols`` scores."""
    return FLOAT * ((rows + cols) * dim + 2 * min(EVAL_ROWS, rows) * cols)


def _dual_amn(size: PairSize, cfg, growth: float,
              candidates: bool = False) -> MemoryEstimate:
    n, c, layers = size.entities, cfg.channels, cfg.num_layers
    edges, dim = size.merged_edges, 2 * (cfg.num_layers + 1) * cfg.channels
    batch = min(cfg.batch_size, max(size.train_links, 1)) * 2  # both sides
    if cfg.candidates == 'all' or cfg.num_candidates >= n:
        cand, rows = n, n
    else:
        cand = cfg.num_candidates + (batch * cfg.hard_candidates
                                     if cfg.candidates == 'hard' else 0)
        cand = min(cand, n)
        rows = min(n, batch + cand)
    common = _common(size, DUAL_AMN_GRAPH_PER_EDGE)
    common['parameters'] = 3 * FLOAT * (n + 2 * size.relations) * c
    # Saved by both encoders: the tanh outputs of every layer, two floats
    # per edge and layer (attention, projection), the proxy layers' input
    # and output rows, the output and its dropout mask (bytes).
    saved = FLOAT * 2 * ((layers + 1) * n * c + 2 * layers * edges
                         + 2 * rows * (layers + 1) * c) + (FLOAT + 1) * rows * dim
    width = cand if cfg.loss_chunk_size is None else min(cfg.loss_chunk_size, cand)
    block = min(LOSS_ROWS, batch, max(1, LOSS_BLOCK_ELEMENTS // width)) * width
    loss = FLOAT * (4 * batch * dim + 3 * cand * dim + 2 * block)
    # Backward, one encoder at a time: a gradient per layer output and the
    # per-edge products of the attention layer.
    backward = FLOAT * ((layers + 2) * n * c + 4 * edges)
    links = size.test_links
    rows_eval = 2 * links + (2 * links if cfg.semi else 0)
    # With names the evaluated rows are joined to their name vectors
    # (fuse_literal: the rows, their names and the joined copy) and ranked
    # on both.
    names = _names(size, cfg.name_dim, common, holes=growth > 1) if cfg.literal \
        else None
    width = dim + (names['width'] if names else 0)
    if cfg.eval_top_k:
        scoring = _scoring(links, links, width, cfg.eval_top_k)
    else:
        scoring = _csls(links, links, width)
    evaluation = FLOAT * rows_eval * (dim + 2 * (width - dim))
    phases = dict(
        train=dict(activations=saved, loss=loss),
        backward=dict(activations=saved - FLOAT * 2 * layers * n * c, loss=backward),
        # Embedding the evaluated rows without gradients: both tables
        # averaged, one encoder's layer outputs and a layer's attention;
        # per encoder the rows' layer outputs, the proxy layer's input and
        # output, the other encoder's output (2 D per row) and the proxy
        # layer's four temporaries for a block of rows.
        embed=dict(activations=FLOAT * ((layers + 4) * n * c + 2 * edges + 2 * dim
                                        * (rows_eval + min(rows_eval, PROXY_ROWS)))),
        evaluate=dict(evaluation=evaluation + scoring))
    if names:  # encoded, then ranked alone once (their own metrics)
        phases['encoding'] = dict(encoding=max(names['encoding'], _csls(
            links, links, names['width'])))
    return _largest(common, phases, growth)


def _lightea(size: PairSize, cfg, growth: float,
             candidates: bool = False) -> MemoryEstimate:
    n, d, edges = size.entities, cfg.ent_dim, size.merged_edges
    rel_dim = cfg.rel_dim or d // 2
    cols, m = rel_dim * cfg.mini_dim, cfg.mini_dim
    model = LightEA(d, cfg.depth, rel_dim, m, cfg.projection)
    chunk = min(model.relation_chunk(n), rel_dim)
    common = _common(size, LIGHTEA_GRAPH_PER_EDGE)

    def rounds_and_kept(dim: int, labels: bool):
        # While propagating (the rounds, the next and its sparse product)
        # and after (what the projection reads: the Kronecker's running
        # sum Z, every round for the Gaussian or given labels).
        if cfg.projection == 'kronecker':
            a, e = _factor(dim)[0], _factor(cols)[1]
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
        names = _names(size, cfg.name_dim, common, kept=False)
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
    scoring = _scoring(test, test, width, cfg.top_k, cfg.both_ways, cfg.chunk_size,
                       transposed=True) + 4 * FLOAT * test * cfg.top_k
    phases.update(features=dict(features=features),
                  evaluate=dict(features=FLOAT * n * width, evaluation=scoring))
    if candidates:  # align's: every entity's unit features replayed, then
        # the unlinked rows of both sides gathered and scored in blocks
        free = n - 2 * size.train_links
        phases['candidates'] = dict(
            features=FLOAT * n * width,
            candidates=FLOAT * free * (width + 2 * EVAL_ROWS),
            names=FLOAT * n * names['width'] if cfg.literal else 0)
    return _largest(common, phases, growth)


def _gcn_align(size: PairSize, cfg, growth: float,
               candidates: bool = False) -> MemoryEstimate:
    n, c = size.entities, cfg.channels
    common = _common(size, 3 * INDEX * 2)
    widths = [c] + ([cfg.attr_channels] if cfg.attributes and size.attributes else [])
    # The entity table and its gradient (plain SGD), the attribute weights
    # and the pair's features; per view the unit rows and each layer's
    # product and activation; the margin loss gathers each train pair's
    # rows and their negatives' (both sides: anchor, other, difference,
    # absolute value).
    common['parameters'] = FLOAT * (2 * n * c + 2 * size.attributes
                                    * cfg.attr_channels + n * size.attributes)
    rows = 2 * (cfg.num_negatives + 1) * size.train_links
    train = FLOAT * sum((1 + 2 * cfg.num_layers) * n * w + 4 * rows * w for w in widths)
    test = size.test_links
    evaluation = FLOAT * (n * sum(widths) + 2 * test * sum(widths)
                          + 2 * min(EVAL_ROWS, test) * test)
    return _largest(common, dict(train=dict(activations=train),
                                 evaluate=dict(evaluation=evaluation)), growth)


def _rdgcn(size: PairSize, cfg, growth: float,
           candidates: bool = False) -> MemoryEstimate:
    n, c, edges = size.entities, cfg.channels, size.merged_edges
    common = _common(size, 3 * INDEX * 2)
    # The entity table, its gradient and Adam's two moments (learned
    # features) or the fixed name features; the layers' saved activations
    # (20 N x C blocks, counted by the allocator on DBP15K zh_en) and a
    # float per merged edge and layer.
    learned = cfg.features == 'learned'
    common['parameters'] = FLOAT * n * c * (4 if learned else 1)
    train = FLOAT * (20 * n * c + 6 * edges)
    negatives = FLOAT * 2 * cfg.chunk_size * n + INDEX * 2 * size.train_links \
        * cfg.num_negatives
    test = size.test_links
    evaluation = FLOAT * (n * c + 2 * test * c + 2 * min(EVAL_ROWS, test) * test)
    phases = dict(train=dict(activations=train, negatives=negatives),
                  evaluate=dict(evaluation=evaluation))
    if not learned:  # the name vectors, encoded, then projected to C columns
        names = _names(size, c, common, kept=False)  # its steps fill the holes
        phases['encoding'] = dict(encoding=names['encoding'] + FLOAT * (
            n * names['width'] + names['width'] * c))
    return _largest(common, phases, growth)


ESTIMATORS: Dict[str, Callable[[PairSize, Any, float, bool], MemoryEstimate]] = {
    'dual-amn': _dual_amn, 'lightea': _lightea, 'gcn-align': _gcn_align,
    'rdgcn': _rdgcn}
#: How far a heap that keeps freed memory grows past the largest phase's
#: tensors (fragmentation: blocks of changing sizes, such as a batch's
#: rows, seldom fit the holes earlier ones left). Dual-AMN: measured on
#: two synthetic pairs (20,000 and 40,000 entities per side,
#: ``benchmarks/memory.py``); GCN-Align and RDGCN: fitted to their DBP15K
#: zh_en runs (RDGCN's negatives change size every tenth epoch); LightEA
#: reuses its few large blocks as they are.
HEAP_GROWTH = {'dual-amn': 1.7, 'lightea': 1.0, 'gcn-align': 1.0, 'rdgcn': 2.75}


def estimate_memory(model: str, size: PairSize, config,
                    heap_kept: bool = True, candidates: bool = False) -> MemoryEstimate:
    r"""The estimated peak resident memory of a CPU run of ``model`` with
    ``config`` on a pair of ``size``; ``heap_kept``: the allocator keeps
    freed memory (:func:`~torch_geometric_ea.runtime.keep_freed_memory`);
    ``candidates``: the run then ranks the candidates of every unlinked
    entity (``align``; a phase of its own where the model's features are
    wide, LightEA's: the others' embeddings are small beside training)."""
    growth = HEAP_GROWTH[model] if heap_kept else 1.0
    return ESTIMATORS[model](size, config, growth, candidates)


def _steps(model: str, size: PairSize, cfg) -> List[Dict[str, Any]]:
    r"""Changes to try in order, each on top of the previous ones: the
    cheapest in accuracy first."""
    steps: List[Dict[str, Any]] = []
    if model == 'dual-amn':
        if cfg.candidates == 'all' and size.entities > 4096:
            steps.append(dict(candidates='random', num_candidates=4096))
        steps += [dict(batch_size=cfg.batch_size // 2 ** i) for i in (1, 2, 3)
                  if cfg.batch_size // 2 ** i >= 256]
        steps += [dict(channels=cfg.channels // 2 ** i) for i in (1, 2)
                  if cfg.channels // 2 ** i >= 32]
    elif model == 'lightea':
        if cfg.projection != 'kronecker':
            steps.append(dict(projection='kronecker'))
        rel_dim = cfg.rel_dim or cfg.ent_dim // 2
        steps += [dict(top_k=min(cfg.top_k, 50)), dict(ent_dim=cfg.ent_dim // 2),
                  dict(rel_dim=rel_dim // 2), dict(rel_dim=rel_dim // 4),
                  dict(mini_dim=max(1, cfg.mini_dim // 2))]
    elif model == 'gcn-align':
        steps += [dict(channels=cfg.channels // 2), dict(attributes=False)]
    elif model == 'rdgcn':
        steps += [dict(chunk_size=max(1, cfg.chunk_size // 4)),
                  dict(channels=cfg.channels // 2)]
    return steps


def fitting_settings(model: str, size: PairSize, config, limit: int,
                     heap_kept: bool = True,
                     candidates: bool = False) -> Optional[Dict[str, Any]]:
    r"""The fewest changes to ``config`` (from :func:`_steps`, cumulative)
    whose estimate is at most ``limit`` bytes, or :obj:`None` if even all of
    them do not fit."""
    changes: Dict[str, Any] = {}
    for step in _steps(model, size, config):
        changes.update(step)
        if estimate_memory(model, size, replace(config, **changes),
                           heap_kept, candidates).peak <= limit:
            return changes
    return None


def available_memory() -> Optional[int]:
    r"""The memory this process may grow to: what it holds plus the
    system's available memory (``MemAvailable``), at most its cgroup's
    limit; :obj:`None` where neither can be read."""
    available = proc_bytes('/proc/meminfo', 'MemAvailable')
    if available is not None:
        available += proc_bytes('/proc/self/status', 'VmRSS') or 0
    limits = [b for b in (available, cgroup_memory_limit()) if b is not None]
    return min(limits) if limits else None


def settings_text(changes: Dict[str, Any]) -> str:
    r"""``changes`` as the command's options."""
    return ' '.join(f'--set {k}={v}' for k, v in changes.items())
