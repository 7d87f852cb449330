"""The NAS-Bench-201 cell search space: one immutable `Cell` type and everything derived from it.

A cell is a 4-node DAG (node 0 = cell input, node 3 = cell output). Each of its six edges i→j (i<j) carries
one of five operations. Edges are kept in NB201's arch-string order::

    e0: 0→1   e1: 0→2   e2: 1→2   e3: 0→3   e4: 1→3   e5: 2→3

and printed as ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hwdiffnas.errors import UserError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""Operation names; a cell stores each edge's op as an index into this tuple."""
OP_INDEX: dict[str, int] = {name: i for i, name in enumerate(OPS)}
NONE, SKIP, CONV1, CONV3, POOL = range(5)

EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""(source node, target node) of each edge, in arch-string order."""
NUM_EDGES = len(EDGES)
NUM_NODES = 4
NUM_CELLS = len(OPS) ** NUM_EDGES  # 15,625

# --- the 8-node graph encoding used by the generator --------------------------------------------------
# Nodes: 0 = input, 1..6 = the six edges' operations (op-on-node form), 7 = output.
# Node classes: 0..4 = the five ops, 5 = input, 6 = output.
GRAPH_NODES = NUM_EDGES + 2
GRAPH_CLASSES = len(OPS) + 2
INPUT_CLASS, OUTPUT_CLASS = len(OPS), len(OPS) + 1


def _graph_adjacency() -> np.ndarray:
    adj = np.zeros((GRAPH_NODES, GRAPH_NODES), dtype=np.int64)
    for e, (src, dst) in enumerate(EDGES):
        op_node = e + 1
        if src == 0:
            adj[0, op_node] = 1
        for f, (src2, _dst2) in enumerate(EDGES):
            if src2 == dst:
                adj[op_node, f + 1] = 1
        if dst == NUM_NODES - 1:
            adj[op_node, GRAPH_NODES - 1] = 1
    return adj


GRAPH_ADJACENCY: np.ndarray = _graph_adjacency()
"""Fixed (8, 8) directed adjacency of the op-on-node graph; identical for every cell."""
GRAPH_ADJACENCY.setflags(write=False)

_ARCH_RE = re.compile(r"^\|(.+)\|$")


@dataclass(frozen=True, order=True)
class Cell:
    """An NB201 cell: the op index of each of the six edges, in arch-string order."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        ops = tuple(int(o) for o in self.ops)
        if len(ops) != NUM_EDGES:
            raise UserError(f"a cell has {NUM_EDGES} edges, got {len(ops)} ops: {ops}")
        bad = [o for o in ops if not 0 <= o < len(OPS)]
        if bad:
            raise UserError(f"op index {bad[0]} out of range 0..{len(OPS) - 1} ({', '.join(OPS)})")
        object.__setattr__(self, "ops", ops)

    # --- construction --------------------------------------------------------------------------------
    @classmethod
    def from_str(cls, arch: str) -> Cell:
        """Parse an NB201 arch string such as ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|``."""
        text = arch.strip()
        nodes = text.split("+")
        if len(nodes) != NUM_NODES - 1 or not all(_ARCH_RE.match(n) for n in nodes):
            raise UserError(
                f"malformed arch string {arch!r}: expected 3 '+'-separated groups like "
                "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'"
            )
        ops: list[int] = []
        for target, group in enumerate(nodes, start=1):
            items = _ARCH_RE.match(group).group(1).split("|")  # type: ignore[union-attr]
            if len(items) != target:
                raise UserError(f"malformed arch string {arch!r}: node {target} needs {target} inputs")
            for expected_src, item in enumerate(items):
                name, sep, src = item.partition("~")
                if not sep or src != str(expected_src):
                    raise UserError(
                        f"malformed arch string {arch!r}: edge {item!r} should read 'op~{expected_src}'"
                    )
                if name not in OP_INDEX:
                    raise UserError(f"unknown op {name!r} in {arch!r}; known: {', '.join(OPS)}")
                ops.append(OP_INDEX[name])
        return cls(tuple(ops))

    @classmethod
    def from_ops(cls, ops: Sequence[int | str]) -> Cell:
        """Build from six op indices or op names in arch-string edge order."""
        out = []
        for o in ops:
            if isinstance(o, str):
                if o not in OP_INDEX:
                    raise UserError(f"unknown op {o!r}; known: {', '.join(OPS)}")
                out.append(OP_INDEX[o])
            else:
                out.append(int(o))
        return cls(tuple(out))

    @classmethod
    def parse(cls, text: str) -> Cell:
        """Parse an arch string, or six comma-separated op ids/names (``3,3,1,0,3,4``)."""
        text = text.strip()
        if text.startswith("|"):
            return cls.from_str(text)
        parts = [p.strip() for p in text.split(",")]
        if len(parts) == NUM_EDGES:
            return cls.from_ops([int(p) if p.isdigit() else p for p in parts])
        raise UserError(
            f"cannot read cell {text!r}: give an NB201 arch string ('|nor_conv_3x3~0|+|...|') "
            f"or {NUM_EDGES} comma-separated op ids 0..{len(OPS) - 1}"
        )

    @classmethod
    def from_graph(cls, node_classes: Sequence[int]) -> Cell:
        """Decode the 8-node graph encoding; raises `UserError` if it is not a valid cell graph."""
        nc = [int(c) for c in node_classes]
        if len(nc) != GRAPH_NODES or nc[0] != INPUT_CLASS or nc[-1] != OUTPUT_CLASS:
            raise UserError(f"invalid cell graph {nc}: needs input first and output last")
        return cls(tuple(nc[1:-1]))

    # --- views ---------------------------------------------------------------------------------------
    @cached_property
    def arch_str(self) -> str:
        """The NB201 arch string."""
        groups = []
        k = 0
        for target in range(1, NUM_NODES):
            items = []
            for src in range(target):
                items.append(f"{OPS[self.ops[k]]}~{src}")
                k += 1
            groups.append("|" + "|".join(items) + "|")
        return "+".join(groups)

    def __str__(self) -> str:
        return self.arch_str

    @property
    def op_names(self) -> tuple[str, ...]:
        return tuple(OPS[o] for o in self.ops)

    def graph(self) -> tuple[np.ndarray, np.ndarray]:
        """8-node encoding: node classes (8,) and the fixed adjacency (8, 8)."""
        classes = np.array((INPUT_CLASS, *self.ops, OUTPUT_CLASS), dtype=np.int64)
        return classes, GRAPH_ADJACENCY

    def one_hot(self) -> np.ndarray:
        """(6 * 5,) float one-hot of the ops, edge-major."""
        out = np.zeros((NUM_EDGES, len(OPS)), dtype=np.float32)
        out[np.arange(NUM_EDGES), self.ops] = 1.0
        return out.reshape(-1)

    # --- structure -----------------------------------------------------------------------------------
    @cached_property
    def is_connected(self) -> bool:
        """True when a path of non-`none` edges leads from the cell input to the cell output."""
        reach = [True, False, False, False]
        for e, (src, dst) in enumerate(EDGES):
            if self.ops[e] != NONE and reach[src]:
                reach[dst] = True
        return reach[3]

    def live_edges(self) -> tuple[bool, ...]:
        """Edges that carry a signal from the input to the output (non-`none`, on an input→output path)."""
        fwd = [True, False, False, False]
        for e, (src, dst) in enumerate(EDGES):
            if self.ops[e] != NONE and fwd[src]:
                fwd[dst] = True
        bwd = [False, False, False, True]
        for e in reversed(range(NUM_EDGES)):
            src, dst = EDGES[e]
            if self.ops[e] != NONE and bwd[dst]:
                bwd[src] = True
        return tuple(self.ops[e] != NONE and fwd[s] and bwd[d] for e, (s, d) in enumerate(EDGES))

    @cached_property
    def nats_unique_str(self) -> str:
        """NATS-Bench's canonical string (``to_unique_str(consider_zero=True)``).

        Each node's value is written as an expression over the input ``0``: `skip_connect` passes the
        expression through, other ops wrap it as ``(expr)@op``, `none` or an exactly-zero input gives
        ``#``, and a node is the sorted ``+``-join of its incoming terms. Cells with equal strings compute
        the same function up to edges that cannot matter; they form NATS's 6,466 classes.
        """
        values = ["0"]
        k = 0
        for _target in range(1, NUM_NODES):
            terms = []
            for src in range(_target):
                op = OPS[self.ops[k]]
                k += 1
                if op == "none" or values[src] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(values[src])
                else:
                    terms.append(f"({values[src]})@{op}")
            values.append("+".join(sorted(terms)))
        return values[-1]

    @cached_property
    def isomorphism_key(self) -> tuple[int, ...]:
        """Canonical op vector under plain labelled-graph isomorphism (`none` edges dropped).

        With node 0 and node 3 fixed, the only non-trivial relabelling swaps nodes 1 and 2, which is an
        isomorphism exactly when edge 1→2 is absent; it maps (e0, e1, e3, e4, e5) to (e1, e0, e3, e5, e4).
        This gives 14,125 classes over the 15,625 cells.
        """
        if self.ops[2] != NONE:
            return self.ops
        o = self.ops
        swapped = (o[1], o[0], o[2], o[3], o[5], o[4])
        return min(o, swapped)


