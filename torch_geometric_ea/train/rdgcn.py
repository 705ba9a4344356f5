r"""Training RDGCN on a KG pair as its official implementation does: full
batch Adam on a margin loss over :math:`L_1` distances whose negatives are
the nearest neighbours of the seed entities, refreshed every few epochs,
and evaluation by :math:`L_1` distance."""
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from torch_geometric_ea.data.names import (
    default_name_encoder,
    encode_names,
    names_info,
    project_columns,
)
from torch_geometric_ea.metrics import evaluate_alignment, evaluate_alignment_distance
from torch_geometric_ea.nn import RDGCN, rdgcn_dual_graph
from torch_geometric_ea.nn.functional import eager_float_kernel
from torch_geometric_ea.train.checkpoint import (
    Checkpoints,
    random_state,
    set_random_state,
)
from torch_geometric_ea.train.common import TrainResult, prepare_run
from torch_geometric_ea.train.config import check_config

__all__ = ['RDGCNConfig', 'train_rdgcn', 'l1_nearest', 'chunked_margin_l1_loss']

FEATURES = ('names', 'learned')


@dataclass
class RDGCNConfig:
    r"""Hyper-parameters of an RDGCN run; the defaults are the official
    implementation's (``include/Config.py`` and ``main.py``).

    ``features`` picks the entity table's initialisation: ``'names'``
    (the entity names by
    :func:`~torch_geometric_ea.data.names.default_name_encoder`: word +
    character-bigram features of translated names, projected to
    ``channels`` columns by
    :func:`~torch_geometric_ea.data.names.project_columns`, or hashed
    n-grams of the URIs' names; the paper uses word vectors of the
    translated names alone) or ``'learned'`` (random, structure
    only). ``negative_candidates``, when set, pre-selects that many
    candidates per seed entity by Euclidean distance (one matrix product)
    before the exact :math:`L_1` ranking; :obj:`None` ranks all entities by
    :math:`L_1` as the official code does (much slower on CPU).
    ``chunk_size`` rows are ranked at once (negatives, evaluation) and
    ``loss_chunk_size`` seed pairs form one block of the loss. With
    ``eval_every`` above 0 the model is also evaluated every that many
    epochs (the official code does every 10).

    ``device`` is where the run's tensors live (:obj:`None`: CUDA when
    available, else the CPU; see
    :func:`~torch_geometric_ea.train.resolve_device`)."""
    channels: int = 300
    features: str = 'names'
    alpha: float = 0.1
    beta: float = 0.3
    num_layers: int = 2
    gamma: float = 1.0
    num_negatives: int = 125
    negative_every: int = 10
    negative_candidates: Optional[int] = None
    lr: float = 0.001
    epochs: int = 600
    chunk_size: int = 256
    loss_chunk_size: int = 64
    eval_every: int = 0
    csls_k: int = 10
    seed: int = 0
    device: Optional[str] = None

    def __post_init__(self):
        check_config(self, minimum=dict(
            channels=1, num_layers=1, num_negatives=1, negative_every=1,
            negative_candidates=1, epochs=1, chunk_size=1, loss_chunk_size=1,
            eval_every=0, csls_k=1, lr=0),
            choices=dict(features=FEATURES))


def _chunks(num: int, size: int) -> Iterator[slice]:
    if size < 1:
        raise ValueError(f"'chunk_size' must be positive (got {size})")
    for start in range(0, num, size):
        yield slice(start, min(start + size, num))


