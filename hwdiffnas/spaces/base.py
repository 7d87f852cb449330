"""The search-space interface: everything the core asks of a space, and nothing more.

A space owns one architecture type (NB201's `Cell`, FBNet's 22-layer `FBNetArch`, a user's own) and answers, for
it: how to read and write it (the exact string is the store key), its canonical form and equivalence key, which
architectures are degenerate, how to enumerate (when finite) or sample, the neighbours at edit distance k, the
fixed-shape encoding the generator diffuses over, the features the predictors use, the reference architectures
that define a device representation, the torch module for a dataset setting, its MACs and parameters, and what it
supports (datasets, the exporters that need a space-specific path).

The generator's encoding (`Encoding`) is the same for graph and sequence spaces: ``positions`` slots, each holding
one of ``choices`` op classes, on a fixed directed graph of ``positions + 2`` nodes (node 0 the input, node
``positions + 1`` the output). A sequence space (a chain of layers) is the chain graph.

Spaces register like exporters and profilers (entry-point group ``hwdiffnas.spaces``, or
`hwdiffnas.plugins.register_space`); the core reaches them only through `hwdiffnas.plugins.get_space`.
This module imports neither numpy nor torch at import time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from hwdiffnas.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

class ExactLatency(Protocol):
    """An exact latency model of one device over a space's architectures (e.g. a sum of lookup-table entries)."""

    device: str

    def latency_ms(self, arch: Any) -> float:
        """Latency of one architecture, milliseconds, batch 1."""


@dataclass(frozen=True)
class MeasuredRows:
    """Measured latencies of one device: ``archs`` (architecture strings, exact form) and ``latency_ms``."""

    archs: tuple[str, ...]
    latency_ms: tuple[float, ...]
    source: str


A = TypeVar("A")
"""The architecture type of a space (hashable, comparable, immutable)."""


@dataclass(frozen=True)
class DatasetSetting:
    """One dataset setting of a space: its name, class count and network input shape (batch 1, NCHW)."""

    name: str
    num_classes: int
    input_shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "num_classes": self.num_classes, "input_shape": list(self.input_shape)}


@dataclass(frozen=True)
class Encoding:
    """The fixed-shape categorical encoding the generator diffuses over.

    ``positions`` slots (NB201: the six edges; a chain space: its layers), each one of ``choices`` (op names);
    ``adjacency`` is the (positions + 2, positions + 2) 0/1 matrix of the fixed directed graph over the input
    node, the slots and the output node. ``identity`` names the encoding in generator checkpoints (a checkpoint
    loads only into a space whose identity matches)."""

    positions: int
    choices: tuple[str, ...]
    adjacency: tuple[tuple[int, ...], ...]
    identity: str

    def __post_init__(self) -> None:
        n = self.positions + 2
        if self.positions < 1 or len(self.choices) < 2:
            raise UserError(f"an encoding needs at least 1 position and 2 choices, got {self.positions} and "
                            f"{len(self.choices)}")
        if len(self.adjacency) != n or any(len(r) != n for r in self.adjacency):
            raise UserError(f"encoding adjacency must be {n}×{n} (input, {self.positions} positions, output)")

    @property
    def nodes(self) -> int:
        return self.positions + 2

    @property
    def input_class(self) -> int:
        """Node class of the input node (the op classes are 0 .. choices - 1)."""
        return len(self.choices)

    @property
    def output_class(self) -> int:
        return len(self.choices) + 1

    @classmethod
    def chain(cls, positions: int, choices: Sequence[str], identity: str) -> Encoding:
        """A sequence encoding: input → slot 1 → … → slot n → output."""
        n = positions + 2
        adj = tuple(tuple(1 if j == i + 1 else 0 for j in range(n)) for i in range(n))
        return cls(positions, tuple(choices), adj, identity)


@dataclass(frozen=True)
class Supports:
    """What a space supports beyond the interface: dataset settings, ``exporters`` that need a space-specific
    path and handle this space (the others export any torch module; an exporter may instead declare the space in
    its own ``spaces``, and `hwdiffnas spaces` lists both), whether accuracy tables exist, and free-form notes."""

    datasets: tuple[str, ...]
    exporters: tuple[str, ...] = ()
    accuracy_tables: bool = False
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"datasets": list(self.datasets), "exporters": list(self.exporters),
                "accuracy_tables": self.accuracy_tables, "notes": dict(self.notes)}


