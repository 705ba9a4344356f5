r"""The commands, each one function of plain options
(:mod:`~torch_geometric_ea.options`) that prints its outcome and returns
it as a dict (what ``--json`` prints):

- :func:`run_train`: a model on a dataset's pair, evaluated on its test
  links; with an output folder, ``model.pt`` and ``results.json`` there;
- :func:`run_align`: two KGs of one's own, trained on seed links (or a
  saved model), the predicted alignment and the top-k candidates written;
- :func:`run_evaluate`: a saved model's Hits@k and MRR;
- :func:`run_analyze`: relation importance and Hits@1 by degree.

A command that refuses its input raises one
:class:`~torch_geometric_ea.errors.CommandError` line; one stopped by a
signal raises :class:`~torch_geometric_ea.errors.RunStopped`."""
import os
import os.path as osp
import sys
import time
from dataclasses import asdict
from typing import List, Optional

import torch
from torch_geometric.data import HeteroData

from torch_geometric_ea.data import attach_names, get_pair
from torch_geometric_ea.errors import CommandError
from torch_geometric_ea.model_file import model_state, read_model_file, save_model_file
from torch_geometric_ea.options import (
    ModelOptions,
    PairOptions,
    RunOptions,
    model_choices,
    model_spec,
)
from torch_geometric_ea.outputs import Outputs
from torch_geometric_ea.report import (
    analysis_lines,
    dumps,
    metric_lines,
    protocol_line,
    round_line,
    runtime_record,
    versions,
    write_json,
)
from torch_geometric_ea.resources import (
    foresee_memory,
    host_allocator,
    host_pages,
    init_distributed,
    set_threads,
)
from torch_geometric_ea.run_folder import (
    finish_checkpoints,
    interruptible,
    run_checkpoints,
)
from torch_geometric_ea.train import peak_memory_gib

__all__ = ['run_train', 'run_align', 'run_evaluate', 'run_analyze', 'read_pair',
           'load_model']


def run_train(model: ModelOptions, pair: PairOptions,
              run: RunOptions) -> Optional[dict]:
    r"""Trains ``model`` on the dataset's pair ``pair`` and evaluates it;
    returns ``results.json``'s contents (:obj:`None` on a ``torchrun``
    process but the first, which reports for all)."""
    t = time.perf_counter()
    spec = model.spec
    names = pair.names if spec.uses_names(model.config()[0]) else 'uri'
    data = get_pair(pair.dataset, pair.pair, pair.root, seed=pair.seed,
                    num_entities=pair.num_entities, names=names)
    load_time = time.perf_counter() - t
    config, scaled = model.config(data)
    kept = host_allocator(model.name, run.device, data, run.system_malloc)
    pages = host_pages(model.name, run.device, config)
    memory = foresee_memory(model.name, data, config, device=run.device,
                            max_memory=run.max_memory, kept=kept)
    set_threads(run.threads)
    rank = init_distributed(model.name, config)

    def report(stage, info):
        if not run.json and rank == 0:
            print(round_line(info), file=sys.stderr, flush=True)

    out, checkpoints = run_checkpoints(run.out, run.resume, argv=run.argv,
                                       every=run.checkpoint_every, rank=rank)
    with interruptible(checkpoints, argv=run.argv):
        result = spec.fit(data, config, progress=not run.json and rank == 0,
                          callback=report, checkpoints=checkpoints)
    if rank > 0:  # rank 0 writes and prints the (identical) results
        torch.distributed.destroy_process_group()
        return None
    timings = dict(load=load_time, **result.timings)
    resumed = None
    if checkpoints is not None and checkpoints.resumes:
        timings['total'] += checkpoints.earlier_seconds
        resumed = dict(times=checkpoints.resumes,
                       seconds_before=checkpoints.earlier_seconds)
    results = dict(
        model=model.name, dataset=pair.dataset, pair=pair.pair, seed=pair.seed,
        finished=True, **result.metrics, protocol=result.protocol,
        extra_metrics=result.extra_metrics,
        timings=timings, resumed=resumed, peak_memory_gib=peak_memory_gib(),
        memory_estimate=memory,
        history=result.history, new_pairs_per_round=result.num_new_pairs,
        config=asdict(config), scale_settings=scaled,
        command=' '.join(run.argv),
        versions=versions(), runtime=runtime_record(run.device, kept, pages),
    )
    if out:  # both written before either replaces the earlier run's
        outputs = Outputs()
        with outputs.file(osp.join(out, 'model.pt'), 'wb') as f:
            save_model_file(f, model_state(
                model.name, result.model, asdict(config), result.init_args, data,
                metrics=result.metrics, replay=result.replay))
        with outputs.file(osp.join(out, 'results.json')) as f:
            f.write(dumps(results, indent=2))
        outputs.commit()  # model.pt first: results.json says finished after it
        finish_checkpoints(checkpoints)
    if run.json:
        print(dumps(results))
    else:
        print('\n'.join(metric_lines(result.metrics)))
        print(protocol_line(result.protocol))
        print(f"time {timings['total'] + load_time:.1f} s "
              f"(train {timings['train']:.1f} s), peak memory "
              f"{results['peak_memory_gib']:.2f} GiB"
              + (f", saved to {out}" if out else ''))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return results


