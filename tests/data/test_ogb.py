import gzip
import os
import pickle
import re
import sys
import types
from urllib.error import URLError

import pytest
import torch

from torch_geometric_ea.data import DatasetError, ogb_pair, read_ogb_kg, synthetic_pair
from torch_geometric_ea.data.pair import LINK, SRC, SRC_TRIPLE, TGT, TGT_TRIPLE

from fakes import Payload


def write_raw(root, edges, relations, num_nodes=None, name='ogbl_wikikg2'):
    raw = root / name / 'raw'
    raw.mkdir(parents=True)
    with gzip.open(raw / 'edge.csv.gz', 'wt') as f:
        f.writelines(f'{h},{t}\n' for h, t in edges)
    with gzip.open(raw / 'edge_reltype.csv.gz', 'wt') as f:
        f.writelines(f'{r}\n' for r in relations)
    if num_nodes is not None:
        with gzip.open(raw / 'num-node-list.csv.gz', 'wt') as f:
            f.write(f'{num_nodes}\n')
    return raw


def random_kg(num_nodes=400, num_edges=3000, num_relations=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    edges = torch.randint(num_nodes, (num_edges, 2), generator=gen).tolist()
    rels = torch.randint(num_relations, (num_edges, ), generator=gen).tolist()
    return edges, rels


def test_read_ogb_kg_reads_the_raw_layout(tmp_path):
    edges, rels = random_kg()
    raw = write_raw(tmp_path, edges, rels, num_nodes=450)
    triples, num_nodes, num_relations = read_ogb_kg(str(raw))
    assert num_nodes == 450 and num_relations == max(rels) + 1
    assert triples[:, [0, 2]].tolist() == edges and triples[:, 1].tolist() == rels


def test_ogb_pair_is_two_noisy_views_of_the_kg(tmp_path):
    edges, rels = random_kg()
    write_raw(tmp_path, edges, rels, num_nodes=400)
    data = ogb_pair(str(tmp_path), 200, unique_fraction=0.1, seed=1)
    assert data[SRC].num_nodes == data[TGT].num_nodes == 200
    links = data[LINK].edge_label_index
    assert links.size(1) == 180  # 200 minus 20 unique per side
    assert int(data[LINK].train_mask.sum()) == int(180 * 0.3)
    for key in (SRC_TRIPLE, TGT_TRIPLE):
        assert 0 < data[key].edge_index.size(1) < len(edges)
    # The views share the base triples: about 1 - edge_dropout (0.7) of the
    # KG1 edges between linked entities are KG2 edges under the links.
    to_tgt = torch.full((200, ), -1)
    to_tgt[links[0]] = links[1]
    src_edges = data[SRC_TRIPLE].edge_index
    h, t = to_tgt[src_edges[0]], to_tgt[src_edges[1]]
    both = (h >= 0) & (t >= 0)
    tgt = {tuple(e) for e in data[TGT_TRIPLE].edge_index.t().tolist()}
    kept = sum((a, b) in tgt for a, b in zip(h[both].tolist(), t[both].tolist()))
    assert 0.6 < kept / int(both.sum()) < 0.8
    again = ogb_pair(str(tmp_path), 200, unique_fraction=0.1, seed=1)
    assert torch.equal(again[LINK].edge_label_index, links)
    other = ogb_pair(str(tmp_path), 200, unique_fraction=0.1, seed=2)
    assert not torch.equal(other[LINK].edge_label_index, links)


def test_ogb_pair_uses_the_whole_kg_by_default_and_checks_size(tmp_path):
    edges, rels = random_kg(num_nodes=110)
    write_raw(tmp_path, edges, rels, num_nodes=110)
    assert ogb_pair(str(tmp_path))[SRC].num_nodes == 100  # 100 + 10 unique
    with pytest.raises(ValueError, match='need 220'):
        ogb_pair(str(tmp_path), 200)


def test_the_same_procedure_as_the_synthetic_generator():
    # two_views is the synthetic generator's second half: same seed, same pair
    a, b = synthetic_pair(300, seed=4), synthetic_pair(300, seed=4)
    assert torch.equal(a[LINK].edge_label_index, b[LINK].edge_label_index)


@pytest.mark.parametrize('edges, rels, num_nodes, match', [
    ([(0, 1), (1, 'x')], [0, 1], None, r'edge.csv.gz:2: non-integer id'),
    ([(0, 1), (1, 2, 3)], [0, 1], None, r'edge.csv.gz:2: malformed line: expected 2 '
                                        r"',' *-separated"),
    ([(0, 1), (1, 2)], [0], None, r'edge_reltype.csv.gz:2: 1 relation lines for the 2'),
    ([(0, 1), (1, 9)], [0, 0], 5, r'edge.csv.gz:2: entity id 9 out of range'),
])
def test_bad_raw_files_name_file_and_line(tmp_path, edges, rels, num_nodes, match):
    raw = tmp_path / 'ogbl_wikikg2' / 'raw'
    raw.mkdir(parents=True)
    with gzip.open(raw / 'edge.csv.gz', 'wt') as f:
        f.writelines(','.join(map(str, e)) + '\n' for e in edges)
    with gzip.open(raw / 'edge_reltype.csv.gz', 'wt') as f:
        f.writelines(f'{r}\n' for r in rels)
    if num_nodes is not None:
        with gzip.open(raw / 'num-node-list.csv.gz', 'wt') as f:
            f.write(f'{num_nodes}\n')
    with pytest.raises(ValueError, match=match):
        read_ogb_kg(str(raw))


def test_missing_files_say_where_they_are_expected(tmp_path):
    with pytest.raises(DatasetError, match="OGB's raw KG layout.*download=True"):
        ogb_pair(str(tmp_path))


def test_a_truncated_raw_file_is_one_line_naming_it(tmp_path):
    raw = write_raw(tmp_path, *random_kg())
    path = raw / 'edge.csv.gz'
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=re.escape(f"{path}: not a whole gzip file")):
        ogb_pair(str(tmp_path))


