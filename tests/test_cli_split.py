r"""The command line is a thin layer (issue 29): its commands run from the
library with plain options, its pieces (options, output folder, reports)
are public functions, and a model's abilities come from its registered
spec, never from its name."""
import ast
import json
import os
import os.path as osp

import pytest

from torch_geometric_ea import cli
from torch_geometric_ea.commands import run_evaluate, run_train
from torch_geometric_ea.errors import CommandError, RunStopped
from torch_geometric_ea.model_file import read_model_file
from torch_geometric_ea.options import (
    ModelOptions,
    PairOptions,
    RunOptions,
    parse_field,
)
from torch_geometric_ea.report import dumps, metric_lines
from torch_geometric_ea.run_folder import (
    claim_run_folder,
    interruptible,
    resume_command,
    run_checkpoints,
)
from torch_geometric_ea.train import DualAMNConfig, DualAMNSpec
from torch_geometric_ea.train.checkpoint import CHECKPOINT
from torch_geometric_ea.train.registry import REGISTRY

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAIR = PairOptions(dataset='synthetic', num_entities=60)
CPU = RunOptions(device='cpu', json=True, argv=('prog', 'train'))


def test_train_and_evaluate_run_from_the_library(tmp_path, capsys):
    out = str(tmp_path / 'run')  # made by the run
    model = ModelOptions('lightea', dict(device='cpu'))
    results = run_train(model, PAIR, RunOptions(device='cpu', json=True, out=out,
                                                argv=('prog', 'train')))
    assert json.loads(capsys.readouterr().out) == json.loads(dumps(results))
    assert results['finished'] and results['command'] == 'prog train'
    assert results['scale_settings'] == {} and results['model'] == 'lightea'
    saved = read_model_file(osp.join(out, 'model.pt'))
    assert saved['replay'] is not None  # LightEA's features are replayed from it
    assert saved['metrics']['src->tgt'] == results['src->tgt']
    pair = PairOptions(dataset='synthetic', num_entities=60,
                       checkpoint=osp.join(out, 'model.pt'))
    assert results['protocol']['ranking'] == 'sparse sinkhorn'
    metrics = run_evaluate(pair, CPU, decoding='sinkhorn')  # features replayed
    for key in ('hits@1', 'mrr'):  # (tgt->src: Sinkhorn of the transposed scores)
        assert metrics['src->tgt'][key] == pytest.approx(results['src->tgt'][key],
                                                         abs=1e-6)


