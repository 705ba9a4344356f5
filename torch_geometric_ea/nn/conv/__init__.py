from .relational_attention_conv import RelationalAttentionConv
from .proxy_matching_conv import ProxyMatchingConv

__all__ = ['RelationalAttentionConv', 'ProxyMatchingConv']
