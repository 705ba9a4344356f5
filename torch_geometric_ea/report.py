r"""What a command reports: strict JSON (``results.json``, ``--json``),
the text lines it prints instead (metrics, the ranking protocol, the
analysis tables) and the records of the software and process a run's
numbers depend on."""
import json
import math
import os
import platform
from typing import Dict, List, Optional

import torch

from torch_geometric_ea.outputs import atomic_file

__all__ = ['json_safe', 'dumps', 'write_json', 'metric_lines', 'round_line',
           'protocol_line', 'names_text', 'precision_text', 'analysis_lines', 'versions',
           'runtime_record']


def json_safe(value):
    r"""``value`` with every NaN or infinite float as :obj:`None`: strict
    JSON has no NaN (a metric that does not exist is ``null``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps(value, **kwargs) -> str:
    r"""Strict JSON of ``value`` (see :func:`json_safe`); ``kwargs`` go to
    :func:`json.dumps`."""
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)


def write_json(path: str, value, indent: int = 2):
    r"""Writes ``value`` as strict JSON to ``path``, atomically
    (:func:`~torch_geometric_ea.outputs.atomic_file`)."""
    with atomic_file(path) as f:
        f.write(dumps(value, indent=indent))


def metric_lines(metrics: dict) -> List[str]:
    r"""One line per direction (the keys with ``'->'``) with the figures it
    has (Hungarian decoding reports Hits@1 only)."""
    label = {'mrr': 'MRR'}
    return ['{}: {}'.format(d, '  '.join(
        f"{label.get(k, k.replace('hits', 'Hits'))} {v:.4f}" for k, v in m.items()))
        for d, m in metrics.items() if '->' in d]


def round_line(info: dict) -> str:
    r"""The progress line of a training round's evaluation (``info``: the
    round's history entry)."""
    line = '  '.join(
        f"{d}: H@1 {info[d]['hits@1']:.4f} H@10 {info[d]['hits@10']:.4f} "
        f"MRR {info[d]['mrr']:.4f}" for d in ('src->tgt', 'tgt->src'))
    return f"round {info['round']} ({info['train_pairs']} train pairs)  {line}"


def protocol_line(protocol: dict) -> str:
    r"""How the metrics were made: the ranking and, after bootstrapping
    rounds, whether the test entities were pooled."""
    pools = {'transductive': 'transductive (test entities pooled, the paper\'s '
                             'protocol)',
             'inductive': 'inductive (entities without a training link pooled)'}
    rounds = protocol.get('bootstrapping')
    return (f"ranking: {protocol.get('ranking')}; bootstrapping: "
            + (pools[rounds] if rounds else 'none')
            + names_text(protocol.get('names'))
            + precision_text(protocol.get('precision')))


def precision_text(precision: Optional[dict]) -> str:
    r"""``'; products: bfloat16 (why)'`` for a run's
    :meth:`~torch_geometric_ea.precision.Precision.as_dict` (nothing
    without one)."""
    if not precision:
        return ''
    return f"; products: {precision['used']} ({precision['reason']})"


def names_text(names: Optional[dict]) -> str:
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


def analysis_lines(most: List[Dict], least: List[Dict],
                   series: Dict[str, List[Dict]]) -> List[str]:
    r"""Markdown tables of the most and least important relations (rows of
    :func:`~torch_geometric_ea.analysis.relation_importance_table`) and of
    Hits@1 by source entity degree (``series``: name -> rows of
    :func:`~torch_geometric_ea.analysis.hits_by_degree`, the first one's
    degrees heading the rows)."""
    lines = []
    for title, rows in (('most', most), ('least', least)):
        lines.append(f'{title} important relations (I_r = v . h_r):')
        lines.append('| I_r | KG | relation | triples |')
        lines.append('|---|---|---|---|')
        lines += [f"| {r['importance']:+.3f} | {r['kg']} | {r['relation']}"
                  f"{' (inverse)' if r['direction'] == 'inverse' else ''} | "
                  f"{r['triples']} |" for r in rows]
    lines.append('Hits@1 by source entity degree:')
    lines.append('| degree | links | ' + ' | '.join(series) + ' |')
    lines.append('|---' * (2 + len(series)) + '|')
    for i, row in enumerate(next(iter(series.values()))):
        lines.append(f"| {row['degree']} | {row['links']} | " + ' | '.join(
            f"{rows[i]['hits@1']:.3f}" for rows in series.values()) + ' |')
    return lines


def versions() -> dict:
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


def runtime_record(device: str, keeps_freed_memory: bool,
                   huge_pages: bool = False) -> dict:
    r"""How the process was set up: ``device``, threads, the host allocator
    settings (``keeps_freed_memory``: see
    :func:`~torch_geometric_ea.runtime.keep_freed_memory`; ``huge_pages``:
    see :func:`~torch_geometric_ea.resources.host_pages`) and the OpenMP
    wait policy (the same through ``python -m`` and the installed script)."""
    return dict(device=device, threads=torch.get_num_threads(),
                thp_mem_alloc=os.environ.get('THP_MEM_ALLOC_ENABLE'),
                huge_pages=huge_pages,
                omp_wait_policy=os.environ.get('OMP_WAIT_POLICY'),
                keeps_freed_memory=keeps_freed_memory)
