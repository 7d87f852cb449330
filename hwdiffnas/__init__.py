"""hwdiffnas: hardware-aware neural architecture search on the NAS-Bench-201 cell space."""

__version__ = "0.1.0"
