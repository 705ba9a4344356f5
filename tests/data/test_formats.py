import logging
import re

import pytest
import torch

from torch_geometric_ea.data import (
    LINK,
    SRC,
    SRC_TRIPLE,
    TGT,
    TGT_TRIPLE,
    attach_names,
    from_tsv,
    links,
    read_bootea,
    read_gcn_align,
    read_openea,
    read_rsn,
    split_links,
)


def write_files(folder, files):
    for name, rows in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(''.join('\t'.join(map(str, r)) + '\n' for r in rows),
                        encoding='utf-8')
    return str(folder)


def named_triples(data, side):
    store = data[(side, 'triple', side)]
    uri, rel = data[side].uri, store.relation_uri
    h, t = store.edge_index.tolist()
    return sorted((uri[a], rel[r], uri[b])
                  for a, r, b in zip(h, store.edge_type.tolist(), t))


def named_links(data, split=None):
    index = data[LINK].edge_label_index if split is None else links(data, split)
    return [(data[SRC].uri[a], data[TGT].uri[b]) for a, b in index.t().tolist()]


# A tiny pair with global ids that interleave between the KGs (as in SRPRS)
# and are not in sorted order in the id files.
ENT_1 = [(5, 'http://x/A'), (0, 'http://x/B'), (9, 'http://x/C'), (2, 'http://x/D')]
ENT_2 = [(7, 'http://y/a'), (1, 'http://y/b'), (30, 'http://y/c')]
TRIPLES_1 = [(5, 40, 0), (0, 12, 9), (9, 40, 2), (2, 40, 5)]
TRIPLES_2 = [(7, 3, 1), (1, 8, 30), (30, 3, 7)]
REF = [(5, 7), (0, 1), (9, 30)]
REL_1 = [(40, 'http://x/p'), (12, 'http://x/q'), (77, 'http://x/unused')]
REL_2 = [(8, 'http://y/q'), (3, 'http://y/p')]


def expected_named(entities, relations, triples):
    ent, rel = dict(entities), dict(relations)
    return sorted((ent[h], rel[r], ent[t]) for h, r, t in triples)


def test_gcn_align_round_trip(tmp_path):
    folder = write_files(tmp_path, {
        'ent_ids_1': ENT_1, 'ent_ids_2': ENT_2, 'triples_1': TRIPLES_1,
        'triples_2': TRIPLES_2 + [TRIPLES_2[0]], 'ref_ent_ids': REF})
    data = read_gcn_align(folder, train_ratio=0.34, seed=3)

    assert data[SRC].num_nodes == 4 and data[TGT].num_nodes == 3
    assert data[SRC].uri == [u for _, u in ENT_1]  # ent_ids file order
    assert data[SRC].raw_id.tolist() == [5, 0, 9, 2]
    assert data[TGT].raw_id.tolist() == [7, 1, 30]
    # relations sorted by file id, named 'rel<id>'
    assert data[SRC_TRIPLE].relation_raw_id.tolist() == [12, 40]
    assert data[SRC_TRIPLE].relation_uri == ['rel12', 'rel40']
    assert data[TGT_TRIPLE].relation_uri == ['rel3', 'rel8']
    assert data[SRC_TRIPLE].num_relations == 2
    ent1 = {i: u for i, u in ENT_1}
    ent2 = {i: u for i, u in ENT_2}
    rel1 = {i: f'rel{i}' for i in (12, 40)}
    rel2 = {i: f'rel{i}' for i in (3, 8)}
    assert named_triples(data, SRC) == expected_named(ent1, rel1, TRIPLES_1)
    assert named_triples(data, TGT) == expected_named(ent2, rel2, TRIPLES_2)
    # the repeated triple line is removed and reported
    assert data[TGT_TRIPLE].edge_index.size(1) == 3
    assert data[TGT_TRIPLE].num_duplicates == 1
    assert data[SRC_TRIPLE].num_duplicates == 0
    assert data.report['triples_2'] == dict(rows=3, duplicates=1, blank_lines=0)
    assert data.report['ref_ent_ids']['rows'] == 3
    # links in ref_ent_ids order, split by split_links
    assert named_links(data) == [(ent1[a], ent2[b]) for a, b in REF]
    masks = split_links(3, 0.34, seed=3)
    for key in ('train_mask', 'val_mask', 'test_mask'):
        assert torch.equal(data[LINK][key], masks[key])
    assert int(data[LINK].train_mask.sum()) == 1


