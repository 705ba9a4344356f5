r"""The documentation: Sphinx builds it with warnings as errors, every public
object has a docstring, and every tutorial's code runs (on small synthetic
pairs in place of the benchmark datasets)."""
import importlib
import importlib.util
import inspect
import os
import os.path as osp
import pkgutil
import re
import shlex
import subprocess
import sys

import pytest

import torch_geometric_ea

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOCS = osp.join(ROOT, 'docs')
TUTORIALS = sorted(name[:-4] for name in os.listdir(osp.join(DOCS, 'tutorials'))
                   if name.endswith('.rst'))
SKIP = '.. not run by the tests'
SMALL = 400  # entities per side of the pairs the tutorials run on here
README = osp.join(ROOT, 'README.md')

# The results pages (docs/results/NAME.rst) and the captions of the tables
# each holds: every table the README held before it became a front door.
RESULTS = {
    'gpu': [],  # no GPU figure yet (benchmarks/gpu.sh makes them)
    'precision': ['float32 and bfloat16 products, run for run'],
    'models': ['All models side by side (DBP15K, SRPRS en_fr, seed 0)'],
    'lightea': ["LightEA on the official notebook's split",
                'LightEA on our split (DBP15K, SRPRS en_fr), beside Dual-AMN',
                'LightEA with translated names'],
    'literal': ['Dual-AMN (Lit) on DBP15K zh_en, translated names'],
    'bootstrapping': ['Bootstrapping: transductive against inductive'],
    'candidates': ['Dual-AMN: fewer loss candidates'],
    'decoding': ['Dual-AMN: greedy against global decoding'],
    'profile': ['Where the time goes: seconds per Dual-AMN training batch'],
    'scale': ['Scale: synthetic pairs of 100K and 1M entities per side'],
    'memory': ['Memory: estimated against measured peaks'],
    'levers': ['Other levers, measured and not kept',
               'Sharing a machine: OpenMP wait policy'],
}
# Tables of the guides: (page, caption).
GUIDE_TABLES = [('datasets', 'Datasets'),
                ('datasets', 'Names alone: Hits@1 without training')]


def test_docs_build_with_warnings_as_errors(tmp_path):
    out = subprocess.run([sys.executable, '-m', 'sphinx', '-W', '--keep-going',
                          '-q', '-b', 'html', DOCS, str(tmp_path / 'html')],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-5000:]
    for page in ['index', 'tutorials/own_kgs', 'api/nn', 'analyses', 'datasets',
                 'larger'] + [f'results/{name}' for name in ['index', *RESULTS]]:
        assert (tmp_path / 'html' / f'{page}.html').exists(), page
    api = (tmp_path / 'html' / 'api' / 'nn.html').read_text()
    assert 'RelationalAttentionConv' in api and 'NormalizedHardSampleMiningLoss' in api


def public_objects():
    seen = set()
    for info in pkgutil.walk_packages(torch_geometric_ea.__path__, 'torch_geometric_ea.'):
        if info.name.endswith('__main__'):
            continue
        module = importlib.import_module(info.name)
        yield info.name, module
        for name in getattr(module, '__all__', []):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f'{info.name}.{name}', obj
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith('_') and attr != '__call__':
                        continue
                    bound = value
                    if isinstance(value, (classmethod, staticmethod)):
                        value, bound = value.__func__, getattr(obj, attr)
                    if isinstance(value, property):
                        value = bound = value.fget
                    if inspect.isfunction(value) and written_here(value):
                        yield f'{info.name}.{name}.{attr}', bound


def written_here(function) -> bool:
    r"""Defined in the package's source (PyG generates ``propagate`` and
    ``collect`` of each layer class from templates at run time)."""
    try:
        path = inspect.getsourcefile(function) or ''
    except TypeError:
        return False
    return osp.abspath(path).startswith(osp.dirname(torch_geometric_ea.__file__))


def test_every_public_object_has_a_docstring():
    # a method that overrides a documented one keeps its documentation
    missing = [name for name, obj in public_objects()
               if not (inspect.getdoc(obj) or '').strip()]
    assert not missing, missing


