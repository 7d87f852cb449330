"""The one set-up of a search, shared by ``hwdiffnas search``, the bench method and the benchmark scripts: the
generator, the dataset, what its training labels give (labelled cells, known accuracies, the surrogate) and the
accuracy look-up; then `SearchSetup.run` for a device and a budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.latency.device import DeviceLatency
from hwdiffnas.search.algorithm import run_search
from hwdiffnas.search.devices import resolve_device, table_device
from hwdiffnas.search.labels import TrainingLabels, shipped_surrogate, training_labels
from hwdiffnas.search.report import SearchReport, SearchSettings
from hwdiffnas.space import Cell


@dataclass
class SearchSetup:
    """A generator ready to search: ``labels`` (its training labels: ``labelled`` None when unknown, i.e. no
    store), ``accuracy_lookup`` (the store's counted accuracy look-up, None without a store) and its source."""

    gen: Any
    dataset: str
    labels: TrainingLabels
    store: Any | None = None
    accuracy_lookup: Callable[[Cell], float] | None = None
    accuracy_source: str = ""
    labelled: set[Cell] | None = None

    def device(self, device: str | None = None, device_table: Path | str | None = None) -> DeviceLatency:
        """The device of ``--device`` / ``--device-table`` (`hwdiffnas.search.devices.resolve_device`)."""
        return resolve_device(self.gen, self.store, device, device_table)

    def table_device(self, name: str, cells: Sequence[Cell], latency_ms: np.ndarray,
                     connected: np.ndarray) -> DeviceLatency:
        """A device given as a table aligned with ``cells`` (a bench task, a grid cell)."""
        return table_device(self.gen, name, cells, latency_ms, connected)

    def run(self, device: DeviceLatency, budget_ms: float, settings: SearchSettings,
            accuracy_lookup: Callable[[Cell], float] | None = None, measure: Callable[[Cell], float] | None = None,
            measure_source: str = "measured", progress: Callable[[str], None] | None = None,
            refit: Callable[[dict[Cell, float]], DeviceLatency] | None = None) -> SearchReport:
        """`run_search` with this set-up's labels; ``accuracy_lookup`` replaces the store's (e.g. a counted one)."""
        return run_search(self.gen, device, budget_ms, self.dataset, settings,
                          accuracy_lookup=accuracy_lookup or self.accuracy_lookup,
                          accuracy_source=self.accuracy_source, surrogate=self.labels.surrogate,
                          labelled=self.labelled, known_accuracy=self.labels.known, measure=measure,
                          measure_source=measure_source, progress=progress, refit=refit)


def prepare_search(gen: Any, dataset: str, store: Any | None = None, labels: TrainingLabels | None = None,
                   accuracy_source: str = "") -> SearchSetup:
    """The set-up of a search with ``gen`` on ``dataset``.

    With a benchmark ``store``: its accuracies are the look-up and the generator's training labels come from it
    (`training_labels`); without one, the shipped surrogate ranks and nothing is looked up. ``labels`` given
    (e.g. read through a bench's query oracle) replace the store's.
    """
    column = gen.meta.accuracy_column
    lookup = None
    labelled = None
    if store is not None:
        acc = store.accuracy(dataset, column)
        index = {c: i for i, c in enumerate(store.cells())}

        def lookup(c: Cell) -> float:
            return float(acc[index[c]])

        if labels is None:
            labels = training_labels(gen, store, dataset)
        labelled = labels.labelled
    if labels is None:
        labels = TrainingLabels(set(), {}, shipped_surrogate(dataset, column), "shipped")
    return SearchSetup(gen, dataset, labels, store, lookup, accuracy_source, labelled)
