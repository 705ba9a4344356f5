from .conv import ProxyMatchingConv, RelationalAttentionConv
from .loss import NormalizedHardSampleMiningLoss
from .models import DualAMN, dual_amn_graph

__all__ = [
    'RelationalAttentionConv',
    'ProxyMatchingConv',
    'NormalizedHardSampleMiningLoss',
    'DualAMN',
    'dual_amn_graph',
]
