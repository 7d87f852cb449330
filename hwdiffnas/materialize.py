"""The exact NAS-Bench-201 network (`hwdiffnas.spaces.nb201.network`), under its historical name."""

from hwdiffnas.spaces.nb201.network import (
    DATASETS,
    DEAD_NODE_RULES,
    DatasetSpec,
    DeadNodeRule,
    MacroConfig,
    NetworkInfo,
    build_network,
    count_macs,
    count_parameters,
    dataset_spec,
    network_info,
)

__all__ = [
    "DATASETS",
    "DEAD_NODE_RULES",
    "DatasetSpec",
    "DeadNodeRule",
    "MacroConfig",
    "NetworkInfo",
    "build_network",
    "count_macs",
    "count_parameters",
    "dataset_spec",
    "network_info",
]
