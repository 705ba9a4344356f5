r"""Checkpoints of a training run: what it needs to continue where it
stopped (weights, optimiser, random states, position, bootstrapping pools,
timings), written atomically and read back only when whole.

A checkpoint file is ``torch.save``'s bytes followed by their SHA-256
(32 bytes), hashed as they are written. It is written to a temporary file
in the same folder, flushed to disk and renamed over the old one, so a
reader sees the old checkpoint or the new one, never part of either; a
file whose digest does not match
(torn by a crash of the disk, copied half) is refused, never loaded. It is
read with ``torch.load(weights_only=True)``: tensors and plain containers,
nothing unpickled that could run code. Saved models (``model.pt`` of
``align`` and ``train --out``) are written and read the same way
(:func:`write_atomic`, :func:`read_digested`).

Trainers take a :class:`Checkpoints` and call :meth:`Checkpoints.start`
once (the state to resume from, after checking that it is of the same
model, pair and configuration), :meth:`Checkpoints.step` after every
optimiser step (it writes and raises :class:`Interrupted` once a stop was
requested) and :meth:`Checkpoints.epoch_end` after every epoch (it writes
when one is due).
"""
import hashlib
import io
import os
import os.path as osp
import signal
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict
from typing import Callable, Dict, Iterator, Optional

import torch
from torch_geometric.data import HeteroData

from torch_geometric_ea.outputs import atomic_file

__all__ = ['Checkpoints', 'Interrupted', 'CheckpointError', 'CHECKPOINT',
           'write_atomic', 'save_digested',
           'read_digested', 'read_checkpoint_file', 'run_identity', 'random_state',
           'set_random_state', 'stop_on_signals']

#: The checkpoint's file name in a run's output folder.
CHECKPOINT = 'checkpoint.pt'
_DIGEST = 32


class Interrupted(Exception):
    r"""A run stopped on request after writing its checkpoint ``path`` at
    ``position`` (a description such as ``'round 1, epoch 3, step 2'``)."""
    def __init__(self, path: str, position: str, signum: Optional[int] = None):
        super().__init__(f"stopped at {position}; checkpoint {path}")
        self.path, self.position, self.signum = path, position, signum


class CheckpointError(ValueError):
    r"""A checkpoint that cannot be resumed from: missing, damaged, or of
    another model, pair or configuration (the message is one line)."""


class _Hashing:
    r"""A file being written that hashes what goes through it (so a large
    checkpoint is never held in memory whole)."""
    def __init__(self, file):
        self.file, self.digest = file, hashlib.sha256()

    def write(self, data) -> int:
        self.digest.update(data)
        return self.file.write(data)

    def flush(self):
        self.file.flush()


def write_atomic(path: str, state: Dict):
    r"""Saves ``state`` to ``path`` with its digest, atomically (see
    :func:`~torch_geometric_ea.outputs.atomic_file`: a failed write leaves
    ``path`` as it was and raises a one-line :class:`OSError`)."""
    with atomic_file(path, 'wb') as f:
        save_digested(f, state)


def save_digested(file, state: Dict):
    r"""Writes ``state`` to the binary ``file`` as ``torch.save`` does,
    followed by the SHA-256 of those bytes (what :func:`read_digested`
    checks)."""
    hashing = _Hashing(file)
    torch.save(state, hashing)
    file.write(hashing.digest.digest())


def _ends_as_torch_file(blob: bytes) -> bool:
    r"""Whether ``blob`` ends as ``torch.save``'s zip archive does (its end
    record, with no comment, as the last 22 bytes): a file saved without
    a digest."""
    return len(blob) >= 22 and blob[-22:-18] == b'PK\x05\x06'


def read_digested(path: str, what: str = 'checkpoint',
                  remedy: str = 'delete it to start afresh',
                  map_location=None):
    r"""What :func:`write_atomic` saved in ``path``, read only when its
    digest matches and then with ``torch.load(weights_only=True)``
    (tensors and plain containers: nothing unpickled runs code).

    Raises :class:`ValueError` (one line naming the file and the ``what``
    it should be) for a damaged file (truncated, a byte changed: the line
    ends with the ``remedy``), one saved without a digest (older versions,
    other programs: the line says how to re-save it) or one that is whole
    but not ``torch.save``'s plain data; and
    :class:`FileNotFoundError` when there is none."""
    try:
        with open(path, 'rb') as f:
            blob = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    except OSError as e:  # a folder, no permission
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from None
    payload, digest = memoryview(blob)[:-_DIGEST], blob[-_DIGEST:]
    if len(blob) <= _DIGEST or hashlib.sha256(payload).digest() != digest:
        if _ends_as_torch_file(blob):
            raise ValueError(f"{path}: a {what} without a digest (saved by an "
                             f"older version of this package or another "
                             f"program), not read; retrain, or if you trust "
                             f"it, re-save it: write_atomic(path, torch.load("
                             f"path, weights_only=True)) from {__name__}")
        raise ValueError(f"{path}: damaged {what} (its digest does not match its "
                         f"contents); {remedy}")
    try:
        with warnings.catch_warnings():  # torch's own notes on a bad file
            warnings.simplefilter('ignore')
            return torch.load(io.BytesIO(payload), map_location=map_location,
                              weights_only=True)
    except Exception as e:  # a whole file that is not ours
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise ValueError(f"{path}: not a {what} of this package "
                         f"({reason})") from None


