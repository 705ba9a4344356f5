r"""Command line: ``python -m torch_geometric_ea {train,align,evaluate,analyze} ...``.

- ``train``: a model on a benchmark (or synthetic) pair, evaluated on its
  test links.
- ``align``: two KGs of one's own (triple TSVs and a seed-link TSV):
  train, save, and write the predicted alignment and top-k candidates; or
  with ``--checkpoint`` only predict with a saved model.
- ``evaluate``: a saved model's Hits@k and MRR on the pair's test links or
  on a link TSV.
- ``analyze``: relation importance and Hits@1 by degree of a saved model.
"""
import argparse
import json
import logging
import math
import os
import os.path as osp
import platform
import shlex
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, fields, replace
from typing import Any, List, Optional

import torch

from torch_geometric_ea.data import (
    DBP15K,
    DWY100K,
    SRPRS,
    OpenEA,
    attach_names,
    ogb_pair,
    synthetic_pair,
)
from torch_geometric_ea.data.names import name_source
from torch_geometric_ea.entry import interrupted
from torch_geometric_ea.data.pair import pair_fingerprint
from torch_geometric_ea.outputs import (
    LOCK,
    Outputs,
    atomic_file,
    claim_folder,
    release_folder,
)
from torch_geometric_ea.runtime import keep_freed_memory, usable_cpus
from torch_geometric_ea.train import MODELS, peak_memory_gib, resolve_device
from torch_geometric_ea.train.config import MAX_SEED, ConfigError, field_type
from torch_geometric_ea.train.checkpoint import (
    CHECKPOINT,
    CheckpointError,
    Checkpoints,
    Interrupted,
    save_digested,
    stop_on_signals,
)
from torch_geometric_ea.train.memory import (
    GIB,
    available_memory,
    estimate_memory,
    fitting_settings,
    pair_size,
    settings_text,
)
from torch_geometric_ea.train.scale import (
    keeps_freed_memory,
    num_entities,
    scale_settings,
)

__all__ = ['main', 'load_pair']

THREADS_HELP = ('torch threads (default: the CPUs this process may use: its '
                'affinity mask, capped by a cgroup CPU quota)')
DATASETS = {'dbp15k': DBP15K, 'srprs': SRPRS, 'dwy100k': DWY100K,
            'openea': OpenEA}
DATASET_CHOICES = ('synthetic', *DATASETS, 'ogb')
#: The sizes of a synthetic or OGB pair (entities per side) a run takes.
MIN_ENTITIES, MAX_ENTITIES = 10, 10_000_000


def load_pair(dataset: str, pair: Optional[str], root: str, seed: int,
              num_entities: int = 2000, names: str = 'translated'):
    r"""Loads a KG pair by dataset name; ``'synthetic'`` builds one offline
    with ``num_entities`` entities per side. ``names``: ``'translated'``
    for a benchmark's published translated names where it has them,
    ``'uri'`` for the URIs' local names."""
    if dataset == 'synthetic':
        return synthetic_pair(num_entities, seed=seed)
    if dataset == 'ogb':  # two views of an OGB KG, e.g. --pair ogbl-wikikg2
        return ogb_pair(osp.join(root, 'ogb'), num_entities,
                        name=pair or 'ogbl-wikikg2', seed=seed, download=True)
    if dataset not in DATASETS:
        raise SystemExit(f"error: unknown dataset {dataset!r}; choose from "
                         f"{', '.join(DATASET_CHOICES)}")
    if pair is None:
        pairs = ', '.join(DATASETS[dataset].pairs)
        raise SystemExit(f"error: --pair is required for {dataset} (one of {pairs})")
    cls = DATASETS[dataset]
    kwargs = dict(seed=seed) if cls is DBP15K else {}
    if cls in (DBP15K, SRPRS):
        kwargs['names'] = names
    return cls(osp.join(root, dataset), pair, **kwargs)[0]


def _parse_value(config_cls, key: str, text: str) -> Any:
    r"""``text`` read as the type of ``config_cls``'s field ``key`` (its
    annotation; ``none`` for an optional field)."""
    names = [f.name for f in fields(config_cls)]
    if key not in names:
        raise SystemExit(f"error: --set: {config_cls.__name__} has no field "
                         f"{key!r}; fields: {', '.join(names)}")
    kind, optional = field_type(config_cls, key)
    if optional and text.lower() == 'none':
        return None
    if kind is bool:
        if text.lower() not in ('true', 'false', '1', '0'):
            raise SystemExit(f"error: --set {key}: expected true or false, "
                             f"got {text!r}")
        return text.lower() in ('true', '1')
    try:
        return kind(text)
    except ValueError:
        raise SystemExit(f"error: --set {key}: cannot read {text!r} as "
                         f"{kind.__name__}") from None


