import sys

import pytest
import torch

from torch_geometric_ea.runtime import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc only')
def test_keep_freed_memory_takes_effect_and_tensors_still_work():
    assert keep_freed_memory() is True
    x = torch.ones(5_000_000)  # 20 MB blocks, allocated and freed
    for _ in range(3):
        y = x * 2
        assert float(y.sum()) == 10_000_000
        del y
