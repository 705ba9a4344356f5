import os
from pathlib import Path

import pytest
import torch

MIRROR_ENV = 'TORCH_GEOMETRIC_EA_MIRROR'


def pytest_collection_modifyitems(config, items):
    r"""Skips tests marked ``real_data`` when no local data copy is set."""
    if os.environ.get(MIRROR_ENV):
        return
    skip = pytest.mark.skip(reason=f"{MIRROR_ENV} is not set")
    for item in items:
        if 'real_data' in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def mirror() -> Path:
    r"""The local copy of the real datasets (``TORCH_GEOMETRIC_EA_MIRROR``);
    skips the test when it is not set."""
    path = os.environ.get(MIRROR_ENV)
    if not path:
        pytest.skip(f"{MIRROR_ENV} is not set")
    return Path(path)


@pytest.fixture
def dataset_root(tmp_path) -> str:
    r"""An empty dataset root directory."""
    root = tmp_path / 'datasets'
    root.mkdir()
    return str(root)


DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    r"""Every device this machine has: the CPU always, CUDA when available
    (``benchmarks/gpu.sh`` runs the suite there)."""
    return torch.device(request.param)
