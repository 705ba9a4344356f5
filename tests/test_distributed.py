import json
import os
import socket
import subprocess
import sys

import pytest

from torch_geometric_ea.data import synthetic_pair
from torch_geometric_ea.train import DualAMNConfig, train_dual_amn

SETTINGS = dict(channels=16, num_proxies=8, epochs=4, batch_size=25, lr=0.01)
ARGS = ['--dataset', 'synthetic', '--num-entities', '120', '--seed', '3']


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(sys.platform == 'win32', reason='torchrun with gloo')
def test_torchrun_two_processes_follow_the_single_process_loss_curve(tmp_path):
    # Batches of 25 pairs split 13/12 (and smaller remainders) between the
    # ranks, so the shares must be weighted. Same seed: same dropout masks.
    # float32 products: bfloat16 rounding differs with the split.
    sets = [f'--set={k}={v}' for k, v in SETTINGS.items()] + ['--precision', 'float32']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1',
           '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
           '--master_port', str(free_port()), '-m', 'torch_geometric_ea',
           'train', *ARGS, *sets, '--semi', '--set', 'semi_rounds=1',
           '--set', 'semi_epochs=2', '--json', '--out', str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / 'results.json').read_text())

    data = synthetic_pair(120, seed=3)
    single = train_dual_amn(data, DualAMNConfig(seed=3, semi=True, semi_rounds=1,
                                                semi_epochs=2, precision='float32',
                                                **SETTINGS),
                            progress=False)
    assert len(ddp['history']) == len(single.history) == 2
    for a, b in zip(ddp['history'], single.history):
        assert a['train_pairs'] == b['train_pairs']
        assert a['losses'] == pytest.approx(b['losses'], rel=1e-3)
        assert a['src->tgt']['mrr'] == pytest.approx(b['src->tgt']['mrr'], abs=0.02)
