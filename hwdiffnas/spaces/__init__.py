"""Search spaces beyond the NAS-Bench-201 cell space (each in its own sub-package)."""
