"""Training labels and the accuracy surrogate of a search: which cells a generator was trained with, their
accuracies (free to reuse when only a fraction was labelled) and a surrogate fitted on exactly those labels,
cached in the data directory (or the shipped one when every label was used)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.latency.device import shipped_predictors
from hwdiffnas.space import Cell


def shipped_surrogate(dataset: str, column: str = "nats") -> Callable[[Sequence[Cell]], np.ndarray] | None:
    """The shipped accuracy surrogate for ``dataset`` (None when the bundle, the dataset or the column is missing)."""
    bundle = shipped_predictors()
    if bundle is None or dataset not in bundle.accuracy or bundle.accuracy[dataset].column != column:
        return None
    return bundle.accuracy_surrogate(dataset).predict


def label_fraction(gen: Any) -> float:
    """The fraction of accuracy labels ``gen`` was trained with (1.0: every label)."""
    return float(gen.meta.training.get("label_fraction", 1.0))


def label_seed(gen: Any) -> int:
    """The training seed that drew ``gen``'s label subset (it also seeds the surrogate fitted on it)."""
    return int(gen.meta.training.get("seed", 0))


def labelled_rows(gen: Any, connected: np.ndarray) -> np.ndarray:
    """Indices (into the store's cells) of the seeded label subset ``gen`` was trained with."""
    from hwdiffnas.generator.train import labelled_mask

    return np.flatnonzero(labelled_mask(connected, label_fraction(gen), label_seed(gen)))


@dataclass
class TrainingLabels:
    """What a generator's training labels give the search: which cells were labelled, their accuracies (free to
    reuse when only a fraction was labelled) and an accuracy surrogate fitted on the same labels."""

    labelled: set[Cell]
    known: dict[Cell, float]
    surrogate: Callable[[Sequence[Cell]], np.ndarray] | None
    surrogate_source: str


def training_labels(gen: Any, store: Any, dataset: str) -> TrainingLabels:
    """The labels ``gen`` was trained with (its seeded ``label_fraction`` subset of the store's cells).

    With every cell labelled (``label_fraction`` 1) the labels are not re-read at search time — each look-up is
    a counted query — and the surrogate is the shipped one (trained on all labels of the same column); with a
    fraction, the labelled accuracies are known for free and a surrogate is fitted on exactly those labels (once:
    it is cached in the data directory's ``cache/`` folder, keyed by a hash of the labels).
    """
    from hwdiffnas.predictors.accuracy import fit_accuracy_surrogate

    frac = label_fraction(gen)
    cells = store.cells()
    rows = labelled_rows(gen, store.connected())
    labelled = {cells[i] for i in rows}
    column = gen.meta.accuracy_column
    if frac >= 1.0:
        shipped = shipped_surrogate(dataset, column)
        if shipped is not None:
            return TrainingLabels(labelled, {}, shipped, "shipped")
    acc = np.asarray(store.accuracy(dataset, column), dtype=np.float64)
    rows = rows[np.isfinite(acc[rows])]
    if rows.size < 4:
        return TrainingLabels(labelled, {}, None, "none")
    key = _labels_key(dataset, column, label_seed(gen), rows, acc[rows])
    cache = Path(store.path).parent / "cache" / f"surrogate-{key[:20]}.safetensors"
    sur = _cached_surrogate(cache, key, lambda: fit_accuracy_surrogate(
        [cells[i] for i in rows], acc[rows], dataset=dataset, column=column, seed=label_seed(gen)))
    known = {cells[i]: float(acc[i]) for i in rows} if frac < 1.0 else {}
    return TrainingLabels(labelled, known, sur.predict, f"fitted on {rows.size} labels")


def _labels_key(dataset: str, column: str, seed: int, rows: np.ndarray, accuracy: np.ndarray) -> str:
    """A hash of everything a surrogate fitted on these labels depends on: the labels (a re-imported store with
    other accuracies gets another key), the seed, and the surrogate's features, file format and package version."""
    from hwdiffnas import __version__
    from hwdiffnas.predictors.accuracy import SURROGATE_FEATURES
    from hwdiffnas.predictors.serialize import FORMAT_VERSION

    h = hashlib.sha256(f"{dataset}|{column}|{seed}|{SURROGATE_FEATURES}|{FORMAT_VERSION}|{__version__}|".encode())
    h.update(np.asarray(rows, dtype=np.int64).tobytes())
    h.update(np.asarray(accuracy, dtype=np.float64).tobytes())
    return h.hexdigest()


def _cached_surrogate(path: Path, key: str, fit: Callable[[], Any]) -> Any:
    """The accuracy surrogate cached at ``path`` for ``key``, or a fresh ``fit()`` written there (the fit takes
    ~10 s at 10 % labels; a search reuses it). The file holds the forest exactly, so a cached surrogate ranks like
    the fresh one. A corrupt or stale file is refitted; an unwritable folder, or a forest the format cannot hold,
    is not cached."""
    from hwdiffnas.predictors.serialize import load_accuracy_surrogate, save_accuracy_surrogate

    if path.is_file():
        try:
            return load_accuracy_surrogate(path, key)
        except UserError:
            pass  # corrupt, foreign or stale: refit and overwrite
    sur = fit()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_accuracy_surrogate(sur, tmp, key)
        os.replace(tmp, path)
    except (OSError, UserError):
        tmp.unlink(missing_ok=True)
    return sur




def file_labels(path: str | Path, dataset: str, column: str = "nats", seed: int = 0) -> TrainingLabels:
    """A user's own accuracies (``--labels FILE.csv``, rows ``arch,accuracy``) as the search's labels: known for
    free, and the accuracy surrogate fitted on exactly them ranks the rest."""
    from hwdiffnas.objectives.labels import read_labels
    from hwdiffnas.plugins import get_space
    from hwdiffnas.predictors.accuracy import fit_accuracy_surrogate

    space = get_space("nb201")
    labels = read_labels(space, path)
    cells = labels.archs(space)
    acc = np.array(list(labels.values.values()), dtype=np.float64)
    sur = fit_accuracy_surrogate(cells, acc, dataset=dataset, column=column, seed=seed)
    return TrainingLabels(set(cells), dict(zip(cells, (float(a) for a in acc))), sur.predict,
                          f"fitted on {len(cells)} labels from {labels.path}")
