"""Profiler plug-ins: each backend is a sub-package with the same shape.

``profilers/<backend>/__init__.py`` exposes the `hwdiffnas.interfaces.Profiler` subclass named in the entry
point (``[project.entry-points."hwdiffnas.profilers"]``) and ``profilers/<backend>/profiler.py`` implements it.
A profiler declares ``model_format`` (the exporter whose files it loads, or ``"torch"``), reads the input
shape from the model's metadata, warms up, times repeated batch-1 runs with `hwdiffnas.interfaces.time_runs`
and returns `hwdiffnas.interfaces.LatencyStats` with its runtime's name and version.
"""
