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


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_quotas_v2_and_v1(tmp_path):
    from torch_geometric_ea.runtime import cgroup_cpu_limit
    assert cgroup_cpu_limit(str(tmp_path)) is None  # no cgroup files
    write(tmp_path / 'v2' / 'cpu.max', '150000 100000\n')
    assert cgroup_cpu_limit(str(tmp_path / 'v2')) == 1.5
    write(tmp_path / 'free' / 'cpu.max', 'max 100000\n')
    assert cgroup_cpu_limit(str(tmp_path / 'free')) is None
    write(tmp_path / 'v1' / 'cpu' / 'cpu.cfs_quota_us', '50000\n')
    write(tmp_path / 'v1' / 'cpu' / 'cpu.cfs_period_us', '100000\n')
    assert cgroup_cpu_limit(str(tmp_path / 'v1')) == 0.5
    write(tmp_path / 'v1off' / 'cpu' / 'cpu.cfs_quota_us', '-1\n')
    write(tmp_path / 'v1off' / 'cpu' / 'cpu.cfs_period_us', '100000\n')
    assert cgroup_cpu_limit(str(tmp_path / 'v1off')) is None


def test_cgroup_memory_limits_v2_and_v1(tmp_path):
    from torch_geometric_ea.runtime import cgroup_memory_limit
    assert cgroup_memory_limit(str(tmp_path)) is None  # no cgroup files
    write(tmp_path / 'v2' / 'memory.max', '17179869184\n')
    assert cgroup_memory_limit(str(tmp_path / 'v2')) == 16 * 2 ** 30
    write(tmp_path / 'free' / 'memory.max', 'max\n')
    assert cgroup_memory_limit(str(tmp_path / 'free')) is None
    write(tmp_path / 'v1' / 'memory' / 'memory.limit_in_bytes', '1073741824\n')
    assert cgroup_memory_limit(str(tmp_path / 'v1')) == 2 ** 30
    write(tmp_path / 'v1off' / 'memory' / 'memory.limit_in_bytes',
          '9223372036854771712\n')  # what v1 writes for no limit
    assert cgroup_memory_limit(str(tmp_path / 'v1off')) is None


def test_proc_bytes_reads_kernel_kilobytes(tmp_path):
    from torch_geometric_ea.runtime import proc_bytes
    write(tmp_path / 'status', 'Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\n')
    assert proc_bytes(str(tmp_path / 'status'), 'VmHWM') == 2 * 2 ** 20
    assert proc_bytes(str(tmp_path / 'status'), 'VmRSS') == 2 ** 20
    assert proc_bytes(str(tmp_path / 'status'), 'VmSwap') is None
    assert proc_bytes(str(tmp_path / 'missing'), 'VmHWM') is None


def test_usable_cpus_is_the_affinity_capped_by_the_quota(tmp_path, monkeypatch):
    from torch_geometric_ea import runtime
    monkeypatch.setattr(runtime.os, 'sched_getaffinity', lambda pid: {0, 2, 5, 7})
    assert runtime.usable_cpus(str(tmp_path)) == 4  # 4 CPUs in the mask, no quota
    write(tmp_path / 'cpu.max', '250000 100000\n')
    assert runtime.usable_cpus(str(tmp_path)) == 3  # 2.5 CPUs of quota: 3 threads
    write(tmp_path / 'cpu.max', '10000 100000\n')
    assert runtime.usable_cpus(str(tmp_path)) == 1


def test_the_cli_defaults_to_the_usable_cpus(monkeypatch, capsys):
    import json

    import torch

    from torch_geometric_ea import cli, resources
    before = torch.get_num_threads()
    monkeypatch.setattr(resources, 'usable_cpus', lambda: 1)
    try:
        assert cli.main(['train', '--num-entities', '60', '--epochs', '1', '--set',
                         'channels=8', '--device', 'cpu', '--json']) == 0
        assert json.loads(capsys.readouterr().out)['runtime']['threads'] == 1
    finally:
        torch.set_num_threads(before)