def run_align(model: ModelOptions, pair: PairOptions, run: RunOptions, *,
              k: int = 10, decoder: str = 'greedy') -> dict:
    r"""Trains ``model`` on the seed links of ``pair`` (or loads
    ``pair.checkpoint``) and writes ``alignment.tsv`` (the predicted
    partner of every entity without a seed link, by ``decoder``),
    ``candidates.tsv`` (its ``k`` best) and ``model.pt`` to the output
    folder."""
    from torch_geometric_ea.align import Aligner
    if not (run.out or run.resume):
        raise CommandError("give --out (the folder for the alignment)")
    if run.resume and pair.checkpoint:
        raise CommandError("--resume continues training; --checkpoint predicts "
                           "with a finished model: give one of them")
    set_threads(run.threads)
    t = time.perf_counter()
    data = read_pair(pair)
    kept = host_allocator(model.name, run.device, data, run.system_malloc)
    out = run.out
    if pair.checkpoint:
        aligner = load_model(pair.checkpoint, data, run.device, run.precision)
    else:
        if data is None:
            raise CommandError("give --triples1, --triples2 and --seeds to train, "
                               "or --checkpoint to reuse a saved model")
        config, _ = model.config(data)
        host_pages(model.name, run.device, config)
        foresee_memory(model.name, data, config, device=run.device,
                       max_memory=run.max_memory, kept=kept, candidates=True)
        out, checkpoints = run_checkpoints(run.out, run.resume, argv=run.argv,
                                           every=run.checkpoint_every, results=False)
        with interruptible(checkpoints, argv=run.argv, results=False):
            aligner = Aligner.fit(data, model.name, config, progress=not run.json,
                                  checkpoints=checkpoints)
        aligner.save(osp.join(out, 'model.pt'))
        finish_checkpoints(checkpoints)
    candidates = aligner.candidates(k, decoder=decoder, progress=not run.json)
    os.makedirs(out, exist_ok=True)
    alignment = osp.join(out, 'alignment.tsv')
    ranked = osp.join(out, 'candidates.tsv')
    candidates.write_tsv(alignment, aligner.data, top=1)
    candidates.write_tsv(ranked, aligner.data)
    results = dict(model=aligner.model_name, pairs=int(candidates.source.numel()),
                   k=int(candidates.target.size(1)), decoder=decoder,
                   alignment=alignment, candidates=ranked,
                   checkpoint=pair.checkpoint or osp.join(out, 'model.pt'),
                   metrics=aligner.metrics, seconds=time.perf_counter() - t)
    best = candidates.target[:, 0]
    counts = torch.bincount(best[best >= 0]) if best.numel() else best
    results['shared_targets'] = int((counts > 1).sum())
    lines = [f"{results['pairs']} predicted links ({decoder}) -> {alignment}",
             f"top-{results['k']} candidates per entity -> {ranked}",
             f"model -> {results['checkpoint']}"]
    if results['shared_targets']:
        lines.append(f"{results['shared_targets']} targets are the prediction of "
                     f"more than one source ({int(counts[counts > 1].sum())} "
                     f"sources); --decoder hungarian aligns one to one, mutual "
                     f"keeps only mutual best candidates")
    if aligner.metrics and aligner.data['src', 'link', 'tgt'].test_mask.any():
        lines = metric_lines(aligner.metrics) + lines
    _emit(run.json, results, lines)
    return results


def run_evaluate(pair: PairOptions, run: RunOptions, *, links: Optional[str] = None,
                 csls_k: int = 10, decoding: str = 'csls') -> dict:
    r"""The Hits@k and MRR of the model ``pair.checkpoint`` on the pair's
    test links, or on the links of the TSV ``links``."""
    from torch_geometric_ea.data.io import read_str_links
    aligner = load_model(pair.checkpoint, read_pair(pair), run.device, run.precision)
    index = None
    if links:
        data = aligner.data
        vocab = tuple({u: i for i, u in enumerate(data[s].uri)} for s in ('src', 'tgt'))
        try:
            rows = read_str_links(links, vocab, ('KG1 of the checkpoint',
                                                 'KG2 of the checkpoint')).rows
        except (ValueError, FileNotFoundError) as e:
            raise CommandError(str(e)) from None
        index = torch.tensor([[vocab[0][a] for a, _ in rows],
                              [vocab[1][b] for _, b in rows]],
                             dtype=torch.long).view(2, -1)
    metrics = aligner.evaluate(index, csls_k=csls_k, decoding=decoding)
    results = dict(checkpoint=pair.checkpoint, links=links or 'test links', **metrics)
    _emit(run.json, results, metric_lines(metrics))
    return results


