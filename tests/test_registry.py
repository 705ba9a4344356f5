r"""A model is one registered entry: a small model defined in this file
alone runs through ``train``, ``align``, ``evaluate``, ``--resume``, the
Python API and the memory estimate, and no module outside the models'
own names a model in a string comparison."""
import json
import os.path as osp
import re
from dataclasses import dataclass
from typing import Dict, Optional

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.utils import scatter

import torch_geometric_ea
from torch_geometric_ea import Aligner
from torch_geometric_ea.cli import main
from torch_geometric_ea.data import synthetic_pair
from torch_geometric_ea.metrics import evaluate_alignment
from torch_geometric_ea.train import AlignerSpec, get_model, model_names, register_model
from torch_geometric_ea.train.checkpoint import Checkpoints, Interrupted
from torch_geometric_ea.train.memory import (
    FLOAT,
    common_terms,
    estimate_memory,
    largest_phase,
    pair_size,
)
from torch_geometric_ea.train.registry import REGISTRY


@dataclass
class MeanConfig:
    r"""Settings of the test's model."""
    channels: int = 16
    epochs: int = 4
    lr: float = 0.5
    num_negatives: int = 5
    seed: int = 0
    device: Optional[str] = None


class MeanEmbedding(torch.nn.Module):
    r"""An entity table averaged with the neighbours' rows."""
    def __init__(self, num_nodes: int, channels: int):
        super().__init__()
        self.emb = torch.nn.Embedding(num_nodes, channels)

    def forward(self, graph):
        x = self.emb.weight
        row, col = graph.edge_index
        return x + scatter(x[row], col, 0, dim_size=x.size(0), reduce='mean')


class MeanSpec(AlignerSpec):
    r"""Seed pairs pulled together, random pairs pushed apart, by cosine."""
    name = 'mean-test'
    config_class = MeanConfig
    module_class = MeanEmbedding

    @classmethod
    def build_graph(cls, union, data, config):
        return Data(edge_index=union.edge_index, num_nodes=union.num_nodes)

    def __init__(self, loop, **options):
        super().__init__(loop)
        self.init_args = dict(num_nodes=loop.union.num_nodes,
                              channels=self.config.channels)
        self.model = MeanEmbedding(**self.init_args).to(loop.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.config.lr)
        self.protocol = dict(ranking='csls')

    def run_epoch(self, epoch: int) -> float:
        pairs, n = self.loop.train_pairs, self.loop.union.num_nodes
        for half in pairs.chunk(2, dim=1):  # two steps per epoch
            out = F.normalize(self.model(self.loop.graph), dim=-1)
            negatives = torch.randint(n, (half.size(1), self.config.num_negatives))
            pos = (out[half[0]] * out[half[1]]).sum(-1)
            neg = (out[half[0]].unsqueeze(1) * out[negatives]).sum(-1)
            loss = (1 - pos).mean() + neg.clamp(min=0).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return loss.item()  # a stop waits for the epoch's end: nothing to keep

    def evaluate(self, pool) -> Dict:
        emb = self.loop.result.embed()
        return evaluate_alignment(emb, emb, self.loop.test_pairs)

    @classmethod
    def estimate_memory(cls, size, cfg, growth, candidates=False):
        table = FLOAT * size.entities * cfg.channels
        return largest_phase(common_terms(size, 16), dict(
            train=dict(activations=6 * table), evaluate=dict(scores=table)), growth)


@pytest.fixture
def registered():
    register_model(MeanSpec)
    yield MeanSpec
    REGISTRY.pop(MeanSpec.name)


def _write_tsvs(data, folder):
    r"""The pair as ``align``'s TSV files: triples by URI, seed and test
    links."""
    folder.mkdir()
    seen = {}
    for kg, side, triple in (('kg1', 'src', ('src', 'triple', 'src')),
                             ('kg2', 'tgt', ('tgt', 'triple', 'tgt'))):
        uri, rel = data[side].uri, data[triple].relation_uri
        (head, tail), kind = data[triple].edge_index, data[triple].edge_type
        seen[side] = set(head.tolist()) | set(tail.tolist())
        (folder / f'{kg}.tsv').write_text(''.join(
            f'{uri[h]}\t{rel[r]}\t{uri[t]}\n'
            for h, r, t in zip(head.tolist(), kind.tolist(), tail.tolist())))
    link = data['src', 'link', 'tgt']
    for name, mask in (('seeds', link.train_mask), ('test', link.test_mask)):
        (folder / f'{name}.tsv').write_text(''.join(
            f"{data['src'].uri[a]}\t{data['tgt'].uri[b]}\n"
            for a, b in link.edge_label_index[:, mask].t().tolist()
            if a in seen['src'] and b in seen['tgt']))  # entities of a triple
    return folder


SMALL = ['--num-entities', '80', '--seed', '1', '--device', 'cpu', '--json']


def test_registered_model_runs_through_the_python_api(registered):
    assert 'mean-test' in model_names() and get_model('mean-test') is MeanSpec
    data = synthetic_pair(80, seed=1)
    result = MeanSpec.fit(data, MeanConfig(), progress=False)
    assert len(result.history) == 1 and len(result.history[0]['losses']) == 4
    assert 0 <= result.metrics['src->tgt']['hits@1'] <= 1
    aligner = Aligner.fit(data, 'mean-test', MeanConfig(), progress=False)
    assert aligner.candidates(k=3).target.size(1) == 3


