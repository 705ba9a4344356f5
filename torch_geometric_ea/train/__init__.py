r"""Training: the model registry (:func:`get_model`, :func:`model_names`,
:func:`register_model`), the one training loop (:func:`fit`), and per
model its config, its spec and a ``train_<model>(data, config, progress,
callback, checkpoints) -> TrainResult`` function."""
from collections.abc import Mapping

from torch_geometric_ea.train.common import (
    TrainResult,
    peak_memory_gib,
    resolve_device,
)
from torch_geometric_ea.train.registry import (
    REGISTRY,
    get_model,
    model_names,
    register_model,
)
from torch_geometric_ea.train.spec import AlignerSpec
from torch_geometric_ea.train.loop import fit
from torch_geometric_ea.train.dual_amn import DualAMNConfig, DualAMNSpec, train_dual_amn
from torch_geometric_ea.train.gcn_align import GCNAlignConfig, GCNAlignSpec, train_gcn_align
from torch_geometric_ea.train.rdgcn import RDGCNConfig, RDGCNSpec, train_rdgcn
from torch_geometric_ea.train.lightea import LightEAConfig, LightEASpec, train_lightea


class _ModelTable(Mapping):
    r"""The registry seen as ``name -> (config class, train function)``,
    for code written before the registry (deprecated: use
    :func:`get_model`)."""
    def __getitem__(self, name):
        spec = REGISTRY[name]
        return spec.config_class, spec.fit

    def __iter__(self):
        return iter(REGISTRY)

    def __len__(self):
        return len(REGISTRY)


#: Deprecated: ``name -> (config class, train function)``; use
#: :func:`get_model`.
MODELS = _ModelTable()

__all__ = ['get_model', 'model_names', 'register_model', 'AlignerSpec', 'fit',
           'MODELS', 'TrainResult', 'peak_memory_gib', 'resolve_device',
           'DualAMNConfig', 'DualAMNSpec', 'train_dual_amn',
           'GCNAlignConfig', 'GCNAlignSpec', 'train_gcn_align',
           'RDGCNConfig', 'RDGCNSpec', 'train_rdgcn',
           'LightEAConfig', 'LightEASpec', 'train_lightea']
