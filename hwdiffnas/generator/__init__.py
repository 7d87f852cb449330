"""Conditional discrete graph diffusion over a search space's encoding (DiGress family; DiNAS, improved).

`diffusion` holds the maths, `denoiser` the graph transformer (torch), `conditions` the one condition builder
shared by training and sampling, `model` the generator with checkpoints and guided sampling, `train` the
training loop. Only numpy is imported here; torch loads when a model is built.
"""

from __future__ import annotations

from pathlib import Path

from hwdiffnas import ASSETS_DIR

ASSET_NAME = "generator_default.safetensors"
SPACE_ASSETS = {"nb201": ASSET_NAME, "fbnet": "generator_fbnet.safetensors"}
"""The checkpoint shipped for each space that has one."""


def default_checkpoint_path(space: str = "nb201") -> Path:
    """The checkpoint shipped inside the package (``hwdiffnas/assets/``) for ``space`` (its file name is
    ``generator_<space>.safetensors`` for spaces without one listed in `SPACE_ASSETS`)."""
    return ASSETS_DIR / SPACE_ASSETS.get(space, f"generator_{space}.safetensors")
