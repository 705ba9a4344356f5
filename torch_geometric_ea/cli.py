r"""Command line: ``python -m torch_geometric_ea {train,align,evaluate,analyze} ...``.

- ``train``: a model on a benchmark (or synthetic) pair, evaluated on its test links.
- ``align``: two KGs of one's own (triple TSVs and a seed-link TSV):
  train, save, and write the predicted alignment and top-k candidates; or
  with ``--checkpoint`` only predict with a saved model.
- ``evaluate``: a saved model's Hits@k and MRR on the pair's test links or a link TSV.
- ``analyze``: relation importance and Hits@1 by degree of a saved model.

It parses the options and calls :mod:`~torch_geometric_ea.commands`.
"""
import argparse
import logging
import math
import sys
from dataclasses import fields
from typing import Any, List, Optional

from torch_geometric_ea import commands, errors
from torch_geometric_ea.data import DATASET_NAMES, get_pair
from torch_geometric_ea.interrupts import interrupted, noting_interrupts
from torch_geometric_ea.metrics.decoding import CANDIDATE_DECODERS, RANKING_DECODERS
from torch_geometric_ea.options import (
    ModelOptions,
    PairOptions,
    RunOptions,
    model_choices,
    parse_field,
    uses_names,
)
from torch_geometric_ea.precision import PRECISIONS
from torch_geometric_ea.resources import check_device
from torch_geometric_ea.run_folder import claim_run_folder
from torch_geometric_ea.train.config import MAX_SEED

__all__ = ['main', 'build_parser', 'load_pair', 'build_config', 'uses_names',
           'MIN_ENTITIES', 'MAX_ENTITIES']

THREADS_HELP = ('torch threads (default: the CPUs this process may use: '
                'its affinity mask, capped by a cgroup CPU quota)')
PRECISION_HELP = 'large products: bfloat16 (float32 sums), float32, or auto (default)'
#: The sizes of a synthetic or OGB pair (entities per side) a run takes.
MIN_ENTITIES, MAX_ENTITIES = 10, 10_000_000


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


COUNT, SEED = _number(int, 1), _number(int, 0, MAX_SEED)


def build_parser() -> argparse.ArgumentParser:
    r"""The parser of every command (models from the registry)."""
    parser = _Parser(prog='python -m torch_geometric_ea')
    sub = parser.add_subparsers(dest='command', required=True)
    train = sub.add_parser('train', help='train a model on a KG pair and '
                           'evaluate it on the test links')
    train.add_argument('--model', default='dual-amn', choices=model_choices())
    train.add_argument('--dataset', default='synthetic', choices=DATASET_NAMES,
                       help='synthetic (offline, default), dbp15k, srprs, '
                       'dwy100k, openea, ogb (two views of --pair ogbl-wikikg2)')
    train.add_argument('--pair', help='e.g. zh_en (dbp15k), en_fr (srprs)')
    train.add_argument('--root', default='data',
                       help='dataset folder (default: ./data)')
    train.add_argument('--num-entities', type=_number(int, MIN_ENTITIES, MAX_ENTITIES),
                       default=2000,
                       help='entities per side of the synthetic or ogb pair')
    train.add_argument('--seed', type=SEED, default=0, help='split and init seed')
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
    train.set_defaults(func=lambda args, run, pair: commands.run_train(
        _model(args, run), pair, run))

    align = sub.add_parser('align', help='align two KGs of your own: train on '
                           'seed links (or load --checkpoint) and write the '
                           'predicted alignment and top-k candidates')
    _pair_options(align)
    align.add_argument('--seeds', help='TSV of known links (name1<TAB>name2)')
    align.add_argument('--test-links', help='TSV of held-out links to report '
                       'Hits@k on (optional)')
    align.add_argument('--model', default='dual-amn', choices=model_choices())
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
                       choices=CANDIDATE_DECODERS,
                       help='predicted partner: best candidate (greedy), only '
                       'mutual best candidates, or one-to-one (hungarian)')
    align.add_argument('--out', help='writes alignment.tsv, candidates.tsv (and '
                       'model.pt; checkpoints while it trains)')
    _checkpoint_options(align)
    _memory_option(align)
    align.add_argument('--threads', type=COUNT, help=THREADS_HELP)
    align.set_defaults(func=lambda args, run, pair: commands.run_align(
        _model(args, run), pair, run, k=args.k, decoder=args.decoder))

    evaluate = sub.add_parser('evaluate', help="a saved model's Hits@k and MRR")
    _pair_options(evaluate, checkpoint_required=True)
    evaluate.add_argument('--links', help='TSV of links to evaluate on '
                          '(default: the test links of the pair)')
    evaluate.add_argument('--csls-k', type=COUNT, default=10,
                          help='neighbours of the CSLS radii (default: 10)')
    evaluate.add_argument('--decoding', default='csls',  # 'csls': greedy by CSLS
                          choices=('csls', *RANKING_DECODERS))
    evaluate.set_defaults(func=lambda args, run, pair: commands.run_evaluate(
        pair, run, links=args.links, csls_k=args.csls_k, decoding=args.decoding))

    analyze = sub.add_parser('analyze', help="relation importance and Hits@1 by "
                             "degree of a saved Dual-AMN")
    _pair_options(analyze, checkpoint_required=True)
    analyze.add_argument('--top', type=COUNT, default=10,
                         help='relations listed at each end (default: 10)')
    analyze.add_argument('--out', help='writes analysis.json and hits_by_degree.png')
    analyze.set_defaults(
        func=lambda args, run, pair: commands.run_analyze(pair, run, top=args.top))
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
    parser.add_argument('--device', default='auto', help="where tensors live: "
                        "'cpu', 'cuda', 'cuda:1', ... (default: cuda if any, else cpu)")
    parser.add_argument('--precision', choices=PRECISIONS, help=PRECISION_HELP)