def run_analyze(pair: PairOptions, run: RunOptions, *, top: int = 10) -> dict:
    r"""The ``top`` most and least important relations and Hits@1 by source
    entity degree of the model ``pair.checkpoint``; with an output folder,
    ``analysis.json`` (every relation) and ``hits_by_degree.png`` there."""
    from torch_geometric_ea.analysis import (
        hits_by_degree,
        plot_hits_by_degree,
        relation_importance_table,
    )
    aligner = load_model(pair.checkpoint, read_pair(pair), run.device, run.precision)
    if not model_spec(aligner.model_name).relation_importance:
        having = [m for m in model_choices() if model_spec(m).relation_importance]
        raise CommandError(f"relation importance needs a model with relation "
                           f"embeddings: {', '.join(having)} (got {aligner.model_name})")
    table = relation_importance_table(aligner.model, aligner.data)
    series = {'structure': hits_by_degree(*aligner.embed(literal=False), aligner.data)}
    if aligner.literal:
        series['structure + names'] = hits_by_degree(*aligner.embed(), aligner.data)
    results = dict(most_important=table[:top], least_important=table[-top:],
                   hits_by_degree=series)
    if run.out:
        write_json(osp.join(run.out, 'analysis.json'), dict(results, relations=table),
                   indent=1)
        try:
            plot_hits_by_degree(series, osp.join(run.out, 'hits_by_degree.png'))
        except ImportError:
            print('matplotlib is not installed: no plot', file=sys.stderr)
    _emit(run.json, results, analysis_lines(results['most_important'],
                                            results['least_important'], series))
    return results


def _emit(as_json: bool, results: dict, lines: List[str]):
    r"""Prints ``results`` as one JSON line when ``as_json``, else ``lines``."""
    print(dumps(results) if as_json else '\n'.join(lines))


def read_pair(pair: PairOptions) -> Optional[HeteroData]:
    r"""The KG pair that ``pair`` names for a command with a model file or
    one that trains on triple TSVs: the triple TSVs (with their names
    files), a dataset (split as the model file's run was, with its names),
    or :obj:`None` (the model file's own pair). Bad files raise one
    :class:`~torch_geometric_ea.errors.CommandError` line (file, line,
    problem)."""
    try:
        return _read_pair(pair)
    except (ValueError, FileNotFoundError) as e:
        raise CommandError(str(e)) from None


def _read_pair(pair: PairOptions) -> Optional[HeteroData]:
    from torch_geometric_ea.data import from_tsv
    if pair.checkpoint and not osp.exists(pair.checkpoint):
        raise FileNotFoundError(f"{pair.checkpoint}: no such checkpoint")
    if pair.triples1 or pair.triples2:
        if not (pair.triples1 and pair.triples2):
            raise CommandError("give both --triples1 and --triples2")
        if not pair.checkpoint and not pair.seeds:
            raise CommandError("training needs --seeds (a TSV of known links)")
        data = from_tsv(pair.triples1, pair.triples2, train_links=pair.seeds,
                        test_links=pair.test_links)
        return _with_names_files(data, pair.names1, pair.names2)
    if pair.dataset:
        seed, names = pair.seed, 'translated'
        if pair.checkpoint:  # the split and the names the model was trained with
            state = read_model_file(pair.checkpoint)
            seed = state['config'].get('seed', 0)
            names = 'uri' if state.get('name_source') == 'uri' else 'translated'
        return get_pair(pair.dataset, pair.pair, pair.root, seed=seed,
                        num_entities=pair.num_entities, names=names)
    return None


def _with_names_files(data: HeteroData, names1: Optional[str],
                      names2: Optional[str]) -> HeteroData:
    r"""``data`` with the names of ``names1`` and ``names2`` (both or
    neither), and a line on stderr for the entities without one."""
    files = (names1, names2)
    if not any(files):
        return data
    if not all(files):
        raise CommandError("give both --names1 and --names2 (one names file per KG)")
    attach_names(data, *files)
    missing = [data.report[f]['entities_without_name'] for f in files]
    if any(missing):
        print(f"names: {missing[0]:,} KG1 and {missing[1]:,} KG2 entities have no "
              f"name in {files[0]} / {files[1]} (zero name vectors)", file=sys.stderr)
    return data


def load_model(path: str, data: Optional[HeteroData], device: str,
               precision: Optional[str] = None):
    r"""The model file ``path`` as an :class:`~torch_geometric_ea.Aligner`
    on ``data`` (or its own pair) on ``device``, its products in
    ``precision`` (default: the saved config's); a file that is no model of
    this package, or one of another pair, raises one
    :class:`~torch_geometric_ea.errors.CommandError` line."""
    from torch_geometric_ea.align import Aligner
    try:
        return Aligner.load(path, data, device=device, precision=precision)
    except (ValueError, FileNotFoundError) as e:
        raise CommandError(str(e)) from None
