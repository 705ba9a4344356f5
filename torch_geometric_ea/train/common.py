r"""What every training function returns, and resource measurements."""
import resource
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

from torch_geometric_ea.data.pair import check_alignable, to_union, unlinked_entities
from torch_geometric_ea.runtime import proc_bytes

__all__ = ['TrainResult', 'peak_memory_gib', 'process_group', 'resolve_device',
           'RunInputs', 'prepare_run', 'BOOTSTRAP', 'check_bootstrap',
           'bootstrap_pool']

#: The bootstrapping protocols: which entities the rounds may pair.
BOOTSTRAP = ('transductive', 'inductive')


def check_bootstrap(protocol: str):
    r"""Raises :class:`ValueError` unless ``protocol`` is one of
    :data:`BOOTSTRAP` (trainers call it before any work)."""
    if protocol not in BOOTSTRAP:
        raise ValueError(f"'bootstrap' must be one of {BOOTSTRAP} (got {protocol!r})")


def bootstrap_pool(data: HeteroData, offset: int, test_pairs: Tensor,
                   protocol: str) -> Tuple[Tensor, Tensor, str]:
    r"""The entities bootstrapping may pair (union ids, KG2 ids shifted by
    ``offset``) and the protocol they follow:

    - ``'transductive'``: the entities of the test links, as the official
      Dual-AMN notebook and the paper do (the test entities are known, not
      their pairing), so the metrics are transductive;
    - ``'inductive'``: every entity without a training link (nothing of
      the test split is used), what a user aligning new KGs has.

    A pair without test links is inductive whatever is asked."""
    check_bootstrap(protocol)
    if protocol == 'transductive' and test_pairs.size(1) > 0:
        return test_pairs[0].clone(), test_pairs[1].clone(), protocol
    src, tgt = (ids.to(test_pairs.device) for ids in unlinked_entities(data))
    return src, tgt + offset, 'inductive'


def resolve_device(device: Union[str, torch.device, None] = None) -> torch.device:
    r"""The device a run uses: ``device`` itself, or for :obj:`None` and
    ``'auto'`` CUDA when it is available, else the CPU. Asking for a CUDA
    device on a machine without one raises :class:`ValueError` at once."""
    if device is None or device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(device)
    except RuntimeError:  # torch's message repeats the text as it is
        raise ValueError(f"unknown device {str(device)!r}: give 'cpu', 'cuda' "
                         f"or 'cuda:<index>'") from None
    if device.type not in ('cpu', 'cuda'):
        raise ValueError(f"device {str(device)!r}: runs take 'cpu' or 'cuda' "
                         f"devices only")
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but this machine "
                         f"has no CUDA device (use --device cpu)")
    if device.type == 'cuda' and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} asked for, but this machine "
                         f"has {torch.cuda.device_count()} CUDA device(s)")
    return device


@dataclass
class RunInputs:
    r"""What every trainer starts from, on the run's device: the union
    graph (:func:`~torch_geometric_ea.data.pair.to_union`), the model's
    fixed graph structure, and the train and test pairs in union ids."""
    device: torch.device
    union: Data
    graph: Data
    train_pairs: Tensor
    test_pairs: Tensor


def prepare_run(data: HeteroData, seed: int, device: Union[str, torch.device, None],
                build_graph: Callable[[Data], Data]) -> RunInputs:
    r"""Seeds torch with ``seed``, merges the pair into one graph, builds the
    model's structure with ``build_graph(union)`` and moves all of it to
    ``device`` (see :func:`resolve_device`). The structure is built where
    the pair's tensors live and moved once; random draws of the run stay on
    CPU generators, so a seed gives the same run on every device."""
    check_alignable(data)
    device = resolve_device(device)
    torch.manual_seed(seed)
    union = to_union(data)
    graph = build_graph(union).to(device)
    pairs = [union.link_index[:, union[f'{split}_mask']].to(device)
             for split in ('train', 'test')]
    return RunInputs(device, union.to(device), graph, *pairs)


@dataclass
class TrainResult:
    r"""What a run produces: the model, the union-graph structure it runs
    on (``model(graph)`` embeds every union node), the final metrics per
    direction under the model's own evaluation, the metrics after each
    round, wall time per phase (seconds), the number of bootstrapped pairs
    and the pairs themselves (per round, :math:`(2, k)` union ids),
    metrics under other evaluations (e.g. ``{'csls': {...}}``), the
    arguments that rebuild the model, and the protocol of the metrics
    (``bootstrapping``: ``'transductive'``, ``'inductive'`` or
    :obj:`None` without rounds; ``ranking``: how candidates are scored).
    A model without weights (LightEA) leaves its final ``features`` and the
    ``replay`` that recomputes them: the seed pairs and the random state
    of the last round."""
    model: torch.nn.Module
    graph: object
    metrics: Dict[str, Dict[str, float]]
    history: List[Dict] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)
    num_new_pairs: List[int] = field(default_factory=list)
    new_pairs: List[Tensor] = field(default_factory=list)
    extra_metrics: Dict[str, Dict[str, Dict[str, float]]] = field(default_factory=dict)
    init_args: Dict = field(default_factory=dict)
    protocol: Dict[str, Optional[str]] = field(default_factory=dict)
    features: Optional[Tensor] = None
    replay: Optional[Dict] = None

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
    r"""Peak resident memory of this process so far, in GiB: on Linux the
    high-water mark of its own memory (``VmHWM``), since ``ru_maxrss``
    keeps the parent's resident size across ``fork`` and ``exec`` (a run
    started from a large process would report that process's size)."""
    peak = proc_bytes('/proc/self/status', 'VmHWM')
    if peak is not None:
        return peak / 2**30
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == 'darwin' else peak / 2**20


def process_group() -> Tuple[int, int]:
    r"""This process's rank and the number of processes of the default
    :mod:`torch.distributed` group, or :obj:`(0, 1)` outside one."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