def test_gcn_align_seed_changes_split_only(tmp_path):
    files = {'ent_ids_1': [(i, f'a{i}') for i in range(50)],
             'ent_ids_2': [(100 + i, f'b{i}') for i in range(50)],
             'triples_1': [(i, 0, (i + 1) % 50) for i in range(50)],
             'triples_2': [(100 + i, 7, 100 + (i + 1) % 50) for i in range(50)],
             'ref_ent_ids': [(i, 100 + i) for i in range(50)]}
    folder = write_files(tmp_path, files)
    a, b = read_gcn_align(folder, seed=0), read_gcn_align(folder, seed=1)
    assert int(a[LINK].train_mask.sum()) == 15
    assert not torch.equal(a[LINK].train_mask, b[LINK].train_mask)
    assert torch.equal(a[LINK].edge_label_index, b[LINK].edge_label_index)
    assert torch.equal(read_gcn_align(folder, seed=0)[LINK].train_mask,
                       a[LINK].train_mask)


def rsn_files(**extra):
    return dict({'ent_ids_1': ENT_1, 'ent_ids_2': ENT_2, 'triples_1': TRIPLES_1,
                 'triples_2': TRIPLES_2, 'rel_ids_1': REL_1, 'rel_ids_2': REL_2,
                 'sup_ent_ids': [(9, 30)], 'ref_ent_ids': [(5, 7), (0, 1)]}, **extra)


@pytest.mark.parametrize('reader', [read_rsn, read_bootea])
def test_rsn_and_bootea_round_trip(tmp_path, reader):
    data = reader(write_files(tmp_path, rsn_files()))
    # all rel_ids entries are relations, sorted by file id, with their names
    assert data[SRC_TRIPLE].relation_raw_id.tolist() == [12, 40, 77]
    assert data[SRC_TRIPLE].relation_uri == ['http://x/q', 'http://x/p',
                                             'http://x/unused']
    assert data[TGT_TRIPLE].relation_raw_id.tolist() == [3, 8]
    assert named_triples(data, SRC) == expected_named(ENT_1, REL_1, TRIPLES_1)
    assert named_triples(data, TGT) == expected_named(ENT_2, REL_2, TRIPLES_2)
    # fixed split: sup_ent_ids first as train, then ref_ent_ids as test
    assert named_links(data, 'train') == [('http://x/C', 'http://y/c')]
    assert named_links(data, 'test') == [('http://x/A', 'http://y/a'),
                                         ('http://x/B', 'http://y/b')]
    assert not data[LINK].val_mask.any()
    assert data.report['sup_ent_ids']['rows'] == 1


def test_bootea_without_rel_ids(tmp_path):
    files = rsn_files()
    del files['rel_ids_1'], files['rel_ids_2']
    data = read_bootea(write_files(tmp_path, files))
    assert data[SRC_TRIPLE].relation_uri == ['rel12', 'rel40']
    assert int(data[LINK].train_mask.sum()) == 1
    with pytest.raises(FileNotFoundError, match='rel_ids_1'):
        read_rsn(str(tmp_path))


def test_id_layout_errors_name_file_and_line(tmp_path):
    folder = write_files(tmp_path, rsn_files(
        triples_2=TRIPLES_2 + [(1, 3, 5)]))  # 5 is a KG1 id
    with pytest.raises(ValueError, match=re.escape(
            f"{tmp_path / 'triples_2'}:4: unknown tail entity id 5 (not in "
            f"{tmp_path / 'ent_ids_2'})")):
        read_rsn(folder)
    folder = write_files(tmp_path, rsn_files(triples_1=TRIPLES_1 + [(5, 41, 0)]))
    with pytest.raises(ValueError, match=re.escape(
            f"{tmp_path / 'triples_1'}:5: unknown relation id 41")):
        read_rsn(folder)
    # a test link reusing a training entity
    folder = write_files(tmp_path, rsn_files(ref_ent_ids=[(5, 7), (9, 1)]))
    with pytest.raises(ValueError, match=re.escape(
            f"{tmp_path / 'ref_ent_ids'}:2: KG1 entity 9 is linked to two "
            f"different partners: 30 ({tmp_path / 'sup_ent_ids'}:1) and 1")):
        read_rsn(folder)
    with pytest.raises(FileNotFoundError, match='ref_ent_ids'):
        read_gcn_align(str(tmp_path / 'missing'))


