r"""Every ``torch.load`` in the repository reads weights only: nothing a
data folder or a checkpoint path can hold is unpickled as code."""
import ast
import os.path as osp
from pathlib import Path

import pytest

ROOT = Path(osp.dirname(osp.dirname(osp.abspath(__file__))))
SOURCES = sorted(p for folder in ('torch_geometric_ea', 'benchmarks', 'tests')
                 for p in (ROOT / folder).rglob('*.py'))


def loads(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == 'load' and isinstance(node.func.value, ast.Name)
                and node.func.value.id == 'torch'):
            yield node


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_torch_load_reads_weights_only(path):
    for call in loads(path):
        flags = {k.arg: k.value for k in call.keywords}
        assert 'weights_only' in flags, f'{path}:{call.lineno}: torch.load without it'
        assert isinstance(flags['weights_only'], ast.Constant) and \
            flags['weights_only'].value is True, f'{path}:{call.lineno}'


UNPICKLERS = {'torch_load', 'load_pickle'}  # PyG's and OGB's, which fall back


@pytest.mark.parametrize('path', [p for p in SOURCES if 'tests' not in p.parts],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_other_unpickler(path):
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, 'attr', getattr(node.func, 'id', ''))
        owner = getattr(getattr(node.func, 'value', None), 'id', '')
        assert name not in UNPICKLERS, f'{path}:{node.lineno}: {name}'
        assert not (owner == 'pickle' and name in ('load', 'loads', 'Unpickler')), \
            f'{path}:{node.lineno}: pickle.{name}'
        if name == 'load' and owner in ('np', 'numpy'):
            assert 'allow_pickle' not in {k.arg for k in node.keywords}, \
                f'{path}:{node.lineno}'


def test_every_dataset_of_the_package_reads_its_folder_weights_only():
    r"""PyG's ``_process`` unpickles ``pre_transform.pt`` and ``pre_filter.pt``
    and its ``load`` retries a processed file unpickling it: every dataset
    class of the package overrides both (tests/data/test_datasets.py plants
    files in each)."""
    from torch_geometric.data import InMemoryDataset
    import torch_geometric_ea.data  # noqa: F401 (defines the classes)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    ours = [c for c in subclasses(InMemoryDataset)
            if c.__module__.startswith('torch_geometric_ea')]
    assert {c.__name__ for c in ours} >= {'DBP15K', 'SRPRS', 'DWY100K', 'OpenEA'}
    for cls in ours:
        assert cls._process is not InMemoryDataset._process, cls
        assert cls.load is not InMemoryDataset.load, cls
