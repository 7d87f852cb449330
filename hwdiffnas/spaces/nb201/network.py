"""Build a `Cell` as the exact NAS-Bench-201 macro network (the network HW-NAS-Bench measured).

Macro structure (C=16, N=5): stem Conv3x3(3→C)+BN; three stages of N cells at C, 2C, 4C channels with a
ResNet basic block (stride 2, channel doubling, AvgPool2x2 + Conv1x1 shortcut) between stages; then BN+ReLU,
global average pool and a Linear head.

Rule for dead nodes (``dead_nodes``):

* ``"zeros"`` (default, reproduces NB201's network function): `none` edges are dropped, never multiplied by
  zero. A node whose incoming edges are all `none` holds a zero tensor, and the ops that read it still run
  (a conv on zeros followed by BN yields BN's constant shift). If the cell output receives only `none`, the
  cell outputs zeros. Ops whose result never reaches the output still exist as modules; exporters drop them.
* ``"prune"``: only edges on an input→output path of non-`none` edges are built (`Cell.live_edges`); a dead
  node holds nothing and the ops reading it are removed. A disconnected cell outputs zeros. This is the graph
  that graph-level converters (TFLite, some compilers) keep, and it changes the function of cells whose dead
  node fed a conv (BN constant removed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.modules import count_macs, count_parameters
from hwdiffnas.spaces.nb201.cell import CONV1, CONV3, EDGES, NONE, NUM_NODES, POOL, SKIP, Cell

if TYPE_CHECKING:
    import torch
    from torch import nn

DeadNodeRule = Literal["zeros", "prune"]
DEAD_NODE_RULES: tuple[str, ...] = ("zeros", "prune")


@dataclass(frozen=True)
class DatasetSpec:
    """Input setting of an NB201 dataset."""

    name: str
    num_classes: int
    input_size: int  # square side, 3 channels

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.input_size, self.input_size)


DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec("cifar10", 10, 32),
    "cifar100": DatasetSpec("cifar100", 100, 32),
    "ImageNet16-120": DatasetSpec("ImageNet16-120", 120, 16),
}
_DATASET_ALIASES = {"c10": "cifar10", "c100": "cifar100", "imagenet16-120": "ImageNet16-120", "in16": "ImageNet16-120"}


def dataset_spec(name: str) -> DatasetSpec:
    """Look up a dataset by name (case-insensitive aliases c10, c100, in16 accepted)."""
    if name in DATASETS:
        return DATASETS[name]
    key = _DATASET_ALIASES.get(name.lower(), name.lower())
    for real in DATASETS:
        if real.lower() == key.lower():
            return DATASETS[real]
    raise UserError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


@dataclass(frozen=True)
class MacroConfig:
    """Macro settings of the NB201 network."""

    channels: int = 16  # C
    cells_per_stage: int = 5  # N
    dead_nodes: DeadNodeRule = "zeros"

    def __post_init__(self) -> None:
        if self.dead_nodes not in DEAD_NODE_RULES:
            raise UserError(f"unknown dead-node rule {self.dead_nodes!r}; known: {', '.join(DEAD_NODE_RULES)}")
        if self.channels < 1 or self.cells_per_stage < 1:
            raise UserError("channels and cells_per_stage must be positive")


def build_network(cell: Cell, dataset: str = "cifar100", macro: MacroConfig | None = None) -> nn.Module:
    """The NB201 network for ``cell`` on ``dataset`` (eval mode, random weights, deterministic given the
    torch seed)."""
    spec = dataset_spec(dataset)
    macro = macro or MacroConfig()
    net = _network_class()(cell, spec.num_classes, macro)
    return net.eval()


@dataclass(frozen=True)
class NetworkInfo:
    """Size figures of one materialized network."""

    arch_str: str
    dataset: str
    input_shape: tuple[int, int, int, int]
    params: int
    macs: int

    @property
    def flops(self) -> int:
        """Multiplies and adds counted separately (2 × MACs)."""
        return 2 * self.macs

    def to_dict(self) -> dict:
        return {
            "arch_str": self.arch_str,
            "dataset": self.dataset,
            "input_shape": list(self.input_shape),
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
        }


def network_info(cell: Cell, dataset: str = "cifar100", macro: MacroConfig | None = None,
                 model: nn.Module | None = None) -> NetworkInfo:
    """Parameter count and MACs of the network for ``cell``."""
    spec = dataset_spec(dataset)
    model = model if model is not None else build_network(cell, dataset, macro)
    return NetworkInfo(cell.arch_str, spec.name, spec.input_shape, count_parameters(model),
                       count_macs(model, spec.input_shape))


# --- torch modules (defined lazily so importing this module does not import torch) ----------------------
_CLASSES: dict[str, type] = {}


def _network_class() -> type:
    if "net" not in _CLASSES:
        _define_modules()
    return _CLASSES["net"]


def _define_modules() -> None:
    import torch
    from torch import nn

    class ReLUConvBN(nn.Sequential):
        """ReLU → Conv(k, stride, pad, no bias) → BN: NB201's `nor_conv_kxk`."""

        def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
            super().__init__(
                nn.ReLU(inplace=False),
                nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
                nn.BatchNorm2d(c_out),
            )

    def make_op(op: int, channels: int) -> nn.Module:
        if op == SKIP:
            return nn.Identity()
        if op == CONV1:
            return ReLUConvBN(channels, channels, 1, 1, 0)
        if op == CONV3:
            return ReLUConvBN(channels, channels, 3, 1, 1)
        if op == POOL:
            return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        raise AssertionError(f"op {op} has no module")

    class SearchCell(nn.Module):
        """One NB201 cell; node j = Σ op(node i) over its built incoming edges."""

        def __init__(self, cell: Cell, channels: int, rule: str) -> None:
            super().__init__()
            keep = cell.live_edges() if rule == "prune" else tuple(o != NONE for o in cell.ops)
            self.edges = nn.ModuleDict()
            # incoming[j] = [(edge key, source node)] for the edges built into node j
            self.incoming: list[list[tuple[str, int]]] = [[] for _ in range(NUM_NODES)]
            for e, (src, dst) in enumerate(EDGES):
                if keep[e]:
                    key = f"{dst}<-{src}"
                    self.edges[key] = make_op(cell.ops[e], channels)
                    self.incoming[dst].append((key, src))
            self.rule = rule

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            nodes: list[torch.Tensor | None] = [x]
            for j in range(1, NUM_NODES):
                acc: torch.Tensor | None = None
                for key, src in self.incoming[j]:
                    inp = nodes[src]
                    if inp is None:  # a node that received only `none` holds zeros
                        inp = torch.zeros_like(x)
                    y = self.edges[key](inp)
                    acc = y if acc is None else acc + y
                nodes.append(acc)
            out = nodes[-1]
            return torch.zeros_like(x) if out is None else out

    class ResNetBasicBlock(nn.Module):
        """Stride-2 reduction block between stages."""

        def __init__(self, c_in: int, c_out: int) -> None:
            super().__init__()
            self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
            self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
            self.downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.downsample(x) + self.conv_b(self.conv_a(x))

    class NB201Network(nn.Module):
        """The NB201 macro network around one cell."""

        def __init__(self, cell: Cell, num_classes: int, macro: MacroConfig) -> None:
            super().__init__()
            c, n = macro.channels, macro.cells_per_stage
            self.arch_str = cell.arch_str
            self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
            layers: list[nn.Module] = []
            c_prev = c
            for stage, width in enumerate((c, 2 * c, 4 * c)):
                if stage > 0:
                    layers.append(ResNetBasicBlock(c_prev, width))
                    c_prev = width
                layers.extend(SearchCell(cell, width, macro.dead_nodes) for _ in range(n))
            self.cells = nn.Sequential(*layers)
            self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
            self.global_pooling = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(c_prev, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.lastact(self.cells(self.stem(x)))
            return self.classifier(torch.flatten(self.global_pooling(x), 1))

    _CLASSES["net"] = NB201Network