def code_blocks(path):
    r"""``(language, code)`` of each ``code-block`` of an rst file that is not
    preceded by a ``.. not run by the tests`` comment."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    blocks, skip = [], False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(SKIP):
            skip = True
        match = re.match(r'\.\. code-block:: (\w+)', line)
        if match:
            body, i = [], i + 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith('   ')):
                body.append(lines[i][3:])
                i += 1
            if not skip and match.group(1) in ('python', 'bash'):
                blocks.append((match.group(1), '\n'.join(body).strip('\n')))
            skip = False
            continue
        i += 1
    return blocks


class SmallDataset:
    r"""Stands in for a benchmark dataset class: a small synthetic pair."""
    def __init__(self, root, pair, seed=0, **kwargs):
        from torch_geometric_ea.data import synthetic_pair
        self.data = synthetic_pair(SMALL, num_relations=20, seed=seed)

    def __getitem__(self, index):
        return self.data


def run_command(line):
    args = shlex.split(line)
    while args and re.match(r'^[A-Z_]+=', args[0]):  # VAR=value prefixes
        args.pop(0)
    if args[:3] == ['python', '-m', 'torch_geometric_ea']:
        from torch_geometric_ea.cli import main
        assert main(args[3:]) == 0, line
    elif args[:2] == ['python', 'benchmarks/run.py']:
        subprocess.run([sys.executable] + args[1:], check=True,
                       env=dict(os.environ, OMP_NUM_THREADS='1'))
    else:
        raise AssertionError(f'a tutorial command the tests cannot run: {line}')


@pytest.mark.parametrize('tutorial', TUTORIALS)
def test_tutorial_code_runs(tutorial, tmp_path, monkeypatch):
    import torch_geometric_ea.cli as cli
    import torch_geometric_ea.data as data
    small = data.synthetic_pair

    def capped_synthetic_pair(num_entities, *args, **kwargs):
        return small(min(num_entities, SMALL), *args, **kwargs)

    # wherever a module looks the datasets up: the data package, its
    # registry of datasets by name, and the command line
    modules = [data, cli] + [importlib.import_module(name) for name in
                             ('torch_geometric_ea.data.registry',)
                             if importlib.util.find_spec(name)]
    for module in modules:
        for name in ('DBP15K', 'SRPRS'):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, SmallDataset)
        if hasattr(module, 'synthetic_pair'):
            monkeypatch.setattr(module, 'synthetic_pair', capped_synthetic_pair)
    by_name = getattr(cli, 'DATASETS', None)
    if isinstance(by_name, dict) and inspect.isclass(by_name.get('dbp15k')):
        monkeypatch.setattr(cli, 'DATASETS', dict(by_name, dbp15k=SmallDataset,
                                                  srprs=SmallDataset))
    for name in ('docs', 'benchmarks'):  # the paths the tutorials use
        os.symlink(osp.join(ROOT, name), tmp_path / name)
    monkeypatch.chdir(tmp_path)
    blocks = code_blocks(osp.join(DOCS, 'tutorials', f'{tutorial}.rst'))
    assert any(lang == 'python' for lang, _ in blocks) or any(
        lang == 'bash' for lang, _ in blocks)
    namespace = {}
    from torch_geometric_ea.train.registry import REGISTRY
    registered = dict(REGISTRY)  # a tutorial's own model stays in the tutorial
    try:
        for language, code in blocks:
            if language == 'python':
                exec(compile(code, f'{tutorial}.rst', 'exec'), namespace)
            else:
                for line in code.splitlines():
                    if line.strip() and not line.startswith('#'):
                        run_command(line)
    finally:
        REGISTRY.clear()
        REGISTRY.update(registered)


def csv_tables(path):
    r"""``{caption: number of body rows}`` of the ``csv-table`` directives of
    an rst file."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    tables = {}
    for i, line in enumerate(lines):
        match = re.match(r'\.\. csv-table:: (.+)$', line)
        if match:
            rows = 0
            for body in lines[i + 1:]:
                if body.strip() and not body.startswith('   '):
                    break
                rows += body.startswith('   "')
            tables[match.group(1).strip()] = rows
    return tables


def test_every_results_table_has_a_page_rows_and_a_command():
    pages = sorted(name[:-4] for name in os.listdir(osp.join(DOCS, 'results'))
                   if name.endswith('.rst'))
    assert pages == sorted(['index', *RESULTS])
    expected = [(f'results/{page}', caption) for page, captions in RESULTS.items()
                for caption in captions] + GUIDE_TABLES
    for page, caption in expected:
        path = osp.join(DOCS, f'{page}.rst')
        tables = csv_tables(path)
        assert caption in tables, (page, caption, sorted(tables))
        assert tables[caption] > 0, (page, caption)
        with open(path, encoding='utf-8') as f:
            assert 'python benchmarks/' in f.read(), f'{page}: no command that regenerates it'
    with open(osp.join(DOCS, 'results', 'index.rst'), encoding='utf-8') as f:
        index = f.read()
    assert '../results.png' in index and osp.exists(osp.join(DOCS, 'results.png'))
    assert all(f'   {page}\n' in index for page in RESULTS)  # in the toctree


def test_readme_is_a_front_door():
    with open(README, encoding='utf-8') as f:
        text = f.read()
    assert len(text.splitlines()) < 250
    # the set-up commands that .ci/run mirrors, word for word
    assert ('pip install torch==2.13.0 && pip install -e ".[test]" && '
            'TORCH_GEOMETRIC_EA_MIRROR=../shared/data python -m torch_geometric_ea '
            'train --model dual-amn --dataset dbp15k --pair zh_en --out runs/zh_en\n'
            ) in text
    assert 'TORCH_GEOMETRIC_EA_MIRROR=../shared/data python -m pytest -q tests\n' in text
    # one summary table, both directions, every model named
    tables = re.findall(r'^\|.*\|$\n^\|[-| ]+\|$', text, flags=re.M)
    assert len(tables) == 1 and 'src->tgt' in text and 'tgt->src' in text
    for model in ['LightEA-B', 'LightEA-I', 'Dual-AMN, basic', 'Dual-AMN, semi',
                  'Dual-AMN (Lit)', 'GCN-Align', 'RDGCN']:
        assert f'| {model}' in text, model
    # every link to a file of the repository leads somewhere
    links = re.findall(r'\]\(((?!https?:)[^)#]+)\)', text)
    assert any(link.startswith('docs/results/') for link in links)
    missing = [link for link in links if not osp.exists(osp.join(ROOT, link))]
    assert not missing, missing
