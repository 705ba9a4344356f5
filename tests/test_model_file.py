r"""A saved model (``model.pt`` of ``align`` and of ``train --out``) is
written atomically with a digest and read only when whole: a changed byte,
a truncated file or one saved without a digest is refused with one line; a
failed write leaves the old file; a crafted file never runs code."""
import hashlib
import os
import pickle

import pytest
import torch

from torch_geometric_ea import Aligner
from torch_geometric_ea.cli import main
from torch_geometric_ea.data import synthetic_pair
from torch_geometric_ea.train import LightEAConfig
from torch_geometric_ea.train.checkpoint import CHECKPOINT, read_digested, write_atomic

from fakes import FullDisk, Payload

CONFIG = LightEAConfig(ent_dim=16, mini_dim=4, top_k=5)


@pytest.fixture(scope='module')
def aligner():
    return Aligner.fit(synthetic_pair(40, num_relations=4, seed=0), 'lightea', CONFIG,
                       progress=False)


@pytest.fixture
def saved(aligner, tmp_path):
    path = tmp_path / 'model.pt'
    aligner.save(str(path))
    return path


def refused(path, message):
    r"""Both ways in refuse ``path`` with one line naming it."""
    with pytest.raises(ValueError, match=message) as e:
        Aligner.load(str(path), device='cpu')
    assert str(path) in str(e.value) and '\n' not in str(e.value)
    with pytest.raises(SystemExit) as e:
        main(['evaluate', '--checkpoint', str(path), '--device', 'cpu'])
    assert str(e.value).startswith('error: ') and '\n' not in str(e.value)
    assert str(path) in str(e.value)


def test_a_saved_model_loads_whole(saved, aligner):
    loaded = Aligner.load(str(saved), device='cpu')
    assert loaded.metrics == aligner.metrics
    assert [p.name for p in saved.parent.iterdir()] == ['model.pt']


def test_a_changed_byte_is_refused(saved):
    blob = saved.read_bytes()
    for at in (len(blob) // 2, len(blob) - 40, 100):  # data, end record, header
        saved.write_bytes(blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1:])
        refused(saved, 'damaged checkpoint .*retrain or copy it again')


def test_a_truncated_model_is_refused(saved):
    blob = saved.read_bytes()
    for part in (blob[:len(blob) // 2], blob[:-1], blob[:-33], blob[:10], b''):
        saved.write_bytes(part)
        refused(saved, 'damaged checkpoint')


def test_a_model_saved_without_digest_is_refused(saved):
    state = torch.load(str(saved), weights_only=True)  # torch reads the zip part
    torch.save(state, str(saved))  # as torch.save alone (older versions) writes it
    refused(saved, 'checkpoint without a digest .*retrain, or if you trust it, '
                   're-save it')
    write_atomic(str(saved), torch.load(str(saved), weights_only=True))  # as it says
    Aligner.load(str(saved), device='cpu')


def test_a_failed_rename_keeps_the_old_model(saved, aligner, monkeypatch):
    before = saved.read_bytes()

    def full(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'replace', full)
    with pytest.raises(OSError, match=f'{saved}: not written .No space left') as e:
        aligner.save(str(saved))
    assert e.value.errno == 28 and '\n' not in str(e.value)
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == ['model.pt']


@pytest.mark.parametrize('room', [0, 1000, 'most'])
def test_a_full_disk_mid_write_keeps_the_old_model(saved, aligner, monkeypatch, room):
    before = saved.read_bytes()
    room = len(before) - 100 if room == 'most' else room
    monkeypatch.setattr('torch_geometric_ea.outputs.open',
                        lambda path, mode: FullDisk(open(path, mode), room),
                        raising=False)
    # torch.save reports a failed write as a RuntimeError; the cause is kept
    with pytest.raises(OSError, match='not written .No space left on device.'):
        aligner.save(str(saved))
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == ['model.pt']


def crafted(path, marker, how):
    r"""A file at ``path`` whose unpickling would create ``marker``."""
    state = dict(model='lightea', state_dict={}, config={}, init_args={},
                 identity={}, x=Payload(str(marker)))
    if how == 'pickle':
        blob = pickle.dumps(state)
    else:  # torch.save's zip archive
        torch.save(state, str(path))
        blob = path.read_bytes()
    if how != 'no digest':
        blob += hashlib.sha256(blob).digest()  # as whole as write_atomic's
    path.write_bytes(blob)


@pytest.mark.parametrize('how', ['pickle', 'torch.save', 'no digest'])
def test_a_crafted_model_never_runs(tmp_path, how):
    path, marker = tmp_path / 'model.pt', tmp_path / 'payload_ran'
    crafted(path, marker, how)
    with pytest.raises(ValueError, match=str(path)):
        Aligner.load(str(path), device='cpu')
    for command in ('evaluate', 'align'):
        argv = [command, '--checkpoint', str(path), '--device', 'cpu']
        with pytest.raises(SystemExit, match=f'error: {path}'):
            main(argv + (['--out', str(tmp_path / 'out')] if command == 'align' else []))
    assert not marker.exists()


@pytest.mark.parametrize('how', ['pickle', 'torch.save', 'no digest'])
def test_a_crafted_checkpoint_never_runs(tmp_path, how):
    run, marker = tmp_path / 'run', tmp_path / 'payload_ran'
    run.mkdir()
    crafted(run / CHECKPOINT, marker, how)
    with pytest.raises(SystemExit, match=f'error: {run / CHECKPOINT}'):
        main(['train', '--num-entities', '40', '--model', 'lightea', '--set',
              'ent_dim=16', '--device', 'cpu', '--resume', str(run)])
    assert not marker.exists()


def test_read_digested_reads_what_write_atomic_wrote(tmp_path):
    path = str(tmp_path / 'x.pt')
    write_atomic(path, dict(x=torch.arange(4), note='kept'))
    state = read_digested(path)
    assert torch.equal(state['x'], torch.arange(4)) and state['note'] == 'kept'
    with pytest.raises(FileNotFoundError, match='no such checkpoint'):
        read_digested(str(tmp_path / 'missing.pt'))
    with pytest.raises(ValueError, match='cannot read it'):
        read_digested(str(tmp_path))
