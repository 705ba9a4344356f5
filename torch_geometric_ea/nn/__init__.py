r"""Neural network layers, models and losses for entity alignment."""
from .conv import (
    DualRelationAttentionConv,
    HighwayGCNConv,
    PrimalRelationAttentionConv,
    ProxyMatchingConv,
    RelationalAttentionConv,
)
from .layout import RelationalLayout, relational_layout
from .loss import NormalizedHardSampleMiningLoss
from .margin_loss import MarginRankingL1Loss, chunked_margin_l1_loss
from .sampling import (
    l1_nearest,
    loss_candidates,
    nearest_squared,
    rows_to_embed,
    sample_links,
    uniform_negatives,
)
from .models import (
    DualAMN,
    GCNAlign,
    LightEA,
    RDGCN,
    dual_amn_graph,
    gcn_align_adjacency,
    lightea_graph,
    rdgcn_dual_graph,
    relation_functionality,
)

__all__ = [
    'RelationalAttentionConv',
    'ProxyMatchingConv',
    'DualRelationAttentionConv',
    'PrimalRelationAttentionConv',
    'HighwayGCNConv',
    'NormalizedHardSampleMiningLoss',
    'MarginRankingL1Loss',
    'chunked_margin_l1_loss',
    'uniform_negatives',
    'nearest_squared',
    'l1_nearest',
    'loss_candidates',
    'sample_links',
    'rows_to_embed',
    'DualAMN',
    'dual_amn_graph',
    'GCNAlign',
    'gcn_align_adjacency',
    'relation_functionality',
    'RDGCN',
    'rdgcn_dual_graph',
    'LightEA',
    'lightea_graph',
    'RelationalLayout',
    'relational_layout',
]
