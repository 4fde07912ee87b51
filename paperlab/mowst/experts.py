"""Ready-made experts: the weak MLP and four strong GNN backbones (GCN, GraphSAGE, GAT, GIN).

Every expert maps node features ``x [N, F]`` (and, for GNNs, a graph) to class logits
``[N, C]``. A graph is either an ``edge_index [2, E]`` (row 0 = source, row 1 = target) or a
square ``torch.sparse_csr`` adjacency ``adj_t`` whose rows are the targets; on CPU the CSR
form is 5-15x faster for the same result. Hidden layers use BatchNorm, ReLU and dropout as in
the reference recipes.

:meth:`GNN.forward_at` computes the output at chosen nodes only, each layer only where the next
one reads it; :meth:`paperlab.mowst.mowst.Mowst.routed_predict` uses it to run the GNN only for
the nodes routed to it. A GNN also advertises ``receptive_hops``, how many hops of in-neighbours
its output at a node can depend on, for the generic subgraph path used with other modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, GINConv, SAGEConv
from torch_geometric.utils import to_torch_csr_tensor

from paperlab.mowst.mowst import _row_of_each_entry, check_adjacency, check_graph, check_node_ids


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
        check_features(x, self.lins[0].in_features)
        # zip over the ModuleLists, not self.lins[:-1]: slicing builds a new ModuleList, 11 us
        # of a 60 us single-node forward when serving one query at a time
        for lin, norm in zip(self.lins, self.norms, strict=False):
            x = nn.functional.dropout(torch.relu(norm(lin(x))), self.dropout, self.training)
        return self.lins[-1](x)


def check_features(x: Tensor, num_features: int) -> None:
    """Raise ``ValueError`` unless ``x`` is a float ``[N, num_features]`` (shape and dtype only:
    O(1), so a single-node query pays nothing; :func:`check_graph` also checks finiteness)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.size(1) != num_features or not torch.is_floating_point(x):
        raise ValueError(f"x must be a float [num_nodes, {num_features}] (the expert's "
                         f"in_channels), got {x.dtype} {tuple(x.shape)}")


def as_adj_t(adj: Tensor, num_nodes: int) -> Tensor:
    """The CSR ``adj_t [N, N]`` (rows = targets) of an ``edge_index [2, E]`` or of a CSR itself.

    Raises ``ValueError`` (:func:`~paperlab.mowst.mowst.check_adjacency`) for node ids outside
    ``[0, num_nodes)``: the CSR tensor torch builds from them would be read out of bounds.
    """
    check_adjacency(adj, num_nodes)
    if adj.layout == torch.sparse_csr:
        return adj
    return to_torch_csr_tensor(adj.flip(0), size=(num_nodes, num_nodes))


def with_self_loops(adj: Tensor, num_nodes: int) -> Tensor:
    """CSR ``adj_t`` of ``adj`` with a self-loop (weight 1) appended to every row.

    O(N + E), no sort: the loop goes last in its row (row order does not matter to a sparse
    product). Like PyG's ``add_self_loops``, an existing self-loop is not merged.
    """
    adj_t = as_adj_t(adj, num_nodes)
    crow, col = adj_t.crow_indices(), adj_t.col_indices()
    row = _row_of_each_entry(adj_t)
    nodes = torch.arange(num_nodes)
    new_crow = crow + torch.arange(num_nodes + 1)
    new_col = torch.empty(col.numel() + num_nodes, dtype=col.dtype)
    new_val = torch.ones(col.numel() + num_nodes, dtype=adj_t.values().dtype)
    old = torch.arange(col.numel()) + row  # each row moves right by the loops above it
    new_col[old], new_val[old] = col, adj_t.values()
    new_col[new_crow[1:] - 1] = nodes
    return torch.sparse_csr_tensor(new_crow, new_col, new_val, (num_nodes, num_nodes))


def gcn_adjacency(adj: Tensor, num_nodes: int) -> Tensor:
    """GCN's ``D^-1/2 (A + I) D^-1/2`` as a CSR ``adj_t`` (PyG's ``gcn_norm``, O(N + E)).

    Computed once per forward pass and shared by the layers (PyG's ``GCNConv`` redoes it in every
    layer), and on the whole graph, so :meth:`GNN.forward_at` can slice rows of it and still use
    every node's full degree.
    """
    adj_t = with_self_loops(adj, num_nodes)
    crow, col, val = adj_t.crow_indices(), adj_t.col_indices(), adj_t.values()
    row = _row_of_each_entry(adj_t)
    deg = torch.zeros(num_nodes, dtype=val.dtype).index_add_(0, row, val)
    inv_sqrt = deg.pow(-0.5).masked_fill_(deg == 0, 0.0)
    return torch.sparse_csr_tensor(crow, col, inv_sqrt[row] * val * inv_sqrt[col], adj_t.shape)


