r"""Checkpoints through the command line, as a user meets them: a run killed
with SIGKILL at a random moment, or stopped with SIGINT inside a
bootstrapping round, resumes to the metrics of the uninterrupted run."""
import json
import os.path as osp
import random
import shlex
import signal
import subprocess
import sys
import time

import pytest

from torch_geometric_ea.train.checkpoint import CHECKPOINT, read_checkpoint_file

# A Dual-AMN run of several seconds: 3 rounds, 8 batches per epoch.
RUN = ['train', '--model', 'dual-amn', '--num-entities', '1500', '--semi',
       '--epochs', '4', '--semi-rounds', '2', '--semi-epochs', '3',
       '--set', 'channels=32', '--set', 'batch_size=64', '--threads', '1',
       '--json', '--checkpoint-every', '1']


def _command(out, *extra):
    return [sys.executable, '-m', 'torch_geometric_ea', *RUN, '--out', str(out), *extra]


def _metrics(out):
    with open(osp.join(out, 'results.json')) as f:
        record = json.load(f)
    assert record['finished'] is True
    return {d: record[d] for d in ('src->tgt', 'tgt->src')}, record


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp('reference')
    subprocess.run(_command(out), check=True, capture_output=True)
    assert not osp.exists(osp.join(out, CHECKPOINT))  # a finished run drops it
    return _metrics(out)[0]


def _wait_for(predicate, process, seconds=120):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert process.poll() is None, 'the run ended before the signal'
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _position(out):
    try:
        return read_checkpoint_file(osp.join(out, CHECKPOINT))['at']
    except (OSError, ValueError):
        return None


def _approx(a, b):
    for d in a:
        for k in a[d]:
            assert abs(a[d][k] - b[d][k]) <= 1e-6, (d, k)


def test_sigkill_at_a_random_step_then_resume(tmp_path, reference):
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    process = subprocess.Popen(_command(tmp_path), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _wait_for(lambda: _position(tmp_path) is not None, process)
    time.sleep(rng.uniform(0.0, 1.5))
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, f'random seed {seed}'
    with open(osp.join(tmp_path, 'results.json')) as f:
        assert json.load(f)['finished'] is False  # never looks done
    done = subprocess.run(_command(tmp_path, '--resume', str(tmp_path)),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metrics, record = _metrics(tmp_path)
    _approx(reference, metrics)
    assert metrics == reference  # deterministic CPU kernels: identical
    assert record['resumed']['times'] == 1


def test_sigint_in_a_bootstrapping_round_then_resume(tmp_path, reference):
    process = subprocess.Popen(_command(tmp_path), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (_position(tmp_path) or {}).get('round', 0) >= 1, process)
    process.send_signal(signal.SIGINT)
    err = process.communicate()[1]
    assert process.returncode == 128 + signal.SIGINT
    assert 'stopped (SIGINT) at round ' in err and '--resume' in err
    assert 'Traceback' not in err
    with open(osp.join(tmp_path, 'results.json')) as f:
        record = json.load(f)
    assert record['finished'] is False and record['stopped_at'].startswith('round ')
    assert _position(tmp_path)['round'] >= 1
    resume = shlex.split(record['resume'])[3:]  # the printed command, typed again
    done = subprocess.run([sys.executable, '-m', 'torch_geometric_ea', *resume],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _metrics(tmp_path)[0] == reference


def test_resume_refusals_are_one_line(tmp_path):
    process = subprocess.Popen(_command(tmp_path), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _wait_for(lambda: _position(tmp_path) is not None, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait() == 128 + signal.SIGTERM
    other = [a if a != 'channels=32' else 'channels=16' for a in _command(tmp_path)]
    done = subprocess.run(other + ['--resume', str(tmp_path)], capture_output=True,
                          text=True)
    assert done.returncode == 1
    lines = [line for line in done.stderr.strip().splitlines()
             if not line.startswith('memory estimate:')]  # printed before work
    assert len(lines) == 1
    assert 'configuration differs: channels=32 there, 16 here' in done.stderr
    empty = tmp_path / 'empty'
    empty.mkdir()
    done = subprocess.run(_command(empty, '--resume', str(empty)), capture_output=True,
                          text=True)
    assert done.returncode == 1 and 'no checkpoint to resume from' in done.stderr
