import hashlib
import logging
import os
import os.path as osp
import re
import shutil
import zipfile
from pathlib import Path
from urllib.error import URLError

import pytest
import torch

import torch_geometric_ea.data.download as download
import torch_geometric_ea.data.translated as translated
from torch_geometric_ea.data import (
    DBP15K,
    DWY100K,
    LINK,
    MIRROR_ENV,
    SRC,
    SRC_TRIPLE,
    SRPRS,
    TGT,
    TGT_TRIPLE,
    DatasetError,
    OpenEA,
    links,
)

from fakes import Payload

GCN_ALIGN = {
    'ent_ids_1': '0\thttp://x/A\n1\thttp://x/B\n2\thttp://x/C\n3\thttp://x/D\n',
    'ent_ids_2': '10\thttp://y/a\n11\thttp://y/b\n12\thttp://y/c\n',
    'triples_1': '0\t5\t1\n1\t6\t2\n2\t5\t3\n',
    'triples_2': '10\t7\t11\n11\t7\t12\n',
    'ref_ent_ids': '0\t10\n1\t11\n2\t12\n',
}
RSN = dict(GCN_ALIGN, rel_ids_1='5\thttp://x/p\n6\thttp://x/q\n',
           rel_ids_2='7\thttp://y/p\n', sup_ent_ids='3\t12\n',
           ref_ent_ids='0\t10\n1\t11\n')
OPENEA = {
    'rel_triples_1': 'A\tp\tB\nB\tp\tC\n',
    'rel_triples_2': 'a\tp\tb\nb\tq\tc\n',
    'ent_links': 'A\ta\nB\tb\nC\tc\n',
    **{f'721_5fold/{k}/{name}_links': text
       for k in range(1, 6)
       for name, text in (('train', 'A\ta\n'), ('valid', 'B\tb\n'),
                          ('test', 'C\tc\n'))},
}


def write_tree(folder: Path, files):
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding='utf-8')


@pytest.fixture
def fake_mirror(tmp_path, monkeypatch):
    r"""A mirror holding tiny files in every layout (and no translated
    names: the pairs name their entities by URI)."""
    monkeypatch.setattr(translated, 'TRANSLATED_NAMES', {})
    mirror = tmp_path / 'mirror'
    write_tree(mirror / 'dbp15k' / 'zh_en', GCN_ALIGN)
    write_tree(mirror / 'srprs' / 'en_de_15k_V1', RSN)
    write_tree(mirror / 'dwy100k' / 'dbp_yg', RSN)
    write_tree(mirror / 'openea' / 'EN_FR_15K_V2', OPENEA)
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    return mirror


def test_mirror_download_and_seeded_processing(fake_mirror, dataset_root,
                                               monkeypatch):
    monkeypatch.setattr(DBP15K, 'checksums', {})  # tiny files, not the real ones
    a = DBP15K(dataset_root, 'zh_en', train_ratio=0.34, seed=0)
    assert repr(a) == 'DBP15K(zh_en)'
    assert sorted(set(os.listdir(a.raw_dir)) - {'SHA256SUMS'}) == sorted(GCN_ALIGN)
    data = a[0]
    assert data[SRC].num_nodes == 4 and data[TGT].num_nodes == 3
    assert data[SRC].raw_id.tolist() == [0, 1, 2, 3]
    assert int(data[LINK].train_mask.sum()) == 1

    trains = {}
    for seed in range(6):
        ds = DBP15K(dataset_root, 'zh_en', train_ratio=0.34, seed=seed)
        assert ds.processed_paths[0].endswith(f'data_v2_train0.34_seed{seed}.pt')
        trains[seed] = links(ds[0], 'train').tolist()
    assert len({str(t) for t in trains.values()}) > 1  # seeds give other splits
    processed = os.listdir(osp.join(dataset_root, 'zh_en', 'processed'))
    assert {f'data_v2_train0.34_seed{s}.pt' for s in range(6)} <= set(processed)
    # a cached split is loaded, not recomputed
    assert links(DBP15K(dataset_root, 'zh_en', train_ratio=0.34, seed=0)[0],
                 'train').tolist() == trains[0]


