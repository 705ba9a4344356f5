r"""A run's output folder over its life: claimed and locked before any
work (:func:`claim_run_folder`), the run's checkpoints in it and a
``results.json`` that says whether it finished (:func:`run_checkpoints`),
a stop by SIGINT or SIGTERM that leaves a checkpoint and the command that
resumes (:func:`interruptible`), the checkpoint deleted once the outputs
are written (:func:`finish_checkpoints`), and a folder the run made but
wrote nothing to removed again (:meth:`RunFolder.drop_if_unused`).

A command's own line (``argv``, as in :data:`sys.argv`) is given by the
caller: it is recorded, and a stopped run's resume command is made from
it."""
import json
import os
import os.path as osp
import shlex
import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Tuple

from torch_geometric_ea.errors import CommandError, RunStopped
from torch_geometric_ea.outputs import LOCK, claim_folder, release_folder
from torch_geometric_ea.report import write_json
from torch_geometric_ea.train.checkpoint import (
    CHECKPOINT,
    CheckpointError,
    Checkpoints,
    Interrupted,
    stop_on_signals,
)

__all__ = ['RunFolder', 'claim_run_folder', 'run_checkpoints', 'finished_run',
           'resume_command', 'interruptible', 'finish_checkpoints']


@dataclass
class RunFolder:
    r"""An output folder this process holds the lock of
    (:func:`claim_run_folder`): ``path``, the lock's descriptor, and
    whether this run made the folder."""
    path: str
    lock: int
    made: bool = False

    def release(self):
        r"""Releases the lock (so that another run, or this process again,
        may use the folder)."""
        release_folder(self.path, self.lock)

    def drop_if_unused(self):
        r"""Removes the folder when this run made it and wrote nothing
        there but its lock."""
        if self.made and osp.isdir(self.path) and os.listdir(self.path) == [LOCK]:
            os.remove(osp.join(self.path, LOCK))
            os.rmdir(self.path)


def claim_run_folder(out: Optional[str], *, trains: bool = False,
                     resume: bool = False, overwrite: bool = False
                     ) -> Optional[RunFolder]:
    r"""Before any work, makes and locks the output folder ``out`` (a
    second run into it stops, naming this one's pid); :obj:`None` without
    one or on a ``torchrun`` process but the first. A folder that cannot
    be written stops the command with one line, and so does one holding a
    stopped run's checkpoint when a run that ``trains`` would start
    afresh: ``resume`` continues it, ``overwrite`` deletes it."""
    if not out or int(os.environ.get('RANK', '0')) > 0:
        return None
    if osp.exists(out) and not osp.isdir(out):
        raise CommandError(f"{out}: --out names a file, not a folder")
    made = not osp.exists(out)
    try:
        folder = RunFolder(out, claim_folder(out), made)
    except OSError as e:
        raise CommandError(f"--out {out}: cannot write there "
                           f"({e.strerror or e})") from None
    try:
        stopped = osp.join(out, CHECKPOINT)
        if trains and not resume and osp.exists(stopped):
            if not overwrite:
                raise CommandError(f"{out} holds a stopped run's checkpoint: "
                                   f"continue it with --resume {out}, or start "
                                   f"afresh with --overwrite")
            os.remove(stopped)
    except BaseException:
        folder.release()
        raise
    return folder


def run_checkpoints(out: Optional[str], resume: Optional[str] = None, *,
                    argv: Sequence[str] = (), every: Optional[int] = None,
                    rank: int = 0, results: bool = True
                    ) -> Tuple[Optional[str], Optional[Checkpoints]]:
    r"""The run's output folder (``resume``, the folder of a stopped run,
    is also its output folder; ``out`` may name it again) and its
    checkpoints there (every ``every`` epochs, see
    :class:`~torch_geometric_ea.train.checkpoint.Checkpoints`), or
    :obj:`None` without a folder or under ``torchrun``; the folder is made
    when missing. With ``results``, a fresh run's ``results.json`` says
    ``"finished": false`` until it ends, so a killed run never leaves one
    that looks done; a finished earlier run's results stay, beside its
    model, until this run replaces both."""
    if resume:
        if out and osp.abspath(out) != osp.abspath(resume):
            raise CommandError(f"--resume {resume} continues in that folder; "
                               f"drop --out {out} or give the same folder")
        out = resume
    if not out or rank > 0 or int(os.environ.get('WORLD_SIZE', '1')) > 1:
        if resume:
            raise CommandError("--resume needs one process (not torchrun)")
        return out, None
    os.makedirs(out, exist_ok=True)  # made by claim_run_folder on the command line
    checkpoints = Checkpoints(out, every=every, resume=bool(resume))
    if resume and not osp.exists(checkpoints.path) and finished_run(out):
        raise CommandError(f"{out}: that run finished (its results are there); "
                           f"nothing to resume")
    if results and not resume and not finished_run(out):
        write_json(osp.join(out, 'results.json'),
                   dict(finished=False, command=resume_command(argv)))
    return out, checkpoints


def finished_run(out: str) -> bool:
    r"""Whether ``out`` holds the model of a finished run."""
    try:
        with open(osp.join(out, 'results.json')) as f:
            results = json.load(f)
        return isinstance(results, dict) and results.get('finished', True) is True
    except (OSError, ValueError):
        return osp.exists(osp.join(out, 'model.pt'))


def resume_command(argv: Sequence[str], resume: Optional[str] = None) -> str:
    r"""The command line ``argv`` (as :data:`sys.argv`: the program first)
    as one can type it again, with ``--resume`` when given."""
    words = list(argv[1:])
    if resume and '--resume' not in words:
        words += ['--resume', resume]
    return ' '.join(['python -m torch_geometric_ea'] + [shlex.quote(a) for a in words])


@contextmanager
def interruptible(checkpoints: Optional[Checkpoints], *, argv: Sequence[str] = (),
                  results: bool = True) -> Iterator[None]:
    r"""Runs the body with SIGINT and SIGTERM asking for a checkpoint and a
    stop; a checkpoint that cannot be resumed raises its line as a
    :class:`~torch_geometric_ea.errors.CommandError`, and a stop prints
    the command that resumes (also in ``results.json`` with ``results``)
    and raises :class:`~torch_geometric_ea.errors.RunStopped` with status
    128 + the signal."""
    if checkpoints is None:
        yield
        return
    try:
        with stop_on_signals(checkpoints):
            yield
    except CheckpointError as e:
        raise CommandError(str(e)) from None
    except Interrupted as e:
        out = osp.dirname(e.path)
        if results:
            write_json(osp.join(out, 'results.json'), dict(
                finished=False, stopped_at=e.position, checkpoint=e.path,
                resume=resume_command(argv, out)))
        print(f"stopped ({signal.Signals(e.signum).name}) at {e.position}; checkpoint "
              f"{e.path}\nresume with: {resume_command(argv, out)}", file=sys.stderr)
        raise RunStopped(128 + e.signum) from None
    if checkpoints.stop_signal is not None:  # asked to stop after the last step
        name = signal.Signals(checkpoints.stop_signal).name
        print(f"stopped ({name}) after training, before the outputs were written",
              file=sys.stderr)
        raise RunStopped(128 + checkpoints.stop_signal)


def finish_checkpoints(checkpoints: Optional[Checkpoints]):
    r"""Deletes a finished run's checkpoint: ``model.pt`` and
    ``results.json`` are its outcome."""
    if checkpoints is not None and osp.exists(checkpoints.path):
        os.remove(checkpoints.path)
