r"""The primal (entity graph) attention layer of RDGCN,
:class:`~torch_geometric_ea.nn.PrimalRelationAttentionConv`."""
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.typing import OptTensor
from torch_geometric.utils import softmax

from ..layout import RelationalLayout, as_layout
from .dual_relation_attention_conv import attend

__all__ = ['PrimalRelationAttentionConv']


class PrimalRelationAttentionConv(MessagePassing):
    r"""The primal attention layer from the `"Relation-Aware Entity
    Alignment for Heterogeneous Knowledge Graphs"
    <https://arxiv.org/abs/1908.08210>`_ paper (RDGCN): entities attend to
    their neighbours with a score that depends only on the relation of the
    edge, read from that relation's features (in RDGCN the output of a
    :class:`DualRelationAttentionConv` on the dual relation graph):

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i)} \alpha_{i,j}
        \mathbf{x}_j, \qquad
        \alpha_{i,j} = \mathrm{softmax}_{j \in \mathcal{N}(i)}\left(
        \mathrm{LeakyReLU}\left(\mathbf{a}^{\top} \mathbf{r}_{i,j} + b
        \right)\right)

    where :math:`\mathbf{r}_{i,j}` are the features of the relation on edge
    :math:`(j, i)`. The layer has no weight on :math:`\mathbf{x}`, so it
    keeps the feature width; apply the activation (``relu`` in RDGCN)
    outside.

    Args:
        rel_channels (int): Size of the relation features.
        negative_slope (float, optional): LeakyReLU angle of the negative
            slope. (default: :obj:`0.2`)
        fused (bool, optional): If set to :obj:`True`, the weighted sum is
            one sparse-dense product with a hand-written backward pass
            instead of :meth:`message` and :meth:`propagate` (same result,
            no per-edge feature rows). (default: :obj:`True`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, C)`, edge indices
          :math:`(2, |\mathcal{E}|)` or a typed
          :class:`~torch_geometric_ea.nn.RelationalLayout`, relation
          features :math:`(R, F)` with edge types :math:`(|\mathcal{E}|)`,
          or per-edge relation features :math:`(|\mathcal{E}|, F)`
        - **output:** node features :math:`(|\mathcal{V}|, C)`

    .. note::
        Scores are computed per relation (:math:`R` dot products) and
        gathered per edge; memory is :math:`O(|\mathcal{E}| + |\mathcal{V}|
        C + R F)`. Nodes without incoming edges receive zeros.
    """
    # propagate() is called by attend(), outside forward:
    propagate_type = {'value': Tensor, 'alpha': Tensor}

    def __init__(self, rel_channels: int, negative_slope: float = 0.2,
                 fused: bool = True, **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        self.rel_channels = rel_channels
        self.negative_slope = negative_slope
        self.fused = fused
        self.att = Parameter(torch.empty(rel_channels, 1))
        self.att_bias = Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self):
        r"""Re-initialises the attention vector :math:`\mathbf{a}` with
        Glorot initialisation and zeros the logit bias :math:`b`."""
        super().reset_parameters()
        glorot(self.att)
        torch.nn.init.zeros_(self.att_bias)

    def forward(self, x: Tensor, edge_index: Union[Tensor, RelationalLayout],
                rel: Tensor, edge_type: OptTensor = None,
                return_attention_weights: bool = False):
        r"""Runs the layer.

        Args:
            x (torch.Tensor): Node features :math:`(N, C)`.
            edge_index (torch.Tensor or RelationalLayout): Edges
                :math:`(2, E)`, messages flow from ``edge_index[0]`` to
                ``edge_index[1]``; or a :class:`RelationalLayout` of edges
                and types built once with :func:`relational_layout`.
            rel (torch.Tensor): A relation table :math:`(R, F)` indexed by
                ``edge_type`` (or the layout's types), or without them one
                row per edge :math:`(E, F)`.
            edge_type (torch.Tensor, optional): Relation id per edge
                :math:`(E)`. (default: :obj:`None`)
            return_attention_weights (bool, optional): If :obj:`True`, also
                returns the attention :math:`(E)` in the order of the edges.
                (default: :obj:`False`)
        """
        layout = as_layout(edge_index, edge_type, x.size(0), rel)
        score = (rel @ self.att).view(-1) + self.att_bias
        alpha = softmax(F.leaky_relu(score, self.negative_slope)[layout.type_d],
                        layout.dst_d, num_nodes=x.size(0))
        return attend(self, alpha, x, layout, edge_index, return_attention_weights)

    def message(self, value_j: Tensor, alpha: Tensor) -> Tensor:
        r"""Each edge sends the source's features weighted by its attention,
        :math:`\alpha_{i,j} \mathbf{x}_j`."""
        return alpha.view(-1, 1) * value_j

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.rel_channels})'