def test_transforms_apply(fake_mirror, dataset_root, monkeypatch):
    monkeypatch.setattr(DBP15K, 'checksums', {})

    def tag(key):
        def transform(data):
            data[key] = True
            return data
        return transform

    ds = DBP15K(dataset_root, 'zh_en', pre_transform=tag('pre'),
                transform=tag('post'))
    data = ds[0]
    assert data.pre and data.post
    assert 'post' not in ds._data  # applied on access, not stored


def one_line_error(make, *named) -> str:
    r"""The message of the :class:`DatasetError` ``make()`` raises, checked
    to be one line naming each of ``named``."""
    with pytest.raises(ValueError) as info:
        make()
    message = str(info.value)
    assert isinstance(info.value, DatasetError), repr(info.value)
    assert '\n' not in message
    for name in named:
        assert str(name) in message
    return message


def test_checksum_mismatch_is_an_error(fake_mirror, dataset_root):
    path = osp.join(dataset_root, 'zh_en', 'raw', 'ent_ids_1')
    message = one_line_error(lambda: DBP15K(dataset_root, 'zh_en'), path)
    assert re.search(r"SHA-256 [0-9a-f]{64} does not match the expected 6d230db7.*"
                     r"was removed: run again to fetch it anew", message)
    assert not osp.exists(path)


def test_missing_mirror_file_is_named(fake_mirror, dataset_root):
    message = one_line_error(lambda: DBP15K(dataset_root, 'ja_en'),
                             fake_mirror / 'dbp15k' / 'ja_en' / 'ent_ids_1')
    assert 'missing from the mirror' in message and 'add the file there' in message


@pytest.mark.parametrize('make', [lambda p: None, lambda p: p.write_text('x')],
                         ids=['missing', 'a file'])
def test_a_mirror_that_is_no_folder_is_named(make, tmp_path, dataset_root,
                                             monkeypatch):
    mirror = tmp_path / 'mirror'
    make(mirror)
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    message = one_line_error(lambda: SRPRS(dataset_root, 'en_de'), mirror,
                             'srprs/en_de_15k_V1/ent_ids_1')
    assert f'{MIRROR_ENV} names no folder' in message


@pytest.mark.parametrize('error', [
    URLError('[Errno -3] Temporary failure in name resolution'),
    OSError('Network is unreachable\n(second line)'),
], ids=['URLError', 'OSError'])
@pytest.mark.parametrize('cls, pair, mirrored', [
    (DBP15K, 'fr_en', 'dbp15k/fr_en/ent_ids_1'),
    (OpenEA, 'D_W_15K_V1', 'openea/D_W_15K_V1/rel_triples_1')])
def test_no_network_is_one_line(cls, pair, mirrored, error, dataset_root,
                                monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)

    def offline(url, folder, log=True, filename=None):
        with open(osp.join(folder, filename), 'w') as f:
            f.write('the start of a download')  # then the network goes
        raise error

    monkeypatch.setattr(download, 'download_url', offline)
    message = one_line_error(lambda: cls(dataset_root, pair), MIRROR_ENV, mirrored)
    assert 'check your network' in message and 'cannot download https://' in message
    assert not any(files for _, _, files in os.walk(dataset_root))  # no partial file


