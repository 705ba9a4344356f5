import csv
import json
import os.path as osp

import pytest
import torch

from torch_geometric_ea import Aligner
from torch_geometric_ea.cli import main
from torch_geometric_ea.data import from_tsv

# Two small KGs written by hand (the example of the "align your own KGs"
# tutorial): Russian names in Cyrillic, and an English KG with romanised
# names. Four seed links; the test expects the other eight entities aligned.
EXAMPLE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'docs',
                   'tutorials', 'example')


def _read(name):
    with open(osp.join(EXAMPLE, name), encoding='utf-8') as f:
        return f.read()


def _links(name):
    return [tuple(line.split('\t')) for line in _read(name).splitlines()]


KG1, KG2 = _read('kg1.tsv'), _read('kg2.tsv')
SEEDS = _links('seeds.tsv')
EXPECTED = sorted(_links('truth.tsv'))
SMALL = ['--set', 'channels=16', '--set', 'num_proxies=4', '--set', 'lr=0.01',
         '--epochs', '10', '--literal', '--json']


@pytest.fixture
def kgs(tmp_path):
    (tmp_path / 'kg1.tsv').write_text(KG1, encoding='utf-8')
    (tmp_path / 'kg2.tsv').write_text(KG2, encoding='utf-8')
    (tmp_path / 'seeds.tsv').write_text(
        ''.join(f'{a}\t{b}\n' for a, b in SEEDS), encoding='utf-8')
    (tmp_path / 'truth.tsv').write_text(
        ''.join(f'{a}\t{b}\n' for a, b in EXPECTED), encoding='utf-8')
    return tmp_path


def read_tsv(path):
    with open(path, encoding='utf-8') as f:
        return list(csv.reader(f, delimiter='\t'))


def test_align_two_hand_written_kgs_end_to_end(kgs, capsys):
    out = kgs / 'out'
    assert main(['align', '--triples1', str(kgs / 'kg1.tsv'), '--triples2',
                 str(kgs / 'kg2.tsv'), '--seeds', str(kgs / 'seeds.tsv'),
                 '--out', str(out), '-k', '3'] + SMALL) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary['pairs'] == 8 and summary['k'] == 3

    alignment = read_tsv(out / 'alignment.tsv')
    assert alignment[0] == ['source', 'target', 'score', 'rank']
    assert sorted((s, t) for s, t, _, _ in alignment[1:]) == EXPECTED
    assert {r for *_, r in alignment[1:]} == {'1'}
    candidates = read_tsv(out / 'candidates.tsv')[1:]
    assert len(candidates) == 8 * 3
    assert [r for *_, r in candidates[:3]] == ['1', '2', '3']
    scores = [float(s) for _, _, s, _ in candidates[:3]]
    assert scores == sorted(scores, reverse=True)
    seeds = {a for a, _ in SEEDS} | {b for _, b in SEEDS}
    assert not seeds & {name for row in candidates for name in row[:2]}

    # the checkpoint holds model and pair: align and evaluate reuse it
    again = kgs / 'again'
    assert main(['align', '--checkpoint', str(out / 'model.pt'), '--out',
                 str(again), '--decoder', 'hungarian', '--json']) == 0
    capsys.readouterr()
    assert sorted((s, t) for s, t, _, _ in read_tsv(again / 'alignment.tsv')[1:]) \
        == EXPECTED
    assert main(['evaluate', '--checkpoint', str(out / 'model.pt'), '--links',
                 str(kgs / 'truth.tsv'), '--json']) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics['src->tgt']['hits@1'] == 1.0
    # one-to-one decoding reports Hits@1 only, and the text lines show it
    assert main(['evaluate', '--checkpoint', str(out / 'model.pt'), '--links',
                 str(kgs / 'truth.tsv'), '--decoding', 'hungarian']) == 0
    assert capsys.readouterr().out.splitlines() == ['src->tgt: Hits@1 1.0000',
                                                    'tgt->src: Hits@1 1.0000']