def build_config(model: str, args, data=None) -> Any:
    r"""The model's config: its defaults (the paper's), then the named
    command-line options it has, then ``--set key=value`` pairs; given the
    pair ``data``, the options left unset that its size calls for
    (:func:`~torch_geometric_ea.train.scale.scale_settings`), which are
    reported on stderr and kept as ``args.scale_settings``."""
    config_cls, _ = MODELS[model]
    if getattr(args, 'literal', None) and model not in ('dual-amn', 'lightea'):
        raise SystemExit(f"error: --literal is a Dual-AMN and LightEA option "
                         f"(got --model {model})")
    overrides = {f.name: getattr(args, f.name) for f in fields(config_cls)
                 if getattr(args, f.name, None) is not None}
    given = {}  # by --set
    for item in args.set or []:
        key, sep, value = item.partition('=')
        if not sep:
            raise SystemExit(f"error: --set expects key=value, got {item!r}")
        key = key.replace('-', '_')
        given[key] = _parse_value(config_cls, key, value)
    overrides.update(given)
    auto = scale_settings(model, data, overrides) if data is not None else {}
    args.scale_settings = auto
    if auto:
        print(f"scale settings for a pair of {num_entities(data):,} entities "
              f"(set them to override): "
              + ', '.join(f'{k}={v}' for k, v in auto.items()), file=sys.stderr)
    try:
        return config_cls(**{**auto, **overrides})
    except ConfigError as e:
        option = (f"--set {e.field}" if e.field in given or getattr(
            args, e.field, None) is None else f"--{e.field.replace('_', '-')}")
        raise SystemExit(f"error: {option} must be {e.requirement} "
                         f"(got {e.value!r})") from None


def uses_names(config) -> bool:
    r"""Whether a run with ``config`` reads the entities' names (a name
    view, or RDGCN's name features): a pair's names are loaded only then."""
    return bool(getattr(config, 'literal', False)
                or getattr(config, 'features', None) == 'names')


def _device(args) -> torch.device:
    r"""The device the command runs on (``--device``), checked before any
    work."""
    try:
        return resolve_device(args.device)
    except ValueError as e:
        raise SystemExit(f'error: {e}')


def _set_threads(args):
    r"""Uses ``--threads`` threads (default: the usable CPUs); more than
    the CPUs this process may use only wait on each other (and very many
    crash OpenMP), so they are capped there with a warning."""
    usable = usable_cpus()
    threads = args.threads or usable
    if threads > usable:
        print(f"warning: --threads {threads} is above the {usable} CPUs this "
              f"process may use; using {usable}", file=sys.stderr)
        threads = usable
    torch.set_num_threads(threads)


def _host_allocator(args, data) -> None:
    r"""On the CPU, has the allocator keep freed memory, unless
    ``--system-malloc`` or the pair's size says not to
    (:func:`~torch_geometric_ea.train.scale.keeps_freed_memory`)."""
    if (args.device.startswith('cpu') and not getattr(args, 'system_malloc', False)
            and (data is None or keeps_freed_memory(args.model, data))):
        args.keeps_freed_memory = keep_freed_memory()


def _foresee_memory(args, data, config) -> Optional[dict]:
    r"""For a CPU run, the estimated peak memory
    (:func:`~torch_geometric_ea.train.memory.estimate_memory`), printed on
    stderr and returned for ``results.json``. A run whose estimate is above
    ``--max-memory`` (default: the memory available; 0: no limit) stops
    here, before any work, with settings that would fit."""
    if _device(args).type != 'cpu':
        return None
    size = pair_size(data)
    kept = bool(getattr(args, 'keeps_freed_memory', False))
    ranks = args.func is _align  # the candidates of every unlinked entity
    estimate = estimate_memory(args.model, size, config, kept, ranks)
    print(f"memory estimate: {estimate.describe()}", file=sys.stderr)
    limit = (available_memory() if args.max_memory is None
             else int(args.max_memory * GIB) or None)
    if limit is not None and estimate.peak > limit:
        fit = fitting_settings(args.model, size, config, limit, kept, ranks)
        if fit:
            fitted = estimate_memory(args.model, size, replace(config, **fit), kept,
                                     ranks)
            advice = (f"these settings would fit (estimate {fitted.gib:.2f} "
                      f"GiB): {settings_text(fit)}")
        else:
            advice = "none of the smaller settings tried would fit"
        what = ('--max-memory' if args.max_memory is not None
                else 'the memory available')
        raise SystemExit(f"error: the estimated peak memory, {estimate.gib:.2f} "
                         f"GiB, is above {what}, {limit / GIB:.2f} GiB; {advice} "
                         f"(--max-memory 0 runs anyway)")
    return dict(estimate.as_dict(), max_memory_gib=None if limit is None
                else round(limit / GIB, 2))