def test_registered_model_is_resumed_as_it_would_have_run(registered, tmp_path):
    data = synthetic_pair(80, seed=1)
    expected = MeanSpec.fit(data, MeanConfig(), progress=False)

    class StopAtThird(Checkpoints):
        def step(self, state, position):
            self.calls = getattr(self, 'calls', 0) + 1
            if self.calls == 3:
                self.stop_signal = 15
            super().step(state, position)

    with pytest.raises(Interrupted):
        MeanSpec.fit(data, MeanConfig(), progress=False,
                     checkpoints=StopAtThird(tmp_path, every=0))
    resumed = MeanSpec.fit(data, MeanConfig(), progress=False,
                           checkpoints=Checkpoints(tmp_path, resume=True))
    assert resumed.metrics == expected.metrics
    assert resumed.history[0]['losses'] == expected.history[0]['losses']


def test_registered_model_runs_through_the_command_line(registered, tmp_path, capsys,
                                                        monkeypatch):
    from torch_geometric_ea import run_folder
    out = tmp_path / 'run'
    assert main(['train', '--model', 'mean-test', '--out', str(out), *SMALL]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record['model'] == 'mean-test' and record['memory_estimate']['gib'] > 0
    assert osp.exists(out / 'model.pt')

    class StopAtSecond(Checkpoints):
        def step(self, state, position):
            self.calls = getattr(self, 'calls', 0) + 1
            if self.calls == 2:
                self.stop_signal = 15
            super().step(state, position)

    stopped = tmp_path / 'stopped'
    monkeypatch.setattr(run_folder, 'Checkpoints', StopAtSecond)
    with pytest.raises(SystemExit) as stop:
        main(['train', '--model', 'mean-test', '--out', str(stopped), *SMALL])
    assert stop.value.code == 128 + 15
    monkeypatch.setattr(run_folder, 'Checkpoints', Checkpoints)
    capsys.readouterr()
    assert main(['train', '--model', 'mean-test', '--resume', str(stopped), *SMALL]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed['resumed']['times'] == 1
    assert {d: resumed[d] for d in ('src->tgt', 'tgt->src')} == {
        d: record[d] for d in ('src->tgt', 'tgt->src')}

    # align: train on seed links, write the alignment, then predict again
    # with its model file; evaluate that model file
    kgs = _write_tsvs(synthetic_pair(80, seed=1), tmp_path / 'kgs')
    files = ['--triples1', str(kgs / 'kg1.tsv'), '--triples2', str(kgs / 'kg2.tsv')]
    aligned = tmp_path / 'aligned'
    assert main(['align', *files, '--seeds', str(kgs / 'seeds.tsv'), '--model',
                 'mean-test', '-k', '3', '--out', str(aligned), '--device', 'cpu',
                 '--json']) == 0
    first = json.loads(capsys.readouterr().out)
    assert first['model'] == 'mean-test' and first['pairs'] > 0
    again = tmp_path / 'again'
    assert main(['align', '--checkpoint', str(aligned / 'model.pt'), '-k', '3',
                 '--out', str(again), '--device', 'cpu', '--json']) == 0
    capsys.readouterr()
    assert ((aligned / 'alignment.tsv').read_text()
            == (again / 'alignment.tsv').read_text())
    assert main(['evaluate', '--checkpoint', str(aligned / 'model.pt'), '--links',
                 str(kgs / 'test.tsv'), '--device', 'cpu', '--json']) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0 <= metrics['src->tgt']['hits@1'] <= 1


def test_registered_model_has_a_memory_estimate(registered):
    size = pair_size(synthetic_pair(80, seed=1))
    small = estimate_memory('mean-test', size, MeanConfig(channels=8))
    large = estimate_memory('mean-test', size, MeanConfig(channels=64))
    assert large.peak > small.peak and small.phase == 'train'


def test_unknown_model_is_one_line():
    with pytest.raises(ValueError, match=r"unknown model 'nope'; choose from .*dual-amn"):
        get_model('nope')


def test_no_module_outside_the_models_compares_a_model_name():
    r"""Only a model's own module names it (its ``name``); everything else
    looks models up in the registry."""
    root = osp.dirname(torch_geometric_ea.__file__)
    names = '|'.join(re.escape(n) for n in ('dual-amn', 'gcn-align', 'rdgcn', 'lightea'))
    comparison = re.compile(rf"""(==|!=|\bin\b|\bnot in\b)\s*\(?\s*['"]({names})['"]"""
                            rf"""|['"]({names})['"]\s*(==|!=)""")
    found = []
    for folder, _, files in __import__('os').walk(root):
        for file in files:
            if file.endswith('.py'):
                path = osp.join(folder, file)
                for number, line in enumerate(open(path), 1):
                    if comparison.search(line):
                        found.append(f'{osp.relpath(path, root)}:{number}: {line.strip()}')
    assert not found, found
