r"""Training Dual-AMN on a KG pair: the basic run and the semi-supervised
(bootstrapping) rounds of the official implementation."""
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from torch_geometric_ea.data.names import (
    NameEncoder,
    default_name_encoder,
    encode_names,
    names_info,
)
from torch_geometric_ea.metrics import (
    evaluate_alignment,
    evaluate_top_k,
    fuse_literal,
    mutual_nearest_neighbours,
)
from torch_geometric_ea.metrics.ranking import DECODINGS
from torch_geometric_ea.nn import DualAMN, NormalizedHardSampleMiningLoss, dual_amn_graph
from torch_geometric_ea.train.common import (
    BOOTSTRAP,
    TrainResult,
    bootstrap_pool,
    prepare_run,
    process_group,
)
from torch_geometric_ea.train.config import ConfigError, check_config
from torch_geometric_ea.train.checkpoint import (
    Checkpoints,
    random_state,
    set_random_state,
)

__all__ = ['DualAMNConfig', 'train_dual_amn']


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

    def __post_init__(self):
        check_config(self, minimum=dict(
            channels=1, num_layers=1, num_proxies=1, batch_size=1, epochs=1,
            num_candidates=1, hard_candidates=1, hard_every=1, loss_chunk_size=1,
            semi_rounds=1, semi_epochs=1, csls_k=1, eval_links=1, eval_top_k=10,
            sinkhorn_iters=1, name_dim=1, literal_weight=0, lr=0),
            positive=('lam', 'tau', 'sinkhorn_tau'), fractions=('dropout',),
            choices=dict(negatives=('all', 'other'), candidates=CANDIDATES,
                         semi_decoding=('csls', 'sinkhorn'), bootstrap=BOOTSTRAP))
        unknown = [d for d in self.decodings.split(',') if d and d not in DECODINGS]
        if unknown:
            raise ConfigError('decodings', f"names from {DECODINGS} separated "
                              f"by commas", self.decodings)


CANDIDATES = ('all', 'random', 'hard')


@torch.no_grad()
def _nearest(x: Tensor, query: Tensor, k: int, chunk_size: int = 1024) -> Tensor:
    r"""For each entity in ``query``, the ``k`` other entities nearest to it
    by squared Euclidean distance :math:`\|x_j\|^2 - 2 x_q^\top x_j` (+ a
    row constant), as a :math:`(N, k)` table filled on the query rows."""
    k = min(k, x.size(0) - 1)
    out = torch.full((x.size(0), k), -1, dtype=torch.long, device=x.device)
    sq = x.pow(2).sum(1)
    for start in range(0, query.numel(), chunk_size):
        q = query[start:start + chunk_size]
        dist = torch.addmm(sq, x[q], x.t(), alpha=-2)
        dist[torch.arange(q.numel(), device=x.device), q] = float('inf')  # not itself
        out[q] = dist.topk(k, dim=1, largest=False).indices
    return out


def sample_links(links: Tensor, num: Optional[int], seed: int) -> Tensor:
    r"""``num`` of the :math:`(2, L)` ``links`` drawn at random by their own
    generator seeded with ``seed`` (training's random stream is left as it
    is), in their order; all of them when ``num`` is :obj:`None` or at
    least :math:`L`."""
    if num is None or num >= links.size(1):
        return links
    if num < 1:
        raise ValueError(f"'eval_links' must be positive (got {num})")
    gen = torch.Generator().manual_seed(seed)
    keep = torch.randperm(links.size(1), generator=gen)[:num].sort().values
    return links[:, keep.to(links.device)]


def _batch_candidates(cfg: 'DualAMNConfig', batch: Tensor, num_nodes: int,
                      nearest: Optional[Tensor]) -> Optional[Tensor]:
    r"""The loss's candidate entities for a batch (:obj:`None`: all)."""
    if cfg.candidates == 'all' or cfg.num_candidates >= num_nodes:
        return None
    sample = torch.randperm(num_nodes)[:cfg.num_candidates].to(batch.device)
    if cfg.candidates == 'random':
        return sample
    return torch.unique(torch.cat([sample, nearest[batch.reshape(-1)].view(-1)]))


