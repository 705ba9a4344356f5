r"""Checkpoints: a stopped run resumed gives what the run would have given
uninterrupted, for every trainer; damaged or foreign checkpoints are
refused with one line, never loaded."""
import os
import os.path as osp
import pickle

import pytest
import torch

from torch_geometric_ea.data import synthetic_pair
from torch_geometric_ea.train import (
    DualAMNConfig,
    GCNAlignConfig,
    LightEAConfig,
    RDGCNConfig,
    train_dual_amn,
    train_gcn_align,
    train_lightea,
    train_rdgcn,
)
from torch_geometric_ea.train.checkpoint import (
    CHECKPOINT,
    CheckpointError,
    Checkpoints,
    Interrupted,
    read_checkpoint_file,
    write_atomic,
)

RUNS = {
    # bootstrapping rounds, several batches per epoch, hard candidates
    # (a table kept across epochs) and random loss candidates
    'dual-amn': (train_dual_amn, DualAMNConfig(
        channels=16, num_proxies=8, epochs=3, batch_size=64, semi=True,
        semi_rounds=2, semi_epochs=2, candidates='hard', num_candidates=200,
        hard_every=2)),
    'gcn-align': (train_gcn_align, GCNAlignConfig(
        channels=16, attr_channels=8, epochs=23, eval_every=10, resample_every=4)),
    'rdgcn': (train_rdgcn, RDGCNConfig(
        channels=16, features='learned', epochs=7, negative_every=3,
        num_negatives=5, eval_every=4)),
    'lightea': (train_lightea, LightEAConfig(ent_dim=64, mini_dim=8, iterations=3,
                                             top_k=20)),
}


class StopAt(Checkpoints):
    r"""Checkpoints that ask the run to stop at the ``k``-th step or epoch
    end, as a SIGINT arriving then would."""
    def __init__(self, directory, k, **kwargs):
        super().__init__(directory, every=0, **kwargs)
        self.k, self.calls = k, 0

    def step(self, state, position):
        self.calls += 1
        if self.calls == self.k:
            self.stop_signal = 2
        super().step(state, position)


@pytest.fixture(scope='module')
def pair():
    torch.set_num_threads(1)
    return synthetic_pair(300, seed=3)


@pytest.fixture(scope='module')
def uninterrupted(pair, tmp_path_factory):
    r"""Each run without checkpoints, and the number of places it could
    stop (its steps, epoch ends and rounds)."""
    out = {}
    for name, (train, config) in RUNS.items():
        counter = StopAt(tmp_path_factory.mktemp(name), k=0)
        with_checkpoints = train(pair, config, progress=False, checkpoints=counter)
        out[name] = train(pair, config, progress=False), counter.calls
        _same(out[name][0], with_checkpoints)  # watching changes nothing
    return out


def _same(a, b):
    assert a.metrics == b.metrics

    def rounds(result):  # repr: a round without a loss has NaN, not equal to itself
        return repr([(h['loss'], h['train_pairs'], h['src->tgt']) for h in result.history])
    assert rounds(a) == rounds(b)
    assert a.num_new_pairs == b.num_new_pairs
    for x, y in zip(a.new_pairs, b.new_pairs):
        assert torch.equal(x, y)
    for (key, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), key


