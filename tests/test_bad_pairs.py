r"""Pairs that cannot be aligned stop with one clear error before any
work, for every model and through the CLI (issue 17, "Bad input")."""
import pytest
import torch

from torch_geometric_ea.cli import main
from torch_geometric_ea.data import kg_pair
from torch_geometric_ea.train.lightea import LightEAConfig, train_lightea

from test_align import kgs  # noqa: F401 (fixture)


def pair(edges1=((0, 1), (1, 2)), edges2=((0, 1), (1, 2)), train=(True, False),
         links=((0, 1), (0, 1)), num_nodes=(3, 3)):
    e1 = torch.tensor(edges1, dtype=torch.long).view(-1, 2).t()
    e2 = torch.tensor(edges2, dtype=torch.long).view(-1, 2).t()
    li = torch.tensor(links, dtype=torch.long).view(2, -1)
    train = torch.tensor(train, dtype=torch.bool)
    return kg_pair(num_nodes=num_nodes, edge_index=(e1, e2),
                   edge_type=(torch.zeros(e1.size(1), dtype=torch.long),
                              torch.zeros(e2.size(1), dtype=torch.long)),
                   num_relations=(1, 1), link_index=li, train_mask=train,
                   test_mask=~train)


def test_pairs_that_cannot_be_aligned_name_their_problem(monkeypatch):
    work = []  # any model work before the check fails the test
    monkeypatch.setattr('torch_geometric_ea.train.lightea.lightea_graph',
                        lambda *a, **k: work.append(1))
    cases = [
        (lambda: pair(train=(False, False)), 'no training \\(seed\\) links'),
        (lambda: pair(edges1=()), 'KG1 has no triples'),
        (lambda: pair(edges2=()), 'KG2 has no triples'),
        (lambda: pair(links=((0, 1, 2, 0), (0, 1, 2, 1)), train=(True,) * 4),
         '4 links but a KG has only 3 entities'),
        (lambda: pair(links=((0, 5), (0, 1))), r'ids outside \[0, 3\)'),
        (lambda: pair(num_nodes=(0, 3), edges1=(), links=((), ()), train=()),
         'KG1 has no entities'),
    ]
    for build, message in cases:
        with pytest.raises(ValueError, match=message):
            train_lightea(build(), LightEAConfig(ent_dim=8, rel_dim=4, top_k=2),
                          progress=False)
    assert not work


@pytest.mark.parametrize('model', ['lightea', 'dual-amn'])
def test_align_cli_stops_on_bad_seeds_and_kgs(kgs, model, capsys):  # noqa: F811
    def run(kg1='kg1.tsv', seeds='seeds.tsv'):
        return main(['align', '--model', model, '--triples1', str(kgs / kg1),
                     '--triples2', str(kgs / 'kg2.tsv'), '--seeds', str(kgs / seeds),
                     '--out', str(kgs / 'out'), '--epochs', '1'])

    (kgs / 'none.tsv').write_text('', encoding='utf-8')
    with pytest.raises(SystemExit, match=f"error: {kgs / 'none.tsv'}:1: empty file"):
        run(seeds='none.tsv')
    with pytest.raises(SystemExit, match=f"error: {kgs / 'none.tsv'}:1: empty file"):
        run(kg1='none.tsv')
    (kgs / 'unknown.tsv').write_text('Москва\tMoskva\nАтлантида\tLondon\n',
                                     encoding='utf-8')
    unknown = kgs / 'unknown.tsv'
    with pytest.raises(SystemExit, match=f"error: {unknown}:2: .*Атлантида"):
        run(seeds='unknown.tsv')
    (kgs / 'two.tsv').write_text('Москва\tстолица\n', encoding='utf-8')
    with pytest.raises(SystemExit, match=f"error: {kgs / 'two.tsv'}:1: malformed"):
        run(kg1='two.tsv')
    assert not (kgs / 'out').exists()


def seeded_whole():  # every entity of KG1 has a seed link, KG2 has one more
    return pair(links=((0, 1, 2), (0, 1, 2)), train=(True,) * 3, num_nodes=(3, 4),
                edges2=((0, 1), (1, 2), (2, 3)))


def one_entity():  # KG1's one entity (a self-loop) has a seed link
    return pair(edges1=((0, 0),), links=((0,), (0,)), train=(True,), num_nodes=(1, 3))


CONFIG = LightEAConfig(ent_dim=8, rel_dim=4, top_k=2)


@pytest.mark.parametrize('build, message', [
    (seeded_whole, 'nothing to align: every entity of KG1 has a seed link'),
    (one_entity, 'KG1 has one entity, and it has a seed link: nothing to align'),
])
def test_aligning_a_pair_with_nothing_left_stops_before_training(build, message,
                                                                 monkeypatch):
    from torch_geometric_ea import Aligner
    data = build()
    assert train_lightea(data, CONFIG, progress=False).metrics  # a benchmark run may
    work = []  # any model work before the check fails the test
    monkeypatch.setattr('torch_geometric_ea.train.lightea.lightea_graph',
                        lambda *a, **k: work.append(1))
    with pytest.raises(ValueError, match=message) as e:
        Aligner.fit(data, 'lightea', CONFIG, progress=False)
    assert '\n' not in str(e.value)
    assert not work


@pytest.mark.parametrize('case', ['every entity seeded', 'one entity'])
def test_align_cli_stops_when_nothing_is_left_to_align(kgs, case, capsys):  # noqa: F811
    from test_align import EXPECTED, SEEDS
    kg1 = kgs / 'kg1.tsv'
    if case == 'one entity':  # KG1 is one entity, the seed's
        kg1.write_text(f'{SEEDS[0][0]}\tself\t{SEEDS[0][0]}\n', encoding='utf-8')
        seeds, message = SEEDS[:1], 'KG1 has one entity'
    else:
        seeds, message = SEEDS + EXPECTED, 'every entity of KG1 has a seed link'
    (kgs / 'seeds.tsv').write_text(''.join(f'{a}\t{b}\n' for a, b in seeds),
                                   encoding='utf-8')
    with pytest.raises(SystemExit, match=f'error: .*{message}'):
        main(['align', '--triples1', str(kg1), '--triples2', str(kgs / 'kg2.tsv'),
              '--seeds', str(kgs / 'seeds.tsv'), '--out', str(kgs / 'out'),
              '--epochs', '1', '--set', 'channels=8', '--set', 'num_proxies=2'])
    assert 'round' not in capsys.readouterr().err  # nothing was trained
    assert not (kgs / 'out' / 'model.pt').exists()