def rows_to_embed(pairs: Tensor, others: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The entities that ``pairs`` :math:`(2, B)` and ``others`` :math:`(K)`
    name (a batch and its loss candidates; test links and the unaligned
    pool): their sorted ids, and ``pairs`` and ``others`` renumbered as
    positions in them. Embed those rows, then index with the two."""
    rows, inverse = torch.unique(torch.cat([pairs.reshape(-1), others]),
                                 return_inverse=True)
    return (rows, inverse[:pairs.numel()].view_as(pairs),
            inverse[pairs.numel():])


def _batch_loss(encoder, graph, loss_fn, batch: Tensor, node_type: Tensor,
                rank: int, world: int, candidates: Optional[Tensor] = None
                ) -> Tensor:
    r"""The loss of a batch of pairs, or with ``world`` processes this rank's
    share of it: its slice ``batch[:, rank::world]`` scaled by
    :math:`W B_r / B`, so that averaging the ranks' gradients (what
    :class:`~torch.nn.parallel.DistributedDataParallel` does) gives the
    gradient of the whole batch's loss.

    With ``candidates``, the model embeds only the rows the loss reads (the
    batch's entities and the candidates), renumbered in that order."""
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


def train_dual_amn(data: HeteroData, config: Optional[DualAMNConfig] = None,
                   progress: bool = True,
                   callback: Optional[Callable[[str, Dict], None]] = None,
                   name_encoder: Optional[NameEncoder] = None,
                   checkpoints: Optional[Checkpoints] = None) -> TrainResult:
    r"""Trains Dual-AMN on a KG pair with its train links, evaluates on its
    test links with CSLS, and with ``config.semi`` runs the bootstrapping
    rounds: embed, pair the still-unaligned entities of the pool that are
    mutual CSLS nearest neighbours, add them to the training pairs, train
    ``semi_epochs`` more epochs. The pool is the test entities
    (``config.bootstrap='transductive'``, the paper's protocol) or every
    entity without a training link (``'inductive'``; always so for a pair
    without test links, whose metrics are NaN). ``result.protocol`` says
    which.

    Inside a :mod:`torch.distributed` process group (e.g. launched by
    ``torchrun``), every process runs the whole encoder and its share of
    each batch's loss; the model is wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel`, so the ranks take
    the same steps as one process with the same seed and batch size.

    Args:
        data (HeteroData): A KG pair (see :mod:`torch_geometric_ea.data`).
        config (DualAMNConfig, optional): Hyper-parameters.
        progress (bool, optional): Show progress bars. (default: :obj:`True`)
        callback (callable, optional): Called as ``callback(stage, info)``
            after each round with its metrics.
        name_encoder (callable, optional): With ``config.literal``, maps a
            list of entity names to vectors (see
            :func:`~torch_geometric_ea.data.encode_names`); the default is
            :func:`~torch_geometric_ea.data.names.default_name_encoder`.
        checkpoints (Checkpoints, optional): Write checkpoints (and stop
            on request) there, or resume from its checkpoint (see
            :mod:`~torch_geometric_ea.train.checkpoint`); one process only.
    """
    cfg = config or DualAMNConfig()
    decodings = [name for name in cfg.decodings.split(',') if name]

    def evaluate(emb: Tensor, links: Tensor) -> Dict[str, Dict[str, float]]:
        if cfg.eval_top_k is not None:
            return evaluate_top_k(emb, emb, links, cfg.eval_top_k)
        return evaluate_alignment(emb, emb, links, csls_k=cfg.csls_k)

    timings: Dict[str, float] = {}
    t0 = time.perf_counter()
    run = prepare_run(data, cfg.seed, cfg.device, lambda union: dual_amn_graph(
        union.edge_index, union.edge_type, union.num_nodes, union.num_relations))
    union, graph, device = run.union, run.graph, run.device
    train_pairs, test_pairs = run.train_pairs, run.test_pairs
    eval_pairs = sample_links(test_pairs, cfg.eval_links, cfg.seed)
    model = DualAMN(union.num_nodes, union.num_relations, cfg.channels,
                    cfg.num_layers, cfg.num_proxies, cfg.dropout).to(device)
    rank, world = process_group()
    encoder = model if world == 1 else DistributedDataParallel(
        model, device_ids=[device] if device.type == 'cuda' else None)
    loss_fn = NormalizedHardSampleMiningLoss(cfg.gamma, cfg.lam, cfg.tau,
                                             cfg.negatives, cfg.loss_chunk_size)
    # Keras' RMSprop, as in the official implementation.
    optimizer = torch.optim.RMSprop(model.parameters(), lr=cfg.lr, alpha=0.9,
                                    eps=1e-7)
    result = TrainResult(model, graph, metrics={}, init_args=dict(
        num_nodes=union.num_nodes, num_relations=union.num_relations,
        channels=cfg.channels, num_layers=cfg.num_layers,
        num_proxies=cfg.num_proxies, dropout=cfg.dropout))
    names = None
    if cfg.literal:
        name_encoder = name_encoder or default_name_encoder(data, cfg.name_dim)
        names = encode_names(data, name_encoder, union=True).to(device)
        result.extra_metrics['names'] = evaluate(names, eval_pairs)
        names_used = names_info(data, name_encoder)
    timings['prepare'] = time.perf_counter() - t0

    pool_src, pool_tgt, protocol = bootstrap_pool(data, union.offset[0],
                                                  test_pairs, cfg.bootstrap)
    rounds = 1 + (cfg.semi_rounds if cfg.semi else 0)
    result.protocol = dict(bootstrapping=protocol if rounds > 1 else None,
                           ranking=(f'cosine top-{cfg.eval_top_k}' if cfg.eval_top_k
                                    else 'csls') + ('+names' if cfg.literal else ''))
    if cfg.literal:
        result.protocol['names'] = names_used
    timings['train'] = timings['evaluate'] = timings['bootstrap'] = 0.0
    # Where the run stands: the next round, epoch and batch, the epoch's
    # order and loss so far; a checkpoint holds it with the tensors.
    at = dict(round=0, epoch=0, start=0, perm=None, total=0.0, losses=[],
              nearest=None)
    saved = checkpoints.start('dual-amn', data, cfg) if checkpoints else None
    if saved is not None:
        model.load_state_dict(saved['model'])
        optimizer.load_state_dict(saved['optimizer'])
        set_random_state(saved['random'])
        at = saved['at']
        train_pairs, pool_src, pool_tgt = (saved[k].to(device) for k in (
            'train_pairs', 'pool_src', 'pool_tgt'))
        for key in ('history', 'num_new_pairs', 'new_pairs'):
            setattr(result, key, saved[key])
        timings.update(saved['timings'], prepare=timings['prepare'])

    def state() -> Dict:
        return dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                    random=random_state(), at=dict(at), train_pairs=train_pairs,
                    pool_src=pool_src, pool_tgt=pool_tgt, history=result.history,
                    num_new_pairs=result.num_new_pairs, new_pairs=result.new_pairs,
                    timings=dict(timings))

    def where() -> str:
        return (f"round {at['round']}, epoch {at['epoch']}, batch "
                f"{-(-at['start'] // cfg.batch_size)}")

    for round_ in range(at['round'], rounds):
        epochs = cfg.epochs if round_ == 0 else cfg.semi_epochs
        t = time.perf_counter()
        model.train()
        bar = tqdm(range(at['epoch'], epochs), desc=f'round {round_}',
                   disable=not progress, leave=False)
        for epoch in bar:
            if at['perm'] is None:  # a new epoch (else resumed inside one)
                if cfg.candidates == 'hard' and epoch % cfg.hard_every == 0:
                    t_hard = time.perf_counter()
                    at['nearest'] = _nearest(result.embed(), train_pairs.unique(),
                                             cfg.hard_candidates)
                    timings['hard_candidates'] = (timings.get('hard_candidates', 0.0)
                                                  + time.perf_counter() - t_hard)
                at.update(perm=torch.randperm(train_pairs.size(1)).to(device),
                          start=0, total=0.0)
            perm = at['perm']
            for start in range(at['start'], perm.numel(), cfg.batch_size):
                batch = train_pairs[:, perm[start:start + cfg.batch_size]]
                candidates = _batch_candidates(cfg, batch, union.num_nodes,
                                               at['nearest'])
                optimizer.zero_grad()
                loss = _batch_loss(encoder, graph, loss_fn, batch,
                                   union.node_type, rank, world, candidates)
                loss.backward()
                optimizer.step()
                at.update(start=start + cfg.batch_size,
                          total=at['total'] + loss.detach())
                if checkpoints and world == 1:
                    timings['train'] += time.perf_counter() - t
                    checkpoints.step(state, where())
                    t = time.perf_counter()
            epoch_loss = at['total'] / -(-perm.numel() // cfg.batch_size)
            if world > 1:  # the mean of the ranks' shares is the batch loss
                torch.distributed.all_reduce(epoch_loss)
                epoch_loss /= world
            at['losses'].append(float(epoch_loss))
            bar.set_postfix(loss=f"{at['losses'][-1]:.3f}")
            at.update(epoch=epoch + 1, perm=None, start=0, total=0.0)
            if checkpoints and world == 1:
                timings['train'] += time.perf_counter() - t
                checkpoints.epoch_end(state, where())
                t = time.perf_counter()
        losses = at['losses']
        train_seconds = time.perf_counter() - t
        timings['train'] += train_seconds
        train_seconds = timings['train'] - sum(h['train_seconds']
                                               for h in result.history)

        t = time.perf_counter()
        # Only the rows evaluation and bootstrapping read: on large pairs
        # the proxy layers over every entity cost memory and time for none.
        pool = (torch.cat([pool_src, pool_tgt]) if round_ + 1 < rounds
                else pool_src[:0])
        rows, eval_local, pool = rows_to_embed(eval_pairs, pool)
        emb = result.embed(rows)
        if names is not None:
            result.extra_metrics['structure'] = evaluate(emb, eval_local)
            emb = fuse_literal(emb, names[rows], cfg.literal_weight)
        metrics = evaluate(emb, eval_local)
        timings['evaluate'] += time.perf_counter() - t
        info = dict(round=round_, epochs=epochs, loss=losses[-1] if losses else float('nan'),
                    losses=losses,
                    train_pairs=train_pairs.size(1), train_seconds=train_seconds,
                    **metrics)
        if names is not None:
            info['structure'] = result.extra_metrics['structure']
        result.history.append(info)
        if callback is not None:
            callback('round', info)

        if round_ + 1 < rounds:
            t = time.perf_counter()
            # a KG whose entities are all paired already: the round adds none
            pairs = pool_src.new_empty(2, 0)
            if pool_src.numel() and pool_tgt.numel():
                emb = F.normalize(emb, dim=-1)
                pairs = mutual_nearest_neighbours(
                    emb[pool[:pool_src.numel()]], emb[pool[pool_src.numel():]],
                    csls_k=cfg.csls_k,
                    decoding=cfg.semi_decoding, tau=cfg.sinkhorn_tau,
                    num_iters=cfg.sinkhorn_iters)
            new = torch.stack([pool_src[pairs[0]], pool_tgt[pairs[1]]])
            keep_src = torch.ones_like(pool_src, dtype=torch.bool)
            keep_src[pairs[0]] = False
            keep_tgt = torch.ones_like(pool_tgt, dtype=torch.bool)
            keep_tgt[pairs[1]] = False
            pool_src, pool_tgt = pool_src[keep_src], pool_tgt[keep_tgt]
            train_pairs = torch.cat([train_pairs, new], dim=1)
            result.num_new_pairs.append(new.size(1))
            result.new_pairs.append(new.cpu())
            timings['bootstrap'] += time.perf_counter() - t
        at.update(round=round_ + 1, epoch=0, losses=[], nearest=None)
        if checkpoints and world == 1 and round_ + 1 < rounds:
            checkpoints.step(state, where())  # a stop asked while evaluating

    t = time.perf_counter()
    for name in decodings:
        result.extra_metrics[name] = evaluate_alignment(
            emb, emb, eval_local, decoding=name, tau=cfg.sinkhorn_tau,
            num_iters=cfg.sinkhorn_iters)
    timings['decode'] = time.perf_counter() - t
    result.metrics = {k: v for k, v in result.history[-1].items() if '->' in k}
    timings['total'] = time.perf_counter() - t0
    result.timings = timings
    return result
