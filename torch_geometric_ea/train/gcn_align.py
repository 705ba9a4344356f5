r"""Training GCN-Align on a KG pair as its official implementation does:
full-batch plain SGD on a margin loss over :math:`L_1` distances, with
uniform negatives redrawn every few epochs."""
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from torch_geometric_ea.data.pair import SRC, TGT
from torch_geometric_ea.metrics import evaluate_alignment, evaluate_alignment_distance
from torch_geometric_ea.nn import (
    GCNAlign,
    MarginRankingL1Loss,
    gcn_align_adjacency,
    uniform_negatives,
)
from torch_geometric_ea.train.checkpoint import (
    Checkpoints,
    random_state,
    set_random_state,
)
from torch_geometric_ea.train.common import TrainResult, prepare_run
from torch_geometric_ea.train.config import check_config

__all__ = ['GCNAlignConfig', 'train_gcn_align']


@dataclass
class GCNAlignConfig:
    r"""Hyper-parameters of a GCN-Align run; the defaults are those of the
    official implementation (structure dimension 200, attribute dimension
    100, learning rate 20, 2000 epochs, margin 3, 5 negatives per side
    redrawn every 10 epochs, :math:`\beta = 0.9`).

    ``num_negatives`` is the number of negatives per side and seed pair;
    ``eval_every`` evaluates every so many epochs besides the end
    (:obj:`0`: at the end only); ``attributes`` uses the pair's node
    features ``data['src'].x`` and ``data['tgt'].x`` when both exist.

    ``device`` is where the run's tensors live (:obj:`None`: CUDA when
    available, else the CPU; see
    :func:`~torch_geometric_ea.train.resolve_device`)."""
    channels: int = 200
    num_layers: int = 2
    attr_channels: int = 100
    beta: float = 0.9
    min_weight: float = 0.3
    lr: float = 20.0
    epochs: int = 2000
    gamma: float = 3.0
    num_negatives: int = 5
    resample_every: int = 10
    eval_every: int = 0
    attributes: bool = True
    csls_k: int = 10
    seed: int = 0
    device: Optional[str] = None

    def __post_init__(self):
        check_config(self, minimum=dict(
            channels=1, num_layers=1, attr_channels=1, min_weight=0, epochs=1,
            num_negatives=1, resample_every=1, eval_every=0, csls_k=1, lr=0),
            fractions=('beta',))


def _union_features(data: HeteroData) -> Optional[Tensor]:
    r"""The node features of both KGs stacked in union order, or
    :obj:`None` when either KG has none."""
    x_src, x_tgt = data[SRC].get('x'), data[TGT].get('x')
    if x_src is None or x_tgt is None:
        return None
    if x_src.size(1) != x_tgt.size(1):
        raise ValueError(f"the KGs' features differ in size: {x_src.size(1)} "
                         f"and {x_tgt.size(1)}")
    return torch.cat([x_src.float(), x_tgt.float()], dim=0)