def read_checkpoint_file(path: str) -> Dict:
    r"""The state in ``path`` (see :func:`read_digested`);
    :class:`CheckpointError` naming the file when it is not a whole
    checkpoint (digest mismatch, truncated, not one)."""
    try:
        state = read_digested(path)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    if not isinstance(state, dict) or 'identity' not in state:
        raise CheckpointError(f"{path}: not a checkpoint of this package")
    return state


def run_identity(model: str, data: HeteroData, config) -> Dict:
    r"""What a checkpoint must share with the run that resumes it: the
    model, the pair (:func:`~torch_geometric_ea.data.pair.pair_fingerprint`
    and its names' source) and every setting but the device."""
    from torch_geometric_ea.data.names import name_source
    from torch_geometric_ea.data.pair import pair_fingerprint
    settings = {k: v for k, v in asdict(config).items() if k != 'device'}
    return dict(model=model, pair=pair_fingerprint(data),
                names=name_source(data), config=settings)


def _difference(saved: Dict, wanted: Dict) -> str:
    r"""The first way two identities differ, in words."""
    if saved['model'] != wanted['model']:
        return f"it is of model {saved['model']}, this run is {wanted['model']}"
    if saved['pair'] != wanted['pair']:
        return "it is of another KG pair (triples or entities differ)"
    if saved['names'] != wanted['names']:
        return f"its names are {saved['names']}, this run's {wanted['names']}"
    keys = sorted(set(saved['config']) | set(wanted['config']))
    diff = [f"{k}={saved['config'].get(k)!r} there, {wanted['config'].get(k)!r} here"
            for k in keys if saved['config'].get(k) != wanted['config'].get(k)]
    return 'its configuration differs: ' + '; '.join(diff)


def random_state() -> Dict:
    r"""The states of torch's CPU generator and, when CUDA is set up, of
    every CUDA device's."""
    state = dict(cpu=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: Dict):
    r"""Restores what :func:`random_state` returned."""
    torch.set_rng_state(state['cpu'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class Checkpoints:
    r"""A run's checkpoints in ``directory`` (file :data:`CHECKPOINT`).

    Args:
        directory (str): Where the checkpoint lives (a run's ``--out``).
        every (int, optional): Write one every that many epochs; :obj:`None`
            writes at the first epoch end ``minutes`` after the last one;
            :obj:`0` never (except on a stop request). (default: :obj:`None`)
        minutes (float, optional): See ``every``. (default: :obj:`5.0`)
        resume (bool, optional): Continue from the checkpoint in
            ``directory``; it must exist. (default: :obj:`False`)
    """
    def __init__(self, directory: str, every: Optional[int] = None,
                 minutes: float = 5.0, resume: bool = False):
        if every is not None and every < 0:
            raise ValueError(f"'every' must be 0 or more epochs (got {every})")
        self.path = osp.join(directory, CHECKPOINT)
        self.every, self.minutes, self.resume = every, minutes, resume
        self.stop_signal: Optional[int] = None
        self.identity: Optional[Dict] = None
        self.saved = 0
        #: Wall seconds of the earlier processes up to the checkpoint resumed
        #: from, and how many processes the run took before this one.
        self.earlier_seconds, self.resumes = 0.0, 0
        self._start = self._last = time.monotonic()
        self._epochs = 0

    def start(self, model: str, data: HeteroData, config) -> Optional[Dict]:
        r"""The state to resume from (:obj:`None` for a fresh run). Raises
        :class:`CheckpointError` with one line when it is missing, damaged, or of
        another model, pair or configuration."""
        self.identity = run_identity(model, data, config)
        if not self.resume:
            return None
        if not osp.exists(self.path):
            raise CheckpointError(f"{self.path}: no checkpoint to resume from")
        state = read_checkpoint_file(self.path)
        if state['identity'] != self.identity:
            raise CheckpointError(f"{self.path}: cannot resume this run from it: "
                                  + _difference(state['identity'], self.identity))
        self._epochs = state['epochs_done']
        self.earlier_seconds, self.resumes = state['seconds'], state['resumes'] + 1
        return state

    def save(self, state: Dict):
        r"""Writes ``state`` (with the run's identity) atomically."""
        os.makedirs(osp.dirname(self.path) or '.', exist_ok=True)
        seconds = self.earlier_seconds + time.monotonic() - self._start
        write_atomic(self.path, dict(state, identity=self.identity, seconds=seconds,
                                     epochs_done=self._epochs, resumes=self.resumes))
        self.saved += 1
        self._last = time.monotonic()

    def step(self, state: Callable[[], Dict], position: str):
        r"""After an optimiser step: on a stop request, writes ``state()``
        and raises :class:`Interrupted`."""
        if self.stop_signal is not None:
            self.save(state())
            raise Interrupted(self.path, position, self.stop_signal)

    def epoch_end(self, state: Callable[[], Dict], position: str):
        r"""After an epoch: writes ``state()`` when one is due (or stops, as
        :meth:`step`)."""
        self._epochs += 1
        self.step(state, position)
        due = (self._epochs % self.every == 0 if self.every
               else self.every is None
               and time.monotonic() - self._last >= 60 * self.minutes)
        if due:
            self.save(state())


@contextmanager
def stop_on_signals(checkpoints: Checkpoints,
                    signals=(signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    r"""While inside, SIGINT and SIGTERM ask ``checkpoints``' run to stop
    after its current step (a second one stops at once, as usual)."""
    def request(signum, frame):
        if checkpoints.stop_signal is not None:
            signal.default_int_handler(signum, frame)
        checkpoints.stop_signal = signum

    previous = {s: signal.signal(s, request) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