def _train(args) -> int:
    t = time.perf_counter()
    names = args.names if uses_names(build_config(args.model, args)) else 'uri'
    data = load_pair(args.dataset, args.pair, args.root, args.seed,
                     args.num_entities, names)
    load_time = time.perf_counter() - t
    config = build_config(args.model, args, data)
    _host_allocator(args, data)
    memory = _foresee_memory(args, data, config)
    train_fn = MODELS[args.model][1]
    _set_threads(args)

    def report(stage, info):
        if not args.json:
            line = '  '.join(
                f"{d}: H@1 {info[d]['hits@1']:.4f} H@10 {info[d]['hits@10']:.4f} "
                f"MRR {info[d]['mrr']:.4f}" for d in ('src->tgt', 'tgt->src'))
            print(f"round {info['round']} ({info['train_pairs']} train pairs)  "
                  f"{line}", file=sys.stderr, flush=True)

    rank = _init_distributed(args.model, config)
    report = report if rank == 0 else (lambda stage, info: None)
    checkpoints = _checkpoints(args, rank)
    with _interruptible(checkpoints):
        result = train_fn(data, config, progress=not args.json and rank == 0,
                          callback=report, checkpoints=checkpoints)
    if rank > 0:  # rank 0 writes and prints the (identical) results
        torch.distributed.destroy_process_group()
        return 0
    timings = dict(load=load_time, **result.timings)
    resumed = None
    if checkpoints is not None and checkpoints.resumes:
        timings['total'] += checkpoints.earlier_seconds
        resumed = dict(times=checkpoints.resumes,
                       seconds_before=checkpoints.earlier_seconds)
    out = dict(
        model=args.model, dataset=args.dataset, pair=args.pair, seed=args.seed,
        finished=True, **result.metrics, protocol=result.protocol,
        extra_metrics=result.extra_metrics,
        timings=timings, resumed=resumed, peak_memory_gib=peak_memory_gib(),
        memory_estimate=memory,
        history=result.history, new_pairs_per_round=result.num_new_pairs,
        config=asdict(config), scale_settings=args.scale_settings,
        command=' '.join(sys.argv),
        versions=_versions(), runtime=_runtime(args),
    )
    if args.out:  # both written before either replaces the earlier run's
        outputs = Outputs()
        with outputs.file(osp.join(args.out, 'model.pt'), 'wb') as f:
            save_digested(f, dict(
                model=args.model, state_dict=result.model.state_dict(),
                config=asdict(config), init_args=result.init_args,
                pair_fingerprint=pair_fingerprint(data),
                name_source=name_source(data)))
        with outputs.file(osp.join(args.out, 'results.json')) as f:
            f.write(_dumps(out, indent=2))
        outputs.commit()  # model.pt first: results.json says finished after it
        _finish_checkpoints(checkpoints)
    if args.json:
        print(_dumps(out))
    else:
        print('\n'.join(_metric_lines(result.metrics)))
        print(_protocol_line(result.protocol))
        print(f"time {timings['total'] + load_time:.1f} s "
              f"(train {timings['train']:.1f} s), peak memory "
              f"{out['peak_memory_gib']:.2f} GiB"
              + (f", saved to {args.out}" if args.out else ''))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


def _checkpoints(args, rank: int = 0, results: bool = True) -> Optional[Checkpoints]:
    r"""The run's checkpoints in its output folder (``--resume DIR`` is
    also the output folder), or :obj:`None` without one or under
    ``torchrun``. With ``results``, a fresh run's ``results.json`` says
    ``"finished": false`` until it ends, so a killed run never leaves one
    that looks done; a finished earlier run's results stay, beside its
    model, until this run replaces both."""
    out = args.out
    if args.resume:
        if out and osp.abspath(out) != osp.abspath(args.resume):
            raise SystemExit(f"error: --resume {args.resume} continues in that "
                             f"folder; drop --out {out} or give the same folder")
        out = args.out = args.resume
    if not out or rank > 0 or int(os.environ.get('WORLD_SIZE', '1')) > 1:
        if args.resume:
            raise SystemExit("error: --resume needs one process (not torchrun)")
        return None
    checkpoints = Checkpoints(out, every=args.checkpoint_every,
                              resume=bool(args.resume))
    if args.resume and not osp.exists(checkpoints.path) and _finished(out):
        raise SystemExit(f"error: {out}: that run finished (its results are there); "
                         f"nothing to resume")
    if results and not args.resume and not _finished(out):
        _write_json(osp.join(out, 'results.json'),
                    dict(finished=False, command=_command()))
    return checkpoints


def _finished(out: str) -> bool:
    r"""Whether ``out`` holds the model of a finished run."""
    try:
        with open(osp.join(out, 'results.json')) as f:
            results = json.load(f)
        return isinstance(results, dict) and results.get('finished', True) is True
    except (OSError, ValueError):
        return osp.exists(osp.join(out, 'model.pt'))


def _command(resume: Optional[str] = None) -> str:
    r"""This command line as one can type it again, with ``--resume``
    when given."""
    argv = list(sys.argv[1:])
    if resume and '--resume' not in argv:
        argv += ['--resume', resume]
    return ' '.join(['python -m torch_geometric_ea'] + [shlex.quote(a) for a in argv])


