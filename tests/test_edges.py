r"""The edges of issue 28, each a case a user met: bad options end with one
``error:`` line before any work; one run per output folder; a stopped
run's checkpoint is never silently deleted; a full disk leaves the earlier
outputs as they were; Ctrl-C at any moment exits without a traceback."""
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from torch_geometric_ea.cli import main
from torch_geometric_ea.train.checkpoint import write_atomic

from fakes import FullDisk
from test_align import kgs  # noqa: F401 (fixture)

TINY = ['train', '--num-entities', '40', '--epochs', '1', '--json']


def error_line(argv, capsys, before_work: bool = True) -> str:
    r"""Runs ``argv``, which must stop with status 1 or 2 and exactly one
    line on stderr (or in the exit message), ``error: ...``, before any
    work began (no memory estimate printed) with ``before_work``; returns
    the line."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    if isinstance(e.value.code, str):
        assert '\n' not in e.value.code, e.value.code
        lines.append(e.value.code)
    else:
        assert e.value.code in (1, 2)
    errors = [line for line in lines if line.startswith('error: ')]
    assert len(errors) == 1 and 'Traceback' not in err, lines
    began = [line for line in lines if line.startswith('memory estimate')]
    assert not (before_work and began), 'stopped after the work began'
    return errors[0]


@pytest.mark.parametrize('extra, says', [
    (['--max-memory', 'nan'], '--max-memory'),
    (['--max-memory', 'inf'], '--max-memory'),
    (['--max-memory', '-1'], '--max-memory'),
    (['--threads', '-1'], '--threads'),
    (['--threads', '0'], '--threads'),
    (['--device', 'meta'], "'meta'"),
    (['--device', 'mps'], "'mps'"),
    (['--device', 'nonsense'], "'nonsense'"),
    (['--batch-size', '0'], '--batch-size'),
    (['--batch-size', '-5'], '--batch-size'),
    (['--loss-chunk-size', '0'], '--loss-chunk-size'),
    (['--lr', 'nan'], '--lr'),
    (['--lr', 'inf'], '--lr'),
    (['--set', 'channels=0'], '--set channels'),
    (['--num-entities', '0'], '--num-entities'),
    (['--num-entities', '1'], '--num-entities'),
    (['--semi', '--semi-rounds', '-1'], '--semi-rounds'),
    (['--model', 'lightea', '--iterations', '0'], '--iterations'),
    (['--out', 'o', '--checkpoint-every', '-1'], '--checkpoint-every'),
    (['--epochs', '0'], '--epochs'),
    (['--epochs', '-1'], '--epochs'),
    (['--set', 'device=nonsense'], 'device'),
    (['--set', 'unknown=1'], "'unknown'"),
    (['--set', 'lr=abc'], "'abc'"),
    (['--set', 'seed=-1'], '--set seed'),
    (['--seed', '-1'], '--seed'),
    (['--dataset', 'dbp15k'], '--pair'),
    (['--dataset', 'nonsense'], "'nonsense'"),
])
def test_a_bad_train_option_is_one_error_line_before_any_work(
        extra, says, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = error_line(TINY + extra, capsys)
    assert says in line
    assert not (tmp_path / 'o').exists()  # nothing made for a run that never ran


@pytest.mark.parametrize('argv, says', [
    (['evaluate', '--csls-k', '-5'], '--csls-k'),
    (['align', '--out', 'o', '-k', '0'], '-k'),
    (['align', '--out', 'o', '-k', '-1'], '-k'),
    (['analyze', '--top', '0'], '--top'),
    (['analyze', '--top', '-3'], '--top'),
])
def test_bad_counts_of_the_other_commands_are_one_error_line(
        argv, says, capsys, kgs, monkeypatch):  # noqa: F811
    assert main(['align', '--triples1', str(kgs / 'kg1.tsv'), '--triples2',
                 str(kgs / 'kg2.tsv'), '--seeds', str(kgs / 'seeds.tsv'), '--out',
                 str(kgs / 'trained'), '--epochs', '1', '--json']) == 0
    capsys.readouterr()
    monkeypatch.chdir(kgs)
    assert says in error_line(argv + ['--checkpoint', 'trained/model.pt'], capsys)
    assert not (kgs / 'o').exists()


def test_threads_above_the_cpus_are_capped_with_a_warning(capsys):
    assert main(TINY + ['--threads', '100000']) == 0
    assert 'warning: --threads 100000 is above the' in capsys.readouterr().err


def test_the_python_api_stops_bad_settings_as_the_command_line_does():
    from torch_geometric_ea.train import DualAMNConfig, LightEAConfig
    for cls, kwargs, says in [
            (DualAMNConfig, dict(batch_size=0), "'batch_size' must be at least 1"),
            (DualAMNConfig, dict(lr=float('inf')), "'lr' must be a finite number"),
            (DualAMNConfig, dict(epochs=2.5), "'epochs' must be an integer"),
            (DualAMNConfig, dict(device='meta'), "'device' must be"),
            (LightEAConfig, dict(iterations=0), "'iterations' must be at least 1"),
            (LightEAConfig, dict(projection='x'), "'projection' must be one of")]:
        with pytest.raises(ValueError, match=says):
            cls(**kwargs)


def test_two_runs_never_share_an_output_folder(tmp_path, capsys):
    out = tmp_path / 'run'
    holder = subprocess.Popen([sys.executable, '-c', (
        'import sys, time; from torch_geometric_ea.outputs import claim_folder; '
        f'claim_folder({str(out)!r}); print("held", flush=True); time.sleep(60)')],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        line = error_line(TINY + ['--out', str(out)], capsys)
        assert f'another run writes there (pid {holder.pid})' in line
    finally:
        holder.kill()
        holder.wait()
    assert main(TINY + ['--out', str(out)]) == 0  # the lock went with its holder
    assert sorted(p.name for p in out.iterdir()) == ['model.pt', 'results.json']


def test_a_fresh_run_never_deletes_a_stopped_runs_checkpoint(tmp_path, capsys):
    out = tmp_path / 'run'
    out.mkdir()
    write_atomic(str(out / 'checkpoint.pt'), dict(identity={}, stopped=True))
    before = (out / 'checkpoint.pt').read_bytes()
    line = error_line(TINY + ['--out', str(out)], capsys)
    assert f'--resume {out}' in line and '--overwrite' in line
    assert (out / 'checkpoint.pt').read_bytes() == before
    assert main(TINY + ['--out', str(out), '--overwrite']) == 0
    assert not (out / 'checkpoint.pt').exists()
    assert json.loads((out / 'results.json').read_text())['finished'] is True


@pytest.mark.parametrize('name', ['file', 'a\nfile'])
def test_an_out_under_a_file_stops_before_any_work(tmp_path, capsys, name):
    (tmp_path / name).write_text('')  # a line break in a path stays one line
    line = error_line(TINY + ['--out', str(tmp_path / name / 'run')], capsys)
    assert 'cannot write there' in line


@pytest.mark.parametrize('room', [0, 5000])
def test_a_full_disk_leaves_the_earlier_outputs_as_they_were(tmp_path, capsys,
                                                             monkeypatch, room):
    out = tmp_path / 'run'
    assert main(TINY + ['--out', str(out)]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr('torch_geometric_ea.outputs.open',
                        lambda path, mode: FullDisk(open(path, mode), room),
                        raising=False)
    line = error_line(TINY + ['--seed', '1', '--out', str(out)], capsys,
                      before_work=False)
    assert 'No space left on device' in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _tmpfs(path, size: str) -> bool:
    r"""Mounts a ``size`` tmpfs at ``path`` (root only); whether it worked."""
    path.mkdir()
    return subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs',
                           str(path)], capture_output=True).returncode == 0


def test_a_real_full_disk_is_one_line_and_nothing_finished(tmp_path):
    disk = tmp_path / 'disk'
    if shutil.which('mount') is None or not _tmpfs(disk, '1m'):
        pytest.skip('cannot mount a tmpfs here')
    try:
        run = subprocess.run([sys.executable, '-m', 'torch_geometric_ea', 'train',
                              '--num-entities', '300', '--epochs', '1', '--out',
                              str(disk / 't')], capture_output=True, text=True)
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 1 and 'Traceback' not in run.stderr
        assert lines[-1].startswith('error: ') and 'No space left' in lines[-1]
        results = disk / 't' / 'results.json'
        assert not results.exists() or not json.loads(results.read_text())['finished']
        assert not [p for p in (disk / 't').iterdir() if '.tmp-' in p.name]
    finally:
        subprocess.run(['umount', str(disk)])


def test_a_read_only_out_stops_before_any_work(tmp_path):
    disk = tmp_path / 'ro'
    if shutil.which('mount') is None or not _tmpfs(disk, '1m'):
        pytest.skip('cannot mount a tmpfs here')
    try:
        subprocess.run(['mount', '-o', 'remount,ro', str(disk)], check=True)
        run = subprocess.run([sys.executable, '-m', 'torch_geometric_ea', 'align',
                              '--triples1', 'x', '--triples2', 'y', '--seeds', 'z',
                              '--out', str(disk / 'out')], capture_output=True,
                             text=True)
        assert run.returncode == 1 and run.stderr.count('\n') == 1
        assert run.stderr.startswith(f'error: --out {disk / "out"}: cannot write')
    finally:
        subprocess.run(['umount', str(disk)])


LONG = [sys.executable, '-m', 'torch_geometric_ea', 'train', '--num-entities',
        '3000', '--epochs', '100']


@pytest.mark.parametrize('delay', [0.05, 0.2, 0.4, 0.8, 1.5, 4.0])
@pytest.mark.parametrize('times', [1, 2])
def test_ctrl_c_at_any_moment_is_no_traceback_and_never_exit_0(
        tmp_path, delay, times):
    run = subprocess.Popen(LONG + ['--out', str(tmp_path / 'o')],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    for _ in range(times):
        run.send_signal(signal.SIGINT)
        time.sleep(0.05)
    try:
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert 'Traceback' not in err, err
    assert run.returncode == 128 + signal.SIGINT, err


@pytest.mark.real_data
def test_names_are_read_only_by_a_run_that_uses_them(
        mirror, tmp_path, capsys, monkeypatch):
    shutil.copytree(mirror / 'srprs', tmp_path / 'mirror' / 'srprs')  # no names/
    monkeypatch.setenv('TORCH_GEOMETRIC_EA_MIRROR', str(tmp_path / 'mirror'))
    argv = ['train', '--model', 'lightea', '--dataset', 'srprs', '--pair', 'en_fr',
            '--root', str(tmp_path / 'data'), '--max-memory', '0.01']
    # structure only: the pair loads, and the run stops at its memory estimate
    assert 'estimated peak memory' in error_line(argv, capsys, before_work=False)
    line = error_line(argv + ['--literal'], capsys)
    assert 'srprs_fr_en.json' in line and '--names uri' in line
