import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import softmax

from ..functional import normalize_rows, rowdot

__all__ = ['RelationalAttentionConv']


class _RelationalAttention(torch.autograd.Function):
    r"""The whole layer as one function:

    .. math::
        \mathbf{x}'_i = \sum_{(j, i)} \alpha_{ij} (\mathbf{x}_j - 2 s_{ij}
        \mathbf{r}_{ij}), \quad s_{ij} = \mathbf{r}_{ij}^\top \mathbf{x}_j,
        \quad \alpha_{ij} = \mathrm{softmax}_i(\mathbf{v}^\top
        \mathbf{r}_{ij})

    with a hand-derived backward pass that keeps no per-edge feature rows.
    With :math:`\mathbf{g}_i` the output gradient and :math:`t_{ij} =
    \mathbf{r}_{ij}^\top \mathbf{g}_i`:

    .. math::
        \nabla_{\alpha_{ij}} &= \mathbf{g}_i^\top \mathbf{x}_j - 2 s_{ij}
        t_{ij}, \quad
        \nabla_{e_{ij}} = \alpha_{ij} \left(\nabla_{\alpha_{ij}} -
        \textstyle\sum_{(k, i)} \alpha_{ik} \nabla_{\alpha_{ik}}\right) \\
        \nabla_{\mathbf{x}_j} &\mathrel{+}= \alpha_{ij} (\mathbf{g}_i - 2
        t_{ij} \mathbf{r}_{ij}), \quad
        \nabla_{\mathbf{r}_{ij}} = -2 \alpha_{ij} (t_{ij} \mathbf{x}_j +
        s_{ij} \mathbf{g}_i) + \nabla_{e_{ij}} \mathbf{v}, \quad
        \nabla_{\mathbf{v}} = \textstyle\sum \nabla_{e_{ij}} \mathbf{r}_{ij}

    where :math:`e_{ij} = \mathbf{v}^\top \mathbf{r}_{ij}` is the logit.
    """
    @staticmethod
    def forward(ctx, x: Tensor, rel: Tensor, att: Tensor, src: Tensor,
                dst: Tensor):
        alpha = softmax((rel @ att).view(-1), dst, num_nodes=x.size(0))
        msg = x.index_select(0, src)
        proj = rowdot(msg, rel)
        msg.mul_(alpha.unsqueeze(1)).addcmul_(rel, (-2 * alpha * proj).unsqueeze(1))
        out = x.new_zeros(x.shape).index_add_(0, dst, msg)
        ctx.save_for_backward(x, rel, att, alpha, proj, src, dst)
        ctx.mark_non_differentiable(alpha)
        return out, alpha

    @staticmethod
    def backward(ctx, grad_out: Tensor, _):
        x, rel, att, alpha, proj, src, dst = ctx.saved_tensors
        grad_dst = grad_out.index_select(0, dst)
        x_src = x.index_select(0, src)
        t = rowdot(grad_dst, rel)
        grad_alpha = rowdot(grad_dst, x_src).sub_(2 * proj * t)
        weighted = alpha * grad_alpha
        total = x.new_zeros(x.size(0)).index_add_(0, dst, weighted)
        grad_logit = weighted.sub_(alpha * total[dst])
        a = alpha.unsqueeze(1)
        grad_rel = x_src.mul_(t.unsqueeze(1)).addcmul_(grad_dst, proj.unsqueeze(1))
        grad_rel.mul_(-2 * a).addr_(grad_logit, att.view(-1))
        grad_att = (rel.t() @ grad_logit).view_as(att)
        msg = grad_dst.mul_(a).addcmul_(rel, (-2 * alpha * t).unsqueeze(1))
        grad_x = torch.zeros_like(x).index_add_(0, src, msg)
        return grad_x, grad_rel, grad_att, None, None


