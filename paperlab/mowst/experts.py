"""Ready-made experts: the weak MLP and four strong GNN backbones (GCN, GraphSAGE, GAT, GIN).

Every expert maps node features ``x [N, F]`` (and, for GNNs, a graph) to class logits
``[N, C]``. A graph is either an ``edge_index [2, E]`` (row 0 = source, row 1 = target) or a
square ``torch.sparse_csr`` adjacency ``adj_t`` whose rows are the targets; on CPU the CSR
form is 5-15x faster for the same result. Hidden layers use BatchNorm, ReLU and dropout as in
the reference recipes.

A GNN advertises ``receptive_hops``: how many hops of in-neighbours its output at a node can
depend on. :meth:`paperlab.mowst.mowst.Mowst.routed_predict` uses it to run the GNN only on the
receptive field of the nodes routed to it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, GINConv, SAGEConv


class MLP(nn.Module):
    """The weak expert: an MLP on each node's own features.

    Args:
        in_channels: feature size F.
        hidden_channels: width of the hidden layers (default 64).
        out_channels: number of classes C.
        num_layers: number of linear layers (>= 1, default 2).
        dropout: dropout probability after each hidden layer (default 0.5).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.norms = nn.ModuleList(nn.BatchNorm1d(d) for d in dims[1:-1])
        self.dropout = dropout

    def forward(self, x: Tensor, adj: object = None) -> Tensor:
        """``x [N, F]`` -> logits ``[N, C]``; ``adj`` is ignored (a drop-in for a GNN)."""
        for lin, norm in zip(self.lins[:-1], self.norms, strict=True):
            x = nn.functional.dropout(torch.relu(norm(lin(x))), self.dropout, self.training)
        return self.lins[-1](x)


class GNN(nn.Module):
    """A stack of message-passing layers with BatchNorm, ReLU and dropout between them.

    Args:
        conv: ``conv(in_channels, out_channels, last) -> layer`` called once per layer.
        in_channels, hidden_channels, out_channels: feature size, width, number of classes.
        num_layers: number of message-passing layers (>= 1, default 2).
        dropout: dropout probability after each hidden layer (default 0.5).
        extra_hops: hops beyond ``num_layers`` that the output depends on (1 for GCN, whose
            symmetric normalisation reads the degree of every source node).
    """

    def __init__(
        self,
        conv: Callable[[int, int, bool], nn.Module],
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int = 2,
        dropout: float = 0.5,
        extra_hops: int = 0,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        last = num_layers - 1
        pairs = zip(dims[:-1], dims[1:], strict=True)
        self.convs = nn.ModuleList(conv(a, b, i == last) for i, (a, b) in enumerate(pairs))
        self.norms = nn.ModuleList(nn.BatchNorm1d(d) for d in dims[1:-1])
        self.dropout = dropout
        self.receptive_hops = num_layers + extra_hops

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        """``x [N, F]`` and ``edge_index [2, E]`` or CSR ``adj_t [N, N]`` -> logits ``[N, C]``."""
        for conv, norm in zip(self.convs[:-1], self.norms, strict=True):
            x = conv(x, adj)
            x = nn.functional.dropout(torch.relu(norm(x)), self.dropout, self.training)
        return self.convs[-1](x, adj)


def GCN(in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
        dropout: float = 0.5) -> GNN:
    """Graph convolutional network (Kipf & Welling) with self-loops and symmetric normalisation."""
    return GNN(lambda a, b, last: GCNConv(a, b), in_channels, hidden_channels, out_channels,
               num_layers, dropout, extra_hops=1)


def GraphSAGE(in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
              dropout: float = 0.5) -> GNN:
    """GraphSAGE with mean aggregation (full neighbourhood, no sampling)."""
    return GNN(lambda a, b, last: SAGEConv(a, b), in_channels, hidden_channels, out_channels,
               num_layers, dropout)


def GAT(in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
        dropout: float = 0.5, heads: int = 4) -> GNN:
    """Graph attention network: ``heads`` concatenated heads per hidden layer, one at the output.

    ``hidden_channels`` is the total width of a hidden layer and must divide by ``heads``.
    """
    if hidden_channels % heads:
        raise ValueError(f"hidden_channels={hidden_channels} must be divisible by heads={heads}")

    def conv(a: int, b: int, last: bool) -> nn.Module:
        return GATConv(a, b, heads=1) if last else GATConv(a, b // heads, heads=heads)

    return GNN(conv, in_channels, hidden_channels, out_channels, num_layers, dropout)


def GIN(in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
        dropout: float = 0.5) -> GNN:
    """Graph isomorphism network: sum aggregation followed by a 2-layer MLP per layer."""

    def conv(a: int, b: int, last: bool) -> nn.Module:
        return GINConv(nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, b)))

    return GNN(conv, in_channels, hidden_channels, out_channels, num_layers, dropout)


STRONG_EXPERTS: dict[str, Callable[..., GNN]] = {
    "gcn": GCN, "sage": GraphSAGE, "gat": GAT, "gin": GIN,
}