class SearchSpace(ABC, Generic[A]):
    """A search space. Subclasses set ``name`` and ``description`` and implement the abstract methods; the
    defaults of the others are correct for a space without equivalences or degenerate architectures."""

    name: str = ""
    description: str = ""
    default_objective: str | None = None
    """What stands in for accuracy by default (None: the space has accuracy tables, or no calibrated choice)."""

    # --- reading and writing -------------------------------------------------------------------------------
    @abstractmethod
    def parse(self, text: str) -> A:
        """Read an architecture from user text; errors are `UserError` naming the expected form."""

    @abstractmethod
    def format(self, arch: A) -> str:
        """The exact architecture string: the store key (with the space name) and what `parse` reads back."""

    def canonical(self, arch: A) -> A:
        """The representative of ``arch``'s equivalence class (itself in a space without equivalences)."""
        return arch

    def equivalence_key(self, arch: A) -> str:
        """Architectures with equal keys compute the same function (never a store key: members of a class may
        differ in latency)."""
        return self.format(self.canonical(arch))

    # --- validity ------------------------------------------------------------------------------------------
    def degenerate(self, arch: A) -> str | None:
        """Why ``arch`` is a degenerate network (NB201: no input→output path), or None; a space may have none."""
        return None

    def is_valid(self, arch: A) -> bool:
        """True unless ``arch`` is degenerate."""
        return self.degenerate(arch) is None

    # --- the set of architectures --------------------------------------------------------------------------
    @property
    @abstractmethod
    def size(self) -> int:
        """How many architecture strings the space has (may be astronomically large)."""

    @property
    def finite(self) -> bool:
        """Whether `enumerate` is practical (at most a few hundred thousand architectures)."""
        return self.size <= 1_000_000

    def enumerate(self) -> Iterator[A]:
        """Every architecture, in the space's own order (decoding of every code vector, slot 0 slowest)."""
        import itertools

        if not self.finite:
            raise UserError(f"space {self.name!r} has {self.size:.3g} architectures; it cannot be enumerated "
                            "(sample from it instead)")
        enc = self.encoding
        for ops in itertools.product(range(len(enc.choices)), repeat=enc.positions):
            yield self.decode(ops)

    def sample(self, n: int, seed: int = 0) -> list[A]:
        """``n`` architectures drawn uniformly (with replacement) from the codes, seeded."""
        import numpy as np

        enc = self.encoding
        rng = np.random.default_rng(seed)
        codes = rng.integers(len(enc.choices), size=(n, enc.positions))
        return [self.decode(row) for row in codes]

    def neighbours(self, arch: A, k: int = 1) -> list[A]:
        """Architectures within ``k`` slot changes of ``arch`` (itself first, then by distance; no repeats)."""
        enc = self.encoding
        start = tuple(int(x) for x in self.encode(arch))
        seen: dict[tuple[int, ...], None] = {start: None}
        frontier = [start]
        for _ in range(max(0, k)):
            nxt = []
            for ops in frontier:
                for p in range(enc.positions):
                    for c in range(len(enc.choices)):
                        if c != ops[p]:
                            cand = ops[:p] + (c,) + ops[p + 1:]
                            if cand not in seen:
                                seen[cand] = None
                                nxt.append(cand)
            frontier = nxt
        return [self.decode(ops) for ops in seen]

    # --- the generator's encoding --------------------------------------------------------------------------
    @property
    @abstractmethod
    def encoding(self) -> Encoding:
        """The categorical slots and fixed graph the generator diffuses over."""

    @abstractmethod
    def encode(self, arch: A) -> Sequence[int]:
        """(positions,) op class of each slot."""

    @abstractmethod
    def decode(self, ops: Sequence[int]) -> A:
        """Inverse of `encode`; a code vector outside the space is `UserError`."""

    # --- predictors and devices ----------------------------------------------------------------------------
    def features(self, archs: Sequence[A]) -> np.ndarray:
        """(n, F) float features for the predictors (default: the one-hot of every slot, slot-major)."""
        import numpy as np

        ops = np.array([list(self.encode(a)) for a in archs], dtype=np.int64).reshape(-1, self.encoding.positions)
        return self.code_features(ops)

    def code_features(self, ops: np.ndarray) -> np.ndarray:
        """`features` of an (n, positions) matrix of op codes (what vectorized searches score; a space that
        overrides `features` overrides this too)."""
        import numpy as np

        enc = self.encoding
        ops = np.asarray(ops, dtype=np.int64).reshape(-1, enc.positions)
        out = np.zeros((ops.shape[0], enc.positions, len(enc.choices)), dtype=np.float32)
        np.put_along_axis(out, ops[:, :, None], 1.0, axis=2)
        return out.reshape(ops.shape[0], -1)

    def reference_archs(self) -> tuple[A, ...]:
        """The architectures whose latencies define a device representation (NB201: HELP's ten)."""
        return ()

    # --- networks ------------------------------------------------------------------------------------------
    @property
    @abstractmethod
    def datasets(self) -> dict[str, DatasetSetting]:
        """The dataset settings a network can be built for, by name."""

    def dataset(self, name: str) -> DatasetSetting:
        """One dataset setting; unknown names list the known ones."""
        if name in self.datasets:
            return self.datasets[name]
        raise UserError(f"space {self.name!r} has no dataset setting {name!r}; known: {', '.join(self.datasets)}")

    def input_shape(self, dataset: str) -> tuple[int, ...]:
        """Network input shape (batch 1) for a dataset setting."""
        return self.dataset(dataset).input_shape

    @abstractmethod
    def materialize(self, arch: A, dataset: str, **options: Any) -> nn.Module:
        """The torch module (eval mode) of ``arch`` for a dataset setting; ``options`` are space-specific."""

    def validation_weights(self, net: nn.Module, dataset: str, seed: int = 0) -> nn.Module:
        """``net`` given weights under which an export's numerical validation can fail (in place; eval mode).
        Default: fan-in weights and measured BatchNorm statistics giving outputs of order 1
        (`hwdiffnas.spaces.modules.calibrate_for_validation`): with a reference initialization deep networks
        often output ~1e-2 or less, which any tolerance passes."""
        from hwdiffnas.spaces.modules import calibrate_for_validation

        return calibrate_for_validation(net, self.input_shape(dataset), seed)

    def size_counts(self, arch: A, dataset: str) -> tuple[int, int]:
        """(MACs, parameters) of the network (default: count on the materialized module)."""
        from hwdiffnas.spaces.modules import count_macs, count_parameters

        net = self.materialize(arch, dataset)
        return count_macs(net, self.input_shape(dataset)), count_parameters(net)

    def size_counts_codes(self, ops: np.ndarray, dataset: str) -> tuple[np.ndarray, np.ndarray]:
        """(MACs (n,), parameters (n,)) of an (n, positions) matrix of op codes (default: `size_counts` of each)."""
        import numpy as np

        counts = [self.size_counts(self.decode(row), dataset) for row in np.asarray(ops, dtype=np.int64)]
        arr = np.array(counts, dtype=np.float64).reshape(-1, 2)
        return arr[:, 0], arr[:, 1]

    def latency_tables(self, dataset: str) -> dict[str, ExactLatency]:
        """Exact latency models shipped with the space for a dataset setting, by device (source ``lut``; default
        none)."""
        return {}

    def exact_optimum(self, device: str, budget_ms: float, objective: str, dataset: str) -> tuple[A, float] | None:
        """The architecture maximizing ``objective`` with latency ≤ ``budget_ms`` on ``device``, computed exactly,
        and its objective value (None when nothing fits); `UserError` where latency or objective is not
        additive over the space's positions (the default: no exact method)."""
        raise UserError(f"space {self.name!r} has no exact method: it needs a latency and an objective that are "
                        "sums over the architecture's positions")

    def measured_rows(self, dataset: str) -> dict[str, MeasuredRows]:
        """Measured latency rows shipped with the space for a dataset setting, by device (default none): exact for
        their architectures, and what a predictor for the others is fitted on."""
        return {}

    def supports(self) -> Supports:
        """Datasets and space-specific paths (default: the dataset settings, no special exporter)."""
        return Supports(tuple(self.datasets))

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (what `hwdiffnas spaces` prints)."""
        enc = self.encoding
        return {"name": self.name, "description": self.description, "size": self.size, "finite": self.finite,
                "encoding": {"positions": enc.positions, "choices": list(enc.choices)},
                "dataset_settings": [d.to_dict() for d in self.datasets.values()],
                "reference_archs": len(self.reference_archs()), "default_objective": self.default_objective,
                **self.supports().to_dict()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def require_space(space: SearchSpace[Any] | str, supported: Sequence[str], what: str) -> None:
    """Refuse a path written for some spaces only: a `UserError` naming ``what`` and the supported spaces."""
    name = space if isinstance(space, str) else space.name
    if name not in supported:
        raise UserError(f"{what} supports search space(s) {', '.join(supported)}, not {name!r}")