@contextmanager
def _interruptible(checkpoints: Optional[Checkpoints], results: bool = True):
    r"""Runs the body with SIGINT and SIGTERM asking for a checkpoint and a
    stop; a checkpoint that cannot be resumed ends the command with its
    line, and a stop ends it with status 128 + the signal and the command
    that resumes (also in ``results.json`` with ``results``)."""
    if checkpoints is None:
        yield
        return
    try:
        with stop_on_signals(checkpoints):
            yield
    except CheckpointError as e:
        raise SystemExit(f'error: {e}')
    except Interrupted as e:
        out = osp.dirname(e.path)
        if results:
            _write_json(osp.join(out, 'results.json'), dict(
                finished=False, stopped_at=e.position, checkpoint=e.path,
                resume=_command(out)))
        print(f"stopped ({signal.Signals(e.signum).name}) at {e.position}; checkpoint "
              f"{e.path}\nresume with: {_command(out)}", file=sys.stderr)
        raise SystemExit(128 + e.signum)
    if checkpoints.stop_signal is not None:  # asked to stop after the last step
        name = signal.Signals(checkpoints.stop_signal).name
        print(f"stopped ({name}) after training, before the outputs were written",
              file=sys.stderr)
        raise SystemExit(128 + checkpoints.stop_signal)


def _finish_checkpoints(checkpoints: Optional[Checkpoints]):
    r"""Deletes a finished run's checkpoint: ``model.pt`` and
    ``results.json`` are its outcome."""
    if checkpoints is not None and osp.exists(checkpoints.path):
        os.remove(checkpoints.path)


