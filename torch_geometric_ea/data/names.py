r"""Offline entity name features: the readable local names of the entity
URIs, transliterated to Latin script when a transliteration package is
importable, as hashed character n-gram vectors.

RDGCN (and many aligners after it) start from word vectors of
machine-translated entity names, which need a translation service and
pretrained vectors. These features need neither: they are deterministic,
computed from the names alone, and compare names by shared character
n-grams, so they carry most signal for pairs of KGs in one script.
"""
import hashlib
import logging
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.pair import SRC, TGT, entity_names
from torch_geometric_ea.data.word_vectors import (
    WordVectors,
    glove_vectors,
    name_tokens,
    word_vector_features,
)

__all__ = ['transliterator', 'char_ngrams', 'hashed_ngram_features',
           'name_features', 'NGramNameEncoder', 'encode_names',
           'token_bigram_features', 'HybridNameEncoder', 'name_source',
           'default_name_encoder', 'names_info', 'project_columns',
           'name_columns']

log = logging.getLogger(__name__)

Transliterate = Union[bool, Callable[[str], str]]
NameEncoder = Callable[[List[str]], object]


def transliterator() -> Callable[[str], str]:
    r"""A function that writes text in Latin script: ``anyascii`` if it is
    importable, else ``unidecode``, else the identity (non-Latin characters
    are kept, and match only the same characters)."""
    try:
        from anyascii import anyascii
        return anyascii
    except ImportError:
        pass
    try:
        from unidecode import unidecode
        return unidecode
    except ImportError:
        return lambda text: text


def _resolve(transliterate: Transliterate) -> Callable[[str], str]:
    if callable(transliterate):
        return transliterate
    return transliterator() if transliterate else (lambda text: text)


def char_ngrams(name: str, ngram: Tuple[int, int] = (2, 3)) -> List[str]:
    r"""The character :math:`n`-grams, :math:`n` from ``ngram[0]`` to
    ``ngram[1]``, of a name lower-cased with runs of white space collapsed
    and one space added at both ends (so grams at word boundaries differ
    from grams inside words). An empty name has none."""
    low, high = ngram
    if not 1 <= low <= high:
        raise ValueError(f"'ngram' must be (low, high) with 1 <= low <= high, "
                         f"got {ngram}")
    text = ' '.join(name.lower().split())
    if not text:
        return []
    text = f' {text} '
    return [text[i:i + n] for n in range(low, high + 1)
            for i in range(len(text) - n + 1)]


def _bucket(gram: str, dim: int) -> Tuple[int, float]:
    r"""A stable hash of a gram to a column in ``[0, dim)`` and a sign
    (BLAKE2b, unlike :func:`hash`, does not change between processes)."""
    value = int.from_bytes(hashlib.blake2b(gram.encode('utf-8'),
                                           digest_size=8).digest(), 'little')
    return (value >> 1) % dim, 1.0 if value & 1 else -1.0


def hashed_ngram_features(names: Iterable[str], dim: int = 300,
                          ngram: Tuple[int, int] = (2, 3)) -> Tensor:
    r"""Feature-hashed character :math:`n`-gram counts of each name
    (`Weinberger et al., 2009 <https://arxiv.org/abs/0902.2206>`_),
    :math:`L_2`-normalised:

    .. math::
        \mathbf{x}_i = \frac{\mathbf{c}_i}{\|\mathbf{c}_i\|_2}, \qquad
        c_{i,d} = \sum_{g \in G(i),\, h(g) = d} \xi(g)

    where :math:`G(i)` are the grams of :func:`char_ngrams` (with
    repetitions), :math:`h` a stable hash into :math:`[0, \text{dim})` and
    :math:`\xi(g) = \pm 1` a stable hashed sign, so that colliding grams
    cancel out in expectation. Names without grams give zero rows.

    Args:
        names (Iterable[str]): The names.
        dim (int, optional): The feature size. (default: :obj:`300`)
        ngram (Tuple[int, int], optional): The smallest and largest
            :math:`n`. (default: :obj:`(2, 3)`)

    Shapes:
        - **output:** :math:`(\text{len(names)}, \text{dim})`
    """
    if dim < 1:
        raise ValueError(f"'dim' must be positive (got {dim})")
    cache: Dict[str, Tuple[int, float]] = {}
    rows, cols, signs = [], [], []
    num = 0
    for i, name in enumerate(names):
        num = i + 1
        for gram in char_ngrams(name, ngram):
            bucket = cache.get(gram)
            if bucket is None:
                bucket = cache[gram] = _bucket(gram, dim)
            rows.append(i)
            cols.append(bucket[0])
            signs.append(bucket[1])
    out = torch.zeros(num, dim)
    out.index_put_((torch.tensor(rows, dtype=torch.long),
                    torch.tensor(cols, dtype=torch.long)),
                   torch.tensor(signs), accumulate=True)
    return torch.nn.functional.normalize(out, dim=-1)


