"""The bench adapter: ``hwdiffnas bench --method diffusion`` runs the search on a `SearchTask`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hwdiffnas.baselines.base import SearchMethod
from hwdiffnas.search.labels import TrainingLabels, label_fraction, label_seed, labelled_rows, shipped_surrogate
from hwdiffnas.search.report import SearchSettings, default_global_share
from hwdiffnas.search.setup import prepare_search
from hwdiffnas.space import Cell


class DiffusionSearch(SearchMethod):
    """``hwdiffnas bench --method diffusion``: the generator proposes, the table checks, Q queries decide.

    A checkpoint trained on a fraction of the labels pays for those labels here (``label_queries``): their
    accuracies are read through the query oracle, known to the search, and fit its accuracy surrogate.
    """

    name = "diffusion"

    def __init__(self, checkpoint: str | None = None, samples: int = 500, steps: int = 20,
                 guidance: str = "joint", scale: float = 1.0, adaptive_fraction: float = 0.0,
                 quantile_margin: float | None = None, sweep_share: float | None = None, refine_top: int = 5,
                 refine_radius: int = 2, global_share: float | None = None) -> None:
        from hwdiffnas.generator import default_checkpoint_path
        from hwdiffnas.generator.model import Generator

        self.checkpoint = str(checkpoint or default_checkpoint_path())
        self.gen = Generator.load(self.checkpoint)
        self.options = dict(samples=int(samples), steps=int(steps), guidance=guidance, scale=float(scale),
                            adaptive_fraction=float(adaptive_fraction),
                            quantile_margin=float(SearchSettings.quantile_margin if quantile_margin is None
                                                  else quantile_margin),
                            sweep_share=float(SearchSettings.sweep_share if sweep_share is None else sweep_share),
                            refine_top=int(refine_top), refine_radius=int(refine_radius),
                            global_share=default_global_share(self.gen) if global_share is None
                            else float(global_share))
        self._surrogates: dict[tuple[str, int], Callable[[Sequence[Cell]], np.ndarray]] = {}

    @property
    def label_fraction(self) -> float:
        return label_fraction(self.gen)

    def _labelled(self, task: Any) -> np.ndarray:
        return labelled_rows(self.gen, task.connected)

    def label_queries(self, task: Any) -> int:
        """Accuracy labels the checkpoint was trained with, when it used a fraction (all labels: 0, issue-4
        protocol — the full-label run is a correctness check, not a label-efficiency claim)."""
        return 0 if self.label_fraction >= 1.0 else int(self._labelled(task).size)

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "checkpoint": self.checkpoint, **self.options,
                "label_fraction": self.label_fraction}

    def _surrogate(self, task: Any, rows: np.ndarray, y: np.ndarray) -> Callable[[Sequence[Cell]], np.ndarray]:
        from hwdiffnas.predictors.accuracy import fit_accuracy_surrogate

        key = (task.dataset, hash(rows.tobytes()))
        if key not in self._surrogates:
            ok = np.isfinite(y)
            self._surrogates[key] = fit_accuracy_surrogate(
                [task.cells[i] for i in rows[ok]], y[ok], dataset=task.dataset, column=task.column,
                seed=label_seed(self.gen)).predict
        return self._surrogates[key]

    def run(self, task: Any, queries: Any, seed: int) -> list[Any]:
        from hwdiffnas.baselines.base import picks_from_history

        index = task.index_of
        if self.label_fraction < 1.0:
            rows = self._labelled(task)
            y = queries.label(rows)
            known = {task.cells[i]: float(a) for i, a in zip(rows, y) if np.isfinite(a)}
            labels = TrainingLabels(set(), known, self._surrogate(task, rows, y), "fitted on the labels")
        else:
            labels = TrainingLabels(set(), {}, shipped_surrogate(task.dataset, task.column), "shipped")
        setup = prepare_search(self.gen, task.dataset, labels=labels, accuracy_source="benchmark")
        dev = setup.table_device(task.device, task.cells, task.latency_ms, task.connected)
        settings = SearchSettings(queries=queries.remaining, top=queries.remaining, seed=int(seed),
                                  **self.options)
        setup.run(dev, task.budget_ms, settings, accuracy_lookup=lambda c: queries.query(index[c]))
        return picks_from_history(task, queries)
