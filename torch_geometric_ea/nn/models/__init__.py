r"""Entity alignment models (Dual-AMN, GCN-Align, RDGCN, LightEA) and the
functions that build the fixed graphs they run on."""
from .dual_amn import DualAMN, dual_amn_graph
from .gcn_align import GCNAlign, gcn_align_adjacency, relation_functionality
from .lightea import LightEA, lightea_graph
from .rdgcn import RDGCN, rdgcn_dual_graph

__all__ = ['DualAMN', 'dual_amn_graph', 'GCNAlign', 'gcn_align_adjacency',
           'relation_functionality', 'RDGCN', 'rdgcn_dual_graph', 'LightEA',
           'lightea_graph']