def train_gcn_align(data: HeteroData, config: Optional[GCNAlignConfig] = None,
                    progress: bool = True,
                    callback: Optional[Callable[[str, Dict], None]] = None,
                    checkpoints: Optional[Checkpoints] = None) -> TrainResult:
    r"""Trains GCN-Align on a KG pair with its train links and evaluates on
    its test links by :math:`L_1` distance (the paper's evaluation), with
    CSLS over cosine similarity as an extra evaluation
    (``result.extra_metrics['csls']``).

    Every epoch is one full-batch step of plain SGD on
    :class:`~torch_geometric_ea.nn.MarginRankingL1Loss` over all training
    pairs; negatives come from
    :func:`~torch_geometric_ea.nn.uniform_negatives` over all entities of
    both KGs and are redrawn every ``resample_every`` epochs. With
    attributes, the attribute channel gets its own loss on the same
    negatives (the official code trains the two channels as two models).

    Args:
        data (HeteroData): A KG pair (see :mod:`torch_geometric_ea.data`).
        config (GCNAlignConfig, optional): Hyper-parameters.
        progress (bool, optional): Show a progress bar. (default: :obj:`True`)
        callback (callable, optional): Called as ``callback(stage, info)``
            after each evaluation with its metrics.
        checkpoints (Checkpoints, optional): Write checkpoints (and stop
            on request) there, or resume from its checkpoint (see
            :mod:`~torch_geometric_ea.train.checkpoint`).
    """
    cfg = config or GCNAlignConfig()
    timings: Dict[str, float] = {}
    t0 = time.perf_counter()
    generator = torch.Generator().manual_seed(cfg.seed)
    x = _union_features(data) if cfg.attributes else None

    def build_graph(union):
        graph = gcn_align_adjacency(union.edge_index, union.edge_type,
                                    union.num_nodes, union.num_relations,
                                    cfg.min_weight)
        if x is not None:
            graph.x = x
        return graph

    run = prepare_run(data, cfg.seed, cfg.device, build_graph)
    union, graph, device = run.union, run.graph, run.device
    train_pairs, test_pairs = run.train_pairs, run.test_pairs
    init_args = dict(num_nodes=union.num_nodes, channels=cfg.channels,
                     num_layers=cfg.num_layers,
                     in_channels=None if x is None else x.size(1),
                     attr_channels=cfg.attr_channels, beta=cfg.beta)
    model = GCNAlign(**init_args).to(device)
    loss_fn = MarginRankingL1Loss(cfg.gamma)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    result = TrainResult(model, graph, metrics={}, init_args=init_args,
                         protocol=dict(bootstrapping=None, ranking='l1'))
    timings['prepare'] = time.perf_counter() - t0

    timings['train'] = timings['evaluate'] = timings['bootstrap'] = 0.0
    every = cfg.eval_every if cfg.eval_every > 0 else max(cfg.epochs, 1)
    stops = sorted(set(range(every, cfg.epochs, every)) | {cfg.epochs})
    epoch, loss, negatives = 0, torch.zeros((), device=device), None
    saved = checkpoints.start('gcn-align', data, cfg) if checkpoints else None
    if saved is not None:
        model.load_state_dict(saved['model'])
        optimizer.load_state_dict(saved['optimizer'])
        set_random_state(saved['random'])
        generator.set_state(saved['generator'])
        epoch, loss, negatives = saved['epoch'], saved['loss'], saved['negatives']
        result.history = saved['history']
        timings.update(saved['timings'], prepare=timings['prepare'])

    def state() -> Dict:
        return dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                    random=random_state(), generator=generator.get_state(),
                    epoch=epoch, loss=loss.detach(), negatives=negatives,
                    history=result.history, timings=dict(timings))

    bar = tqdm(initial=epoch, total=cfg.epochs, disable=not progress, leave=False)
    for round_ in range(len(result.history), len(stops)):
        t = time.perf_counter()
        model.train()
        stop = stops[round_]
        while epoch < stop:
            if epoch % cfg.resample_every == 0:
                negatives = uniform_negatives(train_pairs, cfg.num_negatives,
                                              union.num_nodes, generator)
            optimizer.zero_grad()
            h_s, h_a = model.channel_outputs(graph)
            loss = loss_fn(h_s, train_pairs, negatives)
            if h_a is not None:
                loss = loss + loss_fn(h_a, train_pairs, negatives)
            loss.backward()
            optimizer.step()
            epoch += 1
            bar.update()
            bar.set_postfix(loss=f'{loss.item():.4f}', refresh=False)
            if checkpoints:
                timings['train'] += time.perf_counter() - t
                checkpoints.epoch_end(state, f'epoch {epoch}')
                t = time.perf_counter()
        train_seconds = time.perf_counter() - t
        timings['train'] += train_seconds
        train_seconds = timings['train'] - sum(h['train_seconds']
                                               for h in result.history)

        t = time.perf_counter()
        emb = result.embed()
        metrics = evaluate_alignment_distance(emb, emb, test_pairs, p=1)
        timings['evaluate'] += time.perf_counter() - t
        info = dict(round=round_, epochs=stop - stops[round_ - 1] if round_ else stop,
                    loss=loss.item(), train_pairs=train_pairs.size(1),
                    train_seconds=train_seconds, **metrics)
        result.history.append(info)
        if callback is not None:
            callback('round', info)
    bar.close()
    emb = result.embed()

    t = time.perf_counter()
    result.extra_metrics['csls'] = evaluate_alignment(emb, emb, test_pairs,
                                                      csls_k=cfg.csls_k)
    timings['evaluate'] += time.perf_counter() - t
    result.metrics = {k: v for k, v in result.history[-1].items() if '->' in k}
    timings['total'] = time.perf_counter() - t0
    result.timings = timings
    return result