class NGramNameEncoder:
    r"""The default, offline name encoder: each name transliterated to
    Latin script (:func:`transliterator`) and embedded as
    :func:`hashed_ngram_features`. Any callable from a list of names to a
    :math:`(\text{len(names)}, D)` array can stand in for it, for example
    ``SentenceTransformer(...).encode``.

    Args:
        dim (int, optional): The feature size. (default: :obj:`300`)
        ngram (Tuple[int, int], optional): The smallest and largest
            :math:`n`. (default: :obj:`(2, 3)`)
        transliterate (bool or Callable, optional): :obj:`True` for
            :func:`transliterator`, :obj:`False` to keep the characters, or a
            function from name to name. (default: :obj:`True`)
    """
    def __init__(self, dim: int = 300, ngram: Tuple[int, int] = (2, 3),
                 transliterate: Transliterate = True):
        self.dim, self.ngram = dim, ngram
        self.convert = _resolve(transliterate)

    def __call__(self, names: Sequence[str]) -> Tensor:
        r"""Converts each name with the encoder's transliteration and returns
        their :func:`hashed_ngram_features`, of shape
        :math:`(\text{len(names)}, \text{dim})`."""
        return hashed_ngram_features((self.convert(n) for n in names),
                                     self.dim, self.ngram)

    @property
    def name(self) -> str:
        r"""What the features are, e.g. ``'hashed-2-3-grams-300'``."""
        return f'hashed-{self.ngram[0]}-{self.ngram[1]}-grams-{self.dim}'

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(dim={self.dim}, ngram={self.ngram})'


