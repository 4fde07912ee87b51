"""Mowst: a mixture of a weak MLP expert and a strong GNN expert, gated by the MLP's confidence.

For node ``v`` the weak expert gives ``p_v = softmax(z_v)`` from ``x_v`` alone and the strong
expert gives ``p'_v`` from the graph. The *dispersion* of ``p_v`` (how peaked it is) is mapped by
a learnable gate ``G`` to a confidence ``C_v = sigmoid(G(D(p_v))) in [0, 1]``:

- Mowst trains with ``L = mean_v [C_v CE(p_v, y_v) + (1 - C_v) CE(p'_v, y_v)]`` and predicts by
  random gating: use the MLP with probability ``C_v``, else the GNN (:meth:`Mowst.routed_predict`
  runs the GNN only where it is needed);
- Mowst* mixes predictions, ``C_v p_v + (1 - C_v) p'_v`` (see :meth:`Mowst.mixture_proba`).

Dispersions are computed without gradient, as in the reference code: the gate learns *how much*
to trust a given dispersion, the MLP is not pushed to look confident.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

DISPERSIONS = ("variance", "entropy", "variance+entropy")


def dispersion_variance(proba: Tensor) -> Tensor:
    """Normalised variance of each row of ``proba [N, n]``: ``Var_c(p) / Var(e_1)`` in [0, 1].

    Population variance over the n classes; ``Var(e_1) = (n - 1) / n**2`` is the variance of a
    one-hot vector, the most confident prediction. Uniform -> 0, one-hot -> 1.
    """
    n = proba.size(-1)
    return proba.var(dim=-1, unbiased=False) / ((n - 1) / n**2)


def dispersion_entropy(proba: Tensor) -> Tensor:
    """``1 - H(p) / log n`` per row of ``proba [N, n]``, in [0, 1]. Uniform -> 0, one-hot -> 1."""
    # entr(p) = -p log p; the clamp keeps its gradient finite at p = 0 for callers who need one
    entropy = torch.special.entr(proba.clamp_min(1e-12)).sum(dim=-1)
    return (1.0 - entropy / math.log(proba.size(-1))).clamp(0.0, 1.0)


def dispersion(proba: Tensor, kind: str = "variance+entropy") -> Tensor:
    """The dispersion features ``[N, k]`` of ``proba [N, n]`` (k = 1 or 2, columns in [0, 1])."""
    if proba.dim() != 2 or proba.size(-1) < 2:
        raise ValueError(f"proba must be [N, n] class probabilities with n >= 2, got "
                         f"{tuple(proba.shape)}")
    if kind not in DISPERSIONS:
        raise ValueError(f"dispersion must be one of {DISPERSIONS}, got '{kind}'")
    cols = []
    if "variance" in kind:
        cols.append(dispersion_variance(proba))
    if "entropy" in kind:
        cols.append(dispersion_entropy(proba))
    return torch.stack(cols, dim=-1)


class ConfidenceGate(nn.Module):
    """The learnable gate G: dispersion features (and optionally x) -> confidence ``C in [0, 1]``.

    With ``monotone=True`` (default) every weight on a path from a dispersion input to the output
    is kept non-negative (a softplus of a free parameter) and the activations are ReLUs, so ``C``
    never decreases when the MLP gets more confident -- the property the paper's analysis of
    ``C = G o D`` relies on. The reference code uses an unconstrained MLP (``monotone=False``).

    Args:
        num_dispersions: k, the number of dispersion features.
        hidden_channels: gate width (default 64, the weak expert's width in the recipes).
        num_layers: gate depth (default 2).
        num_features: F when the gate also reads the node features, else 0.
        monotone: constrain C to be non-decreasing in each dispersion feature.
        output_bias: initial bias of the last layer (default -6: C ~ 0.0025 for an undecided
            MLP, so a mixture built on a pre-trained GNN starts out as that GNN; see the
            study docs/studies/mowst-selection.md).
    """

    def __init__(self, num_dispersions: int, hidden_channels: int = 64, num_layers: int = 2,
                 num_features: int = 0, monotone: bool = True, output_bias: float = -6.0) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"gate num_layers must be >= 1, got {num_layers}")
        dims = [num_dispersions] + [hidden_channels] * (num_layers - 1) + [1]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(b, a)) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(b)) for b in dims[1:])
        self.feature_lin = nn.Linear(num_features, dims[1], bias=False) if num_features else None
        self.monotone = monotone
        for w in self.weights:
            nn.init.uniform_(w, -1.0 / math.sqrt(w.size(1)), 1.0 / math.sqrt(w.size(1)))
        nn.init.constant_(self.biases[-1], output_bias)

    def forward(self, disp: Tensor, x: Tensor | None = None) -> Tensor:
        """``disp [N, k]`` (and ``x [N, F]``) -> confidence ``[N]``."""
        k = self.weights[0].size(1)
        if disp.dim() != 2 or disp.size(1) != k:
            raise ValueError(f"disp must be [N, {k}] dispersion features, got "
                             f"{tuple(disp.shape)}")
        h = disp
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            w = nn.functional.softplus(w) if self.monotone else w
            h = nn.functional.linear(h, w, b)
            if i == 0 and self.feature_lin is not None:
                if x is None:
                    raise ValueError("this gate reads node features: pass x")
                h = h + self.feature_lin(x)
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return torch.sigmoid(h.squeeze(-1))


class MowstOutput(NamedTuple):
    """Both experts' logits ``[N, C]`` and the confidence ``[N]`` of the weak one."""

    weak_logits: Tensor
    strong_logits: Tensor
    confidence: Tensor


class RoutedPrediction(NamedTuple):
    """Class probabilities ``[m, C]`` of routed inference at ``m`` query nodes and what it cost.

    ``to_weak [m]`` marks nodes answered by the MLP; the GNN read the features of
    ``nodes_computed`` nodes and computed ``messages_computed`` messages (edges summed over its
    layers) of the ``messages_full`` a full-graph pass computes.
    """

    proba: Tensor
    to_weak: Tensor
    nodes_computed: int
    messages_computed: int
    messages_full: int

    @property
    def messages_saved(self) -> float:
        """Share of a full-graph pass's messages the routed GNN did not compute."""
        return 1.0 - self.messages_computed / max(self.messages_full, 1)


def check_graph(x: Tensor, adj: Tensor, y: Tensor | None = None,
                num_classes: int | None = None) -> None:
    """Raise ``ValueError`` naming the problem unless ``x``, ``adj`` (and ``y``) form a valid graph.

    ``x`` must be a finite float ``[N, F]`` with N >= 1; ``adj`` an integer ``edge_index [2, E]``
    with entries in ``[0, N)`` or a square CSR ``[N, N]``; ``y`` integer ``[N]`` in
    ``[0, num_classes)``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"x must be [num_nodes, num_features], got shape {tuple(x.shape)}")
    n = x.size(0)
    if n == 0:
        raise ValueError("empty graph: x has 0 nodes")
    if not torch.is_floating_point(x) or not torch.isfinite(x).all():
        raise ValueError("x must be a finite floating-point tensor (found NaN/inf or ints)")
    check_adjacency(adj, n)
    if y is not None:
        if y.dim() != 1 or y.size(0) != n:
            raise ValueError(f"labels y must be [{n}] to match x's {n} nodes, "
                             f"got shape {tuple(y.shape)}")
        if torch.is_floating_point(y):
            raise ValueError("labels y must be integer class ids")
        if num_classes is not None and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise ValueError(f"labels must lie in [0, {num_classes}), got "
                             f"[{int(y.min())}, {int(y.max())}]")


def check_adjacency(adj: Tensor, num_nodes: int, ids: bool = True) -> None:
    """Raise ``ValueError`` unless ``adj`` is a graph on ``num_nodes`` nodes.

    ``adj``: an integer ``edge_index [2, E]`` or a square CSR ``adj_t [N, N]``. With ``ids``
    (default) every stored node id is checked to lie in ``[0, N)`` and CSR row pointers to be
    consistent, O(N + E): torch builds and multiplies sparse tensors without these checks, so
    an id past the end reads (and writes) outside the arrays, and a negative one wraps around.
    """
    if not isinstance(adj, Tensor):
        raise TypeError(f"adj must be a torch edge_index or CSR tensor, got {type(adj).__name__}")
    n = num_nodes
    if adj.layout == torch.sparse_csr:
        if tuple(adj.shape) != (n, n):
            raise ValueError(f"adj_t must be [{n}, {n}] for {n} nodes, got {tuple(adj.shape)}")
        if not ids:
            return
        crow, col = adj.crow_indices(), adj.col_indices()
        if int(crow[0]) != 0 or int(crow[-1]) != col.numel() or bool((crow.diff() < 0).any()):
            raise ValueError("adj_t has inconsistent row pointers (crow_indices must rise from 0 "
                             f"to the {col.numel()} stored entries)")
        if col.numel() and (int(col.min()) < 0 or int(col.max()) >= n):
            raise ValueError(f"adj_t has column ids in [{int(col.min())}, {int(col.max())}] but "
                             f"the graph has {n} nodes (valid: 0..{n - 1})")
        return
    if adj.dim() != 2 or adj.size(0) != 2 or torch.is_floating_point(adj) or \
            adj.dtype == torch.bool:
        raise ValueError(f"edge_index must be an integer [2, E], got {adj.dtype} "
                         f"{tuple(adj.shape)}")
    if ids and adj.numel() and (int(adj.min()) < 0 or int(adj.max()) >= n):
        raise ValueError(f"edge_index has node ids in [{int(adj.min())}, {int(adj.max())}]"
                         f" but the graph has {n} nodes (valid: 0..{n - 1})")


def check_node_ids(nodes: Tensor, num_nodes: int) -> None:
    """Raise ``ValueError`` unless ``nodes`` is a 1-D integer tensor of ids in [0, num_nodes)."""
    if nodes.dim() != 1 or torch.is_floating_point(nodes):
        raise ValueError(f"nodes must be a 1-D tensor of node ids, got {tuple(nodes.shape)}")
    if nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) >= num_nodes):
        raise ValueError(f"nodes has ids in [{int(nodes.min())}, {int(nodes.max())}] but the "
                         f"graph has {num_nodes} nodes (valid: 0..{num_nodes - 1})")


def _row_of_each_entry(adj_t: Tensor) -> Tensor:
    """The row (target) id of every stored entry of a CSR ``adj_t``, in storage order."""
    crow = adj_t.crow_indices()
    return torch.repeat_interleave(torch.arange(crow.numel() - 1), crow.diff())


def _edges(adj: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    """(source, target, values) of an ``edge_index`` or a CSR ``adj_t`` (rows = targets)."""
    if adj.layout == torch.sparse_csr:
        return adj.col_indices(), _row_of_each_entry(adj), adj.values()
    return adj[0], adj[1], None


def receptive_field(adj: Tensor, seeds: Tensor, hops: int, num_nodes: int
                    ) -> tuple[Tensor, Tensor, Tensor, int]:
    """The subgraph a ``hops``-deep GNN needs to compute its output at ``seeds`` exactly.

    Keeps every edge whose target lies within ``hops - 1`` hops of a seed (so those nodes see
    their whole neighbourhood) and the nodes these edges touch.

    Returns:
        ``(nodes [n], sub_adj, seed_positions [len(seeds)], num_edges_kept)``; ``sub_adj`` has the
        input's format (``edge_index`` or CSR), relabelled to positions in ``nodes`` (the input
        itself when the field is the whole graph, as for most seeds on a small-world graph).
    """
    if hops < 1:
        raise ValueError(f"hops must be >= 1, got {hops}")
    check_adjacency(adj, num_nodes)
    check_node_ids(seeds, num_nodes)
    source, target, values = _edges(adj)
    inner = torch.zeros(num_nodes, dtype=torch.bool)
    inner[seeds] = True
    for _ in range(hops - 1):
        inner.index_fill_(0, source[inner[target]], True)
    keep = inner[target]
    touched = inner.clone().index_fill_(0, source[keep], True)
    if bool(touched.all()):  # the whole graph: computing every message is no more work
        return torch.arange(num_nodes), adj, seeds, int(target.numel())
    nodes = touched.nonzero().squeeze(-1)
    position = torch.full((num_nodes,), -1, dtype=torch.long)
    position[nodes] = torch.arange(nodes.numel())
    sub_source, sub_target = position[source[keep]], position[target[keep]]
    n = nodes.numel()
    if values is None:
        sub_adj = torch.stack([sub_source, sub_target])
    else:  # CSR rows stay sorted: relabelling keeps the order of the targets
        crow = torch.zeros(n + 1, dtype=torch.long)
        crow[1:] = torch.bincount(sub_target, minlength=n).cumsum(0)
        sub_adj = torch.sparse_csr_tensor(crow, sub_source, values[keep], (n, n))
    return nodes, sub_adj, position[seeds], int(keep.sum())


class Mowst(nn.Module):
    """Mixture of a weak (MLP) and a strong (GNN) expert with a learnable confidence gate.

    Args:
        weak: ``weak(x) -> logits [N, C]``, e.g. :class:`paperlab.mowst.experts.MLP`.
        strong: ``strong(x, adj) -> logits [N, C]`` with ``adj`` an ``edge_index`` or CSR
            ``adj_t``; any PyG-style module (ready-made: GCN, GraphSAGE, GAT, GIN).
        num_classes: C.
        dispersion: ``"variance"``, ``"entropy"`` or ``"variance+entropy"`` (default).
        gate_uses_features: the gate also reads ``x_v`` (then pass ``num_features``).
        num_features: F, needed only with ``gate_uses_features``.
        gate_hidden: width of G (default 64).
        gate_layers: depth of G (default 2).
        monotone_gate: keep C non-decreasing in the dispersion (see :class:`ConfidenceGate`).
        gate_output_bias: initial bias of the gate's output (default -6: C ~ 0.0025 while the
            MLP is undecided, so the mixture starts as the GNN; the earlier default was -2).

    Mowst's loss mixes the experts' *losses*; Mowst* mixes their *probabilities* (not logits,
    see :meth:`mixture_proba`). The state dict holds the gate as well as both experts.
    """

    def __init__(self, weak: nn.Module, strong: nn.Module, num_classes: int,
                 dispersion: str = "variance+entropy", gate_uses_features: bool = False,
                 num_features: int | None = None, gate_hidden: int = 64, gate_layers: int = 2,
                 monotone_gate: bool = True, gate_output_bias: float = -6.0) -> None:
        super().__init__()
        if dispersion not in DISPERSIONS:
            raise ValueError(f"dispersion must be one of {DISPERSIONS}, got '{dispersion}'")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if gate_uses_features and not num_features:
            raise ValueError("gate_uses_features=True needs num_features (the size F of x)")
        self.weak, self.strong = weak, strong
        self.num_classes = num_classes
        self.dispersion = dispersion
        self.gate_uses_features = gate_uses_features
        self.gate = ConfidenceGate(2 if dispersion == "variance+entropy" else 1, gate_hidden,
                                   gate_layers, num_features if gate_uses_features else 0,
                                   monotone_gate, gate_output_bias)

    def confidence(self, weak_logits: Tensor, x: Tensor | None = None) -> Tensor:
        """``C [N]`` from the weak expert's logits (dispersion taken without gradient)."""
        with torch.no_grad():
            disp = dispersion(torch.softmax(weak_logits, dim=-1), self.dispersion)
        return self.gate(disp, x if self.gate_uses_features else None)

    def forward(self, x: Tensor, adj: Tensor) -> MowstOutput:
        """Run both experts and the gate on every node of ``x [N, F]`` and the graph
        (checked by :func:`check_graph`: ``ValueError`` names a malformed input)."""
        check_graph(x, adj)
        weak_logits, strong_logits = self.weak(x), self.strong(x, adj)
        shapes = {tuple(weak_logits.shape), tuple(strong_logits.shape), (x.size(0),
                                                                         self.num_classes)}
        if len(shapes) > 1:
            raise ValueError(f"both experts must give [{x.size(0)}, {self.num_classes}] logits "
                             f"(num_classes={self.num_classes}); the weak one gave "
                             f"{tuple(weak_logits.shape)}, the strong one "
                             f"{tuple(strong_logits.shape)}")
        return MowstOutput(weak_logits, strong_logits, self.confidence(weak_logits, x))

    @staticmethod
    def mixture_proba(out: MowstOutput) -> Tensor:
        """Mowst*'s prediction ``C p + (1 - C) p'`` ``[N, C]``.

        Probabilities, not logits, are mixed (the paper's choice; the reference code mixes
        logits): the mixture is then a proper distribution, C = 1 gives exactly the MLP's
        prediction and C = 0 the GNN's, training (:func:`mowst_star_loss`) and inference use the
        same quantity, and it is also the expectation of Mowst's random-gating prediction.
        """
        c = out.confidence.unsqueeze(-1)
        weak, strong = torch.softmax(out.weak_logits, -1), torch.softmax(out.strong_logits, -1)
        return c * weak + (1 - c) * strong

    @torch.no_grad()
    def routed_predict(self, x: Tensor, adj: Tensor, nodes: Tensor | None = None,
                       to_weak: Tensor | None = None, generator: torch.Generator | None = None,
                       hops: int | None = None, prepared: bool = False) -> RoutedPrediction:
        """Mowst's random-gating inference, running the GNN only where it is used.

        Each query node goes to the MLP with probability ``C_v`` (or as ``to_weak`` says); the
        GNN then computes its output at the other nodes only, which equals the full-graph output
        there: layer by layer when the strong expert has ``forward_at`` (the ready-made GNNs,
        :meth:`~paperlab.mowst.experts.GNN.forward_at`), else by running it on the
        :func:`receptive_field` subgraph.

        Args:
            nodes: query node ids ``[m]`` (default: every node, ``m = N``); the MLP and the gate
                then run on these nodes only -- online serving of a few nodes at a time.
            to_weak: ``[m]`` bool, forces the routing instead of drawing it from ``C``.
            hops: receptive-field depth for a strong expert without ``forward_at``; default its
                ``receptive_hops``.
            prepared: ``adj`` is the strong expert's ``prepare(adj, N)`` output, computed once
                for many queries (layer-wise experts only); ``prepare`` checked its node ids,
                so only the shapes are checked here (an O(E) scan would dominate a query).
        """
        layerwise = hasattr(self.strong, "forward_at")
        if prepared:
            if x.dim() != 2 or not torch.is_floating_point(x):
                raise ValueError(f"x must be a float [num_nodes, num_features], got {x.dtype} "
                                 f"{tuple(x.shape)}")
            check_adjacency(adj, x.size(0), ids=False)
        else:
            check_graph(x, adj)
        if hops is not None and hops < 1:
            raise ValueError(f"hops must be >= 1, got {hops}")
        if prepared and not layerwise:
            raise ValueError("prepared=True needs a strong expert with forward_at")
        if not layerwise and hops is None:
            hops = getattr(self.strong, "receptive_hops", None)
            if hops is None:
                raise ValueError("the strong expert has neither forward_at nor a receptive_hops "
                                 "attribute: pass hops")
        was_training = self.training
        if was_training:  # toggling walks every submodule: ~0.3 ms, more than a query's MLP
            self.eval()
        n = x.size(0)
        if nodes is None:
            nodes, xq = torch.arange(n), x
        else:
            check_node_ids(nodes, n)
            xq = x.index_select(0, nodes)
        weak_logits = self.weak(xq)
        if to_weak is None:
            c = self.confidence(weak_logits, xq)
            to_weak = torch.rand(nodes.numel(), generator=generator) < c
        elif to_weak.shape != nodes.shape or to_weak.dtype != torch.bool:
            raise ValueError(f"to_weak must be [{nodes.numel()}] bools (one flag per query "
                             f"node), got {to_weak.dtype} {tuple(to_weak.shape)}")
        proba = torch.softmax(weak_logits, -1)
        rows = (~to_weak).nonzero().squeeze(-1)  # positions of the queries the GNN answers
        seeds = nodes[rows]
        num_edges = adj.values().numel() if adj.layout == torch.sparse_csr else adj.size(1)
        nodes_computed = messages = 0
        full = (hops or 1) * num_edges
        if seeds.numel() and layerwise:
            local = self.strong.forward_at(x, adj, seeds, prepared=prepared)
            nodes_computed, messages, full = local.nodes_read, local.messages, local.messages_full
            proba[rows] = torch.softmax(local.logits, -1)
        elif seeds.numel():
            field, sub_adj, pos, kept = receptive_field(adj, seeds, hops, n)
            nodes_computed, messages = field.numel(), hops * kept
            proba[rows] = torch.softmax(self.strong(x[field], sub_adj)[pos], -1)
        if was_training:
            self.train()
        return RoutedPrediction(proba, to_weak, nodes_computed, messages, full)