def fake_ogb(monkeypatch, download):
    r"""An ``ogb.linkproppred`` whose dataset does what ogb's does with a
    folder: unpickles ``processed/data_processed`` when it exists, else
    calls ``download()``."""
    class LinkPropPredDataset:
        def __init__(self, name, root):
            path = os.path.join(root, name.replace('-', '_'), 'processed',
                                'data_processed')
            if os.path.exists(path):  # as ogb does, with torch.load
                with open(path, 'rb') as f:
                    self.graph = pickle.load(f)
            else:
                download()
    module = types.ModuleType('ogb.linkproppred')
    module.LinkPropPredDataset = LinkPropPredDataset
    monkeypatch.setitem(sys.modules, 'ogb', types.ModuleType('ogb'))
    monkeypatch.setitem(sys.modules, 'ogb.linkproppred', module)


def test_downloading_never_lets_ogb_unpickle_a_planted_file(tmp_path, monkeypatch):
    fake_ogb(monkeypatch, download=lambda: None)
    path = tmp_path / 'ogbl_wikikg2' / 'processed' / 'data_processed'
    path.parent.mkdir(parents=True)
    marker = tmp_path / 'payload_ran'
    path.write_bytes(pickle.dumps(Payload(str(marker))))
    with pytest.raises(DatasetError) as info:
        ogb_pair(str(tmp_path), download=True)
    assert str(info.value).startswith(f"{path}: the ogb package would unpickle")
    assert not marker.exists()


def test_download_failures_are_one_line(tmp_path, monkeypatch):
    def offline():
        raise URLError('[Errno -3] Temporary failure\nin name resolution')
    fake_ogb(monkeypatch, offline)
    raw = tmp_path / 'ogbl_wikikg2' / 'raw'
    with pytest.raises(DatasetError, match=re.escape(
            f"{raw}: cannot download ogbl-wikikg2 (<urlopen error [Errno -3] "
            f"Temporary failure in name resolution>); check your network")):
        ogb_pair(str(tmp_path), download=True)
    monkeypatch.setitem(sys.modules, 'ogb.linkproppred', None)  # not installed
    with pytest.raises(DatasetError, match=re.escape(
            f"{raw}: no raw files of ogbl-wikikg2; downloading them needs the ogb "
            f"package")):
        ogb_pair(str(tmp_path), download=True)


def test_get_pair_loads_an_ogb_pair_from_root_ogb(tmp_path):
    from torch_geometric_ea.data import get_pair
    edges, rels = random_kg()
    write_raw(tmp_path / 'ogb', edges, rels, num_nodes=400)
    data = get_pair('ogb', None, str(tmp_path), seed=0, num_entities=150)
    assert data[SRC].num_nodes == 150 and data[LINK].edge_label_index.size(1) == 135
