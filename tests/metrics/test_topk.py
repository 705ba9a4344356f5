import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from torch_geometric_ea.metrics.topk import blocked_topk


def _dense_topk(scores, k):
    return scores.topk(min(k, scores.size(1)), dim=1)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 50), m=st.integers(1, 50), d=st.integers(1, 8),
       k=st.integers(1, 60), rb=st.integers(1, 20), cb=st.integers(1, 20),
       seed=st.integers(0, 999))
def test_equals_dense_topk_both_ways(n, m, d, k, rb, cb, seed):
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    y = F.normalize(torch.randn(m, d, generator=g, dtype=torch.float64), dim=1)
    row_v, row_i, col_v, col_i = blocked_topk(x, y, k, row_block=rb, col_block=cb)
    scores = x @ y.t()
    for v, i, s in ((row_v, row_i, scores), (col_v, col_i, scores.t())):
        ev, _ = _dense_topk(s, k)
        torch.testing.assert_close(v, ev)
        torch.testing.assert_close(s.gather(1, i), v)  # indices report their scores
        assert (i.sort(1).values.diff(dim=1) > 0).all()  # distinct candidates


def test_dtype_and_device_follow_the_input():
    x = torch.randn(5, 3, dtype=torch.float64)
    row_v, row_i, _, _ = blocked_topk(x, x, 2, row_block=2, col_block=3)
    assert row_v.dtype == torch.float64 and row_i.dtype == torch.long
    torch.testing.assert_close(row_v[:, 0], (x @ x.t()).max(1).values)


def test_searches_for_few_of_many_take_the_blocked_pass(monkeypatch):
    from torch_geometric_ea.metrics import topk
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(300, 6, generator=gen), torch.randn(400, 6, generator=gen)
    calls = []
    monkeypatch.setattr(topk, 'blocked_topk', lambda *a, **kw: calls.append(
        kw.get('columns', True)) or blocked_topk(*a, **kw))
    rv, ri, cv, ci = topk.topk_both_ways(x, y, 3)
    values, index = topk.topk_inner_products(x, y, 3)
    assert calls == [True, False]
    scores = x @ y.t()
    for got_v, got_i, s in ((rv, ri, scores), (cv, ci, scores.t()),
                            (values, index, scores)):
        ev, ei = s.topk(3, dim=1)
        assert torch.equal(got_i, ei) and torch.allclose(got_v, ev)
    topk.topk_inner_products(x, y, 65)  # too many: the chunked pass
    assert calls == [True, False]


def test_rows_only_search_matches_the_rows_of_the_full_one():
    gen = torch.Generator().manual_seed(4)
    x, y = torch.randn(70, 5, generator=gen), torch.randn(90, 5, generator=gen)
    full = blocked_topk(x, y, 4, row_block=16, col_block=8)
    rows = blocked_topk(x, y, 4, columns=False, row_block=16, col_block=8)
    assert torch.equal(rows[0], full[0]) and torch.equal(rows[1], full[1])
    assert rows[2] is None and rows[3] is None
