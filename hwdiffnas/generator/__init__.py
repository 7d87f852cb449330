"""Conditional discrete graph diffusion over NB201 cells (DiGress family; DiNAS, improved).

`diffusion` holds the maths, `denoiser` the graph transformer (torch), `conditions` the one condition builder
shared by training and sampling, `model` the generator with checkpoints and guided sampling, `train` the
training loop. Only numpy is imported here; torch loads when a model is built.
"""

from __future__ import annotations

from pathlib import Path

from hwdiffnas import ASSETS_DIR

ASSET_NAME = "generator_default.safetensors"


def default_checkpoint_path() -> Path:
    """The checkpoint shipped inside the package (``hwdiffnas/assets/``)."""
    return ASSETS_DIR / ASSET_NAME