def test_a_lightea_train_out_model_is_evaluated_by_the_cli(tmp_path, capsys):
    out = tmp_path / 'run'
    assert cli.main(['train', '--model', 'lightea', '--device', 'cpu', '--json',
                     '--out', str(out)]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert cli.main(['evaluate', '--checkpoint', str(out / 'model.pt'), '--dataset',
                     'synthetic', '--device', 'cpu', '--json', '--decoding',
                     'sinkhorn']) == 0
    metrics = json.loads(capsys.readouterr().out)
    # its features replayed; dense Sinkhorn here, training's is sparse
    assert metrics['src->tgt']['hits@1'] == pytest.approx(
        trained['src->tgt']['hits@1'], abs=0.005)


def test_options_errors_are_one_line_of_the_library():
    literal = r'^--literal is an option of dual-amn, lightea \(got --model gcn-align\)$'
    with pytest.raises(CommandError, match=literal):
        ModelOptions('gcn-align', dict(literal=True)).config()
    with pytest.raises(CommandError, match=r"^--set epochs: cannot read 'x' as int$"):
        ModelOptions('dual-amn', settings=('epochs=x',)).config()
    with pytest.raises(CommandError, match=r'^--epochs must be'):
        ModelOptions('dual-amn', dict(epochs=-1)).config()
    with pytest.raises(CommandError, match=r'^--set epochs must be'):
        ModelOptions('dual-amn', settings=('epochs=-1',)).config()
    assert parse_field(DualAMNConfig, 'literal', 'TRUE') is True
    assert parse_field(DualAMNConfig, 'lr', '0.5') == 0.5
    config, scaled = ModelOptions('dual-amn', dict(epochs=2, seed=None),
                                  ('channels=8',)).config()
    assert (config.epochs, config.channels, scaled) == (2, 8, {})
    assert cli._parse_value is parse_field  # benchmarks/lightea_official_split.py


def test_the_names_earlier_callers_import_stay():
    for name in ('main', 'build_parser', 'load_pair', 'build_config', 'uses_names',
                 '_parse_value', 'MIN_ENTITIES', 'MAX_ENTITIES'):
        assert hasattr(cli, name), name
    assert cli.uses_names(DualAMNConfig(literal=True))
    assert not cli.uses_names(DualAMNConfig())
    data = cli.load_pair('synthetic', None, 'unused', 3, num_entities=40)
    assert data['src'].num_nodes == 40
    with pytest.raises(ValueError, match='--pair is required for dbp15k'):
        cli.load_pair('dbp15k', None, 'unused')


def test_the_output_folder_is_claimed_and_dropped_when_unused(tmp_path):
    out = str(tmp_path / 'new')
    folder = claim_run_folder(out)
    assert folder.made and osp.isdir(out)
    with pytest.raises(ValueError, match=str(os.getpid())):
        claim_run_folder(out)  # one run at a time
    folder.drop_if_unused()
    folder.release()
    assert not osp.exists(out)
    kept = str(tmp_path / 'kept')
    folder = claim_run_folder(kept)
    with open(osp.join(kept, 'results.json'), 'w') as f:
        f.write('{}')
    folder.drop_if_unused()
    folder.release()
    assert osp.exists(osp.join(kept, 'results.json'))


def test_a_stopped_runs_folder_asks_for_resume_or_overwrite(tmp_path):
    out = str(tmp_path / 'stopped')
    os.makedirs(out)
    open(osp.join(out, CHECKPOINT), 'wb').close()
    with pytest.raises(CommandError, match='--resume .* or start afresh with '
                                           '--overwrite$'):
        claim_run_folder(out, trains=True)
    claim_run_folder(out).release()  # the refusal released the lock
    claim_run_folder(out, trains=True, overwrite=True).release()
    assert not osp.exists(osp.join(out, CHECKPOINT))


def test_checkpoints_resume_in_their_folder(tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    with pytest.raises(CommandError, match=f'^--resume {b} continues in that folder'):
        run_checkpoints(a, b)
    assert run_checkpoints(None) == (None, None)
    folder, checkpoints = run_checkpoints(a, argv=('prog', 'train', '--out', a))
    assert folder == a and checkpoints is not None
    with open(osp.join(a, 'results.json')) as f:
        assert json.load(f) == dict(finished=False, command=resume_command(
            ('prog', 'train', '--out', a)))
    assert resume_command(('prog', 'train', '--out', 'x y'), 'x y') == (
        "python -m torch_geometric_ea train --out 'x y' --resume 'x y'")


def test_a_stop_after_the_last_step_is_a_status_not_an_exit(tmp_path, capsys):
    _, checkpoints = run_checkpoints(str(tmp_path), results=False)
    with pytest.raises(RunStopped) as stop:
        with interruptible(checkpoints):
            checkpoints.stop_signal = 15
    assert stop.value.status == 128 + 15
    assert 'stopped (SIGTERM) after training' in capsys.readouterr().err


def test_metric_lines_hold_the_directions_only():
    assert metric_lines({'src->tgt': {'hits@1': 0.5, 'mrr': 0.25}, 'csls': {}}) == [
        'src->tgt: Hits@1 0.5000  MRR 0.2500']
    assert dumps({'mrr': float('nan')}) == '{"mrr": null}'


class Mine(DualAMNSpec):
    r"""Dual-AMN under another name, without relation importance."""
    name = 'mine'
    relation_importance = False


def test_a_registered_model_is_a_command_line_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(REGISTRY, 'mine', Mine)
    out = tmp_path / 'run'
    assert cli.main(['train', '--model', 'mine', '--epochs', '1', '--set',
                     'channels=8', '--device', 'cpu', '--json', '--literal',
                     '--out', str(out)]) == 0
    assert json.loads(capsys.readouterr().out)['model'] == 'mine'
    with pytest.raises(SystemExit) as error:
        cli.main(['analyze', '--checkpoint', str(out / 'model.pt'), '--dataset',
                  'synthetic', '--device', 'cpu'])
    assert error.value.code == ('error: relation importance needs a model with '
                                'relation embeddings: dual-amn (got mine)')


LAYER = ['cli', 'commands', 'options', 'resources', 'run_folder', 'report',
         'errors', 'interrupts', 'entry']


@pytest.mark.parametrize('module', LAYER)
def test_no_private_name_crosses_a_module_boundary(module):
    path = osp.join(ROOT, 'torch_geometric_ea', f'{module}.py')
    with open(path) as f:
        tree = ast.parse(f.read())
    private = [f'{node.module}.{alias.name}' for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom)
               for alias in node.names if alias.name.startswith('_')]
    assert not private


def test_the_command_line_only_parses_and_calls():
    with open(osp.join(ROOT, 'torch_geometric_ea', 'cli.py')) as f:
        source = f.read()
    assert len(source.splitlines()) < 300
    for word in ("'dual-amn'", "'lightea'", "'gcn-align'", "'rdgcn'"):
        # the parser's default model is the only model it names
        assert source.count(word) == (2 if word == "'dual-amn'" else 0), word
