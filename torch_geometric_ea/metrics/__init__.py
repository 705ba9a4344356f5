r"""Chunked similarity search, rank-based evaluation and matching for
entity alignment."""
from .similarity import csls_neighbourhood, csls_topk
from .ranking import rank_of_true, rank_metrics, evaluate_alignment, evaluate_top_k
from .matching import mutual_nearest_neighbours
from .distance import evaluate_alignment_distance
from .decoding import sinkhorn_potentials, hungarian_matching
from .literal import fuse_literal

__all__ = [
    'csls_neighbourhood',
    'csls_topk',
    'rank_of_true',
    'rank_metrics',
    'evaluate_alignment',
    'evaluate_top_k',
    'evaluate_alignment_distance',
    'mutual_nearest_neighbours',
    'sinkhorn_potentials',
    'hungarian_matching',
    'fuse_literal',
]