# --- the cell code: the one integer encoding of a cell ------------------------------------------------------
# A cell's code is its six op ids read as a base-5 number, edge 0 most significant (0 .. 15624): the store's key,
# the predictors' row index and the order of `all_cells`.
CODE_WEIGHTS = np.array([len(OPS) ** (NUM_EDGES - 1 - e) for e in range(NUM_EDGES)], dtype=np.int64)  # (6,)


def op_codes(ops: np.ndarray) -> np.ndarray:
    """(n,) int64 codes of an (n, 6) array of op ids."""
    return np.asarray(ops, dtype=np.int64).reshape(-1, NUM_EDGES) @ CODE_WEIGHTS


def cell_codes(cells: Iterable[Cell]) -> np.ndarray:
    """(n,) int64 code of each cell."""
    return op_codes(np.array([c.ops for c in cells], dtype=np.int64))


def cell_code(cell: Cell) -> int:
    """The code of one cell."""
    k = 0
    for o in cell.ops:
        k = k * len(OPS) + o
    return k


def code_to_cell(code: int) -> Cell:
    """Inverse of `cell_code`; codes outside 0 .. 15624 are `UserError`."""
    code = int(code)
    if not 0 <= code < NUM_CELLS:
        raise UserError(f"cell key {code} out of range 0..{NUM_CELLS - 1}")
    ops = []
    for _ in range(NUM_EDGES):
        code, o = divmod(code, len(OPS))
        ops.append(o)
    return Cell(tuple(reversed(ops)))


def all_cells() -> Iterator[Cell]:
    """All 15,625 cells, in lexicographic order of their op vectors (not NB201 index order)."""
    for ops in itertools.product(range(len(OPS)), repeat=NUM_EDGES):
        yield Cell(ops)


def neighbourhood(cell: Cell, radius: int) -> list[Cell]:
    """Cells within ``radius`` edge-op changes of ``cell`` (itself first, then by distance; no repeats)."""
    seen = {cell: None}
    frontier = [cell]
    for _ in range(max(0, radius)):
        nxt = []
        for c in frontier:
            for e in range(NUM_EDGES):
                for op in range(len(OPS)):
                    if op != c.ops[e]:
                        n = Cell(c.ops[:e] + (op,) + c.ops[e + 1:])
                        if n not in seen:
                            seen[n] = None
                            nxt.append(n)
        frontier = nxt
    return list(seen)


def parse_cell(text: str) -> Cell:
    """Parse a user-supplied cell (arch string or op list); errors are `UserError`."""
    return Cell.parse(text)
