r"""The run's device, chosen once: trainers, the Aligner and both command
entry points."""
import json
import shutil
import subprocess
import sys

import pytest
import torch

from torch_geometric_ea import Aligner
from torch_geometric_ea.cli import main
from torch_geometric_ea.data import synthetic_pair
from torch_geometric_ea.train import (
    DualAMNConfig,
    GCNAlignConfig,
    RDGCNConfig,
    resolve_device,
    train_dual_amn,
    train_gcn_align,
    train_rdgcn,
)

TINY = {
    train_dual_amn: DualAMNConfig(channels=8, num_proxies=4, epochs=2, batch_size=32,
                                  semi=True, semi_rounds=1, semi_epochs=1),
    train_gcn_align: GCNAlignConfig(channels=8, epochs=3),
    train_rdgcn: RDGCNConfig(channels=8, epochs=2, num_negatives=3),
}


@pytest.mark.parametrize('train', list(TINY), ids=lambda f: f.__name__)
def test_trainers_run_on_the_device_and_match_the_cpu(device, train):
    data = synthetic_pair(80, seed=2)
    config = TINY[train]
    result = train(data, type(config)(**{**config.__dict__, 'device': str(device)}),
                   progress=False)
    assert all(p.device.type == device.type for p in result.model.parameters())
    cpu = train(data, type(config)(**{**config.__dict__, 'device': 'cpu'}),
                progress=False)
    for d in ('src->tgt', 'tgt->src'):
        assert result.metrics[d]['hits@1'] == pytest.approx(cpu.metrics[d]['hits@1'],
                                                            abs=0.05)


def test_aligner_loads_onto_the_chosen_device(device, tmp_path):
    data = synthetic_pair(60, seed=1)
    aligner = Aligner.fit(data, config=TINY[train_dual_amn], progress=False,
                          device='cpu')
    aligner.save(tmp_path / 'model.pt')
    again = Aligner.load(tmp_path / 'model.pt', device=str(device))
    assert next(again.model.parameters()).device.type == device.type
    assert again.config['device'] == str(device)
    cands = again.candidates(3)
    assert cands.target.device.type == device.type
    assert again.evaluate()['src->tgt']['hits@1'] == pytest.approx(
        aligner.evaluate()['src->tgt']['hits@1'], abs=1e-6)


def test_resolve_device():
    assert resolve_device('cpu') == torch.device('cpu')
    assert resolve_device(None).type == ('cuda' if torch.cuda.is_available() else 'cpu')
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        resolve_device('gpu0')


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_a_missing_cuda_device_stops_the_command_before_any_work(tmp_path, capsys):
    out = tmp_path / 'run'
    with pytest.raises(SystemExit) as stop:
        main(['train', '--num-entities', '60', '--device', 'cuda', '--out', str(out)])
    assert str(stop.value).startswith("error: device 'cuda' asked for")
    assert not out.exists()


ARGS = ['train', '--num-entities', '60', '--epochs', '1', '--set', 'channels=8',
        '--device', 'cpu', '--json']


def test_both_entry_points_set_the_process_up_the_same_way():
    script = shutil.which('torch-geometric-ea')
    if script is None:
        pytest.skip('the package is not installed with its console script')
    env = {k: v for k, v in __import__('os').environ.items()
           if k not in ('THP_MEM_ALLOC_ENABLE', 'OMP_WAIT_POLICY')}
    runs = [subprocess.run(cmd + ARGS, capture_output=True, text=True, env=env,
                           timeout=300)
            for cmd in ([script], [sys.executable, '-m', 'torch_geometric_ea'])]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    setups = [json.loads(run.stdout)['runtime'] for run in runs]
    assert setups[0] == setups[1]
    assert setups[0]['thp_mem_alloc'] == '1' and setups[0]['device'] == 'cpu'
    assert setups[0]['huge_pages'] is True
    assert setups[0]['omp_wait_policy'] == 'PASSIVE'  # fair on shared cores
    chosen = subprocess.run([script] + ARGS, capture_output=True, text=True,
                            env=dict(env, OMP_WAIT_POLICY='ACTIVE'), timeout=300)
    assert json.loads(chosen.stdout)['runtime']['omp_wait_policy'] == 'ACTIVE'
    assert setups[0]['keeps_freed_memory'] is (sys.platform == 'linux')


def test_lightea_with_names_runs_without_huge_pages():
    env = {k: v for k, v in __import__('os').environ.items()
           if k != 'THP_MEM_ALLOC_ENABLE'}
    run = subprocess.run([sys.executable, '-m', 'torch_geometric_ea', 'train',
                          '--model', 'lightea', '--literal', '--num-entities', '60',
                          '--json'], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)['runtime']['huge_pages'] is False  # the spec says