OPENEA_1 = [('http://x/A', 'http://x/p', 'http://x/B'),
            ('http://x/B', 'http://x/q', 'http://x/C'),
            ('http://x/C', 'http://x/p', 'http://x/D'),
            ('http://x/D', 'http://x/p', 'http://x/A')]
OPENEA_2 = [('http://y/b', 'http://y/p', 'http://y/a'),
            ('http://y/c', 'http://y/p', 'http://y/b'),
            ('http://y/d', 'http://y/q', 'http://y/e')]
OPENEA_LINKS = [('http://x/A', 'http://y/a'), ('http://x/B', 'http://y/b'),
                ('http://x/C', 'http://y/c'), ('http://x/D', 'http://y/d')]


def openea_files(**extra):
    files = {'rel_triples_1': OPENEA_1, 'rel_triples_2': OPENEA_2,
             'ent_links': OPENEA_LINKS}
    for fold, (train, valid, test) in {1: ([0], [1], [2, 3]),
                                       2: ([3], [2], [1])}.items():
        for name, index in zip(('train', 'valid', 'test'), (train, valid, test)):
            files[f'721_5fold/{fold}/{name}_links'] = [OPENEA_LINKS[i] for i in index]
    files.update(extra)
    return files


def test_openea_round_trip(tmp_path):
    folder = write_files(tmp_path, openea_files())
    data = read_openea(folder)
    assert data[SRC].uri == ['http://x/A', 'http://x/B', 'http://x/C', 'http://x/D']
    assert data[TGT].uri == ['http://y/a', 'http://y/b', 'http://y/c', 'http://y/d',
                             'http://y/e']
    assert data[SRC_TRIPLE].relation_uri == ['http://x/p', 'http://x/q']
    assert named_triples(data, SRC) == sorted(OPENEA_1)
    assert named_triples(data, TGT) == sorted(OPENEA_2)
    assert named_links(data) == OPENEA_LINKS
    assert named_links(data, 'train') == OPENEA_LINKS[:1]
    assert named_links(data, 'val') == OPENEA_LINKS[1:2]
    assert named_links(data, 'test') == OPENEA_LINKS[2:]
    assert data.report['721_5fold/1/test_links']['rows'] == 2

    data = read_openea(folder, fold=2)  # link 0 is in no split of fold 2
    assert named_links(data, 'train') == OPENEA_LINKS[3:]
    assert named_links(data, 'test') == OPENEA_LINKS[1:2]
    assert data[LINK].train_mask.tolist() == [False, False, False, True]
    assert not (data[LINK].train_mask | data[LINK].val_mask
                | data[LINK].test_mask)[0]


def test_openea_errors(tmp_path):
    fold = tmp_path / '721_5fold' / '1'
    folder = write_files(tmp_path, openea_files(**{
        '721_5fold/1/test_links': [OPENEA_LINKS[2], ('http://x/D', 'http://y/e')]}))
    with pytest.raises(ValueError, match=re.escape(
            f"{fold / 'test_links'}:2: link ('http://x/D', 'http://y/e') is not "
            f"in {tmp_path / 'ent_links'}")):
        read_openea(folder)
    folder = write_files(tmp_path, openea_files(**{
        '721_5fold/1/test_links': OPENEA_LINKS[2:] + OPENEA_LINKS[:1]}))
    with pytest.raises(ValueError, match=re.escape(
            f"{fold / 'test_links'}:3: link ('http://x/A', 'http://y/a') is also "
            f"in {fold / 'train_links'}:1")):
        read_openea(folder)
    folder = write_files(tmp_path, openea_files(
        ent_links=OPENEA_LINKS + [('http://x/Z', 'http://y/e')]))
    with pytest.raises(ValueError, match=re.escape(
            f"{tmp_path / 'ent_links'}:5: unknown KG1 entity 'http://x/Z' (not in "
            f"{tmp_path / 'rel_triples_1'})")):
        read_openea(folder)
    with pytest.raises(FileNotFoundError, match=re.escape(
            str(tmp_path / '721_5fold' / '3' / 'train_links'))):
        read_openea(folder, fold=3)


