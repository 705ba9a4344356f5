r"""GCN-Align (Wang et al., EMNLP 2018) as a registered model, trained as
its official implementation does: full-batch plain SGD on a margin loss
over :math:`L_1` distances, with uniform negatives redrawn every few
epochs; evaluated by :math:`L_1` distance, with CSLS as an extra."""
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.pair import SRC, TGT
from torch_geometric_ea.metrics import evaluate_alignment, evaluate_alignment_distance
from torch_geometric_ea.nn import (
    GCNAlign,
    MarginRankingL1Loss,
    gcn_align_adjacency,
    uniform_negatives,
)
from torch_geometric_ea.train.checkpoint import Checkpoints
from torch_geometric_ea.train.common import TrainResult
from torch_geometric_ea.train.config import check_config
from torch_geometric_ea.train.memory import (
    EVAL_ROWS,
    FLOAT,
    INDEX,
    MemoryEstimate,
    PairSize,
    common_terms,
    largest_phase,
)
from torch_geometric_ea.train.registry import register_model
from torch_geometric_ea.train.spec import AlignerSpec

__all__ = ['GCNAlignConfig', 'GCNAlignSpec', 'train_gcn_align', 'union_features']


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
    precision: str = 'auto'

    def __post_init__(self):
        check_config(self, minimum=dict(
            channels=1, num_layers=1, attr_channels=1, min_weight=0, epochs=1,
            num_negatives=1, resample_every=1, eval_every=0, csls_k=1, lr=0),
            fractions=('beta',))


def union_features(data: HeteroData) -> Optional[Tensor]:
    r"""The node features of both KGs stacked in union order, or
    :obj:`None` when either KG has none."""
    x_src, x_tgt = data[SRC].get('x'), data[TGT].get('x')
    if x_src is None or x_tgt is None:
        return None
    if x_src.size(1) != x_tgt.size(1):
        raise ValueError(f"the KGs' features differ in size: {x_src.size(1)} "
                         f"and {x_tgt.size(1)}")
    return torch.cat([x_src.float(), x_tgt.float()], dim=0)


@register_model
class GCNAlignSpec(AlignerSpec):
    r"""GCN-Align: :class:`~torch_geometric_ea.nn.GCNAlign`, one full-batch
    SGD step per epoch on :class:`~torch_geometric_ea.nn.MarginRankingL1Loss`
    over all training pairs, negatives from
    :func:`~torch_geometric_ea.nn.uniform_negatives` over all entities of
    both KGs redrawn every ``resample_every`` epochs (a generator of its
    own); with attributes the attribute channel gets its own loss on the
    same negatives (the official code trains the two channels as two
    models). Evaluated by :math:`L_1` distance; CSLS over cosine at the end
    (``result.extra_metrics['csls']``)."""
    name = 'gcn-align'
    config_class = GCNAlignConfig
    module_class = GCNAlign

    @classmethod
    def build_graph(cls, union, data: HeteroData, config):
        graph = gcn_align_adjacency(union.edge_index, union.edge_type,
                                    union.num_nodes, union.num_relations,
                                    config.min_weight)
        x = union_features(data) if config.attributes else None
        if x is not None:
            graph.x = x
        return graph

    def __init__(self, loop, **options):
        super().__init__(loop)
        cfg, x = self.config, loop.graph.x
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.init_args = dict(num_nodes=loop.union.num_nodes, channels=cfg.channels,
                              num_layers=cfg.num_layers,
                              in_channels=None if x is None else x.size(1),
                              attr_channels=cfg.attr_channels, beta=cfg.beta)
        self.model = GCNAlign(**self.init_args).to(loop.device)
        self.loss_fn = MarginRankingL1Loss(cfg.gamma)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr)
        self.protocol = dict(ranking='l1')
        self.negatives = None

    def run_epoch(self, epoch: int) -> float:
        cfg, loop = self.config, self.loop
        if epoch % cfg.resample_every == 0:
            self.negatives = uniform_negatives(loop.train_pairs, cfg.num_negatives,
                                               loop.union.num_nodes, self.generator)
        self.optimizer.zero_grad()
        h_s, h_a = self.model.channel_outputs(loop.graph)
        loss = self.loss_fn(h_s, loop.train_pairs, self.negatives)
        if h_a is not None:
            loss = loss + self.loss_fn(h_a, loop.train_pairs, self.negatives)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def evaluate(self, pool) -> Dict:
        emb = self.loop.result.embed()
        return evaluate_alignment_distance(emb, emb, self.loop.test_pairs, p=1)

    def finish(self):
        with self.loop.timed('evaluate'):
            emb = self.loop.result.embed()
            self.loop.result.extra_metrics['csls'] = evaluate_alignment(
                emb, emb, self.loop.test_pairs, csls_k=self.config.csls_k)

    def state_dict(self) -> Dict:
        return dict(super().state_dict(), generator=self.generator.get_state(),
                    negatives=self.negatives)

    def load_state_dict(self, state: Dict):
        super().load_state_dict(state)
        self.generator.set_state(state['generator'])
        self.negatives = state['negatives']

    @classmethod
    def estimate_memory(cls, size: PairSize, cfg, growth: float,
                        candidates: bool = False) -> MemoryEstimate:
        n, c = size.entities, cfg.channels
        common = common_terms(size, 3 * INDEX * 2)
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
        return largest_phase(common, dict(train=dict(activations=train),
                                          evaluate=dict(evaluation=evaluation)), growth)

    @classmethod
    def fitting_steps(cls, size: PairSize, cfg) -> List[Dict]:
        return [dict(channels=cfg.channels // 2), dict(attributes=False)]


def train_gcn_align(data: HeteroData, config: Optional[GCNAlignConfig] = None,
                    progress: bool = True, callback=None,
                    checkpoints: Optional[Checkpoints] = None) -> TrainResult:
    r"""Trains GCN-Align on a KG pair with its train links and evaluates on
    its test links by :math:`L_1` distance (the paper's evaluation), with
    CSLS over cosine similarity as an extra evaluation
    (``result.extra_metrics['csls']``); see :class:`GCNAlignSpec` and
    :func:`~torch_geometric_ea.train.loop.fit` for the arguments."""
    return GCNAlignSpec.fit(data, config, progress=progress, callback=callback,
                            checkpoints=checkpoints)
