r"""Chunked similarity search, rank-based evaluation, matching and the
decoders (one set of names, :data:`DECODERS`) for entity alignment."""
from .similarity import csls_neighbourhood, csls_topk
from .ranking import rank_of_true, rank_metrics, evaluate_alignment, evaluate_top_k
from .matching import mutual_nearest_neighbours
from .distance import evaluate_alignment_distance
from .decoding import (
    DECODERS,
    check_decoder,
    decode_candidates,
    hungarian_matching,
    sinkhorn_potentials,
    sparse_sinkhorn_pairs,
)
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
    'DECODERS',
    'check_decoder',
    'decode_candidates',
    'sinkhorn_potentials',
    'hungarian_matching',
    'sparse_sinkhorn_pairs',
    'fuse_literal',
]
