"""Latency and accuracy predictors for NB201 cells (numpy at inference; JSON + safetensors on disk).

Main entry points:

- `fit_latency_predictor(cells, latencies_ms, basis=...)` → `LatencyPredictor` with ``predict`` (median and
  conformal interval), ``upper_ms`` (one-sided bound) and ``prob_within`` (P(latency ≤ budget)).
- `build_transfer_basis(cells, {device: latencies})` → the prior from other devices' tables for few-row devices.
- `device_vector(predictor_or_table)` → (10,) device representation; `table_quantiles` / `predicted_quantiles`
  → `LatencyQuantiles` (budget ms ↔ fraction of connected cells).
"""

from hwdiffnas.predictors.device import (
    DEVICE_VECTOR_DIM,
    HELP_REFERENCE_INDICES,
    LatencyQuantiles,
    device_vector,
    predicted_quantiles,
    reference_cells,
    table_quantiles,
)
from hwdiffnas.predictors.features import FEATURE_SETS, cell_features
from hwdiffnas.predictors.latency import (
    LatencyPredictor,
    TransferBasis,
    build_transfer_basis,
    connected_mask,
    fit_latency_predictor,
)
from hwdiffnas.space import cell_codes, code_to_cell

__all__ = [
    "DEVICE_VECTOR_DIM",
    "FEATURE_SETS",
    "HELP_REFERENCE_INDICES",
    "LatencyPredictor",
    "LatencyQuantiles",
    "TransferBasis",
    "build_transfer_basis",
    "cell_codes",
    "cell_features",
    "code_to_cell",
    "connected_mask",
    "device_vector",
    "fit_latency_predictor",
    "predicted_quantiles",
    "reference_cells",
    "table_quantiles",
]
