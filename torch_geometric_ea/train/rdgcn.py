r"""RDGCN (Wu et al., IJCAI 2019) as a registered model, trained as its
official implementation does: full-batch Adam on a margin loss over
:math:`L_1` distances whose negatives are the nearest neighbours of the
seed entities, refreshed every few epochs; evaluated by :math:`L_1`
distance, with CSLS as an extra."""
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.names import (
    NameEncoder,
    default_name_encoder,
    encode_names,
    names_info,
    project_columns,
)
from torch_geometric_ea.metrics import evaluate_alignment, evaluate_alignment_distance
from torch_geometric_ea.nn import RDGCN, rdgcn_dual_graph
from torch_geometric_ea.nn.margin_loss import chunked_margin_l1_loss
from torch_geometric_ea.nn.sampling import l1_nearest
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
    name_terms,
)
from torch_geometric_ea.train.registry import register_model
from torch_geometric_ea.train.spec import AlignerSpec

__all__ = ['RDGCNConfig', 'RDGCNSpec', 'train_rdgcn', 'l1_nearest',
           'chunked_margin_l1_loss']

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
    precision: str = 'auto'

    def __post_init__(self):
        check_config(self, minimum=dict(
            channels=1, num_layers=1, num_negatives=1, negative_every=1,
            negative_candidates=1, epochs=1, chunk_size=1, loss_chunk_size=1,
            eval_every=0, csls_k=1, lr=0),
            choices=dict(features=FEATURES))


@register_model
class RDGCNSpec(AlignerSpec):
    r"""RDGCN: :class:`~torch_geometric_ea.nn.RDGCN` over the dual relation
    graph, one full-batch Adam step per epoch on
    :func:`~torch_geometric_ea.nn.chunked_margin_l1_loss`. Every
    ``negative_every`` epochs the ``num_negatives`` entities nearest (by
    :math:`L_1`, among all entities of both KGs) to each seed entity become
    its negatives (:func:`~torch_geometric_ea.nn.l1_nearest`): those of the
    right entity replace the left one and vice versa. Evaluated by
    :math:`L_1` distance as the official code does, and by CSLS on the
    normalised embeddings (``result.extra_metrics['csls']``)."""
    name = 'rdgcn'
    config_class = RDGCNConfig
    module_class = RDGCN
    #: Fitted to its DBP15K zh_en runs (the negatives change size every
    #: tenth epoch).
    heap_growth = 2.75

    @classmethod
    def build_graph(cls, union, data: HeteroData, config):
        return rdgcn_dual_graph(union.edge_index, union.edge_type, union.num_nodes,
                                union.num_relations)

    @classmethod
    def uses_names(cls, config) -> bool:
        return config.features == 'names'

    def __init__(self, loop, name_encoder: Optional[NameEncoder] = None):
        super().__init__(loop)
        cfg, union = self.config, loop.union
        x = None
        self.protocol = dict(ranking='l1')
        if cfg.features == 'names':
            encoder = name_encoder or default_name_encoder(loop.data, cfg.channels)
            x = project_columns(encode_names(loop.data, encoder, union=True),
                                cfg.channels, cfg.seed).to(loop.device)
            self.protocol['names'] = names_info(loop.data, encoder)
        self.init_args = dict(num_nodes=union.num_nodes,
                              num_relations=union.num_relations,
                              channels=cfg.channels, alpha=cfg.alpha, beta=cfg.beta,
                              num_layers=cfg.num_layers)
        self.model = RDGCN(x=x, **self.init_args).to(loop.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.negatives = None

    def run_epoch(self, epoch: int) -> float:
        cfg, loop = self.config, self.loop
        pairs = loop.train_pairs
        self.optimizer.zero_grad()
        emb = self.model(loop.graph)
        if epoch % cfg.negative_every == 0:  # from this epoch's embeddings
            with loop.timed('negatives'):
                out, k = emb.detach(), min(cfg.num_negatives, loop.union.num_nodes)
                self.negatives = torch.stack([  # right's neighbours replace the left
                    l1_nearest(out[pairs[side]], out, k, cfg.chunk_size,
                               cfg.negative_candidates) for side in (1, 0)])
        loss = chunked_margin_l1_loss(emb, pairs, self.negatives, cfg.gamma,
                                      cfg.loss_chunk_size)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def evaluate(self, pool) -> Dict:
        emb, links = self.loop.result.embed(), self.loop.test_pairs
        metrics = evaluate_alignment_distance(emb, emb, links, p=1.0,
                                              ks=(1, 5, 10, 50, 100))
        self.loop.result.extra_metrics['csls'] = evaluate_alignment(
            emb, emb, links, csls_k=self.config.csls_k)
        return metrics

    def state_dict(self) -> Dict:
        return dict(super().state_dict(), negatives=self.negatives)

    def load_state_dict(self, state: Dict):
        super().load_state_dict(state)
        self.negatives = state['negatives']

    @classmethod
    def estimate_memory(cls, size: PairSize, cfg, growth: float,
                        candidates: bool = False) -> MemoryEstimate:
        n, c, edges = size.entities, cfg.channels, size.merged_edges
        common = common_terms(size, 3 * INDEX * 2)
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
            names = name_terms(size, c, common, kept=False)  # its steps fill the holes
            phases['encoding'] = dict(encoding=names['encoding'] + FLOAT * (
                n * names['width'] + names['width'] * c))
        return largest_phase(common, phases, growth)

    @classmethod
    def fitting_steps(cls, size: PairSize, cfg) -> List[Dict]:
        return [dict(chunk_size=max(1, cfg.chunk_size // 4)),
                dict(channels=cfg.channels // 2)]


def train_rdgcn(data: HeteroData, config: Optional[RDGCNConfig] = None,
                progress: bool = True, callback=None,
                checkpoints: Optional[Checkpoints] = None) -> TrainResult:
    r"""Trains RDGCN on a KG pair with its train links and evaluates on its
    test links as the official code does, by :math:`L_1` distance between
    test entities (``result.metrics``), and also by CSLS on the normalised
    embeddings (``result.extra_metrics['csls']``); see :class:`RDGCNSpec`
    and :func:`~torch_geometric_ea.train.loop.fit` for the arguments."""
    return RDGCNSpec.fit(data, config, progress=progress, callback=callback,
                         checkpoints=checkpoints)
