r"""The one training loop: rounds, epochs, evaluation, bootstrapping,
timings, checkpoints (save, restore, stop on request), progress and
callbacks, for every registered model; a model adds only its hooks
(:class:`~torch_geometric_ea.train.spec.AlignerSpec`).

A run is ``rounds`` rounds; round :math:`r` runs ``begin_round(r)`` (a
feature round), then ``epochs(r)`` epochs of ``run_epoch`` (evaluating
also every ``eval_every()`` epochs), then evaluates; between rounds the
model proposes pairs of the bootstrapping pool
(:func:`~torch_geometric_ea.train.common.bootstrap_pool`), which join the
training pairs and leave the pool.
"""
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, Optional

import torch
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from torch_geometric_ea.precision import resolve_precision, using
from torch_geometric_ea.train.checkpoint import (
    CheckpointError,
    Checkpoints,
    random_state,
    set_random_state,
)
from torch_geometric_ea.train.common import (
    TrainResult,
    bootstrap_pool,
    prepare_run,
    process_group,
)

__all__ = ['fit', 'Loop', 'CHECKPOINT_FORMAT']

#: The layout of a checkpoint's state; older layouts are refused.
CHECKPOINT_FORMAT = 2


def fit(spec, data: HeteroData, config=None, *, progress: bool = True,
        callback: Optional[Callable[[str, Dict], None]] = None,
        checkpoints: Optional[Checkpoints] = None, **options) -> TrainResult:
    r"""Trains the model ``spec`` (a registered
    :class:`~torch_geometric_ea.train.spec.AlignerSpec` class) on the
    pair's train links and evaluates it on its test links.

    Args:
        spec: The model's spec class.
        data (HeteroData): A KG pair (see :mod:`torch_geometric_ea.data`).
        config (optional): Its config (default: the paper's settings).
        progress (bool, optional): Show progress bars. (default: :obj:`True`)
        callback (callable, optional): Called as ``callback('round', info)``
            after each evaluation with its metrics.
        checkpoints (Checkpoints, optional): Write checkpoints (and stop on
            request) there, or resume from its checkpoint (see
            :mod:`~torch_geometric_ea.train.checkpoint`); one process only.
        **options: The model's own run options (e.g. ``name_encoder``).
    """
    config = config if config is not None else spec.config_class()
    return Loop(spec, data, config, progress, callback, checkpoints, options).run()


