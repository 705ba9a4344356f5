r"""PyG's explainability (edge masks, ``Explainer``) and the message passing
hooks reach ``RelationalAttentionConv`` on its default (fused) path: the
layer hands over to :meth:`propagate` whenever they are set."""
import torch
from torch_geometric.explain import Explainer, GNNExplainer
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

from torch_geometric_ea.nn import RelationalAttentionConv


def graph(n=12, e=40, c=6, r=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=gen)
    edge_index = torch.randint(0, n, (2, e), generator=gen)
    edge_type = torch.randint(0, r, (e,), generator=gen)
    table = torch.randn(r, c, generator=gen)
    return x, edge_index, table, edge_type


def pair_of_convs(c=6):
    torch.manual_seed(0)
    fused = RelationalAttentionConv(c)
    plain = RelationalAttentionConv(c, fused=False)
    plain.load_state_dict(fused.state_dict())
    return fused, plain


def test_set_masks_changes_the_fused_output_as_message_passing():
    x, edge_index, table, edge_type = graph()
    mask = torch.randn(edge_index.size(1), generator=torch.Generator().manual_seed(3))
    outs = []
    for conv in pair_of_convs():
        before = conv(x, edge_index, table, edge_type)
        set_masks(conv, mask, edge_index, apply_sigmoid=True)
        outs.append(conv(x, edge_index, table, edge_type))
        assert not torch.allclose(outs[-1], before)
        clear_masks(conv)
        assert torch.allclose(conv(x, edge_index, table, edge_type), before)
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    # the mask weights the messages in the caller's edge order
    keep = torch.zeros(edge_index.size(1))
    keep[:5] = 1.0
    fused, _ = pair_of_convs()
    set_masks(fused, keep, edge_index, apply_sigmoid=False)
    sub = edge_index[:, :5]
    plain_sub = RelationalAttentionConv(6, fused=False)
    plain_sub.load_state_dict(fused.state_dict())
    alpha = fused(x, edge_index, table, edge_type, return_attention_weights=True)[1][1]
    expected = plain_sub.propagate(
        sub, x=x, rel=torch.nn.functional.normalize(table)[edge_type[:5]],
        alpha=alpha[:5])
    assert torch.allclose(fused(x, edge_index, table, edge_type), expected, atol=1e-6)


def test_message_and_propagate_hooks_fire_on_the_fused_path():
    x, edge_index, table, edge_type = graph()
    fused, plain = pair_of_convs()
    seen = []
    fused.register_message_forward_hook(lambda m, inputs, out: seen.append(out.shape))
    fused.register_propagate_forward_pre_hook(lambda m, inputs: seen.append('pre'))
    out = fused(x, edge_index, table, edge_type)
    assert seen == ['pre', (edge_index.size(1), 6)]
    assert torch.allclose(out, plain(x, edge_index, table, edge_type), atol=1e-6)


class Model(torch.nn.Module):
    def __init__(self, fused):
        super().__init__()
        torch.manual_seed(0)
        self.rel = torch.nn.Parameter(torch.randn(3, 6))
        self.conv1 = RelationalAttentionConv(6, fused=fused)
        self.conv2 = RelationalAttentionConv(6, fused=fused)

    def forward(self, x, edge_index, edge_type):
        x = torch.tanh(self.conv1(x, edge_index, self.rel, edge_type))
        return self.conv2(x, edge_index, self.rel, edge_type)


def explain(fused):
    x, edge_index, _, edge_type = graph()
    explainer = Explainer(
        Model(fused), GNNExplainer(epochs=20), explanation_type='model',
        edge_mask_type='object', node_mask_type=None,
        model_config=dict(mode='regression', task_level='node', return_type='raw'))
    torch.manual_seed(5)
    return explainer(x, edge_index, edge_type=edge_type, index=3).edge_mask


def test_gnn_explainer_gives_the_masks_of_message_passing():
    fused, plain = explain(True), explain(False)
    assert torch.isfinite(fused).all() and (fused != 0).any()
    assert torch.allclose(fused, plain, atol=1e-4)