def test_from_tsv_random_split(tmp_path, caplog):
    kg1 = [(f'e{i}', 'next', f'e{(i + 1) % 20}') for i in range(20)]
    kg2 = [(f'f{i}', 'succ', f'f{(i + 1) % 20}') for i in range(20)]
    write_files(tmp_path, {'kg1.tsv': kg1 + kg1[:3], 'kg2.tsv': kg2,
                           'links.tsv': [(f'e{i}', f'f{i}') for i in range(20)]})
    with caplog.at_level(logging.WARNING):
        data = from_tsv(tmp_path / 'kg1.tsv', tmp_path / 'kg2.tsv',
                        tmp_path / 'links.tsv', train_ratio=0.25, val_ratio=0.25,
                        seed=5)
    assert data[SRC].uri == sorted(f'e{i}' for i in range(20))
    assert named_triples(data, SRC) == sorted(kg1)
    assert data[SRC_TRIPLE].num_duplicates == 3
    assert data.report[str(tmp_path / 'kg1.tsv')]['duplicates'] == 3
    assert 'removed 3 duplicate triple line(s), the first at line 21' in caplog.text
    assert all(a[1:] == b[1:] for a, b in named_links(data))
    assert [int(data[LINK][f'{s}_mask'].sum()) for s in ('train', 'val', 'test')] \
        == [5, 5, 10]


def test_from_tsv_split_files(tmp_path):
    write_files(tmp_path, {
        'kg1.tsv': OPENEA_1, 'kg2.tsv': OPENEA_2,
        'train.tsv': OPENEA_LINKS[:2], 'test.tsv': OPENEA_LINKS[2:3],
        'val.tsv': OPENEA_LINKS[3:], 'bad.tsv': [('http://x/D', 'http://y/a')]})
    p = {name: str(tmp_path / f'{name}.tsv')
         for name in ('kg1', 'kg2', 'train', 'test', 'val', 'bad')}
    data = from_tsv(p['kg1'], p['kg2'], train_links=p['train'],
                    test_links=p['test'], val_links=p['val'])
    assert named_links(data, 'train') == OPENEA_LINKS[:2]
    assert named_links(data, 'val') == OPENEA_LINKS[3:]
    assert named_links(data, 'test') == OPENEA_LINKS[2:3]
    with pytest.raises(ValueError, match=re.escape(
            f"{p['bad']}:1: KG2 entity 'http://y/a' is linked to two different "
            f"partners: 'http://x/A' ({p['train']}:1) and 'http://x/D'")):
        from_tsv(p['kg1'], p['kg2'], train_links=p['train'], test_links=p['bad'])
    with pytest.raises(ValueError, match='not both'):
        from_tsv(p['kg1'], p['kg2'], p['train'], test_links=p['test'])
    with pytest.raises(ValueError, match="give 'links', or"):
        from_tsv(p['kg1'], p['kg2'], test_links=p['test'])
    seeds_only = from_tsv(p['kg1'], p['kg2'], train_links=p['train'])
    assert named_links(seeds_only, 'train') == OPENEA_LINKS[:2]
    assert not seeds_only[LINK].test_mask.any() and not seeds_only[LINK].val_mask.any()


@pytest.mark.parametrize('argument', ['triples_1', 'triples_2', 'links',
                                      'train_links', 'test_links', 'names_1',
                                      'names_2'])
def test_a_folder_given_for_a_file_is_one_line_naming_it(tmp_path, argument):
    write_files(tmp_path, {'kg1.tsv': OPENEA_1, 'kg2.tsv': OPENEA_2,
                           'links.tsv': OPENEA_LINKS,
                           'n1.tsv': [('http://x/A', 'a')],
                           'n2.tsv': [('http://y/a', 'a')]})
    folder = tmp_path / 'folder.tsv'
    folder.mkdir()
    given = dict(triples_1=tmp_path / 'kg1.tsv', triples_2=tmp_path / 'kg2.tsv',
                 links=tmp_path / 'links.tsv')
    names = dict(names_1=tmp_path / 'n1.tsv', names_2=tmp_path / 'n2.tsv')
    if argument in names:
        names[argument] = folder
    elif argument == 'test_links':  # beside the seeds
        given.update(train_links=given.pop('links'), test_links=folder)
    else:
        given.pop('links')
        given[argument] = folder
    with pytest.raises(ValueError) as info:
        attach_names(from_tsv(**given), **names)
    assert str(info.value) == f"{folder}: a folder, not a file; give the file's path"
