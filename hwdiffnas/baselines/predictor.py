"""Predictor-based search: a random forest on one-hot op encodings, trained on a labelled fraction of the
cells (every label is an accuracy query), ranks the feasible cells; the top ones are queried."""

from __future__ import annotations

import numpy as np

from hwdiffnas.baselines.base import Pick, SearchMethod, SearchTask, picks_from_history
from hwdiffnas.benchmark import QueryOracle
from hwdiffnas.errors import MissingBackendError, UserError


class PredictorSearch(SearchMethod):
    """Label ``label_fraction`` of all cells (drawn from the connected ones), fit a random forest, query the
    feasible cells it ranks highest with the remaining budget."""

    name = "predictor"

    def __init__(self, label_fraction: float = 0.01, n_estimators: int = 100) -> None:
        if not 0 < label_fraction <= 1:
            raise UserError(f"label fraction must lie in (0, 1], got {label_fraction}")
        self.label_fraction = float(label_fraction)
        self.n_estimators = int(n_estimators)

    def describe(self) -> dict:
        return {"method": self.name, "label_fraction": self.label_fraction, "n_estimators": self.n_estimators}

    def label_queries(self, task: SearchTask) -> int:
        n_conn = int(np.asarray(task.connected, dtype=bool).sum())
        return min(n_conn, max(2, round(self.label_fraction * len(task.cells))))

    def run(self, task: SearchTask, queries: QueryOracle, seed: int) -> list[Pick]:
        try:
            from sklearn.ensemble import RandomForestRegressor
        except ImportError as exc:
            raise MissingBackendError("scikit-learn", "bench", "needed by the predictor baseline") from exc
        rng = np.random.default_rng(seed)
        n_labels = min(self.label_queries(task), queries.remaining)
        connected = np.flatnonzero(np.asarray(task.connected, dtype=bool))
        labelled = rng.choice(connected, size=n_labels, replace=False)
        y = queries.label(labelled)
        features = task.one_hot  # (n, 30)
        model = RandomForestRegressor(n_estimators=self.n_estimators, random_state=seed, n_jobs=1)
        model.fit(features[labelled], y)
        cand = np.array([i for i in task.feasible_indices if not queries.seen(i)], dtype=np.int64)
        if len(cand) and queries.remaining > 0:
            pred = model.predict(features[cand])
            order = np.lexsort((cand, -pred))  # highest prediction first, ties by index
            for i in cand[order[: queries.remaining]]:
                queries.query(int(i))
        return picks_from_history(task, queries)
