r"""The normalized hard sample mining loss with bfloat16 products (issue 31):
close to the float64 loss and gradients, products in bfloat16 under
``precision.using('bfloat16')`` and under bfloat16 autocast, the float32
and float64 paths untouched."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import torch_geometric_ea.nn.loss as loss_module
import torch_geometric_ea.nn.loss_blocks as blocks_module
from torch_geometric_ea import precision
from torch_geometric_ea.nn import NormalizedHardSampleMiningLoss

# bfloat16 keeps 8 significant bits: products of rounded inputs, scores
# rounded to 2^-9 of their size. Measured on 150 cases drawn as below: the
# loss within 7e-4 relative, the gradients within 2e-2 (norm of the
# difference, relative) and never closer than 3e-3.
LOSS_TOL, GRAD_TOL = 3e-3, 8e-2


def case(n=300, d=32, b=40, seed=0, spread=0.3):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen) * spread
    perm = torch.randperm(n // 2, generator=gen)[:b]
    pairs = torch.stack([perm, perm + n // 2])
    node_type = (torch.arange(n) >= n // 2).long()
    return x, pairs, node_type


def loss_and_grad(loss_fn, x, pairs, node_type, using='float32', autocast=False):
    x = x.clone().requires_grad_()
    with precision.using(using), torch.autocast('cpu', torch.bfloat16,
                                                enabled=autocast):
        out = loss_fn(x, pairs, node_type)
    out.backward()
    return out.detach(), x.grad


def assert_near(got, expected):
    (loss, grad), (ref_loss, ref_grad) = got, expected
    assert loss.dtype == grad.dtype == torch.float32
    assert abs(loss.double() - ref_loss) <= LOSS_TOL * abs(ref_loss)
    err = (grad.double() - ref_grad).norm() / ref_grad.norm()
    assert err <= GRAD_TOL, err
    return err


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 16), n=st.integers(40, 400), d=st.integers(8, 96),
       negatives=st.sampled_from(['all', 'other']),
       chunk_size=st.sampled_from([None, 17, 150]),
       row_chunk_size=st.sampled_from([None, 3, 512]),
       spread=st.sampled_from([0.05, 0.3, 3.0]))
def test_bfloat16_loss_and_gradients_near_float64(seed, n, d, negatives, chunk_size,
                                                  row_chunk_size, spread):
    x, pairs, node_type = case(n, d, min(n // 2, 50), seed, spread)
    loss_fn = NormalizedHardSampleMiningLoss(negatives=negatives, chunk_size=chunk_size,
                                             row_chunk_size=row_chunk_size)
    ref = loss_and_grad(loss_fn, x.double(), pairs, node_type)
    err = assert_near(loss_and_grad(loss_fn, x, pairs, node_type, 'bfloat16'), ref)
    f32 = (loss_and_grad(loss_fn, x, pairs, node_type)[1].double() - ref[1]).norm()
    assert f32 / ref[1].norm() < 1e-4 < err  # the products did run in bfloat16


def spy(monkeypatch):
    calls = []
    for module, name in ((loss_module, '_row_block'),
                         (blocks_module, '_row_block_low')):
        original = getattr(module, name)

        def wrapped(*args, original=original, name=name):
            calls.append((name, args[0].dtype))
            return original(*args)
        monkeypatch.setattr(module, name, wrapped)
    return calls


@pytest.mark.parametrize('how', ['using', 'autocast'])
def test_products_run_in_bfloat16(monkeypatch, how):
    x, pairs, node_type = case()
    loss_fn = NormalizedHardSampleMiningLoss(row_chunk_size=16)
    ref = loss_and_grad(loss_fn, x.double(), pairs, node_type)
    calls = spy(monkeypatch)
    got = loss_and_grad(loss_fn, x, pairs, node_type,
                        'bfloat16' if how == 'using' else 'float32', how == 'autocast')
    # 80 anchor rows, blocks of 2 x 16 rows of bfloat16 scores
    assert calls == [('_row_block_low', torch.bfloat16)] * 3
    assert_near(got, ref)


@pytest.mark.parametrize('using', ['float32', 'bfloat16'])
def test_float64_keeps_its_path_and_float32_without_a_run_is_float32(monkeypatch,
                                                                     using):
    x, pairs, node_type = case()
    loss_fn = NormalizedHardSampleMiningLoss()
    calls = spy(monkeypatch)
    loss64, grad64 = loss_and_grad(loss_fn, x.double(), pairs, node_type, using)
    assert calls == [('_row_block', torch.float64)]
    calls.clear()
    plain = loss_and_grad(loss_fn, x, pairs, node_type)  # no run: float32
    assert calls == [('_row_block', torch.float32)]
    assert torch.allclose(plain[0].double(), loss64, rtol=1e-6)
    assert torch.allclose(plain[1].double(), grad64, rtol=1e-4, atol=1e-6)


def test_float32_precision_is_the_float32_path_bit_for_bit():
    x, pairs, node_type = case(seed=3)
    loss_fn = NormalizedHardSampleMiningLoss(chunk_size=100, row_chunk_size=16)
    outside = loss_and_grad(loss_fn, x, pairs, node_type)
    with precision.using('bfloat16'):  # an inner float32 run wins
        inside = loss_and_grad(loss_fn, x, pairs, node_type, 'float32')
    assert torch.equal(outside[0], inside[0]) and torch.equal(outside[1], inside[1])


def test_value_without_gradients_equals_value_with_in_bfloat16():
    x, pairs, node_type = case()
    loss_fn = NormalizedHardSampleMiningLoss(row_chunk_size=16)
    with precision.using('bfloat16'), torch.no_grad():
        plain = loss_fn(x, pairs, node_type)
    with_grad = loss_and_grad(loss_fn, x, pairs, node_type, 'bfloat16')[0]
    assert torch.equal(plain, with_grad)


def test_row_statistics_of_a_low_precision_block():
    y = torch.tensor([[-3.0, -0.5, -2.0], [1.0, -4.0, 2.5], [0.0, -1.0, -0.0],
                      [-0.0, -1.0, -2.0]] * 10).bfloat16()  # 40 rows: two passes
    total, total_sq, row_max = blocks_module._row_stats(y)
    assert torch.equal(row_max, y.amax(1).float())  # negative rows too
    assert torch.equal(total, y.float().sum(1))
    # the norm rounded to bfloat16, then squared
    assert torch.allclose(total_sq, y.float().pow(2).sum(1), rtol=2 ** -7)


def test_repeated_entities_and_x_used_elsewhere():
    # anchors and positives read by index inside: repeated entities add up,
    # and another use of x adds its gradient as autograd does
    x, pairs, node_type = case(n=120, b=30, seed=5)
    pairs = torch.cat([pairs, pairs[:, :7]], dim=1)  # seven pairs twice
    loss_fn = NormalizedHardSampleMiningLoss()

    def run(x, using):
        x = x.clone().requires_grad_()
        with precision.using(using):
            (loss_fn(x, pairs) + 0.01 * x.sum()).backward()
        return x.grad - 0.01

    ref = run(x.double(), 'float32')
    assert (run(x, 'bfloat16').double() - ref).norm() <= GRAD_TOL * ref.norm()
