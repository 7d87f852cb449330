"""Budgeted architecture search with the conditional generator.

Steps: resolve the device (benchmark table, ``--device-table`` rows, or what the checkpoint knows), turn the
budget into the latency condition (its quantile among the device's connected cells), sample cells conditioned on
"the most accurate cell that fits this budget on this device" (part of them on slightly lower budgets), decode and
dedupe them, check the budget (table latency where known, else an estimate with an upper bound — each result says
which), gather candidates (the fitting samples, their 2-edit neighbourhoods, cells whose accuracy is already known,
the accuracy surrogate's best fitting cells), optionally measure the most promising unsure ones, spend at most Q
accuracy queries (one per NATS class; with a generator trained on every label half go to its own proposals and half
to the surrogate's ranking, with one trained on a fraction all go to the surrogate's ranking) when a benchmark store
is present, and return the best.

The package: `hwdiffnas.search.algorithm` (sampling and `run_search`), `hwdiffnas.search.pool` (the candidate pool
and the query policy), `hwdiffnas.search.measure` (which cells to measure, ``--verify``, failures, the store as a
resume cache), `hwdiffnas.search.devices` (device resolution over `hwdiffnas.latency`),
`hwdiffnas.search.labels` (training labels and the surrogate cache), `hwdiffnas.search.report` (settings and
results), `hwdiffnas.search.setup` (the one set-up shared by the CLI, the bench method and the benchmark scripts)
and `hwdiffnas.search.bench` (`DiffusionSearch`, the bench method).

Spaces without accuracy tables (FBNet): `hwdiffnas.search.open_search` (`run_open_search`: sample, check the
budget on a `hwdiffnas.latency.space_device.SpaceDevice`, climb, compute the objective on the best),
`hwdiffnas.search.frontier` (vectorized climbs, additive forms, the knapsack frontier) and
`hwdiffnas.search.open_training` (the training data such a generator learns from, produced by the project).
"""

from hwdiffnas.generator.conditions import build_conditions
from hwdiffnas.latency.device import DeviceLatency, shipped_latency_estimators, shipped_predictors
from hwdiffnas.search.algorithm import run_search, sample_cells
from hwdiffnas.search.devices import (
    device_from_checkpoint,
    device_from_rows,
    device_from_table,
    resolve_device,
    table_device,
)
from hwdiffnas.search.labels import (
    TrainingLabels,
    label_fraction,
    label_seed,
    labelled_rows,
    shipped_surrogate,
    training_labels,
)
from hwdiffnas.search.report import SearchReport, SearchResult, SearchSettings, default_global_share
from hwdiffnas.search.setup import SearchSetup, prepare_search

__all__ = [
    "DeviceLatency", "SearchReport", "SearchResult", "SearchSettings", "SearchSetup", "TrainingLabels",
    "build_conditions", "default_global_share", "device_from_checkpoint", "device_from_rows", "device_from_table",
    "label_fraction", "label_seed", "labelled_rows", "prepare_search", "resolve_device", "run_search",
    "sample_cells", "shipped_latency_estimators", "shipped_predictors", "shipped_surrogate", "table_device",
    "training_labels",
]