def _json_safe(value):
    r"""``value`` with every NaN or infinite float as :obj:`None`: strict
    JSON has no NaN (a metric that does not exist is ``null``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _dumps(value, **kwargs) -> str:
    r"""Strict JSON of ``value`` (see :func:`_json_safe`)."""
    return json.dumps(_json_safe(value), allow_nan=False, **kwargs)


def _write_json(path: str, value, indent: int = 2):
    r"""Writes ``value`` as strict JSON to ``path``, atomically."""
    with atomic_file(path) as f:
        f.write(_dumps(value, indent=indent))


def _claim_out(args):
    r"""Before any work, the output folder (``--out``, or ``--resume DIR``)
    is made and locked for this run (a second run into it stops, naming
    this one's pid); one that cannot be written, or that holds a stopped
    run's checkpoint while this run would start afresh (without
    ``--overwrite``), stops the command with one line."""
    out = getattr(args, 'resume', None) or getattr(args, 'out', None)
    if not out or int(os.environ.get('RANK', '0')) > 0:
        return
    if osp.exists(out) and not osp.isdir(out):
        raise SystemExit(f"error: {out}: --out names a file, not a folder")
    args.made_out = None if osp.exists(out) else out
    try:
        args.lock, args.claimed_out = claim_folder(out), out
    except OSError as e:
        raise SystemExit(f"error: --out {out}: cannot write there "
                         f"({e.strerror or e})") from None
    stopped = osp.join(out, CHECKPOINT)
    trains = hasattr(args, 'resume') and not getattr(args, 'checkpoint', None)
    if trains and not args.resume and osp.exists(stopped):
        if not args.overwrite:
            raise SystemExit(f"error: {out} holds a stopped run's checkpoint: "
                             f"continue it with --resume {out}, or start afresh "
                             f"with --overwrite")
        os.remove(stopped)


def _emit(args, out: dict, lines: List[str]):
    r"""Prints ``out`` as one JSON line with ``--json``, else ``lines``."""
    if args.json:
        print(_dumps(out))
    else:
        print('\n'.join(lines))


def _metric_lines(metrics: dict) -> List[str]:
    r"""One line per direction with the figures it has (Hungarian decoding
    reports Hits@1 only)."""
    label = {'mrr': 'MRR'}
    return ['{}: {}'.format(d, '  '.join(
        f"{label.get(k, k.replace('hits', 'Hits'))} {v:.4f}" for k, v in m.items()))
        for d, m in metrics.items() if '->' in d]


def _protocol_line(protocol: dict) -> str:
    r"""How the metrics above were made: the ranking and, after
    bootstrapping rounds, whether the test entities were pooled."""
    pools = {'transductive': 'transductive (test entities pooled, the paper\'s '
                             'protocol)',
             'inductive': 'inductive (entities without a training link pooled)'}
    rounds = protocol.get('bootstrapping')
    return (f"ranking: {protocol.get('ranking')}; bootstrapping: "
            + (pools[rounds] if rounds else 'none')
            + _names_text(protocol.get('names')))


def _names_text(names: Optional[dict]) -> str:
    r"""``; names: translated (glove-6b-50d+bigrams, ...)`` for a run
    that used names, else nothing."""
    if not names:
        return ''
    notes = [names['encoder'], f"{names['entities_without_name']:,} entities "
                               f"without a name"]
    if 'tokens' in names:
        notes.append(f"{names['tokens_without_vector']:,} of {names['tokens']:,} "
                     f"tokens without a word vector")
    return f"; names: {names['source']} ({', '.join(notes)})"


def _pair_for(args):
    r"""The KG pair an ``align``/``evaluate``/``analyze`` command names:
    triple TSVs, a benchmark dataset, or none (the checkpoint's own). Bad
    files end the command with their error (file, line, problem)."""
    try:
        return _read_pair(args)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f'error: {e}')


def _read_pair(args):
    from torch_geometric_ea.align import read_checkpoint
    from torch_geometric_ea.data import from_tsv
    if args.checkpoint and not osp.exists(args.checkpoint):
        raise FileNotFoundError(f"{args.checkpoint}: no such checkpoint")
    if getattr(args, 'triples1', None) or getattr(args, 'triples2', None):
        if not (args.triples1 and args.triples2):
            raise SystemExit("error: give both --triples1 and --triples2")
        if not args.checkpoint and not getattr(args, 'seeds', None):
            raise SystemExit("error: training needs --seeds (a TSV of known links)")
        data = from_tsv(args.triples1, args.triples2,
                        train_links=getattr(args, 'seeds', None),
                        test_links=getattr(args, 'test_links', None))
        return _with_names_files(args, data)
    if getattr(args, 'dataset', None):
        seed, names = args.seed, 'translated'
        if args.checkpoint:  # the split and the names the model was trained with
            state = read_checkpoint(args.checkpoint)
            seed = state['config'].get('seed', 0)
            names = 'uri' if state.get('name_source') == 'uri' else 'translated'
        return load_pair(args.dataset, args.pair, args.root, seed, names=names)
    return None


def _with_names_files(args, data):
    r"""``data`` with the names of ``--names1`` and ``--names2`` (both or
    neither), and a line on stderr for the entities without one."""
    files = (getattr(args, 'names1', None), getattr(args, 'names2', None))
    if not any(files):
        return data
    if not all(files):
        raise SystemExit("error: give both --names1 and --names2 (one names "
                         "file per KG)")
    attach_names(data, *files)
    missing = [data.report[f]['entities_without_name'] for f in files]
    if any(missing):
        print(f"names: {missing[0]:,} KG1 and {missing[1]:,} KG2 entities have no "
              f"name in {files[0]} / {files[1]} (zero name vectors)", file=sys.stderr)
    return data


def _load(args, data):
    r"""The checkpoint ``--checkpoint`` on ``data`` (or its own pair); a
    file that is no checkpoint of this package, or one of another pair,
    ends the command with one line."""
    from torch_geometric_ea.align import Aligner
    try:
        return Aligner.load(args.checkpoint, data, device=args.device)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f'error: {e}')


def _align(args) -> int:
    from torch_geometric_ea.align import Aligner
    if not (args.out or args.resume):
        raise SystemExit("error: give --out (the folder for the alignment)")
    if args.resume and args.checkpoint:
        raise SystemExit("error: --resume continues training; --checkpoint "
                         "predicts with a finished model: give one of them")
    _set_threads(args)
    t = time.perf_counter()
    data = _pair_for(args)
    _host_allocator(args, data)
    if args.checkpoint:
        aligner = _load(args, data)
    else:
        if data is None:
            raise SystemExit("error: give --triples1, --triples2 and --seeds to train, "
                             "or --checkpoint to reuse a saved model")
        config = build_config(args.model, args, data)
        _foresee_memory(args, data, config)
        checkpoints = _checkpoints(args, results=False)
        with _interruptible(checkpoints, results=False):
            aligner = Aligner.fit(data, args.model, config, progress=not args.json,
                                  checkpoints=checkpoints)
        aligner.save(osp.join(args.out, 'model.pt'))
        _finish_checkpoints(checkpoints)
    candidates = aligner.candidates(args.k, decoder=args.decoder,
                                    progress=not args.json)
    os.makedirs(args.out, exist_ok=True)
    alignment = osp.join(args.out, 'alignment.tsv')
    ranked = osp.join(args.out, 'candidates.tsv')
    candidates.write_tsv(alignment, aligner.data, top=1)
    candidates.write_tsv(ranked, aligner.data)
    out = dict(model=aligner.model_name, pairs=int(candidates.source.numel()),
               k=int(candidates.target.size(1)), decoder=args.decoder,
               alignment=alignment, candidates=ranked,
               checkpoint=args.checkpoint or osp.join(args.out, 'model.pt'),
               metrics=aligner.metrics, seconds=time.perf_counter() - t)
    best = candidates.target[:, 0]
    counts = torch.bincount(best[best >= 0]) if best.numel() else best
    out['shared_targets'] = int((counts > 1).sum())
    lines = [f"{out['pairs']} predicted links ({args.decoder}) -> {alignment}",
             f"top-{out['k']} candidates per entity -> {ranked}",
             f"model -> {out['checkpoint']}"]
    if out['shared_targets']:
        lines.append(f"{out['shared_targets']} targets are the prediction of more "
                     f"than one source ({int(counts[counts > 1].sum())} sources); "
                     f"--decoder hungarian aligns one to one, mutual keeps only "
                     f"mutual best candidates")
    if aligner.metrics and aligner.data['src', 'link', 'tgt'].test_mask.any():
        lines = _metric_lines(aligner.metrics) + lines
    _emit(args, out, lines)
    return 0


def _evaluate(args) -> int:
    from torch_geometric_ea.data.io import read_str_links
    aligner = _load(args, _pair_for(args))
    links = None
    if args.links:
        data = aligner.data
        vocab = tuple({u: i for i, u in enumerate(data[s].uri)} for s in ('src', 'tgt'))
        try:
            rows = read_str_links(args.links, vocab, ('KG1 of the checkpoint',
                                                      'KG2 of the checkpoint')).rows
        except (ValueError, FileNotFoundError) as e:
            raise SystemExit(f'error: {e}')
        links = torch.tensor([[vocab[0][a] for a, _ in rows],
                              [vocab[1][b] for _, b in rows]],
                             dtype=torch.long).view(2, -1)
    metrics = aligner.evaluate(links, csls_k=args.csls_k, decoding=args.decoding)
    _emit(args, dict(checkpoint=args.checkpoint, links=args.links or 'test links',
                     **metrics), _metric_lines(metrics))
    return 0


def _analyze(args) -> int:
    from torch_geometric_ea.analysis import (
        hits_by_degree,
        plot_hits_by_degree,
        relation_importance_table,
    )
    aligner = _load(args, _pair_for(args))
    if aligner.model_name != 'dual-amn':
        raise SystemExit("error: relation importance needs a Dual-AMN model "
                         f"(got {aligner.model_name})")
    table = relation_importance_table(aligner.model, aligner.data)
    series = {'structure': hits_by_degree(*aligner.embed(literal=False), aligner.data)}
    if aligner.literal:
        series['structure + names'] = hits_by_degree(*aligner.embed(), aligner.data)
    out = dict(most_important=table[:args.top], least_important=table[-args.top:],
               hits_by_degree=series)
    if args.out:
        _write_json(osp.join(args.out, 'analysis.json'), dict(out, relations=table),
                    indent=1)
        try:
            plot_hits_by_degree(series, osp.join(args.out, 'hits_by_degree.png'))
        except ImportError:
            print('matplotlib is not installed: no plot', file=sys.stderr)
    lines = []
    for title, rows in (('most', out['most_important']),
                        ('least', out['least_important'])):
        lines.append(f'{title} important relations (I_r = v . h_r):')
        lines.append('| I_r | KG | relation | triples |')
        lines.append('|---|---|---|---|')
        lines += [f"| {r['importance']:+.3f} | {r['kg']} | {r['relation']}"
                  f"{' (inverse)' if r['direction'] == 'inverse' else ''} | "
                  f"{r['triples']} |" for r in rows]
    lines.append('Hits@1 by source entity degree:')
    lines.append('| degree | links | ' + ' | '.join(series) + ' |')
    lines.append('|---' * (2 + len(series)) + '|')
    for i, row in enumerate(series['structure']):
        lines.append(f"| {row['degree']} | {row['links']} | " + ' | '.join(
            f"{rows[i]['hits@1']:.3f}" for rows in series.values()) + ' |')
    _emit(args, out, lines)
    return 0


def _init_distributed(model: str, config) -> int:
    r"""Joins the process group that ``torchrun`` describes in the
    environment (``WORLD_SIZE`` above 1): NCCL with one GPU per process
    (``LOCAL_RANK``, set as the run's device) when the run is on CUDA,
    gloo on CPUs. Returns this process's rank (0 without a group)."""
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return 0
    if model != 'dual-amn':
        raise SystemExit(f"error: distributed training supports dual-amn only "
                         f"(got --model {model})")
    if torch.device(config.device).type == 'cuda':
        local = int(os.environ.get('LOCAL_RANK', '0'))
        config.device = f'cuda:{local}'
        torch.cuda.set_device(local)
        torch.distributed.init_process_group('nccl')
    else:
        torch.distributed.init_process_group('gloo')
    return torch.distributed.get_rank()


class _Parser(argparse.ArgumentParser):
    r"""An argument parser whose errors are one line (no usage block)."""
    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _number(kind: type, low: float = 0, high: float = math.inf):
    r"""An option type: a finite ``kind`` in ``[low, high]``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, "
                f"got {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            bound = (f"from {low:,} to {high:,}" if math.isfinite(high)
                     else f"at least {low:,}")
            raise argparse.ArgumentTypeError(f"expected {bound}, got {text!r}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its errors
    return parse


COUNT = _number(int, 1)
SEED = _number(int, 0, MAX_SEED)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog='python -m torch_geometric_ea')
    sub = parser.add_subparsers(dest='command', required=True)
    train = sub.add_parser('train', help='train a model on a KG pair and '
                           'evaluate it on the test links')
    train.add_argument('--model', default='dual-amn', choices=sorted(MODELS))
    train.add_argument('--dataset', default='synthetic', choices=DATASET_CHOICES,
                       help='synthetic (offline, default), dbp15k, srprs, '
                       'dwy100k, openea, ogb (two views of --pair ogbl-wikikg2)')
    train.add_argument('--pair', help='e.g. zh_en (dbp15k), en_fr (srprs)')
    train.add_argument('--root', default=osp.join('data'),
                       help='dataset folder (default: ./data)')
    train.add_argument('--num-entities', type=_number(int, MIN_ENTITIES, MAX_ENTITIES),
                       default=2000,
                       help='entities per side of the synthetic or ogb pair')
    train.add_argument('--seed', type=SEED, default=0,
                       help='split and initialisation seed')
    train.add_argument('--names', choices=['translated', 'uri'], default='translated',
                       help='entity names of a benchmark pair: its published '
                       'machine translations where it has them (DBP15K, SRPRS '
                       'en_fr/en_de), or the URIs\' local names')
    train.add_argument('--semi', action='store_true',
                       help='run the bootstrapping rounds after training')
    train.add_argument('--epochs', type=int)
    train.add_argument('--semi-rounds', type=int)
    train.add_argument('--semi-epochs', type=int)
    train.add_argument('--iterations', type=int,
                       help='LightEA rounds (1: LightEA-B, 3: LightEA-I)')
    train.add_argument('--batch-size', type=int)
    train.add_argument('--lr', type=float)
    train.add_argument('--literal', action='store_true', default=None,
                       help='Dual-AMN (Lit): rank by structure plus name '
                       'similarity; LightEA: add the propagated names view '
                       '(offline n-gram name encoder)')
    train.add_argument('--negatives', choices=['all', 'other'],
                       help="loss candidates: all entities (paper) or the "
                       "other KG's only")
    train.add_argument('--loss-chunk-size', type=int)
    train.add_argument('--set', action='append', metavar='KEY=VALUE',
                       help="any field of the model's config, e.g. "
                       "--set channels=64 (repeatable)")
    train.add_argument('--threads', type=COUNT, help=THREADS_HELP)
    _device_option(train)
    train.add_argument('--system-malloc', action='store_true',
                       help="leave glibc's allocator as it is (default: keep "
                       "freed memory, which is faster)")
    train.add_argument('--out', help='write results.json and model.pt here '
                       '(and checkpoints while it runs)')
    _checkpoint_options(train)
    _memory_option(train)
    train.add_argument('--json', action='store_true',
                       help='print the results as JSON, no progress bars')
    train.set_defaults(func=_train)

    align = sub.add_parser('align', help='align two KGs of your own: train on '
                           'seed links (or load --checkpoint) and write the '
                           'predicted alignment and top-k candidates')
    _pair_options(align)
    align.add_argument('--seeds', help='TSV of known links (name1<TAB>name2)')
    align.add_argument('--test-links', help='TSV of held-out links to report '
                       'Hits@k on (optional)')
    align.add_argument('--model', default='dual-amn', choices=sorted(MODELS))
    align.add_argument('--epochs', type=int)
    align.add_argument('--semi', action='store_true', default=None,
                       help='bootstrapping rounds over the unlinked entities')
    align.add_argument('--names1', help='KG1 entity names TSV (entity<TAB>name), '
                       'for --literal and RDGCN\'s name features')
    align.add_argument('--names2', help='KG2 entity names TSV')
    align.add_argument('--literal', action='store_true', default=None,
                       help='rank by structure plus name similarity')
    align.add_argument('--set', action='append', metavar='KEY=VALUE',
                       help="any field of the model's config (repeatable)")
    align.add_argument('-k', '--k', type=COUNT, default=10,
                       help='candidates per entity (default: 10)')
    align.add_argument('--decoder', default='greedy',
                       choices=['greedy', 'mutual', 'hungarian'],
                       help='predicted partner: best candidate (greedy), only '
                       'mutual best candidates, or one-to-one (hungarian)')
    align.add_argument('--out', help='writes alignment.tsv, candidates.tsv (and '
                       'model.pt; checkpoints while it trains)')
    _checkpoint_options(align)
    _memory_option(align)
    align.add_argument('--threads', type=COUNT, help=THREADS_HELP)
    align.set_defaults(func=_align)

    evaluate = sub.add_parser('evaluate', help="a saved model's Hits@k and MRR")
    _pair_options(evaluate, checkpoint_required=True)
    evaluate.add_argument('--links', help='TSV of links to evaluate on '
                          '(default: the test links of the pair)')
    evaluate.add_argument('--csls-k', type=COUNT, default=10,
                          help='neighbours of the CSLS radii (default: 10)')
    evaluate.add_argument('--decoding', default='csls',
                          choices=['csls', 'sinkhorn', 'hungarian'])
    evaluate.set_defaults(func=_evaluate)

    analyze = sub.add_parser('analyze', help="relation importance and Hits@1 by "
                             "degree of a saved Dual-AMN")
    _pair_options(analyze, checkpoint_required=True)
    analyze.add_argument('--top', type=COUNT, default=10,
                         help='relations listed at each end (default: 10)')
    analyze.add_argument('--out', help='writes analysis.json and hits_by_degree.png')
    analyze.set_defaults(func=_analyze)
    return parser


def _pair_options(parser: argparse.ArgumentParser, checkpoint_required: bool = False):
    r"""Where a command's KG pair comes from: the checkpoint, triple TSVs,
    or a benchmark dataset (for checkpoints of ``train --out``)."""
    parser.add_argument('--checkpoint', required=checkpoint_required,
                        help='a model.pt of align (holds its pair) or of train '
                        '--out (give --dataset and --pair too)')
    parser.add_argument('--triples1', help='KG1 triples TSV (head, relation, tail)')
    parser.add_argument('--triples2', help='KG2 triples TSV')
    parser.add_argument('--dataset', help='a benchmark dataset (as for train)')
    parser.add_argument('--pair', help='its pair, e.g. zh_en')
    parser.add_argument('--root', default='data', help='dataset folder')
    parser.add_argument('--seed', type=SEED, default=0, help='split seed')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object, no progress bars')
    _device_option(parser)


def _checkpoint_options(parser: argparse.ArgumentParser):
    parser.add_argument('--checkpoint-every', type=_number(int, 0), metavar='EPOCHS',
                        help='write a checkpoint to --out every that many epochs '
                        '(default: at the first epoch end 5 minutes after the '
                        'last; 0: only when stopped by SIGINT or SIGTERM)')
    parser.add_argument('--resume', metavar='DIR',
                        help="continue the run whose checkpoint is in DIR (give "
                        "the run's own options again; DIR is the output folder)")
    parser.add_argument('--overwrite', action='store_true',
                        help="start afresh in an --out folder holding a stopped "
                        "run's checkpoint (deleting it)")


def _memory_option(parser: argparse.ArgumentParser):
    parser.add_argument('--max-memory', type=_number(float, 0), metavar='GIB',
                        help='stop before any work when the estimated peak '
                        'memory of the run is above this many GiB, naming '
                        'settings that would fit (default: the memory '
                        'available; 0: no limit)')


def _device_option(parser: argparse.ArgumentParser):
    parser.add_argument('--device', default='auto',
                        help="where tensors live: 'cpu', 'cuda', 'cuda:1', ... "
                             "(default: cuda when available, else cpu)")


def _runtime(args) -> dict:
    r"""How the process was set up: device, threads, the host allocator
    settings and the OpenMP wait policy (the same through ``python -m`` and
    the installed script)."""
    return dict(device=args.device, threads=torch.get_num_threads(),
                thp_mem_alloc=os.environ.get('THP_MEM_ALLOC_ENABLE'),
                omp_wait_policy=os.environ.get('OMP_WAIT_POLICY'),
                keeps_freed_memory=getattr(args, 'keeps_freed_memory', False))


def _versions() -> dict:
    r"""Versions of what a run's numbers depend on (the transliteration
    package changes the name features)."""
    from importlib.metadata import PackageNotFoundError, version
    out = dict(python=platform.python_version(), threads=torch.get_num_threads())
    for package in ('torch', 'torch_geometric', 'torch_geometric_ea', 'anyascii',
                    'unidecode'):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def main(argv: Optional[List[str]] = None) -> int:
    r"""Runs a command line (``argv``, default: :data:`sys.argv`) and returns
    its exit status. Whatever goes wrong ends it with one line: bad
    options, files or settings with ``error: ...`` (status 1, 2 for
    options the parser refuses), Ctrl-C with status 130."""
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s: %(message)s')
    args = argparse.Namespace()
    try:
        try:
            with _noting_interrupts() as noted:
                build_parser().parse_args(argv, namespace=args)
                args.device = str(_device(args))  # every command has --device
                _claim_out(args)
                code = args.func(args)
            if noted:  # a Ctrl-C some library swallowed
                raise KeyboardInterrupt
            return code
        except KeyboardInterrupt:
            raise SystemExit(interrupted()) from None
        except (ValueError, OSError) as e:  # data, files and settings, one line each
            raise SystemExit(f'error: {_error_line(e)}') from None
        except (MemoryError, RuntimeError) as e:
            if not _out_of_memory(e):
                raise
            raise SystemExit(f"error: out of memory ({_error_line(e)[:200]}); the "
                             f"memory estimate missed these settings: make them "
                             f"smaller") from None
    except BaseException as e:
        _drop_unused_out(args)
        if isinstance(e, SystemExit) and isinstance(e.code, str):
            e.code = e.code.replace('\n', '\\n')  # one line, whatever a path holds
        raise
    finally:  # the output folder's lock (so a caller may run again in-process)
        if getattr(args, 'lock', None) is not None:
            release_folder(args.claimed_out, args.lock)


@contextmanager
def _noting_interrupts():
    r"""Yields a list into which SIGINT's number goes each time one arrives
    (it still raises :class:`KeyboardInterrupt`), so that a Ctrl-C which
    some library's bare ``except:`` swallows still ends the command."""
    noted: List[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if (threading.current_thread() is not threading.main_thread()
            or previous is not signal.default_int_handler):
        yield noted
        return

    def note(signum, frame):
        noted.append(signum)
        raise KeyboardInterrupt

    def unraisable(info):  # a Ctrl-C raised in a callback: noted, not printed
        if not isinstance(info.exc_value, KeyboardInterrupt):
            hook(info)

    hook = sys.unraisablehook
    signal.signal(signal.SIGINT, note)
    sys.unraisablehook = unraisable
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook


def _drop_unused_out(args):
    r"""Removes the output folder this command made when it stopped before
    writing anything there but its lock."""
    out = getattr(args, 'made_out', None)
    if out and osp.isdir(out) and os.listdir(out) == [LOCK]:
        os.remove(osp.join(out, LOCK))
        os.rmdir(out)


def _out_of_memory(e: BaseException) -> bool:
    r"""Whether ``e`` is an allocation that failed (host or device)."""
    return (isinstance(e, (MemoryError, torch.OutOfMemoryError))
            or "can't allocate memory" in str(e))


def _error_line(e: Exception) -> str:
    r"""An exception as one line (an OS error with the file it concerns)."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f'{e.filename}: {e.strerror}'
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
