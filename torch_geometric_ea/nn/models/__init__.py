from .dual_amn import DualAMN, dual_amn_graph

__all__ = ['DualAMN', 'dual_amn_graph']
