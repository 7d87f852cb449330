"""hwdiffnas: hardware-aware neural architecture search on the NAS-Bench-201 cell space."""

from pathlib import Path

__version__ = "0.1.0"

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
"""The package's data files (shipped tables, predictor bundle, default generator checkpoint, FBNet tables)."""
