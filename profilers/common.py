"""Helpers shared by the profiler plug-ins (no runtime imports here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwdiffnas.interfaces import ExportedModel, TorchModel

if TYPE_CHECKING:
    import numpy as np

INPUT_SEED = 1234


def expect(model: object, kind: type, fmt: str, profiler: str) -> None:
    """Raise ``TypeError`` unless ``model`` is a ``kind`` of format ``fmt``."""
    if not isinstance(model, kind) or getattr(model, "format", None) != fmt:
        got = getattr(model, "format", type(model).__name__)
        raise TypeError(f"the {profiler} profiler loads {fmt} models, got {got}")


def profile_input(model: ExportedModel | TorchModel) -> np.ndarray:
    """A fixed random batch-1 input of the model's recorded input shape, float32."""
    import numpy as np

    shape = tuple(model.metadata.input_shape)
    return np.random.default_rng(INPUT_SEED).standard_normal(shape).astype(np.float32)
