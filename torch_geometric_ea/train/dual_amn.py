r"""Dual-AMN (Mao et al., WWW 2021) as a registered model: its config, its
graph, its training step (mini-batches of seed pairs under the normalized
hard sample mining loss), its CSLS evaluation, its bootstrapping rule
(mutual nearest neighbours), its memory terms and its size-aware
settings; the loop (:mod:`~torch_geometric_ea.train.loop`) does the rest."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.names import (
    NameEncoder,
    default_name_encoder,
    encode_names,
    names_info,
)
from torch_geometric_ea.data.pair import LINK
from torch_geometric_ea.metrics import (
    evaluate_alignment,
    evaluate_top_k,
    fuse_literal,
    mutual_nearest_neighbours,
)
from torch_geometric_ea.metrics.decoding import (
    PAIRING_DECODERS,
    RANKING_DECODERS,
    check_decoder,
)
from torch_geometric_ea.nn import DualAMN, NormalizedHardSampleMiningLoss, dual_amn_graph
from torch_geometric_ea.nn.sampling import (
    loss_candidates,
    nearest_squared,
    rows_to_embed,
    sample_links,
)
from torch_geometric_ea.train.checkpoint import Checkpoints
from torch_geometric_ea.train.common import BOOTSTRAP, TrainResult
from torch_geometric_ea.train.config import ConfigError, check_config
from torch_geometric_ea.train.memory import (
    FLOAT,
    LOSS_BLOCK_ELEMENTS,
    LOSS_ROWS,
    PROXY_ROWS,
    MemoryEstimate,
    PairSize,
    common_terms,
    csls_bytes,
    largest_phase,
    low_precision,
    name_terms,
    scoring_bytes,
)
from torch_geometric_ea.train.registry import register_model
from torch_geometric_ea.train import scale
from torch_geometric_ea.train.spec import AlignerSpec

__all__ = ['DualAMNConfig', 'DualAMNSpec', 'train_dual_amn', 'batch_loss',
           'sample_links', 'rows_to_embed']

CANDIDATES = ('all', 'random', 'hard')
#: The heap's growth in bfloat16 runs (DBP15K zh_en: 2.95 GiB, float32 1.93).
LOW_PRECISION_HEAP_GROWTH = 2.5

#: Bytes per merged edge of :func:`~torch_geometric_ea.nn.dual_amn_graph`
#: (its tensors' storage, measured: 224-233 on DBP15K zh_en and the
#: synthetic 20K and 100K pairs).
GRAPH_BYTES_PER_EDGE = 232


@dataclass
class DualAMNConfig:
    r"""Hyper-parameters of a Dual-AMN run; the defaults are the paper's and
    the official implementation's.

    ``semi_decoding`` picks how bootstrapping pairs entities: mutual
    nearest neighbours under CSLS (``'csls'``, the paper) or under
    Sinkhorn-normalised similarities (``'sinkhorn'``, temperature
    ``sinkhorn_tau``, ``sinkhorn_iters`` iterations). ``decodings`` lists
    further evaluations of the final embeddings, comma-separated
    (``'sinkhorn,hungarian'``), reported in ``result.extra_metrics``.

    ``bootstrap`` picks the entities the rounds may pair (see
    :func:`~torch_geometric_ea.train.common.bootstrap_pool`): the test
    entities (``'transductive'``, the paper's protocol) or every entity
    without a training link (``'inductive'``).

    ``candidates`` picks the loss's candidates per batch: every entity
    (``'all'``, the paper), ``num_candidates`` random entities
    (``'random'``), or those plus the ``hard_candidates`` nearest entities
    (squared Euclidean) of each batch entity, found every ``hard_every``
    epochs and at the start of each round (``'hard'``).

    ``eval_links`` evaluates on that many test links drawn at random (with
    the run's seed), ranked among themselves, instead of all of them: on
    million-entity pairs the two passes over all test links cost hours.
    Hits@k among fewer candidates is higher, so such figures are labelled
    with it; bootstrapping still pools all test entities. ``eval_top_k``
    instead ranks every test link by cosine among its exact top-``k``
    (:func:`~torch_geometric_ea.metrics.evaluate_top_k`: one pass over the
    products, a partner outside the top k a miss, MRR@k), in place of the
    CSLS ranks' two passes and comparison per score.

    ``literal`` is Dual-AMN (Lit): evaluation and bootstrapping rank by the
    structure similarity plus ``literal_weight`` times the entity names'
    similarity (:func:`~torch_geometric_ea.metrics.fuse_literal`), with
    names embedded by the run's name encoder (default
    :func:`~torch_geometric_ea.data.names.default_name_encoder`: the hybrid
    word + character-bigram features of translated names, or
    :class:`~torch_geometric_ea.data.NGramNameEncoder` with ``name_dim``
    columns for the URIs' names). The structure-only and the name-only metrics go to
    ``result.extra_metrics['structure']`` and ``['names']``.

    ``device`` is where the run's tensors live (:obj:`None`: CUDA when
    available, else the CPU; see
    :func:`~torch_geometric_ea.train.resolve_device`)."""
    channels: int = 128
    num_layers: int = 2
    num_proxies: int = 64
    dropout: float = 0.3
    lr: float = 0.005
    batch_size: int = 1024
    epochs: int = 20
    gamma: float = 1.0
    lam: float = 30.0
    tau: float = 10.0
    negatives: str = 'all'
    candidates: str = 'all'
    num_candidates: int = 4096
    hard_candidates: int = 10
    hard_every: int = 5
    loss_chunk_size: Optional[int] = None
    semi: bool = False
    semi_rounds: int = 4
    semi_epochs: int = 5
    csls_k: int = 10
    eval_links: Optional[int] = None
    eval_top_k: Optional[int] = None
    semi_decoding: str = 'csls'
    bootstrap: str = 'transductive'
    decodings: str = ''
    sinkhorn_tau: float = 0.02
    sinkhorn_iters: int = 10
    literal: bool = False
    literal_weight: float = 1.0
    name_dim: int = 300
    seed: int = 0
    device: Optional[str] = None
    precision: str = 'auto'

    def __post_init__(self):
        check_config(self, minimum=dict(
            channels=1, num_layers=1, num_proxies=1, batch_size=1, epochs=1,
            num_candidates=1, hard_candidates=1, hard_every=1, loss_chunk_size=1,
            semi_rounds=1, semi_epochs=1, csls_k=1, eval_links=1, eval_top_k=10,
            sinkhorn_iters=1, name_dim=1, literal_weight=0, lr=0),
            positive=('lam', 'tau', 'sinkhorn_tau'), fractions=('dropout',),
            choices=dict(negatives=('all', 'other'), candidates=CANDIDATES,
                         bootstrap=BOOTSTRAP))
        for field, names, allowed, what in (
                ('semi_decoding', [self.semi_decoding], PAIRING_DECODERS, 'one of'),
                ('decodings', [d for d in self.decodings.split(',') if d],
                 RANKING_DECODERS, 'comma-separated names from')):
            for name in names:
                try:
                    check_decoder(name, allowed, field=field)
                except ValueError:
                    raise ConfigError(field, f"{what} {allowed} (or 'csls')",
                                      getattr(self, field)) from None


def batch_loss(encoder, graph, loss_fn, batch: Tensor, node_type: Tensor,
               rank: int = 0, world: int = 1,
               candidates: Optional[Tensor] = None) -> Tensor:
    r"""The loss of a batch of pairs, or with ``world`` processes this rank's
    share of it: its slice ``batch[:, rank::world]`` scaled by
    :math:`W B_r / B`, so that averaging the ranks' gradients (what
    :class:`~torch.nn.parallel.DistributedDataParallel` does) gives the
    gradient of the whole batch's loss. With ``candidates``, the model
    embeds only the rows the loss reads (the batch's entities and the
    candidates), renumbered in that order."""
    local = batch if world == 1 else batch[:, rank::world]
    if candidates is None:
        out = encoder(graph)
    else:
        rows, local, candidates = rows_to_embed(local, candidates)
        out, node_type = encoder(graph, rows), node_type[rows]
    if world == 1:
        return loss_fn(out, local, node_type, candidates)
    if local.size(1) == 0:  # every rank must run backward over the model
        return out.sum() * 0.0
    return (loss_fn(out, local, node_type, candidates)
            * (local.size(1) * world / batch.size(1)))


@register_model
class DualAMNSpec(AlignerSpec):
    r"""Dual-AMN: :class:`~torch_geometric_ea.nn.DualAMN` trained on
    mini-batches of seed pairs with
    :class:`~torch_geometric_ea.nn.NormalizedHardSampleMiningLoss` and
    RMSprop, evaluated by CSLS (or cosine top-k), bootstrapping with mutual
    nearest neighbours (CSLS or Sinkhorn). Inside a :mod:`torch.distributed`
    process group every process embeds the whole graph and takes its share
    of each batch's loss under
    :class:`~torch.nn.parallel.DistributedDataParallel`."""
    name = 'dual-amn'
    config_class = DualAMNConfig
    module_class = DualAMN
    #: Measured on two synthetic pairs (20,000 and 40,000 entities per
    #: side, ``benchmarks/memory.py``): a batch's rows change size.
    heap_growth = 1.7
    distributed = True
    relation_importance = True

    @classmethod
    def build_graph(cls, union, data: HeteroData, config):
        return dual_amn_graph(union.edge_index, union.edge_type, union.num_nodes,
                              union.num_relations)

    def __init__(self, loop, name_encoder: Optional[NameEncoder] = None):
        super().__init__(loop)
        cfg, union, device = self.config, loop.union, loop.device
        self.eval_pairs = sample_links(loop.test_pairs, cfg.eval_links, cfg.seed)
        self.init_args = dict(num_nodes=union.num_nodes,
                              num_relations=union.num_relations,
                              channels=cfg.channels, num_layers=cfg.num_layers,
                              num_proxies=cfg.num_proxies, dropout=cfg.dropout)
        self.model = DualAMN(**self.init_args).to(device)
        self.encoder = self.model if loop.world == 1 else DistributedDataParallel(
            self.model, device_ids=[device] if device.type == 'cuda' else None)
        self.loss_fn = NormalizedHardSampleMiningLoss(
            cfg.gamma, cfg.lam, cfg.tau, cfg.negatives, cfg.loss_chunk_size)
        # Keras' RMSprop, as in the official implementation.
        self.optimizer = torch.optim.RMSprop(self.model.parameters(), lr=cfg.lr,
                                             alpha=0.9, eps=1e-7)
        ranking = f'cosine top-{cfg.eval_top_k}' if cfg.eval_top_k else 'csls'
        self.protocol = dict(ranking=ranking + ('+names' if cfg.literal else ''))
        self.names = None
        if cfg.literal:
            encoder = name_encoder or default_name_encoder(loop.data, cfg.name_dim)
            self.names = encode_names(loop.data, encoder, union=True).to(device)
            loop.result.extra_metrics['names'] = self._rank(self.names,
                                                            self.eval_pairs)
            self.protocol['names'] = names_info(loop.data, encoder)
        # Where the epoch stands: its order, next batch, loss so far.
        self.perm, self.start, self.total, self.nearest = None, 0, 0.0, None

    def _rank(self, emb: Tensor, links: Tensor) -> Dict[str, Dict[str, float]]:
        cfg = self.config
        if cfg.eval_top_k is not None:
            return evaluate_top_k(emb, emb, links, cfg.eval_top_k)
        return evaluate_alignment(emb, emb, links, csls_k=cfg.csls_k)

    def rounds(self) -> int:
        return 1 + (self.config.semi_rounds if self.config.semi else 0)

    def epochs(self, round_: int) -> int:
        return self.config.epochs if round_ == 0 else self.config.semi_epochs

    def begin_round(self, round_: int):
        self.nearest = None

    def run_epoch(self, epoch: int) -> float:
        cfg, loop = self.config, self.loop
        pairs = loop.train_pairs
        if self.perm is None:  # a new epoch (else resumed inside one)
            if cfg.candidates == 'hard' and epoch % cfg.hard_every == 0:
                with loop.timed('hard_candidates'):
                    self.nearest = nearest_squared(loop.result.embed(), pairs.unique(),
                                                   cfg.hard_candidates)
            self.perm = torch.randperm(pairs.size(1)).to(loop.device)
            self.start, self.total = 0, 0.0
        for start in range(self.start, self.perm.numel(), cfg.batch_size):
            batch = pairs[:, self.perm[start:start + cfg.batch_size]]
            candidates = loss_candidates(cfg.candidates, cfg.num_candidates, batch,
                                         loop.union.num_nodes, self.nearest)
            self.optimizer.zero_grad()
            loss = self._batch_loss(batch, candidates)
            loss.backward()
            self.optimizer.step()
            self.start, self.total = start + cfg.batch_size, self.total + loss.detach()
            loop.step()
        loss = self.total / -(-self.perm.numel() // cfg.batch_size)
        if loop.world > 1:  # the mean of the ranks' shares is the batch loss
            torch.distributed.all_reduce(loss)
            loss /= loop.world
        self.perm, self.start, self.total = None, 0, 0.0
        return float(loss)

    def _batch_loss(self, batch: Tensor, candidates: Optional[Tensor]) -> Tensor:
        loop = self.loop
        return batch_loss(self.encoder, loop.graph, self.loss_fn, batch,
                          loop.union.node_type, loop.rank, loop.world, candidates)

    def evaluate(self, pool: Optional[Tuple[Tensor, Tensor]]) -> Dict:
        # Only the rows evaluation and bootstrapping read: on large pairs
        # the proxy layers over every entity cost memory and time for none.
        others = (torch.cat(pool) if pool is not None
                  else self.eval_pairs.new_empty(0))
        rows, self.eval_local, self.pool_rows = rows_to_embed(self.eval_pairs, others)
        self.emb = self.loop.result.embed(rows)
        if self.names is None:
            return self._rank(self.emb, self.eval_local)
        structure = self._rank(self.emb, self.eval_local)
        self.loop.result.extra_metrics['structure'] = structure
        self.emb = fuse_literal(self.emb, self.names[rows], self.config.literal_weight)
        return dict(self._rank(self.emb, self.eval_local), structure=structure)

    def propose(self, pool_src: Tensor, pool_tgt: Tensor) -> Tuple[Tensor, Tensor]:
        cfg, n = self.config, pool_src.numel()
        emb = F.normalize(self.emb, dim=-1)
        pairs = mutual_nearest_neighbours(
            emb[self.pool_rows[:n]], emb[self.pool_rows[n:]], csls_k=cfg.csls_k,
            decoding=cfg.semi_decoding, tau=cfg.sinkhorn_tau,
            num_iters=cfg.sinkhorn_iters)
        return pairs[0], pairs[1]

    def finish(self):
        cfg = self.config
        with self.loop.timed('decode'):
            for name in (d for d in cfg.decodings.split(',') if d):
                self.loop.result.extra_metrics[name] = evaluate_alignment(
                    self.emb, self.emb, self.eval_local, decoding=name,
                    tau=cfg.sinkhorn_tau, num_iters=cfg.sinkhorn_iters)

    def state_dict(self) -> Dict:
        return dict(super().state_dict(), perm=self.perm, start=self.start,
                    total=self.total, nearest=self.nearest)

    def load_state_dict(self, state: Dict):
        super().load_state_dict(state)
        self.perm, self.start = state['perm'], state['start']
        self.total, self.nearest = state['total'], state['nearest']

    def where(self) -> str:
        at = self.loop.at
        return (f"round {at['round']}, epoch {at['epoch']}, batch "
                f"{-(-self.start // self.config.batch_size)}")

    @classmethod
    def estimate_memory(cls, size: PairSize, cfg, growth: float,
                        candidates: bool = False) -> MemoryEstimate:
        n, c, layers = size.entities, cfg.channels, cfg.num_layers
        growth = LOW_PRECISION_HEAP_GROWTH if low_precision(cfg) and growth > 1 else growth
        edges, dim = size.merged_edges, 2 * (cfg.num_layers + 1) * cfg.channels
        batch = min(cfg.batch_size, max(size.train_links, 1)) * 2  # both sides
        if cfg.candidates == 'all' or cfg.num_candidates >= n:
            cand, rows = n, n
        else:
            cand = cfg.num_candidates + (batch * cfg.hard_candidates
                                         if cfg.candidates == 'hard' else 0)
            cand = min(cand, n)
            rows = min(n, batch + cand)
        common = common_terms(size, GRAPH_BYTES_PER_EDGE)
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
        names = name_terms(size, cfg.name_dim, common, holes=growth > 1) if cfg.literal \
            else None
        width = dim + (names['width'] if names else 0)
        if cfg.eval_top_k:
            scoring = scoring_bytes(links, links, width, cfg.eval_top_k)
        else:
            scoring = csls_bytes(links, links, width)
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
            phases['encoding'] = dict(encoding=max(names['encoding'], csls_bytes(
                links, links, names['width'])))
        return largest_phase(common, phases, growth)

    @classmethod
    def fitting_steps(cls, size: PairSize, cfg) -> List[Dict]:
        steps: List[Dict] = []
        if cfg.candidates == 'all' and size.entities > 4096:
            steps.append(dict(candidates='random', num_candidates=4096))
        steps += [dict(batch_size=cfg.batch_size // 2 ** i) for i in (1, 2, 3)
                  if cfg.batch_size // 2 ** i >= 256]
        steps += [dict(channels=cfg.channels // 2 ** i) for i in (1, 2)
                  if cfg.channels // 2 ** i >= 32]
        return steps

    @classmethod
    def scale_settings(cls, data: HeteroData) -> Dict:
        r"""Random loss candidates in batches grown with the seed links
        (about five steps per epoch), float32 (bfloat16 ran slower: 100K, an
        epoch and its evaluation 99.5 s against 82.5); above
        :data:`~torch_geometric_ea.train.scale.MILLION_ENTITIES` also 64
        channels and cosine top-10 ranking (see
        :mod:`~torch_geometric_ea.train.scale`)."""
        num_train = int(data[LINK].train_mask.sum())
        settings = dict(candidates='random', num_candidates=4096, precision='float32',
                        batch_size=scale.scale_batch_size(num_train))
        if scale.num_entities(data) > scale.MILLION_ENTITIES:
            settings.update(channels=64, eval_top_k=10)
        return settings

    @classmethod
    def keeps_freed_memory(cls, data: HeteroData) -> bool:
        r"""Not above :data:`~torch_geometric_ea.train.scale.MILLION_ENTITIES`,
        where training tensors of hundreds of MiB fragment the heap (the 1M
        pair's run was resident at 19.6 GiB in training; with glibc's
        defaults it peaks at 12.45 GiB)."""
        return scale.num_entities(data) <= scale.MILLION_ENTITIES


def train_dual_amn(data: HeteroData, config: Optional[DualAMNConfig] = None,
                   progress: bool = True, callback=None,
                   name_encoder: Optional[NameEncoder] = None,
                   checkpoints: Optional[Checkpoints] = None) -> TrainResult:
    r"""Trains Dual-AMN on a KG pair with its train links, evaluates on its
    test links with CSLS, and with ``config.semi`` runs the bootstrapping
    rounds: embed, pair the still-unaligned entities of the pool that are
    mutual CSLS nearest neighbours, add them to the training pairs, train
    ``semi_epochs`` more epochs. The pool is the test entities
    (``config.bootstrap='transductive'``, the paper's protocol) or every
    entity without a training link (``'inductive'``); ``result.protocol``
    says which. The same as ``DualAMNSpec.fit`` (see
    :func:`~torch_geometric_ea.train.loop.fit` for the arguments);
    ``name_encoder`` maps entity names to vectors for ``config.literal``
    (default: :func:`~torch_geometric_ea.data.names.default_name_encoder`)."""
    return DualAMNSpec.fit(data, config, progress=progress, callback=callback,
                           checkpoints=checkpoints, name_encoder=name_encoder)