def test_a_bad_openea_archive_is_named(tmp_path, dataset_root, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    archive = Path(dataset_root) / 'OpenEA_dataset_v2.0.zip'
    archive.write_bytes(b'PK\x03\x04 cut short')
    message = one_line_error(lambda: OpenEA(dataset_root, 'D_W_15K_V1'), archive)
    assert 'not a zip archive' in message and 'delete it' in message


def write_srprs_en_fr(tmp_path, monkeypatch):
    r"""A mirror with the SRPRS en_fr files (tiny, checksums not checked)
    and without its translated names."""
    monkeypatch.setattr(SRPRS, 'checksums', {})
    mirror = tmp_path / 'mirror'
    write_tree(mirror / 'srprs' / 'en_fr_15k_V1', RSN)
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    return mirror


def test_missing_translated_names_are_one_line_and_uri_names_never_need_them(
        tmp_path, dataset_root, monkeypatch):
    mirror = write_srprs_en_fr(tmp_path, monkeypatch)
    message = one_line_error(lambda: SRPRS(dataset_root, 'en_fr'),
                             mirror / 'names' / 'srprs_fr_en.json')
    assert "names='uri'" in message and '--names uri' in message
    data = SRPRS(dataset_root, 'en_fr', names='uri')[0]
    assert data[SRC].num_nodes == 4 and 'name' not in data[SRC]
    assert not osp.exists(osp.join(dataset_root, 'en_fr', 'raw', 'srprs_fr_en.json'))


def test_unknown_checksums_are_summarised_in_one_line(fake_mirror, dataset_root,
                                                      caplog):
    with caplog.at_level(logging.WARNING):
        data = SRPRS(dataset_root, 'en_de')[0]
    notes = [r.getMessage() for r in caplog.records if 'checksum' in r.getMessage()]
    assert len(notes) == 1  # one line for the dataset, not one per file
    assert notes[0].startswith(f'SRPRS(en_de): {len(RSN)} file(s) without a known checksum')
    sums = (Path(dataset_root) / 'en_de' / 'raw' / 'SHA256SUMS').read_text()
    digest = hashlib.sha256(RSN['triples_1'].encode()).hexdigest()
    assert f'{digest}  triples_1\n' in sums
    assert data[SRC_TRIPLE].relation_uri == ['http://x/p', 'http://x/q']
    assert links(data, 'train').tolist() == [[3], [2]]
    assert int(data[LINK].test_mask.sum()) == 2


def test_dwy100k_and_openea_from_mirror(fake_mirror, dataset_root):
    data = DWY100K(dataset_root, 'dbp_yg')[0]
    assert data[TGT_TRIPLE].relation_uri == ['http://y/p']
    assert int(data[LINK].train_mask.sum()) == 1
    ds = OpenEA(dataset_root, 'EN_FR_15K_V2', fold=3)
    assert ds.processed_paths[0].endswith('data_v2_fold3.pt')
    data = ds[0]
    assert data[SRC].uri == ['A', 'B', 'C']
    assert [data[LINK][f'{s}_mask'].tolist() for s in ('train', 'val', 'test')] \
        == [[True, False, False], [False, True, False], [False, False, True]]


@pytest.mark.parametrize('cls, name', [(DBP15K, 'en_zh'), (SRPRS, 'fr_en'),
                                       (DWY100K, 'dbp_wd_100k'), (OpenEA, 'D_W')])
def test_unknown_pair(cls, name, dataset_root):
    message = one_line_error(lambda: cls(dataset_root, name), 'unknown pair',
                             repr(name), ', '.join(cls.pairs))
    assert message.startswith(cls.__name__)


def test_network_download(tmp_path, dataset_root, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    source = tmp_path / 'server'
    write_tree(source, RSN)
    requested = []

    def fake_download(url, folder, log=True, filename=None):
        requested.append(url)
        shutil.copyfile(source / url.rsplit('/', 1)[1], osp.join(folder, filename))
        return osp.join(folder, filename)

    monkeypatch.setattr(download, 'download_url', fake_download)
    data = DWY100K(dataset_root, 'dbp_wd')[0]
    assert data[SRC].num_nodes == 4
    assert ('https://raw.githubusercontent.com/nju-websoft/BootEA/2538d9d0a69ebbba'
            'c65bb78b2150d14a7dbc642e/dataset/DWY100K/dbp_wd/mapping/0_3/'
            'sup_ent_ids') in requested
    assert len(requested) == 8

    requested.clear()
    with pytest.raises(ValueError, match='does not match the expected'):
        SRPRS(dataset_root, 'en_fr')  # tiny files, real checksums
    assert requested[0] == ('https://raw.githubusercontent.com/MaoXinn/Dual-AMN/'
                            'b42a2e69d78e3378626ff20c9224c6cce40b8c01/data/'
                            'en_fr_15k_V1/ent_ids_1')


def test_openea_network_download(tmp_path, dataset_root, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    archive = tmp_path / 'archive.zip'
    with zipfile.ZipFile(archive, 'w') as zf:
        for name, text in OPENEA.items():
            zf.writestr(f'OpenEA_dataset_v2.0/D_Y_100K_V1/{name}', text)
    requested = []

    def fake_download(url, folder, log=True, filename=None):
        requested.append(url)
        shutil.copyfile(archive, osp.join(folder, filename))
        return osp.join(folder, filename)

    monkeypatch.setattr(download, 'download_url', fake_download)
    for fold in (1, 2):
        data = OpenEA(dataset_root, 'D_Y_100K_V1', fold=fold)[0]
        assert data[SRC].uri == ['A', 'B', 'C']
    assert requested == [OpenEA.archive_url]  # the archive is kept and reused
    one_line_error(lambda: OpenEA(dataset_root, 'D_Y_15K_V1'),
                   'missing member OpenEA_dataset_v2.0/D_Y_15K_V1/rel_triples_1')


# -------------------------------------------------------------- real data --

DBP15K_SIZES = {'zh_en': (19388, 19572), 'ja_en': (19814, 19780),
                'fr_en': (19661, 19993)}


@pytest.fixture(scope='module')
def real_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp('real'))


def unique_lines(path):
    with open(path, encoding='utf-8') as f:
        return set(line.rstrip('\r\n') for line in f if line.strip())


def assert_raw_triples(data, side, path):
    store = data[(side, 'triple', side)]
    raw = data[side].raw_id
    h, t = raw[store.edge_index]
    r = store.relation_raw_id[store.edge_type]
    got = {f'{a}\t{b}\t{c}' for a, b, c in zip(h.tolist(), r.tolist(), t.tolist())}
    want = unique_lines(path)
    assert store.edge_index.size(1) == len(want)
    assert got == want
    assert store.num_duplicates == 0


@pytest.mark.real_data
@pytest.mark.parametrize('pair', sorted(DBP15K_SIZES))
def test_dbp15k(pair, mirror, real_root):
    ds = DBP15K(real_root, pair)  # copied from the mirror, checksums verified
    data = ds[0]
    raw = mirror / 'dbp15k' / pair
    assert (data[SRC].num_nodes, data[TGT].num_nodes) == DBP15K_SIZES[pair]
    assert data[LINK].edge_label_index.size(1) == 15000
    assert int(data[LINK].train_mask.sum()) == 4500
    assert int(data[LINK].test_mask.sum()) == 10500
    assert not data[LINK].val_mask.any()
    for k, side in (('1', SRC), ('2', TGT)):
        assert_raw_triples(data, side, raw / f'triples_{k}')
        assert data.report[f'triples_{k}']['duplicates'] == 0
        assert data[(side, 'triple', side)].relation_uri[0].startswith('rel')
    ref = [tuple(map(int, line.split('\t'))) for line in
           (raw / 'ref_ent_ids').read_text().splitlines()]
    li = data[LINK].edge_label_index
    assert list(zip(data[SRC].raw_id[li[0]].tolist(),
                    data[TGT].raw_id[li[1]].tolist())) == ref
    assert data[SRC].uri[0] == (raw / 'ent_ids_1').read_text(
        encoding='utf-8').split('\n')[0].split('\t')[1]


@pytest.mark.real_data
def test_dbp15k_seeds_do_not_collide(mirror, real_root):
    a = DBP15K(real_root, 'zh_en', seed=0)
    b = DBP15K(real_root, 'zh_en', seed=1)
    assert a.processed_paths != b.processed_paths
    ta, tb = a[0][LINK].train_mask, b[0][LINK].train_mask
    assert int(ta.sum()) == int(tb.sum()) == 4500
    assert not torch.equal(ta, tb)


@pytest.mark.real_data
def test_srprs_en_fr(mirror, real_root):
    data = SRPRS(real_root, 'en_fr')[0]
    raw = mirror / 'srprs' / 'en_fr_15k_V1'
    assert data[SRC].num_nodes == data[TGT].num_nodes == 15000
    assert int(data[LINK].train_mask.sum()) == 4500
    assert int(data[LINK].test_mask.sum()) == 10500
    assert data[SRC_TRIPLE].num_relations == 221
    assert data[TGT_TRIPLE].num_relations == 177
    assert data[SRC_TRIPLE].relation_uri[0] == 'http://dbpedia.org/ontology/partner'
    # KG1 ids interleave: 0-10499 and 21000-25499
    assert data[SRC].raw_id.max() == 25499
    for k, side in (('1', SRC), ('2', TGT)):
        assert_raw_triples(data, side, raw / f'triples_{k}')
    sup = [tuple(map(int, line.split('\t'))) for line in
           (raw / 'sup_ent_ids').read_text().splitlines()]
    train = links(data, 'train')
    assert list(zip(data[SRC].raw_id[train[0]].tolist(),
                    data[TGT].raw_id[train[1]].tolist())) == sup


DATASETS = [(DBP15K, 'zh_en'), (SRPRS, 'en_de'), (DWY100K, 'dbp_yg'),
            (OpenEA, 'EN_FR_15K_V2')]


@pytest.mark.parametrize('fresh', [False, True], ids=['processed', 'fresh'])
@pytest.mark.parametrize('file', ['data', 'pre_transform.pt', 'pre_filter.pt'])
@pytest.mark.parametrize('cls, pair', DATASETS, ids=lambda x: getattr(x, '__name__', x))
def test_no_file_of_a_dataset_folder_is_unpickled(cls, pair, file, fresh, fake_mirror,
                                                  dataset_root, monkeypatch, tmp_path):
    r"""A crafted ``.pt`` in any place of a dataset's ``processed`` folder
    (the processed file, or PyG's notes of the ``pre_transform`` and
    ``pre_filter``), planted beside a processed dataset or into a fresh
    root, never runs: the processed file is refused in one line naming
    it, a note is warned about and the raw files are processed again."""
    monkeypatch.setattr(DBP15K, 'checksums', {})
    ds = cls(dataset_root, pair)
    target = ds.processed_paths[0] if file == 'data' else \
        osp.join(ds.processed_dir, file)
    if fresh:
        shutil.rmtree(osp.dirname(ds.processed_dir))
        os.makedirs(ds.processed_dir)
    marker = tmp_path / 'payload_ran'
    torch.save(Payload(str(marker)), target)
    real_load = torch.load

    def load(*args, **kwargs):  # PyG's and ours alike
        assert kwargs.get('weights_only') is True, (args, kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', load)
    if file == 'data':
        message = one_line_error(lambda: cls(dataset_root, pair), target)
        assert 'can load safely' in message and 'force_reload=True' in message
        again = cls(dataset_root, pair, force_reload=True)  # the way out
    else:
        with pytest.warns(UserWarning, match=re.escape(target)):
            again = cls(dataset_root, pair)
        assert real_load(target, weights_only=True) == 'None'  # rewritten
    assert not marker.exists()
    assert again[0][SRC].num_nodes > 0


def test_srprs_copies_whose_ref_holds_the_training_links(tmp_path, dataset_root,
                                                          monkeypatch):
    # a public copy of dbp_wd_15k_V1 keeps all links in ref_ent_ids and the
    # training ones, a subset of them, in sup_ent_ids: test = ref minus sup
    mirror = tmp_path / 'mirror'
    write_tree(mirror / 'srprs' / 'dbp_wd_15k_V1',
               dict(RSN, ref_ent_ids='0\t10\n3\t12\n1\t11\n'))
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    data = SRPRS(dataset_root, 'dbp_wd')[0]
    assert links(data, 'train').tolist() == [[3], [2]]
    assert links(data, 'test').tolist() == [[0, 1], [0, 1]]
    assert data.report['ref_ent_ids']['test_links'] == 2
    assert data.report['ref_ent_ids']['training_links_left_out'] == 1
    # a partial overlap is still a repeated link
    write_tree(mirror / 'srprs' / 'dbp_yg_15k_V1',
               dict(RSN, sup_ent_ids='3\t12\n2\t10\n', ref_ent_ids='3\t12\n1\t11\n'))
    with pytest.raises(ValueError, match='sup_ent_ids|ref_ent_ids'):
        SRPRS(dataset_root, 'dbp_yg')