def row_block(adj_t: Tensor, rows: Tensor, all_from: float | None = None
              ) -> tuple[Tensor, Tensor]:
    """Rows ``rows [m]`` (sorted node ids) of a CSR ``adj_t [N, N]`` as a block over their sources.

    Returns ``(block [m, s], sources [s])``: ``sources`` are the sorted ids of ``rows`` and of
    their in-neighbours, and ``block``'s column j stands for node ``sources[j]``. When ``rows`` is
    every node the block is ``adj_t`` itself; with ``all_from``, the sources become every node
    (columns keep their ids) once there would be at least that many. Costs O(m + edges into
    ``rows``) for small blocks, O(N + edges) otherwise: vectorised NumPy gathers on the raw CSR
    arrays (SciPy's row slicing re-validated the whole matrix on every call, 1.5 ms on
    tolokers for a single row; a chain of torch index ops was slower still).
    """
    n = adj_t.size(0)
    check_node_ids(rows, n)
    if rows.numel() == n:
        return adj_t, rows
    crow = adj_t.crow_indices().numpy()
    r = rows.numpy()
    starts = crow[r]
    counts = crow[r + 1] - starts
    indptr = np.zeros(r.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    entries = np.repeat(starts - indptr[:-1], counts) + np.arange(indptr[-1])  # CSR positions
    cols = adj_t.col_indices().numpy()[entries]
    if 8 * (cols.size + r.size) < n:  # a few rows: sort their ids rather than mark N flags
        sources = np.union1d(r, cols)
    else:
        used = np.zeros(n, dtype=bool)
        used[r] = True
        used[cols] = True
        sources = np.flatnonzero(used)
    if all_from is not None and sources.size >= all_from:
        sources = np.arange(n)
    if sources.size < n:  # relabel the columns to positions in sources
        cols = np.searchsorted(sources, cols)
    block = torch.sparse_csr_tensor(torch.from_numpy(indptr), torch.from_numpy(cols),
                                    torch.from_numpy(adj_t.values().numpy()[entries]),
                                    (r.size, sources.size))
    return block, torch.from_numpy(sources)


FULL_LAYER_SHARE = 0.5  # forward_at runs a layer on every node once it needs this share of them


class LocalOutput(NamedTuple):
    """What :meth:`GNN.forward_at` computed: ``logits [m, C]`` at the requested nodes, how many
    nodes' features it read, and the messages (edges summed over layers) it computed out of the
    ``messages_full`` of a full-graph pass."""

    logits: Tensor
    nodes_read: int
    messages: int
    messages_full: int


class GNN(nn.Module):
    """A stack of message-passing layers with BatchNorm, ReLU and dropout between them.

    Args:
        conv: ``conv(in_channels, out_channels, last) -> layer`` called once per layer.
        in_channels: node feature size.
        hidden_channels: width of the hidden layers.
        out_channels: number of classes.
        num_layers: number of message-passing layers (>= 1, default 2).
        dropout: dropout probability after each hidden layer (default 0.5).
        extra_hops: hops beyond ``num_layers`` that the output depends on when the module runs
            on a subgraph (1 for GCN, whose normalisation reads every source node's degree).
        adjacency: ``adjacency(adj, N) -> adj_t`` applied once per forward pass before the
            layers (GCN: :func:`gcn_adjacency`); ``None`` passes ``adj`` through.
        pair_input: the layers take ``(x_source, x_target)`` pairs on bipartite blocks (SAGE,
            GAT, GIN); ``False`` for layers that take one ``x`` and a rectangular ``adj_t`` (GCN).
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
        adjacency: Callable[[Tensor, int], Tensor] | None = None,
        pair_input: bool = True,
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
        self.adjacency = adjacency
        self.pair_input = pair_input
        self.in_channels = in_channels

    def _between_layers(self, i: int, h: Tensor) -> Tensor:
        if i == len(self.convs) - 1:
            return h
        return nn.functional.dropout(torch.relu(self.norms[i](h)), self.dropout, self.training)

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        """``x [N, F]`` and ``edge_index [2, E]`` or CSR ``adj_t [N, N]`` -> logits ``[N, C]``.

        ``ValueError`` names a malformed input (:func:`~paperlab.mowst.mowst.check_graph`).
        """
        check_features(x, self.in_channels)
        check_graph(x, adj)
        if self.adjacency is not None:
            adj = self.adjacency(adj, x.size(0))
        for i, conv in enumerate(self.convs):
            x = self._between_layers(i, conv(x, adj))
        return x

    def prepare(self, adj: Tensor, num_nodes: int) -> Tensor:
        """The CSR ``adj_t [N, N]`` the layers read (GCN: normalised; GAT: with self-loops).

        Serving many small queries, compute it once and pass it to :meth:`forward_at` with
        ``prepared=True``: :meth:`forward` redoes this O(N + E) step on every call.
        """
        return (self.adjacency or as_adj_t)(adj, num_nodes)

    def forward_at(self, x: Tensor, adj: Tensor, nodes: Tensor,
                   prepared: bool = False) -> LocalOutput:
        """Logits at ``nodes [m]`` (node ids) only: ``forward(x, adj)[nodes]``, layer by layer.

        The last layer runs on ``nodes``, the one before on them and their in-neighbours, and
        so on outwards (each layer on a :func:`row_block` of the adjacency), so a node far from
        ``nodes`` costs nothing. A layer whose nodes would be at least ``FULL_LAYER_SHARE`` of
        the graph runs on all of it: slicing and gathering would cost more than they save.
        ``prepared=True``: ``adj`` is already :meth:`prepare`'s output.
        """
        check_features(x, self.in_channels)
        n = x.size(0)
        check_node_ids(nodes, n)
        if prepared:  # prepare() checked the node ids; a query only pays for the shape check
            check_adjacency(adj, n, ids=False)
        else:  # preparing is O(N + E) anyway
            check_graph(x, adj)
        adj_t = adj if prepared else self.prepare(adj, n)
        wide = FULL_LAYER_SHARE * n  # a layer needing this many nodes runs on all of them
        blocks, frontiers = [], [torch.arange(n) if nodes.numel() >= wide else nodes.sort().values]
        for _ in self.convs:
            block, sources = row_block(adj_t, frontiers[-1], all_from=wide)
            blocks.append(block)
            frontiers.append(sources)
        # index_select, not x[ids]: advanced indexing copied rows ~5x slower here
        h = x if frontiers[-1].numel() == n else x.index_select(0, frontiers[-1])
        position = torch.empty(n, dtype=torch.long)
        for i, conv in enumerate(self.convs):
            block, sources, targets = blocks[-1 - i], frontiers[-1 - i], frontiers[-2 - i]
            if self.pair_input:
                if targets.numel() == sources.numel():
                    h = conv((h, h), block)
                else:
                    position[sources] = torch.arange(sources.numel())
                    h = conv((h, h.index_select(0, position[targets])), block)
            else:
                h = conv(h, block)
            h = self._between_layers(i, h)
        position[frontiers[0]] = torch.arange(frontiers[0].numel())
        h = h.index_select(0, position[nodes])  # back to the caller's nodes, in their order
        messages = sum(int(b.values().numel()) for b in blocks)
        full = len(self.convs) * adj_t.values().numel()
        return LocalOutput(h, frontiers[-1].numel(), messages, full)


def GCN(in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
        dropout: float = 0.5) -> GNN:
    """Graph convolutional network (Kipf & Welling) with self-loops and symmetric normalisation."""
    return GNN(lambda a, b, last: GCNConv(a, b, normalize=False), in_channels, hidden_channels,
               out_channels, num_layers, dropout, extra_hops=1, adjacency=gcn_adjacency,
               pair_input=False)


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

    def conv(a: int, b: int, last: bool) -> nn.Module:  # self-loops come with the adjacency
        if last:
            return GATConv(a, b, heads=1, add_self_loops=False)
        return GATConv(a, b // heads, heads=heads, add_self_loops=False)

    return GNN(conv, in_channels, hidden_channels, out_channels, num_layers, dropout,
               adjacency=with_self_loops)


def GIN(in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
        dropout: float = 0.5) -> GNN:
    """Graph isomorphism network: sum aggregation followed by a 2-layer MLP per layer."""

    def conv(a: int, b: int, last: bool) -> nn.Module:
        return GINConv(nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, b)))

    return GNN(conv, in_channels, hidden_channels, out_channels, num_layers, dropout)


STRONG_EXPERTS: dict[str, Callable[..., GNN]] = {
    "gcn": GCN, "sage": GraphSAGE, "gat": GAT, "gin": GIN,
}