def test_python_api_fits_saves_and_loads(kgs, tmp_path):
    from torch_geometric_ea.train import DualAMNConfig
    data = from_tsv(kgs / 'kg1.tsv', kgs / 'kg2.tsv', train_links=kgs / 'seeds.tsv')
    config = DualAMNConfig(channels=16, num_proxies=4, lr=0.01, epochs=10,
                           literal=True)
    aligner = Aligner.fit(data, config=config, progress=False)
    aligner.save(tmp_path / 'm.pt')
    loaded = Aligner.load(tmp_path / 'm.pt')
    for a, b in zip(aligner.embed(), loaded.embed()):
        assert torch.allclose(a, b)
    found = loaded.candidates(k=2)
    assert sorted((data['src'].uri[s], data['tgt'].uri[t]) for s, t in
                  zip(found.source.tolist(), found.target[:, 0].tolist())) == EXPECTED
    mutual = loaded.candidates(k=2, decoder='mutual')
    assert set(mutual.source.tolist()) <= set(found.source.tolist())


def test_align_reports_bad_tsv_with_file_and_line(kgs, capsys):
    bad = kgs / 'bad.tsv'
    bad.write_text(KG2.replace('Taganrog\tlocated_in\tRossiya',
                               'Taganrog\tlocated_in'), encoding='utf-8')
    with pytest.raises(SystemExit, match=f'{bad}:8'):
        main(['align', '--triples1', str(kgs / 'kg1.tsv'), '--triples2', str(bad),
              '--seeds', str(kgs / 'seeds.tsv'), '--out', str(kgs / 'o')] + SMALL)
    seeds = kgs / 'bad_seeds.tsv'
    seeds.write_text('Москва\tMoskva\nЛондон\tLondon\n', encoding='utf-8')
    with pytest.raises(SystemExit, match=f"{seeds}:2.*Лондон"):
        main(['align', '--triples1', str(kgs / 'kg1.tsv'), '--triples2',
              str(kgs / 'kg2.tsv'), '--seeds', str(seeds), '--out',
              str(kgs / 'o')] + SMALL)
    with pytest.raises(SystemExit, match='--seeds'):
        main(['align', '--triples1', str(kgs / 'kg1.tsv'), '--triples2',
              str(kgs / 'kg2.tsv'), '--out', str(kgs / 'o')])
    with pytest.raises(SystemExit, match='no such checkpoint'):
        main(['evaluate', '--checkpoint', str(kgs / 'missing.pt')])


class FixedEmbedding(torch.nn.Module):
    def __init__(self, emb):
        super().__init__()
        self.emb = emb

    def forward(self, graph):
        return self.emb


def test_decoders_on_fixed_embeddings():
    from torch_geometric_ea.data import kg_pair
    # sources 0 and 1 both prefer target 0; target 1 is source 1's second
    # choice, so one-to-one gives 0->0 and 1->1 (rank 2 in 1's list).
    src = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.5, 0.0], [0.0, 0.0, 1.0]])
    tgt = torch.tensor([[1.0, 0.1, 0.0], [0.6, 0.8, 0.0], [0.0, 0.1, 1.0]])
    edges = torch.tensor([[0], [1]])
    data = kg_pair(num_nodes=(3, 3), edge_index=(edges, edges),
                   edge_type=(torch.zeros(1, dtype=torch.long),) * 2,
                   link_index=torch.empty(2, 0, dtype=torch.long))
    aligner = Aligner('dual-amn', FixedEmbedding(torch.cat([src, tgt])), None,
                      data, config={}, init_args={})
    greedy = aligner.candidates(k=3, csls_k=0)
    assert greedy.target[:, 0].tolist() == [0, 0, 2]
    assert greedy.rank.tolist() == [[1, 2, 3]] * 3
    cos = torch.nn.functional.normalize(src, dim=1) @ torch.nn.functional.normalize(
        tgt, dim=1).t()
    assert torch.allclose(greedy.score, cos.sort(dim=1, descending=True).values)
    mutual = aligner.candidates(k=1, csls_k=0, decoder='mutual')
    assert mutual.source.tolist() == [0, 2]  # source 1 is not target 0's best
    one_to_one = aligner.candidates(k=2, csls_k=0, decoder='hungarian')
    assert one_to_one.target[:, 0].tolist() == [0, 1, 2]
    assert one_to_one.rank[:, 0].tolist() == [1, 2, 1]
    assert one_to_one.target[1].tolist() == [1, 0]  # partner, then the best other
    assert one_to_one.rank[1].tolist() == [2, 1]
    with pytest.raises(ValueError, match='decoder'):
        aligner.candidates(decoder='best')


