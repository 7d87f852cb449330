"""`NB201Space`: the NAS-Bench-201 cell space (15,625 cells, 341 of them disconnected) behind `SearchSpace`.

Exact string: NB201's arch string. Canonical form: NATS-Bench's unique string (6,466 classes). Degenerate: the
cells with no input→output path. Encoding: the six edges' ops on the 8-node op-on-node graph. Features: the
predictors' ``live`` set. Reference architectures: HELP's ten cells.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from hwdiffnas.spaces.base import DatasetSetting, Encoding, SearchSpace, Supports

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from hwdiffnas.spaces.nb201.cell import Cell


class NB201Space(SearchSpace["Cell"]):
    """NAS-Bench-201's cell space: six edges, five ops, the C=16, N=5 macro network HW-NAS-Bench measured."""

    name = "nb201"
    description = "NAS-Bench-201 cells: 6 edges x 5 ops (15,625; 341 disconnected), NATS accuracies, HELP latencies"

    def parse(self, text: str) -> Cell:
        from hwdiffnas.spaces.nb201.cell import Cell

        return Cell.parse(text)

    def format(self, arch: Cell) -> str:
        return arch.arch_str

    def canonical(self, arch: Cell) -> Cell:
        """The smallest cell of ``arch``'s NATS class (computed over the class members reachable by the
        class's own rules: cells with the same NATS unique string)."""
        return _nats_representative()[arch.nats_unique_str]

    def equivalence_key(self, arch: Cell) -> str:
        return arch.nats_unique_str

    def degenerate(self, arch: Cell) -> str | None:
        return None if arch.is_connected else "no path of non-none edges from the cell input to the cell output"

    @property
    def size(self) -> int:
        from hwdiffnas.spaces.nb201.cell import NUM_CELLS

        return NUM_CELLS

    def enumerate(self) -> Iterator[Cell]:
        from hwdiffnas.spaces.nb201.cell import all_cells

        return all_cells()

    def neighbours(self, arch: Cell, k: int = 1) -> list[Cell]:
        from hwdiffnas.spaces.nb201.cell import neighbourhood

        return neighbourhood(arch, k)

    @property
    def encoding(self) -> Encoding:
        return _encoding()

    def encode(self, arch: Cell) -> Sequence[int]:
        return arch.ops

    def decode(self, ops: Sequence[int]) -> Cell:
        from hwdiffnas.spaces.nb201.cell import Cell

        return Cell(tuple(int(o) for o in ops))

    def features(self, archs: Sequence[Cell]) -> np.ndarray:
        from hwdiffnas.predictors.features import cell_features

        return cell_features(list(archs), "live")

    def code_features(self, ops: np.ndarray) -> np.ndarray:
        import numpy as np

        return self.features([self.decode(row) for row in np.asarray(ops).reshape(-1, 6)])

    def reference_archs(self) -> tuple[Cell, ...]:
        from hwdiffnas.latency.reference import reference_cells

        return tuple(reference_cells())

    @property
    def datasets(self) -> dict[str, DatasetSetting]:
        from hwdiffnas.spaces.nb201.network import DATASETS

        return {n: DatasetSetting(n, d.num_classes, d.input_shape) for n, d in DATASETS.items()}

    def dataset(self, name: str) -> DatasetSetting:
        """A dataset setting; NB201's aliases (c10, c100, in16, any case) are accepted."""
        from hwdiffnas.spaces.nb201.network import dataset_spec

        return self.datasets[dataset_spec(name).name]

    def materialize(self, arch: Cell, dataset: str, **options: Any) -> nn.Module:
        """`hwdiffnas.spaces.nb201.network.build_network`; options are `MacroConfig` fields (``dead_nodes``,
        ``channels``, ``cells_per_stage``)."""
        from hwdiffnas.spaces.nb201.network import MacroConfig, build_network

        return build_network(arch, self.dataset(dataset).name, MacroConfig(**options))

    def validation_weights(self, net: nn.Module, dataset: str, seed: int = 0) -> nn.Module:
        """Seeded random BatchNorm statistics and affine terms (NB201's networks already output order-1 logits;
        kept so NB201 exports are validated as before)."""
        from hwdiffnas.spaces.modules import randomize_batchnorm

        randomize_batchnorm(net, seed)
        return net

    def supports(self) -> Supports:
        return Supports(tuple(self.datasets), accuracy_tables=True,
                        notes={"tables": "NATS accuracies (cifar10, cifar100, ImageNet16-120), HELP/HW-NAS-Bench "
                                         "latencies", "dead_nodes": "materialize option: zeros (default) | prune"})


@cache
def _encoding() -> Encoding:
    from hwdiffnas.spaces.nb201.cell import GRAPH_ADJACENCY, GRAPH_CLASSES, GRAPH_NODES, NUM_EDGES, OPS

    identity = f"nb201-opnode-graph(nodes={GRAPH_NODES},classes={GRAPH_CLASSES},ops={','.join(OPS)})"
    return Encoding(NUM_EDGES, OPS, tuple(tuple(int(x) for x in row) for row in GRAPH_ADJACENCY), identity)


_REPRESENTATIVES: dict[str, Cell] = {}


def _nats_representative() -> dict[str, Cell]:
    """NATS unique string → the smallest cell (op-vector order) with that string."""
    if not _REPRESENTATIVES:
        from hwdiffnas.spaces.nb201.cell import all_cells

        for cell in all_cells():  # ascending op-vector order: the first one seen is the smallest
            _REPRESENTATIVES.setdefault(cell.nats_unique_str, cell)
    return _REPRESENTATIVES