def _take(cls, args: argparse.Namespace, **given):  # an options dataclass
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)
                  if hasattr(args, f.name)} | given)


def _model(args, run: RunOptions) -> ModelOptions:  # its device: the one checked
    return ModelOptions(args.model, vars(args) | dict(device=run.device),
                        tuple(args.set or ()))


def main(argv: Optional[List[str]] = None) -> int:
    r"""Runs a command line (``argv``, default: :data:`sys.argv`) and returns
    its exit status. Whatever goes wrong ends it with one line: bad
    options, files or settings with ``error: ...`` (status 1, 2 for
    options the parser refuses), Ctrl-C with status 130."""
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s: %(message)s')
    args, folder = argparse.Namespace(), None
    try:
        try:
            with noting_interrupts() as noted:
                build_parser().parse_args(argv, namespace=args)
                run = _take(RunOptions, args, device=check_device(args.device),
                            argv=tuple(sys.argv))
                pair = _take(PairOptions, args)
                folder = claim_run_folder(  # before any work
                    run.resume or run.out, resume=bool(run.resume),
                    overwrite=run.overwrite,
                    trains=hasattr(args, 'resume') and not pair.checkpoint)
                args.func(args, run, pair)
            if noted:  # a Ctrl-C some library swallowed
                raise KeyboardInterrupt
            return 0
        except KeyboardInterrupt:
            raise SystemExit(interrupted()) from None
        except errors.RunStopped as e:  # by a signal, with what resumes it
            raise SystemExit(e.status) from None
        except errors.CommandError as e:  # the library's own lines, whole
            raise SystemExit(f'error: {e}') from None
        except (ValueError, OSError) as e:  # data, files and settings, one line each
            raise SystemExit(f'error: {errors.error_line(e)}') from None
        except (MemoryError, RuntimeError) as e:
            if not errors.out_of_memory(e):
                raise
            raise SystemExit(f"error: out of memory ({errors.error_line(e)[:200]}); "
                             f"the memory estimate missed these settings: make "
                             f"them smaller") from None
    except BaseException as e:
        if folder is not None:
            folder.drop_if_unused()
        if isinstance(e, SystemExit) and isinstance(e.code, str):
            e.code = e.code.replace('\n', '\\n')  # one line, whatever a path holds
        raise
    finally:  # the output folder's lock (so a caller may run again in-process)
        if folder is not None:
            folder.release()


# Kept for earlier callers (the library's names: data.get_pair, options).
def load_pair(dataset: str, pair: Optional[str] = None, root: str = 'data',
              seed: int = 0, num_entities: int = 2000, names: str = 'translated'):
    r"""Loads a KG pair: :func:`~torch_geometric_ea.data.get_pair`."""
    return get_pair(dataset, pair, root, seed=seed, num_entities=num_entities,
                    names=names)


_parse_value = parse_field


def build_config(model: str, args: argparse.Namespace, data=None) -> Any:
    r"""``ModelOptions(model, vars(args), args.set).config(data)``; its scale
    settings go to ``args.scale_settings``."""
    config, args.scale_settings = ModelOptions(
        model, vars(args), tuple(args.set or ())).config(data)
    return config