def encode_names(data: HeteroData, encoder: Optional[NameEncoder] = None, *,
                 union: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    r"""Name vectors of both KGs of a pair, :math:`L_2`-normalised row by row
    (names the encoder maps to zero vectors stay zero). The encoder sees the
    names of both KGs in one call (KG1's first), so features with a
    vocabulary (:func:`token_bigram_features`) share it.

    The names are ``data[side].name`` where the pair has them (translated
    or from a names file, see :func:`name_source`), else the readable local
    names of the URIs (see :func:`~torch_geometric_ea.data.entity_names`).

    Args:
        data (HeteroData): A KG pair.
        encoder (Callable, optional): Maps a list of names to a
            :math:`(\text{len(names)}, D)` tensor or array; the default is
            :func:`default_name_encoder`. (default: :obj:`None`)
        union (bool, optional): If set to :obj:`True`, returns one matrix in
            the node order of :func:`~torch_geometric_ea.data.to_union`.
            (default: :obj:`False`)
    """
    encoder = encoder or default_name_encoder(data)
    src, tgt = entity_names(data, SRC), entity_names(data, TGT)
    x = torch.as_tensor(encoder(src + tgt), dtype=torch.float)
    if x.dim() != 2 or x.size(0) != len(src) + len(tgt):
        raise ValueError(f"the name encoder {encoder!r} returned shape "
                         f"{tuple(x.shape)} for {len(src) + len(tgt)} names; "
                         f"expected ({len(src) + len(tgt)}, D)")
    if not torch.isfinite(x).all():
        raise ValueError(f"the name encoder {encoder!r} returned non-finite values")
    x = torch.nn.functional.normalize(x, dim=-1)
    return x if union else (x[:len(src)], x[len(src):])


def name_source(data: HeteroData) -> str:
    r"""Where the pair's names come from: ``'translated'`` (the published
    machine translations of a benchmark), ``'file'`` (a user's names
    files) or ``'uri'`` (the URIs' local names, when the pair has no
    ``data[side].name``)."""
    if 'name' not in data[SRC]:
        return 'uri'
    return getattr(data, 'name_source', None) or 'file'


def names_info(data: HeteroData, encoder: NameEncoder) -> Dict[str, object]:
    r"""What a run's names were, for its results: their :func:`name_source`,
    the encoder (its ``name``, else its ``repr``), the number of entities
    without a name, and the encoder's counts after its last call (its
    ``stats``, e.g. tokens without a word vector)."""
    empty = sum(not name.strip() for side in (SRC, TGT)
                for name in entity_names(data, side))
    return dict(source=name_source(data),
                encoder=getattr(encoder, 'name', repr(encoder)),
                entities_without_name=empty, **getattr(encoder, 'stats', {}))


def project_columns(x: Tensor, dim: int, seed: int = 0) -> Tensor:
    r"""``x`` :math:`(N, D)` with ``dim`` columns, for a model whose
    input size is fixed: ``x`` itself when :math:`D` is ``dim``, else
    :math:`\mathbf{X}\mathbf{G}` row-normalised, :math:`\mathbf{G}` a
    :math:`(D, \text{dim})` standard Gaussian matrix drawn with ``seed``,
    which keeps the rows' cosines up to :math:`O(1/\sqrt{\text{dim}})`
    (Johnson-Lindenstrauss)."""
    if x.size(1) == dim:
        return x
    generator = torch.Generator().manual_seed(seed)
    gauss = torch.randn(x.size(1), dim, generator=generator).to(x)
    return torch.nn.functional.normalize(x @ gauss, dim=1)


def default_name_encoder(data: HeteroData, dim: int = 300) -> NameEncoder:
    r"""The encoder of a pair's names: :class:`HybridNameEncoder` for
    translated names or names from a file, :class:`NGramNameEncoder` with
    ``dim`` columns for the URIs' local names."""
    if name_source(data) == 'uri':
        return NGramNameEncoder(dim)
    return HybridNameEncoder()


def name_features(data: HeteroData, dim: int = 300,
                  ngram: Tuple[int, int] = (2, 3), *, union: bool = False,
                  transliterate: Transliterate = True
                  ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    r"""Name features of both KGs of a pair: the readable local name of
    every entity URI (the part after the last ``/`` or ``#``,
    percent-decoded, underscores as spaces; see
    :func:`~torch_geometric_ea.data.local_name`), transliterated to Latin
    script, as :func:`hashed_ngram_features`.

    The result is a pure function of the names and the arguments, except
    that the default transliteration depends on which package
    :func:`transliterator` finds.

    Args:
        data (HeteroData): A KG pair whose ``data['src'].uri`` and
            ``data['tgt'].uri`` hold the entity URIs.
        dim (int, optional): The feature size. (default: :obj:`300`)
        ngram (Tuple[int, int], optional): The smallest and largest
            :math:`n`. (default: :obj:`(2, 3)`)
        union (bool, optional): If set to :obj:`True`, returns one matrix in
            the node order of :func:`~torch_geometric_ea.data.to_union`
            (KG1 entities first). (default: :obj:`False`)
        transliterate (bool or Callable, optional): :obj:`True` for
            :func:`transliterator`, :obj:`False` to keep the characters, or a
            function from name to name. (default: :obj:`True`)

    Returns:
        ``(x_src, x_tgt)`` of shapes :math:`(N_1, \text{dim})` and
        :math:`(N_2, \text{dim})`, or with ``union`` one
        :math:`(N_1 + N_2, \text{dim})` matrix.
    """
    return encode_names(data, NGramNameEncoder(dim, ngram, transliterate),
                        union=union)


def token_bigram_features(names: Sequence[str]) -> Tensor:
    r"""The character view of the official hybrid name features (LightEA,
    Dual-AMN (Lit)): for each name, the counts of the character bigrams
    inside each lower-cased token (tokens split on white space and
    underscores; no bigram spans two tokens), over the vocabulary of the
    bigrams that occur in ``names``, each row L2-normalised:

    .. math::
        \mathbf{c}_i[b] = \sum_{w \in \text{tokens}(i)} |\{p : w_p w_{p+1}
        = b\}|, \qquad \hat{\mathbf{c}}_i = \mathbf{c}_i / \|\mathbf{c}_i\|_2

    A name without bigrams is a zero row. Shape :math:`(N, B)`, :math:`B`
    the number of distinct bigrams."""
    vocab: Dict[str, int] = {}
    rows, cols = [], []
    for i, name in enumerate(names):
        for token in name_tokens(name):
            for p in range(len(token) - 1):
                rows.append(i)
                cols.append(vocab.setdefault(token[p:p + 2], len(vocab)))
    counts = torch.zeros(len(names), len(vocab))
    counts.index_put_((torch.tensor(rows, dtype=torch.long),
                       torch.tensor(cols, dtype=torch.long)),
                      torch.ones(len(rows)), accumulate=True)
    return torch.nn.functional.normalize(counts, dim=1)


def name_columns(data: HeteroData, dim: int = 300) -> int:
    r"""The columns of the pair's name vectors from
    :func:`default_name_encoder` ``(data, dim)``, counted without encoding
    them: ``dim`` for the URIs' names; for the hybrid, the word vectors'
    50 (GloVe 6B 50d) and the distinct in-token character bigrams of both
    KGs' names (:func:`token_bigram_features`)."""
    if name_source(data) == 'uri':
        return dim
    bigrams = {token[p:p + 2] for side in (SRC, TGT)
               for name in entity_names(data, side) for token in name_tokens(name)
               for p in range(len(token) - 1)}
    return HYBRID_WORD_COLUMNS + len(bigrams)


#: The word view's columns in :class:`HybridNameEncoder` (GloVe 6B 50d).
HYBRID_WORD_COLUMNS = 50


class HybridNameEncoder:
    r"""The official hybrid name features (LightEA, Dual-AMN (Lit)): the
    word view (:func:`~torch_geometric_ea.data.word_vectors.word_vector_features`)
    and the character view (:func:`token_bigram_features`), each
    L2-normalised, concatenated, :math:`[\mathbf{w}_i \,\|\, \hat{\mathbf{c}}_i]`
    (so a name with both views has norm :math:`\sqrt 2` before
    :func:`encode_names` normalises it).

    After a call, :attr:`stats` holds the number of names without any
    token, of tokens, and of tokens without a word vector.

    Args:
        words (WordVectors or bool, optional): The word vectors;
            :obj:`True` for :func:`~torch_geometric_ea.data.word_vectors.glove_vectors`
            when the ``names`` extra is installed (else the character view
            alone, with a warning), :obj:`False` for the character view
            alone. (default: :obj:`True`)
    """
    def __init__(self, words: Union[WordVectors, bool] = True):
        if words is True:
            try:
                words = glove_vectors()
            except ImportError as e:
                log.warning("%s; names use the character-bigram view only", e)
                words = None
        self.words = words or None
        self.stats: Dict[str, int] = {}

    @property
    def name(self) -> str:
        r"""What the features are made of, e.g. ``'glove-6b-50d+bigrams'``."""
        return (f'{self.words.name}+bigrams' if self.words else 'bigrams')

    def __call__(self, names: Sequence[str]) -> Tensor:
        r"""The :math:`(N, D + B)` hybrid features of ``names``
        (:math:`(N, B)` without word vectors)."""
        views = [token_bigram_features(names)]
        self.stats = dict(names=len(names), names_without_tokens=sum(
            not name_tokens(name) for name in names))
        if self.words:
            words, tokens, missing = word_vector_features(names, self.words)
            views.insert(0, words)
            self.stats.update(tokens=tokens, tokens_without_vector=missing)
        return torch.cat(views, dim=1)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.name})'
