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
the holes earlier ones left; each model's ``heap_growth`` says by how much.

The constants that are not shapes (the runtime, the graphs' bytes per
edge, the heap growth) were measured; ``benchmarks/memory.py`` sets the
estimates beside measured peaks and ``tests/test_memory.py`` checks the
tensor terms against the allocator's count.
"""
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional

import torch
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.names import name_columns, name_source
from torch_geometric_ea.data.pair import SRC, TGT, to_union
from torch_geometric_ea.metrics.decoding import few_of_many
from torch_geometric_ea.precision import resolve_precision
from torch_geometric_ea.runtime import cgroup_memory_limit, proc_bytes
from torch_geometric_ea.train.common import resolve_device
from torch_geometric_ea.train.registry import get_model

__all__ = ['PairSize', 'pair_size', 'MemoryEstimate', 'estimate_memory',
           'fitting_settings', 'available_memory', 'GIB', 'largest_phase',
           'common_terms', 'name_terms', 'scoring_bytes', 'csls_bytes',
           'low_precision']

GIB = 2 ** 30
FLOAT = 4
INDEX = 8
#: Python, torch, PyG and this package imported (``ru_maxrss``, measured).
RUNTIME = int(0.36 * GIB)
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
#: their tensors (a model's ``heap_growth`` is the growth of repeated steps).
ONCE = ('encoding',)


def largest_phase(common: Dict[str, int], phases: Dict[str, Dict[str, int]],
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


def low_precision(config) -> bool:
    r"""Whether a run with ``config`` will take bfloat16 products: its
    ``precision`` resolved on its device
    (:func:`~torch_geometric_ea.train.common.resolve_device`)."""
    device = resolve_device(getattr(config, 'device', None))
    return resolve_precision(getattr(config, 'precision', 'float32'),
                             device).used == 'bfloat16'


def common_terms(size: PairSize, graph_per_edge: int) -> Dict[str, int]:
    r"""The parts every run holds: the runtime, the pair's triples and
    links, and the model's fixed graph at ``graph_per_edge`` bytes per
    merged edge."""
    # The pair's triples (index and type, int64) twice: as read and merged.
    return dict(runtime=RUNTIME, pair=2 * 3 * INDEX * size.triples
                + 4 * INDEX * (size.train_links + size.test_links),
                graph=graph_per_edge * size.merged_edges)


def name_terms(size: PairSize, dim: int, common: Dict[str, int], kept: bool = True,
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


def scoring_bytes(rows: int, cols: int, dim: int, k: int, both_ways: bool = True,
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


def csls_bytes(rows: int, cols: int, dim: int) -> int:
    r"""Bytes of CSLS ranks: unit embeddings and two blocks of
    :data:`EVAL_ROWS` x ``cols`` scores."""
    return FLOAT * ((rows + cols) * dim + 2 * min(EVAL_ROWS, rows) * cols)


def estimate_memory(model: str, size: PairSize, config,
                    heap_kept: bool = True, candidates: bool = False) -> MemoryEstimate:
    r"""The estimated peak resident memory of a CPU run of ``model`` with
    ``config`` on a pair of ``size``; ``heap_kept``: the allocator keeps
    freed memory (:func:`~torch_geometric_ea.runtime.keep_freed_memory`);
    ``candidates``: the run then ranks the candidates of every unlinked
    entity (``align``; a phase of its own where the model's features are
    wide, LightEA's: the others' embeddings are small beside training)."""
    spec = get_model(model)
    growth = spec.heap_growth if heap_kept else 1.0
    return spec.estimate_memory(size, config, growth, candidates)


def fitting_settings(model: str, size: PairSize, config, limit: int,
                     heap_kept: bool = True,
                     candidates: bool = False) -> Optional[Dict[str, Any]]:
    r"""The fewest changes to ``config`` (the model's
    :meth:`~torch_geometric_ea.train.spec.AlignerSpec.fitting_steps`, cumulative)
    whose estimate is at most ``limit`` bytes, or :obj:`None` if even all of
    them do not fit."""
    changes: Dict[str, Any] = {}
    for step in get_model(model).fitting_steps(size, config):
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
