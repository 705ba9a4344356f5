import json

import pytest
import torch
import torch.nn.functional as F

from torch_geometric_ea.analysis import (
    entity_degree,
    hits_by_degree,
    plot_hits_by_degree,
    relation_importance,
    relation_importance_table,
)
from torch_geometric_ea.cli import main
from torch_geometric_ea.data import kg_pair
from torch_geometric_ea.metrics import evaluate_alignment
from torch_geometric_ea.nn import DualAMN


def star_pair():
    # KG1: entity 0 has degree 4, 1..4 degree 1 or 2; KG2 the same shape
    edges = torch.tensor([[0, 0, 0, 0, 1], [1, 2, 3, 4, 2]])
    return kg_pair(num_nodes=(6, 6), edge_index=(edges, edges),
                   edge_type=(torch.tensor([0, 0, 1, 1, 0]), torch.tensor([0, 1, 0, 1, 1])),
                   link_index=torch.arange(6).repeat(2, 1),
                   relation_uri=(['capital', 'river'], ['hauptstadt', 'fluss']))


def test_relation_importance_is_the_mean_attention_logit():
    model = DualAMN(10, num_relations=3, channels=8, num_layers=2, num_proxies=2)
    h = F.normalize(model.rel_emb.weight, dim=-1)
    atts = [model.ent_encoder.convs[0].att, model.ent_encoder.convs[1].att,
            model.rel_encoder.convs[0].att, model.rel_encoder.convs[1].att]
    expected = sum(h @ a.view(-1) for a in atts) / 4
    assert torch.allclose(relation_importance(model), expected, atol=1e-6)
    assert relation_importance(model).shape == (6,)


def test_relation_importance_table_names_each_relation():
    data = star_pair()
    model = DualAMN(12, num_relations=4, channels=8, num_proxies=2)
    with torch.no_grad():  # make KG2's 'fluss' the most attended relation
        model.rel_emb.weight[3] = sum(
            conv.att.view(-1) for enc in (model.ent_encoder, model.rel_encoder)
            for conv in enc.convs)  # the direction of the mean attention vector
    rows = relation_importance_table(model, data)
    assert len(rows) == 8
    assert rows[0]['relation'] == 'fluss' and rows[0]['kg'] == 2
    assert rows[0]['direction'] == 'forward' and rows[0]['triples'] == 3
    assert [r['importance'] for r in rows] == sorted(
        (r['importance'] for r in rows), reverse=True)
    assert {(r['relation'], r['direction']) for r in rows} >= {('capital', 'inverse')}
    with pytest.raises(ValueError, match='relations'):
        relation_importance_table(DualAMN(12, num_relations=3, channels=8), data)


def test_hits_by_degree_groups_the_ranks_of_evaluate_alignment():
    data = star_pair()
    assert entity_degree(data, 'src').tolist() == [4, 2, 2, 1, 1, 0]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=gen)
    y = x.clone()
    y[3] = torch.randn(4, generator=gen)  # a degree-1 entity is misaligned
    links = torch.tensor([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])
    rows = hits_by_degree(x, y, data, links, buckets=(1, 2, 4))
    assert [r['degree'] for r in rows] == ['1', '2-3', '4+']
    assert [r['links'] for r in rows] == [2, 2, 1]
    assert rows[1]['hits@1'] == 1.0 and rows[2]['hits@1'] == 1.0
    overall = evaluate_alignment(x, y, links)['src->tgt']['hits@1']
    assert sum(r['hits@1'] * r['links'] for r in rows) / 5 == pytest.approx(overall)
    empty = hits_by_degree(x, y, data, links, buckets=(1, 8))
    assert empty[1]['links'] == 0 and empty[1]['hits@1'] != empty[1]['hits@1']  # NaN
    with pytest.raises(ValueError, match='increasing'):
        hits_by_degree(x, y, data, links, buckets=(4, 2))


def test_degree_plot_is_a_png(tmp_path):
    pytest.importorskip('matplotlib')
    rows = [dict(degree='1', links=3, **{'hits@1': 0.5}),
            dict(degree='2+', links=1, **{'hits@1': 1.0})]
    plot_hits_by_degree({'structure': rows, 'structure + names': rows},
                        str(tmp_path / 'p.png'))
    assert (tmp_path / 'p.png').read_bytes()[:4] == b'\x89PNG'


def test_analyze_command_lists_relations_by_name(tmp_path, capsys):
    pytest.importorskip('matplotlib')
    from test_align import EXPECTED, KG1, KG2, SEEDS
    for name, text in (('kg1.tsv', KG1), ('kg2.tsv', KG2)):
        (tmp_path / name).write_text(text, encoding='utf-8')
    for name, links in (('seeds.tsv', SEEDS), ('test.tsv', EXPECTED)):
        (tmp_path / name).write_text(''.join(f'{a}\t{b}\n' for a, b in links),
                                     encoding='utf-8')
    assert main(['align', '--triples1', str(tmp_path / 'kg1.tsv'), '--triples2',
                 str(tmp_path / 'kg2.tsv'), '--seeds', str(tmp_path / 'seeds.tsv'),
                 '--test-links', str(tmp_path / 'test.tsv'), '--out', str(tmp_path / 'run'), '--epochs', '2', '--literal',
                 '--set', 'channels=8', '--json']) == 0
    capsys.readouterr()
    assert main(['analyze', '--checkpoint', str(tmp_path / 'run' / 'model.pt'),
                 '--top', '3', '--out', str(tmp_path / 'an')]) == 0
    text = capsys.readouterr().out
    assert 'most important relations' in text and '| degree | links |' in text
    assert '| I_r | KG | relation | triples |' in text
    saved = json.loads((tmp_path / 'an' / 'analysis.json').read_text())
    names = {r['relation'] for r in saved['relations']}
    assert {'author_of', 'автор'} <= names and len(saved['relations']) == 2 * 12
    assert set(saved['hits_by_degree']) == {'structure', 'structure + names'}
    assert sum(r['links'] for r in saved['hits_by_degree']['structure']) == 8
    assert (tmp_path / 'an' / 'hits_by_degree.png').exists()