class RelationalAttentionConv(MessagePassing):
    r"""The simplified relational attention layer from the `"Boosting the
    Speed of Entity Alignment 10x: Dual Attention Matching Network with
    Normalized Hard Sample Mining" <https://arxiv.org/abs/2103.15452>`_ paper
    (Dual-AMN).

    Each neighbour is projected by the reflection (Householder) matrix of
    the relation on its edge and weighted by an attention that depends on
    the relation only:

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i)} \alpha_{i,j}
        \left(\mathbf{x}_j - 2\, (\mathbf{r}_{i,j}^{\top} \mathbf{x}_j)\,
        \mathbf{r}_{i,j}\right),
        \qquad
        \alpha_{i,j} = \frac{\exp(\mathbf{v}^{\top} \mathbf{r}_{i,j})}
        {\sum_{k \in \mathcal{N}(i)} \exp(\mathbf{v}^{\top} \mathbf{r}_{i,k})}

    where :math:`\mathbf{r}_{i,j}` is the :math:`L_2`-normalised relation
    vector of edge :math:`(j, i)` and :math:`\mathbf{v}` the layer's
    attention vector. The layer has no weight matrix, so it keeps the
    feature width; apply the activation (``tanh`` in Dual-AMN) outside.

    Args:
        channels (int): Size of node and relation features.
        bias (bool, optional): If set to :obj:`True`, adds a learnable bias
            to the output. (default: :obj:`False`)
        normalize (bool, optional): If set to :obj:`False`, relation vectors
            are taken as already :math:`L_2`-normalised (saves a pass when
            several layers share them). (default: :obj:`True`)
        fused (bool, optional): If set to :obj:`True`, aggregation runs as
            one autograd function with a hand-derived backward pass instead
            of :meth:`message` and :meth:`propagate` (same result, several
            times less memory and time). (default: :obj:`True`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, C)`, edge indices
          :math:`(2, |\mathcal{E}|)`, relation vectors
          :math:`(|\mathcal{E}|, C)` or a relation table :math:`(R, C)`
          with edge types :math:`(|\mathcal{E}|)`
        - **output:** node features :math:`(|\mathcal{V}|, C)`

    .. note::
        Memory is :math:`O(|\mathcal{E}| \cdot C)`. The fused path keeps
        only the inputs for backward; :meth:`propagate` keeps several
        per-edge rows. Nodes without incoming edges receive zeros (plus the
        bias).
    """
    def __init__(self, channels: int, bias: bool = False, normalize: bool = True,
                 fused: bool = True, **kwargs):
        kwargs.setdefault('aggr', 'add')
        super().__init__(**kwargs)
        self.channels = channels
        self.normalize = normalize
        self.fused = fused
        self.att = Parameter(torch.empty(channels, 1))
        if bias:
            self.bias = Parameter(torch.empty(channels))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        glorot(self.att)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Adj, rel: Tensor,
                edge_type: OptTensor = None,
                return_attention_weights: bool = False):
        r"""Runs the layer.

        Args:
            x (torch.Tensor): Node features :math:`(N, C)`.
            edge_index (torch.Tensor): Edges :math:`(2, E)`, messages flow
                from ``edge_index[0]`` to ``edge_index[1]``.
            rel (torch.Tensor): Per-edge relation vectors :math:`(E, C)`,
                or, when ``edge_type`` is given, a relation table
                :math:`(R, C)`. They need not be normalised.
            edge_type (torch.Tensor, optional): Relation id per edge
                :math:`(E)`. (default: :obj:`None`)
            return_attention_weights (bool, optional): If :obj:`True`, also
                returns the attention :math:`(E)`. (default: :obj:`False`)
        """
        if edge_type is not None:
            rel = rel[edge_type]
        if rel.size(0) != edge_index.size(1):
            raise ValueError(f"expected one relation vector per edge "
                             f"({edge_index.size(1)}), got {rel.size(0)}")
        if self.normalize:
            rel = normalize_rows(rel)
        if self.fused and isinstance(edge_index, Tensor) and self.aggr == 'add':
            out, alpha = _RelationalAttention.apply(x, rel, self.att,
                                                    edge_index[0], edge_index[1])
        else:
            alpha = softmax((rel @ self.att).view(-1), edge_index[1],
                            num_nodes=x.size(0))
            out = self.propagate(edge_index, x=x, rel=rel, alpha=alpha)
        if self.bias is not None:
            out = out + self.bias
        if return_attention_weights:
            return out, alpha
        return out

    def message(self, x_j: Tensor, rel: Tensor, alpha: Tensor) -> Tensor:
        proj = (x_j * rel).sum(dim=-1, keepdim=True)
        return alpha.view(-1, 1) * (x_j - 2 * proj * rel)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.channels})'