@torch.no_grad()
def l1_nearest(query: Tensor, x: Tensor, k: int, chunk_size: int = 256,
               candidates: Optional[int] = None) -> Tensor:
    r"""The :math:`k` rows of ``x`` nearest to each row of ``query`` by
    :math:`L_1` distance :math:`\|\mathbf{q}_i - \mathbf{x}_j\|_1` (the query
    itself included when it is a row of ``x``, as in the official code).

    Args:
        query (torch.Tensor): Queries :math:`(Q, D)`.
        x (torch.Tensor): Candidates :math:`(N, D)`.
        k (int): Neighbours per query (at most :math:`N`).
        chunk_size (int, optional): Queries ranked at once.
            (default: :obj:`256`)
        candidates (int, optional): If set, only the that many nearest
            rows by Euclidean distance are ranked by :math:`L_1` (an
            approximation). (default: :obj:`None`)

    Returns:
        torch.Tensor: Indices into ``x`` :math:`(Q, k)`, nearest first.

    .. note::
        Peak memory is :math:`O(\text{chunk\_size} \cdot N)`, plus
        :math:`O(\text{chunk\_size} \cdot \text{candidates} \cdot D)` with
        candidates.
    """
    num = x.size(0)
    if not 0 < k <= num:
        raise ValueError(f"'k' must be in [1, {num}] (got {k})")
    out = torch.empty(query.size(0), k, dtype=torch.long, device=x.device)
    use_candidates = candidates is not None and k <= candidates < num
    sq_norm = x.pow(2).sum(1) if use_candidates else None
    for rows in _chunks(query.size(0), chunk_size):
        q = query[rows]
        if use_candidates:
            dist2 = torch.addmm(sq_norm, q, x.t(), alpha=-2)  # |x|^2 - 2 q.x
            cand = dist2.topk(candidates, dim=1, largest=False).indices
            dist = torch.empty(cand.shape, dtype=x.dtype, device=x.device)
            for sub in _chunks(cand.size(0), 16):  # gathered rows stay in cache
                near = x.index_select(0, cand[sub].reshape(-1))
                near = near.view(-1, candidates, x.size(1)).sub_(q[sub].unsqueeze(1))
                dist[sub] = torch.linalg.vector_norm(near, ord=1, dim=-1)
            out[rows] = cand.gather(1, dist.topk(k, dim=1, largest=False).indices)
        else:
            dist = torch.cdist(q, x, p=1)
            out[rows] = dist.topk(k, dim=1, largest=False).indices
    return out