def test_evaluate_and_analyze_a_train_checkpoint_with_its_dataset(tmp_path, capsys):
    run = tmp_path / 'run'
    assert main(['train', '--epochs', '1', '--set', 'channels=8', '--set',
                 'num_proxies=4', '--seed', '3', '--json', '--out', str(run)]) == 0
    trained = json.loads(capsys.readouterr().out)
    # the checkpoint holds no pair: the dataset is loaded with its split seed
    assert main(['evaluate', '--checkpoint', str(run / 'model.pt'), '--dataset',
                 'synthetic', '--json']) == 0
    metrics = json.loads(capsys.readouterr().out)
    for direction in ('src->tgt', 'tgt->src'):
        assert metrics[direction]['hits@1'] == pytest.approx(
            trained[direction]['hits@1'], abs=1e-6)
    with pytest.raises(ValueError, match='holds no KG pair'):
        Aligner.load(str(run / 'model.pt'))


def test_align_stopped_then_resumed_writes_the_same_alignment(kgs, capsys, monkeypatch):
    from torch_geometric_ea import run_folder
    from torch_geometric_ea.train.checkpoint import Checkpoints
    args = ['align', '--triples1', str(kgs / 'kg1.tsv'), '--triples2',
            str(kgs / 'kg2.tsv'), '--seeds', str(kgs / 'seeds.tsv'), '-k', '3'] + SMALL
    assert main(args + ['--out', str(kgs / 'whole')]) == 0

    class StopAtFourth(Checkpoints):  # as a SIGTERM after the fourth step
        def step(self, state, position):
            self.calls = getattr(self, 'calls', 0) + 1
            if self.calls == 4 and not self.resume:
                self.stop_signal = 15
            super().step(state, position)

    monkeypatch.setattr(run_folder, 'Checkpoints', StopAtFourth)
    out = kgs / 'stopped'
    with pytest.raises(SystemExit) as stop:
        main(args + ['--out', str(out)])
    assert stop.value.code == 128 + 15
    err = capsys.readouterr().err
    assert 'stopped (SIGTERM) at round 0, epoch' in err and f'--resume {out}' in err
    assert not (out / 'alignment.tsv').exists() and not (out / 'results.json').exists()
    assert main(args + ['--resume', str(out)]) == 0
    assert (read_tsv(out / 'candidates.tsv') == read_tsv(kgs / 'whole' / 'candidates.tsv'))
    assert not (out / 'checkpoint.pt').exists()
    with pytest.raises(SystemExit, match='that run finished'):
        main(args + ['--resume', str(out)])


@pytest.mark.parametrize('model', ['dual-amn', 'lightea'])
def test_semi_rounds_with_every_entity_paired_add_nothing(kgs, model, capsys):
    # one link left to find: the first round pairs it (one against one is
    # always mutual), and the next rounds have no entity left in the pool
    seeds = SEEDS + EXPECTED[1:]
    (kgs / 'seeds.tsv').write_text(''.join(f'{a}\t{b}\n' for a, b in seeds),
                                   encoding='utf-8')
    small = (['--set', 'channels=8', '--set', 'num_proxies=2', '--set',
              'semi_epochs=1', '--set', 'semi_rounds=3'] if model == 'dual-amn'
             else ['--set', 'ent_dim=16', '--set', 'top_k=5'])
    out = kgs / 'out'
    assert main(['align', '--model', model, '--triples1', str(kgs / 'kg1.tsv'),
                 '--triples2', str(kgs / 'kg2.tsv'), '--seeds', str(kgs / 'seeds.tsv'),
                 '--out', str(out), '--semi', '--epochs', '1', '--json'] + small) == 0
    assert json.loads(capsys.readouterr().out)['pairs'] == 1
    assert [tuple(row[:2]) for row in read_tsv(out / 'alignment.tsv')[1:]] \
        == EXPECTED[:1]


def test_a_lightea_aligner_embeds_the_features_training_computed():
    import torch.nn.functional as F
    from torch_geometric_ea.data import synthetic_pair
    from torch_geometric_ea.train import LightEAConfig, train_lightea
    data = synthetic_pair(80, num_relations=5, seed=0)
    config = LightEAConfig(ent_dim=32, rel_dim=8, mini_dim=4, top_k=10, literal=True,
                           bootstrap='inductive')
    aligner = Aligner.fit(data, 'lightea', config, progress=False)
    trained = train_lightea(data, config, progress=False).features
    assert torch.equal(torch.cat(aligner.embed()), F.normalize(trained, dim=-1))
    structure = torch.cat(aligner.embed(literal=False))
    assert torch.equal(structure, F.normalize(trained[:, :structure.size(1)], dim=-1))
