r"""Training functions, one per model, each ``train_<model>(data, config,
progress, callback) -> TrainResult``; :data:`MODELS` maps the command
line's model names to their config class and training function."""
from torch_geometric_ea.train.common import (
    TrainResult,
    peak_memory_gib,
    resolve_device,
)
from torch_geometric_ea.train.dual_amn import DualAMNConfig, train_dual_amn
from torch_geometric_ea.train.gcn_align import GCNAlignConfig, train_gcn_align
from torch_geometric_ea.train.lightea import LightEAConfig, train_lightea
from torch_geometric_ea.train.rdgcn import RDGCNConfig, train_rdgcn

#: The command line's model names, each mapped to its config class and
#: training function.
MODELS = {
    'dual-amn': (DualAMNConfig, train_dual_amn),
    'gcn-align': (GCNAlignConfig, train_gcn_align),
    'rdgcn': (RDGCNConfig, train_rdgcn),
    'lightea': (LightEAConfig, train_lightea),
}

__all__ = ['MODELS', 'TrainResult', 'peak_memory_gib', 'resolve_device',
           'DualAMNConfig', 'train_dual_amn', 'GCNAlignConfig', 'train_gcn_align',
           'RDGCNConfig', 'train_rdgcn', 'LightEAConfig', 'train_lightea']
