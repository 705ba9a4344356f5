r"""What every training function returns, and resource measurements."""
import resource
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

__all__ = ['TrainResult', 'peak_memory_gib', 'process_group']


@dataclass
class TrainResult:
    r"""What a run produces: the model, the union-graph structure it runs
    on (``model(graph)`` embeds every union node), the final metrics per
    direction under the model's own evaluation, the metrics after each
    round, wall time per phase (seconds), the number of bootstrapped pairs,
    metrics under other evaluations (e.g. ``{'csls': {...}}``) and the
    arguments that rebuild the model."""
    model: torch.nn.Module
    graph: object
    metrics: Dict[str, Dict[str, float]]
    history: List[Dict] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)
    num_new_pairs: List[int] = field(default_factory=list)
    extra_metrics: Dict[str, Dict[str, Dict[str, float]]] = field(default_factory=dict)
    init_args: Dict = field(default_factory=dict)

    @torch.no_grad()
    def embed(self, index: Optional[Tensor] = None) -> Tensor:
        r"""Embeddings of every union node in evaluation mode, or of the
        nodes ``index`` for models that embed a subset
        (:class:`~torch_geometric_ea.nn.DualAMN`)."""
        was_training = self.model.training
        self.model.eval()
        out = (self.model(self.graph) if index is None
               else self.model(self.graph, index))
        self.model.train(was_training)
        return out


def peak_memory_gib() -> float:
    r"""Peak resident memory of this process so far, in GiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == 'darwin' else peak / 2**20


def process_group() -> Tuple[int, int]:
    r"""This process's rank and the number of processes of the default
    :mod:`torch.distributed` group, or :obj:`(0, 1)` outside one."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
