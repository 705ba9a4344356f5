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