@pytest.mark.parametrize('name', sorted(RUNS))
@pytest.mark.parametrize('where', ['first', 'second', 'middle', 'last'])
def test_stopped_and_resumed_equals_uninterrupted(tmp_path, pair, uninterrupted, name,
                                                  where):
    train, config = RUNS[name]
    expected, places = uninterrupted[name]
    k = dict(first=1, second=2, middle=places // 2, last=places)[where]
    stops = 0
    checkpoints = StopAt(tmp_path, k)
    while True:
        try:
            result = train(pair, config, progress=False, checkpoints=checkpoints)
            break
        except Interrupted as e:
            stops += 1
            assert osp.exists(e.path) and ('round' in e.position or 'epoch' in e.position)
            checkpoints = StopAt(tmp_path, k, resume=True)
    assert stops >= 1
    _same(expected, result)
    if name == 'lightea':
        assert torch.equal(expected.features, result.features)


def test_timings_accumulate(tmp_path, pair):
    train, config = RUNS['gcn-align']
    with pytest.raises(Interrupted):
        train(pair, config, progress=False, checkpoints=StopAt(tmp_path, 15))
    before = read_checkpoint_file(osp.join(tmp_path, CHECKPOINT))['timings']['train']
    resumed = Checkpoints(tmp_path, resume=True)
    result = train(pair, config, progress=False, checkpoints=resumed)
    assert before > 0 and result.timings['train'] > before
    assert resumed.resumes == 1 and resumed.earlier_seconds > 0


def test_periodic_checkpoints(tmp_path, pair):
    train, config = RUNS['rdgcn']
    checkpoints = Checkpoints(tmp_path, every=2)
    train(pair, config, progress=False, checkpoints=checkpoints)
    assert checkpoints.saved == 3  # after epochs 2, 4 and 6 of 7
    assert read_checkpoint_file(osp.join(tmp_path, CHECKPOINT))['at']['epoch'] == 6


def _saved_run(tmp_path, pair, name='dual-amn', k=3):
    train, config = RUNS[name]
    with pytest.raises(Interrupted):
        train(pair, config, progress=False, checkpoints=StopAt(tmp_path, k))
    return osp.join(tmp_path, CHECKPOINT)


def test_a_checkpoint_of_the_older_layout_is_refused_with_one_line(tmp_path, pair):
    path = _saved_run(tmp_path, pair)
    state = read_checkpoint_file(path)
    del state['format']  # as checkpoints written before the one training loop
    write_atomic(path, state)
    train, config = RUNS['dual-amn']
    with pytest.raises(CheckpointError, match='older version of this package; start '
                       'afresh with --overwrite') as info:
        train(pair, config, progress=False, checkpoints=Checkpoints(tmp_path, resume=True))
    assert '\n' not in str(info.value)


@pytest.mark.parametrize('change, message', [
    (lambda pair, cfg: (pair, DualAMNConfig(**{**cfg.__dict__, 'channels': 8})),
     "configuration differs: channels=16 there, 8 here"),
    (lambda pair, cfg: (synthetic_pair(300, seed=4), cfg), 'another KG pair'),
])
def test_refuses_another_run(tmp_path, pair, change, message):
    _saved_run(tmp_path, pair)
    other_pair, other_config = change(pair, RUNS['dual-amn'][1])
    with pytest.raises(CheckpointError, match=message) as info:
        train_dual_amn(other_pair, other_config, progress=False,
                       checkpoints=Checkpoints(tmp_path, resume=True))
    assert '\n' not in str(info.value)


def test_refuses_another_model(tmp_path, pair):
    _saved_run(tmp_path, pair)
    with pytest.raises(CheckpointError, match='model dual-amn, this run is gcn-align'):
        train_gcn_align(pair, RUNS['gcn-align'][1], progress=False,
                        checkpoints=Checkpoints(tmp_path, resume=True))


def test_torn_or_altered_checkpoints_are_refused(tmp_path, pair):
    path = _saved_run(tmp_path, pair)
    blob = open(path, 'rb').read()
    read_checkpoint_file(path)  # whole: loads
    for damaged in (blob[:len(blob) // 2], blob[:-1], blob[:100] + bytes([blob[100] ^ 1])
                    + blob[101:], b''):
        with open(path, 'wb') as f:
            f.write(damaged)
        with pytest.raises(CheckpointError, match='damaged checkpoint'):
            Checkpoints(tmp_path, resume=True).start(
                'dual-amn', pair, RUNS['dual-amn'][1])


def test_a_half_written_temporary_file_is_never_read(tmp_path, pair):
    path = _saved_run(tmp_path, pair)
    whole = read_checkpoint_file(path)
    with open(f'{path}.tmp-12345', 'wb') as f:  # a writer killed mid-write
        f.write(b'\x00' * 100)
    state = Checkpoints(tmp_path, resume=True).start('dual-amn', pair,
                                                     RUNS['dual-amn'][1])
    assert state['trainer']['start'] == whole['trainer']['start']


class Payload:
    def __reduce__(self):
        return (os.system, ('echo unsafe',))


def test_nothing_is_unpickled_unsafely(tmp_path):
    import hashlib
    path = osp.join(tmp_path, CHECKPOINT)
    payload = pickle.dumps({'identity': {}, 'x': Payload()})
    with open(path, 'wb') as f:  # a whole file (digest matches) with code in it
        f.write(payload + hashlib.sha256(payload).digest())
    with pytest.raises(CheckpointError, match='not a checkpoint of this package'):
        read_checkpoint_file(path)


def test_write_atomic_replaces_whole(tmp_path):
    path = osp.join(tmp_path, 'c.pt')
    write_atomic(path, dict(identity={}, x=torch.arange(3)))
    write_atomic(path, dict(identity={}, x=torch.arange(5)))
    assert torch.equal(read_checkpoint_file(path)['x'], torch.arange(5))
    assert os.listdir(tmp_path) == ['c.pt']


def test_aligner_fit_resumes(tmp_path, pair):
    from torch_geometric_ea.align import Aligner
    config = RUNS['rdgcn'][1]
    expected = Aligner.fit(pair, 'rdgcn', config, progress=False)
    with pytest.raises(Interrupted):
        Aligner.fit(pair, 'rdgcn', config, progress=False,
                    checkpoints=StopAt(tmp_path, 3))
    resumed = Aligner.fit(pair, 'rdgcn', config, progress=False,
                          checkpoints=Checkpoints(tmp_path, resume=True))
    assert resumed.metrics == expected.metrics
    for x, y in zip(expected.model.parameters(), resumed.model.parameters()):
        assert torch.equal(x, y)
