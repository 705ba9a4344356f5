r"""Every option of every command, drawn with values a user may type by
mistake (negative, zero, huge, NaN, infinite, junk text): each run ends
with status 0, or with exactly one ``error:`` line; never a traceback
(in-process, any other exception fails the test) or a signal."""
import contextlib
import io
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from torch_geometric_ea.cli import main
from torch_geometric_ea.train import MODELS

from test_align import KG1, KG2, SEEDS

#: Values of every kind a user mistypes; time-scaling counts (epochs,
#: rounds) are never drawn huge, since a huge valid value is a long run.
MISTAKES = ['-1', '-5', '0', '1', '2', '3', '10', '1.5', '-0', '1e3', 'nan', 'inf',
            '-inf', '1e999', 'abc', '', ' ', '0x10', 'None', 'true', '-',
            'é', '--', '/dev/null']
HUGE = ['1000000000000', '9223372036854775808', '99999999999999999999']
LONG_RUNNING = {'epochs', 'semi_epochs', 'semi_rounds', 'iterations',
                'sinkhorn_iters', 'num_entities'}

#: The value-taking options of each command (flags and file paths apart:
#: files have their own tests).
OPTIONS = {
    'train': ['--num-entities', '--seed', '--epochs', '--semi-rounds',
              '--semi-epochs', '--iterations', '--batch-size', '--lr',
              '--negatives', '--loss-chunk-size', '--threads', '--device',
              '--checkpoint-every', '--max-memory', '--names', '--dataset',
              '--pair', '--model', '--set'],
    'align': ['--epochs', '--model', '-k', '--decoder', '--threads', '--device',
              '--checkpoint-every', '--max-memory', '--seed', '--set'],
    'evaluate': ['--csls-k', '--decoding', '--device', '--seed'],
    'analyze': ['--top', '--device', '--seed'],
}
FIELDS = sorted({f.name for config, _ in MODELS.values() for f in fields(config)})


@pytest.fixture(scope='module')
def files():
    r"""Two tiny KGs with seeds, and a Dual-AMN trained on them."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / 'kg1.tsv').write_text(KG1, encoding='utf-8')
        (root / 'kg2.tsv').write_text(KG2, encoding='utf-8')
        (root / 'seeds.tsv').write_text(''.join(f'{a}\t{b}\n' for a, b in SEEDS),
                                        encoding='utf-8')
        assert main(['align', '--triples1', str(root / 'kg1.tsv'), '--triples2',
                     str(root / 'kg2.tsv'), '--seeds', str(root / 'seeds.tsv'),
                     '--out', str(root / 'trained'), '--epochs', '1',
                     '--json']) == 0
        yield root


def base(command: str, root: Path, out: str) -> list:
    r"""A small valid command line of ``command``."""
    if command == 'train':
        return ['train', '--num-entities', '40', '--epochs', '1', '--json']
    if command == 'align':
        return ['align', '--triples1', str(root / 'kg1.tsv'), '--triples2',
                str(root / 'kg2.tsv'), '--seeds', str(root / 'seeds.tsv'),
                '--epochs', '1', '--out', out, '--json']
    return [command, '--checkpoint', str(root / 'trained' / 'model.pt'), '--json']


@st.composite
def option_values(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    option = draw(st.sampled_from(OPTIONS[command]))
    name = option.lstrip('-').replace('-', '_')
    if option == '--set':
        name = draw(st.sampled_from(FIELDS))
    kinds = [st.sampled_from(MISTAKES), st.text(max_size=6)]
    if name not in LONG_RUNNING:
        kinds.append(st.sampled_from(HUGE))
    value = draw(st.one_of(*kinds))
    return command, option, (f'{name}={value}' if option == '--set' else value)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(case=option_values())
@example(case=('analyze', '--device', '\n'))  # torch's message repeated it raw
def test_every_option_ends_in_success_or_one_error_line(files, case):
    command, option, value = case
    with tempfile.TemporaryDirectory() as out:
        argv = base(command, files, str(Path(out) / 'o')) + [option, value]
        err = io.StringIO()
        code = 0
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as e:
                code = e.code
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        if isinstance(code, str):
            lines.append(code)
            code = 1
        errors = [line for line in lines if line.startswith('error: ')]
        if code in (0, None):
            assert not errors, (argv, lines)
        else:
            assert code in (1, 2) and len(errors) == 1, (argv, code, lines)
            assert '\n' not in errors[0]