class Loop:
    r"""One run of a model; see :func:`fit`. The hooks read the run from
    it: ``config``, ``data``, ``union``, ``graph``, ``device``,
    ``train_pairs``, ``test_pairs``, ``result``, ``at`` (round, epoch and
    the epochs' losses so far) and ``rank``/``world`` (the process group)."""
    def __init__(self, spec, data: HeteroData, config, progress: bool,
                 callback, checkpoints: Optional[Checkpoints], options: Dict):
        self.t0 = time.perf_counter()
        self.spec, self.data, self.config = spec, data, config
        self.progress, self.callback = progress, callback
        self.timings: Dict[str, float] = dict(prepare=0.0, train=0.0,
                                              evaluate=0.0, bootstrap=0.0)
        run = prepare_run(data, config.seed, config.device,
                          lambda union: spec.build_graph(union, data, config))
        self.union, self.graph, self.device = run.union, run.graph, run.device
        self.train_pairs, self.test_pairs = run.train_pairs, run.test_pairs
        self.rank, self.world = process_group()
        self.precision = resolve_precision(getattr(config, 'precision', 'float32'),
                                           self.device)
        self.checkpoints = checkpoints if self.world == 1 else None
        self.at = dict(round=0, epoch=0, losses=[], evaluated=0, begun=False)
        self.result = TrainResult(None, self.graph, metrics={})
        with using(self.precision):
            self.trainer = spec(self, **options)
        self.result.model = self.trainer.model
        self.result.init_args = self.trainer.init_args
        self.rounds = self.trainer.rounds()
        self.pool_src = self.pool_tgt = None
        bootstrapping = None
        if hasattr(config, 'bootstrap'):
            self.pool_src, self.pool_tgt, bootstrapping = bootstrap_pool(
                data, self.union.offset[0], self.test_pairs, config.bootstrap)
        self.result.protocol = dict(
            bootstrapping=bootstrapping if self.rounds > 1 else None,
            **self.trainer.protocol, precision=self.precision.as_dict())
        self.timings['prepare'] = (time.perf_counter() - self.t0
                                   - sum(self.timings.values()))
        self._trained = 0.0  # train seconds at the last evaluation
        self._restore()

    @contextmanager
    def timed(self, key: str) -> Iterator[None]:
        r"""Adds the wall time of the body to ``timings[key]``."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[key] = (self.timings.get(key, 0.0)
                                 + time.perf_counter() - t)

    # ------------------------------------------------------- checkpoints
    def _state(self) -> Dict:
        return dict(format=CHECKPOINT_FORMAT, random=random_state(),
                    at=dict(self.at), train_pairs=self.train_pairs,
                    pool_src=self.pool_src, pool_tgt=self.pool_tgt,
                    history=self.result.history,
                    num_new_pairs=self.result.num_new_pairs,
                    new_pairs=self.result.new_pairs,
                    extra_metrics=self.result.extra_metrics,
                    timings=dict(self.timings), trained=self._trained,
                    trainer=self.trainer.state_dict())

    def _restore(self):
        saved = (self.checkpoints.start(self.spec.name, self.data, self.config)
                 if self.checkpoints else None)
        if saved is None:
            return
        if saved.get('format') != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{self.checkpoints.path}: written by an older "
                                  f"version of this package; start afresh with "
                                  f"--overwrite")
        set_random_state(saved['random'])
        self.at = saved['at']
        self.train_pairs, self.pool_src, self.pool_tgt = (
            None if saved[k] is None else saved[k].to(self.device)
            for k in ('train_pairs', 'pool_src', 'pool_tgt'))
        for key in ('history', 'num_new_pairs', 'new_pairs', 'extra_metrics'):
            setattr(self.result, key, saved[key])
        self.timings.update(saved['timings'], prepare=self.timings['prepare'])
        self._trained = saved['trained']
        self.trainer.load_state_dict(saved['trainer'])

    def step(self):
        r"""After an optimiser step: on a stop request, writes the
        checkpoint and raises
        :class:`~torch_geometric_ea.train.checkpoint.Interrupted`."""
        if self.checkpoints is not None:
            self.checkpoints.step(self._state, self.trainer.where())

    def _epoch_end(self):
        if self.checkpoints is not None:
            self.checkpoints.epoch_end(self._state, self.trainer.where())

    # -------------------------------------------------------------- run
    def run(self) -> TrainResult:
        r"""Runs the remaining rounds, their products in the run's
        precision; returns the result."""
        with using(self.precision):
            return self._run()

    def _run(self) -> TrainResult:
        for round_ in range(self.at['round'], self.rounds):
            last = round_ + 1 == self.rounds
            if not self.at['begun']:
                self.trainer.begin_round(round_)
                self.at['begun'] = True
            self._train(round_)
            self._evaluate(None if last else (self.pool_src, self.pool_tgt))
            if not last:
                with self.timed('bootstrap'):
                    self._bootstrap()
            epochs = self.trainer.epochs(round_)
            self.at.update(round=round_ + 1, epoch=0, losses=[], evaluated=0,
                           begun=False)
            if not last:  # a stop asked while evaluating, or a round's end
                self.step() if epochs else self._epoch_end()
        self.trainer.finish()
        self.result.metrics = {k: v for k, v in self.result.history[-1].items()
                               if '->' in k}
        self.timings['total'] = time.perf_counter() - self.t0
        self.result.timings = self.timings
        return self.result

    def _train(self, round_: int):
        epochs, every = self.trainer.epochs(round_), self.trainer.eval_every()
        if self.trainer.model is not None:
            self.trainer.model.train()
        bar = tqdm(range(self.at['epoch'], epochs), desc=f'{self.spec.name} '
                   f'round {round_}', disable=not self.progress, leave=False)
        for epoch in bar:
            with self.timed('train'):
                loss = float(self.trainer.run_epoch(epoch))
            self.at['losses'].append(loss)
            self.at['epoch'] = epoch + 1
            bar.set_postfix(loss=f'{loss:.4f}', refresh=False)
            if every and (epoch + 1) % every == 0 and epoch + 1 < epochs:
                self._evaluate(None)
            self._epoch_end()

    def _evaluate(self, pool):
        with self.timed('evaluate'):
            metrics = self.trainer.evaluate(pool)
        history = self.result.history
        losses = self.at['losses'][self.at['evaluated']:]
        info = dict(round=len(history), epochs=len(losses),
                    loss=losses[-1] if losses else float('nan'), losses=losses,
                    train_pairs=self.train_pairs.size(1),
                    train_seconds=self.timings['train'] - self._trained, **metrics)
        self._trained = self.timings['train']
        self.at['evaluated'] = len(self.at['losses'])
        history.append(info)
        if self.callback is not None:
            self.callback('round', info)

    def _bootstrap(self):
        src, tgt = self.pool_src, self.pool_tgt
        if src.numel() and tgt.numel():
            at_src, at_tgt = self.trainer.propose(src, tgt)
        else:  # a KG whose entities are all paired already: nothing to add
            at_src = at_tgt = torch.zeros(0, dtype=torch.long, device=src.device)
        new = torch.stack([src[at_src], tgt[at_tgt]])
        keep_src = torch.ones_like(src, dtype=torch.bool)
        keep_src[at_src] = False
        keep_tgt = torch.ones_like(tgt, dtype=torch.bool)
        keep_tgt[at_tgt] = False
        self.pool_src, self.pool_tgt = src[keep_src], tgt[keep_tgt]
        self.train_pairs = torch.cat([self.train_pairs, new], dim=1)
        self.result.num_new_pairs.append(new.size(1))
        self.result.new_pairs.append(new.cpu())
