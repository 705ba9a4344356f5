import os
import subprocess
import sys
import types

import pytest
import torch

from torch_geometric_ea.data import (
    NGramNameEncoder,
    char_ngrams,
    encode_names,
    hashed_ngram_features,
    kg_pair,
    name_features,
    transliterator,
)


def test_char_ngrams():
    assert char_ngrams('Ab', (2, 3)) == [' a', 'ab', 'b ', ' ab', 'ab ']
    assert char_ngrams('  A   b ', (3, 3)) == [' a ', 'a b', ' b ']
    assert char_ngrams('   ') == []
    with pytest.raises(ValueError, match='ngram'):
        char_ngrams('abc', (3, 2))


def test_hashed_features_are_normalised_and_compare_names():
    x = hashed_ngram_features(['Kim Dae-jung', 'kim  dae-jung', 'Kim Jong-il',
                               'Paris', ''], dim=64)
    assert x.shape == (5, 64)
    assert torch.allclose(x[:4].norm(dim=1), torch.ones(4))
    assert torch.equal(x[4], torch.zeros(64))  # no grams, zero row
    assert torch.equal(x[0], x[1])  # case and spaces do not matter
    sim = x @ x.t()
    assert sim[0, 2] > 0.3 > sim[0, 3]
    assert hashed_ngram_features([], dim=8).shape == (0, 8)


def test_hashed_features_do_not_depend_on_the_process():
    code = ('from torch_geometric_ea.data import hashed_ngram_features as f;'
            'print(f(["Zürich", "New York"], dim=16).tolist())')
    seed = '1' if os.environ.get('PYTHONHASHSEED') != '1' else '2'
    env = dict(os.environ, PYTHONHASHSEED=seed)  # str hashes differ from ours
    out = subprocess.run([sys.executable, '-c', code], env=env, check=True,
                         capture_output=True, text=True).stdout
    here = hashed_ngram_features(['Zürich', 'New York'], dim=16).tolist()
    assert out.strip() == str(here)


def tiny_pair():
    return kg_pair(
        num_nodes=(3, 2),
        edge_index=(torch.tensor([[0], [1]]), torch.tensor([[0], [1]])),
        edge_type=(torch.tensor([0]), torch.tensor([0])),
        link_index=torch.tensor([[0, 1], [1, 0]]),
        uri=(['http://a.org/resource/Kim_Dae-jung', 'http://a.org/resource/%C3%89cole',
              'http://a.org/resource/Москва'],
             ['http://b.org/resource/Ecole', 'http://b.org/resource/Kim_Dae-jung']),
    )


def test_name_features_of_a_pair():
    data = tiny_pair()
    x_src, x_tgt = name_features(data, dim=32, transliterate=False)
    assert x_src.shape == (3, 32) and x_tgt.shape == (2, 32)
    # local name, percent-decoded, underscores as spaces
    assert torch.allclose(x_src[0], hashed_ngram_features(['Kim Dae-jung'], 32)[0])
    assert torch.equal(x_src[0], x_tgt[1])
    assert torch.allclose(x_src[1], hashed_ngram_features(['École'], 32)[0])
    assert not torch.equal(x_src[1], x_tgt[0])  # É kept without transliteration
    assert x_src[2].norm() > 0  # non-Latin characters kept
    union = name_features(data, dim=32, union=True, transliterate=False)
    assert torch.equal(union, torch.cat([x_src, x_tgt]))
    assert torch.equal(union, name_features(data, dim=32, union=True,
                                            transliterate=False))  # deterministic


def test_name_features_transliterate():
    data = tiny_pair()
    table = {'É': 'E', 'М': 'M', 'о': 'o', 'с': 's', 'к': 'k', 'в': 'v', 'а': 'a'}
    x_src, x_tgt = name_features(
        data, dim=32, transliterate=lambda s: ''.join(table.get(c, c) for c in s))
    assert torch.equal(x_src[1], x_tgt[0])  # École -> Ecole
    assert torch.allclose(x_src[2], hashed_ngram_features(['Moskva'], 32)[0])


def test_transliterator_prefers_anyascii_then_unidecode(monkeypatch):
    monkeypatch.setitem(sys.modules, 'anyascii', None)  # import fails
    monkeypatch.setitem(sys.modules, 'unidecode', None)
    assert transliterator()('Москва') == 'Москва'
    fake = types.ModuleType('unidecode')
    fake.unidecode = lambda s: 'from unidecode'
    monkeypatch.setitem(sys.modules, 'unidecode', fake)
    assert transliterator()('Москва') == 'from unidecode'
    fake = types.ModuleType('anyascii')
    fake.anyascii = lambda s: 'from anyascii'
    monkeypatch.setitem(sys.modules, 'anyascii', fake)
    assert transliterator()('Москва') == 'from anyascii'


def test_encode_names_uses_labels_and_any_encoder():
    data = tiny_pair()
    calls = []

    def encoder(names):  # a user's encoder: list of str -> array-like
        calls.append(list(names))
        return [[len(n), 1.0] for n in names]

    x_src, x_tgt = encode_names(data, encoder)
    # One call with both KGs' names, KG1's first (a shared vocabulary).
    assert calls == [['Kim Dae-jung', 'École', 'Москва', 'Ecole', 'Kim Dae-jung']]
    assert x_src.shape == (3, 2) and x_tgt.shape == (2, 2)
    assert torch.allclose(x_src.norm(dim=1), torch.ones(3))  # normalised
    assert torch.allclose(x_src[0], x_tgt[1])  # the same name, the same row
    data['src'].name = ['a', 'b', 'c']  # names win over URIs
    data['tgt'].name = ['d', 'ee']
    encode_names(data, encoder)
    assert calls[-1] == ['a', 'b', 'c', 'd', 'ee']
    assert torch.allclose(encode_names(tiny_pair(), union=True),
                          NGramNameEncoder()(calls[0]))  # the default for URIs
    assert repr(NGramNameEncoder(16)) == 'NGramNameEncoder(dim=16, ngram=(2, 3))'


@pytest.mark.parametrize('encoder,match', [
    (lambda names: torch.zeros(len(names) + 1, 4), r"shape \(6, 4\) for 5 names"),
    (lambda names: torch.zeros(len(names)), 'expected'),
    (lambda names: torch.full((len(names), 2), float('nan')), 'non-finite'),
])
def test_encode_names_rejects_bad_encoder_output(encoder, match):
    with pytest.raises(ValueError, match=match):
        encode_names(tiny_pair(), encoder)