class _ChunkedMarginL1(torch.autograd.Function):
    r"""The margin loss of :class:`~torch_geometric_ea.nn.MarginRankingL1Loss`
    (sum, not mean) computed over blocks of seed pairs, each block's
    gradient with respect to :math:`\mathbf{x}` accumulated while its
    differences exist: with :math:`\mathbf{s} = \mathrm{sign}(\mathbf{x}_u -
    \mathbf{x}_v)`, an active term :math:`[d(a, b) + \gamma - d(u, v)]_+`
    sends :math:`\pm\mathbf{s}_{ab}` to :math:`a, b` and
    :math:`\mp\mathbf{s}_{uv}` to :math:`u, v`. The gradient is formed in
    the forward pass, so it is first-order only (``once_differentiable``)."""
    @staticmethod
    def forward(ctx, x: Tensor, pairs: Tensor, negatives: Tensor, gamma: float,
                chunk_size: int) -> Tensor:
        grad = torch.zeros_like(x)
        grad_neg = torch.zeros_like(x)  # subtracted from grad at the end
        total = x.new_zeros(())
        for rows in _chunks(pairs.size(1), chunk_size):
            left, right = pairs[0, rows], pairs[1, rows]
            x_left, x_right = x[left], x[right]
            sign_pos = x_left - x_right
            pos = sign_pos.abs().sum(-1, keepdim=True)
            pos += gamma
            sign_pos.sign_()
            grad_left = torch.zeros_like(x_left)
            grad_right = torch.zeros_like(x_right)
            count = 0
            # Side 0 replaces the left entity: d(u, b); side 1 the right: d(a, v).
            for neg, other, grad_other in (
                    (negatives[0, rows], x_right, grad_right),
                    (negatives[1, rows], x_left, grad_left)):
                k, flat = neg.size(1), neg.reshape(-1)
                diff = x.index_select(0, flat).view(-1, k, x.size(1))
                diff = diff.sub_(other.unsqueeze(1)).view(flat.numel(), -1)
                viol = pos - diff.abs().sum(-1).view(-1, k)
                active = viol > 0
                total += viol.clamp_min_(0).sum()
                count = count + active.sum(1, keepdim=True)
                idx = active.view(-1).nonzero().view(-1)
                if idx.numel() < flat.numel():  # keep the active terms only
                    diff, flat = diff.index_select(0, idx), flat.index_select(0, idx)
                sign = diff.sign_()  # d/dx_u of d(u, b) (or of d(v, a))
                grad_neg.index_add_(0, flat, sign)
                grad_other.index_add_(0, idx // k, sign)
            grad_left.addcmul_(count, sign_pos)
            grad_right.addcmul_(count, sign_pos, value=-1.0)
            grad.index_add_(0, left, grad_left)
            grad.index_add_(0, right, grad_right)
        grad -= grad_neg
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        grad, = ctx.saved_tensors
        return grad * grad_out, None, None, None, None


def chunked_margin_l1_loss(x: Tensor, pairs: Tensor, negatives: Tensor,
                           gamma: float = 1.0, chunk_size: int = 64) -> Tensor:
    r"""The loss of :class:`~torch_geometric_ea.nn.MarginRankingL1Loss`,

    .. math::
        \mathcal{L} = \frac{1}{2 B k} \sum_{i, j} \Big(
        \big[d(a_i, b_i) + \gamma - d(a'_{ij}, b_i)\big]_+ +
        \big[d(a_i, b_i) + \gamma - d(a_i, b'_{ij})\big]_+ \Big),

    computed ``chunk_size`` seed pairs at a time with the gradient formed in
    the same pass, so memory is :math:`O(\text{chunk\_size} \cdot k \cdot
    D)` instead of autograd's several :math:`B k D` tensors.

    Args:
        x (torch.Tensor): Embeddings :math:`(N, D)`.
        pairs (torch.Tensor): Seed pairs :math:`(2, B)`.
        negatives (torch.Tensor): :math:`(2, B, k)`: row 0 replaces the
            left entity, row 1 the right one.
        gamma (float, optional): The margin. (default: :obj:`1.0`)
        chunk_size (int, optional): Seed pairs per block (small blocks
            stay in cache). (default: :obj:`64`)
    """
    if negatives.dim() != 3 or negatives.shape[:2] != (2, pairs.size(1)):
        raise ValueError(f"Expected 'negatives' of shape [2, {pairs.size(1)}, "
                         f"k] (got {list(negatives.shape)})")
    total = eager_float_kernel(_ChunkedMarginL1.apply)(x, pairs, negatives, gamma,
                                                       chunk_size)
    return total / (2 * negatives[0].numel())


def train_rdgcn(data: HeteroData, config: Optional[RDGCNConfig] = None,
                progress: bool = True,
                callback: Optional[Callable[[str, Dict], None]] = None,
                checkpoints: Optional[Checkpoints] = None) -> TrainResult:
    r"""Trains RDGCN on a KG pair with its train links and evaluates on its
    test links as the official code does, by :math:`L_1` distance between
    test entities (``result.metrics``), and also by CSLS on the normalised
    embeddings (``result.extra_metrics['csls']``).

    Every ``negative_every`` epochs the ``num_negatives`` entities nearest
    (by :math:`L_1`, among all entities of both KGs) to each seed entity
    become its negatives: those of the right entity replace the left one
    and vice versa (:func:`chunked_margin_l1_loss`).

    Args:
        data (HeteroData): A KG pair (see :mod:`torch_geometric_ea.data`).
        config (RDGCNConfig, optional): Hyper-parameters.
        progress (bool, optional): Show a progress bar. (default: :obj:`True`)
        callback (callable, optional): Called as ``callback('round', info)``
            after the evaluation with its metrics.
        checkpoints (Checkpoints, optional): Write checkpoints (and stop
            on request) there, or resume from its checkpoint (see
            :mod:`~torch_geometric_ea.train.checkpoint`).
    """
    cfg = config or RDGCNConfig()
    timings: Dict[str, float] = {}
    t0 = time.perf_counter()
    run = prepare_run(data, cfg.seed, cfg.device, lambda union: rdgcn_dual_graph(
        union.edge_index, union.edge_type, union.num_nodes, union.num_relations))
    union, graph, device = run.union, run.graph, run.device
    train_pairs, test_pairs = run.train_pairs, run.test_pairs
    x, names_used = None, None
    if cfg.features == 'names':
        encoder = default_name_encoder(data, cfg.channels)
        x = project_columns(encode_names(data, encoder, union=True), cfg.channels,
                            cfg.seed).to(device)
        names_used = names_info(data, encoder)
    init_args = dict(num_nodes=union.num_nodes, num_relations=union.num_relations,
                     channels=cfg.channels, alpha=cfg.alpha, beta=cfg.beta,
                     num_layers=cfg.num_layers)
    model = RDGCN(x=x, **init_args).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    result = TrainResult(model, graph, metrics={}, init_args=init_args,
                         protocol=dict(bootstrapping=None, ranking='l1'))
    if names_used:
        result.protocol['names'] = names_used
    timings['prepare'] = time.perf_counter() - t0

    def evaluate(epochs_done: int, loss: Tensor):
        t = time.perf_counter()
        emb = result.embed()
        metrics = evaluate_alignment_distance(emb, emb, test_pairs, p=1.0,
                                              ks=(1, 5, 10, 50, 100))
        result.extra_metrics['csls'] = evaluate_alignment(emb, emb, test_pairs,
                                                          csls_k=cfg.csls_k)
        timings['evaluate'] += time.perf_counter() - t
        seen = sum(h['train_seconds'] for h in result.history)
        since = epochs_done - sum(h['epochs'] for h in result.history)
        info = dict(round=len(result.history), epochs=since,
                    loss=loss.item(), train_pairs=train_pairs.size(1),
                    train_seconds=timings['train'] - seen, **metrics)
        result.history.append(info)
        if callback is not None:
            callback('round', info)
        return metrics

    timings['train'] = timings['negatives'] = timings['evaluate'] = 0.0
    timings['bootstrap'] = 0.0
    k = min(cfg.num_negatives, union.num_nodes)
    negatives, loss = None, torch.tensor(float('nan'), device=device)
    epoch = 0
    saved = checkpoints.start('rdgcn', data, cfg) if checkpoints else None
    if saved is not None:
        model.load_state_dict(saved['model'])
        optimizer.load_state_dict(saved['optimizer'])
        set_random_state(saved['random'])
        epoch, loss, negatives = saved['epoch'], saved['loss'], saved['negatives']
        result.history, result.extra_metrics = saved['history'], saved['extra_metrics']
        timings.update(saved['timings'], prepare=timings['prepare'])

    def state() -> Dict:
        return dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                    random=random_state(), epoch=epoch, loss=loss.detach(),
                    negatives=negatives, history=result.history,
                    extra_metrics=result.extra_metrics, timings=dict(timings))

    model.train()
    bar = tqdm(range(epoch, cfg.epochs), desc='rdgcn', disable=not progress,
               leave=False)
    t = time.perf_counter()
    for epoch in bar:
        optimizer.zero_grad()
        emb = model(graph)
        if epoch % cfg.negative_every == 0:  # from this epoch's embeddings
            t_neg = time.perf_counter()
            out = emb.detach()
            negatives = torch.stack([
                l1_nearest(out[train_pairs[side]], out, k, cfg.chunk_size,
                           cfg.negative_candidates)
                for side in (1, 0)])  # right's neighbours replace the left
            timings['negatives'] += time.perf_counter() - t_neg
        loss = chunked_margin_l1_loss(emb, train_pairs, negatives, cfg.gamma,
                                      cfg.loss_chunk_size)
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f'{loss.item():.4f}')
        epoch = done = epoch + 1
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.epochs:
            timings['train'] += time.perf_counter() - t
            evaluate(done, loss)
            t = time.perf_counter()
        if checkpoints:
            timings['train'] += time.perf_counter() - t
            checkpoints.epoch_end(state, f'epoch {done}')
            t = time.perf_counter()
    timings['train'] += time.perf_counter() - t
    metrics = evaluate(cfg.epochs, loss)
    result.metrics = metrics
    timings['total'] = time.perf_counter() - t0
    result.timings = timings
    return result
