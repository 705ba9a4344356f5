r"""Message passing layers of the entity alignment models."""
from .relational_attention_conv import RelationalAttentionConv
from .proxy_matching_conv import ProxyMatchingConv
from .dual_relation_attention_conv import DualRelationAttentionConv
from .primal_relation_attention_conv import PrimalRelationAttentionConv
from .highway_gcn_conv import HighwayGCNConv

__all__ = ['RelationalAttentionConv', 'ProxyMatchingConv',
           'DualRelationAttentionConv', 'PrimalRelationAttentionConv',
           'HighwayGCNConv']
