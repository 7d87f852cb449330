"""Exporter plug-ins: each backend is a sub-package with the same shape.

``export/<backend>/__init__.py`` exposes the `hwdiffnas.interfaces.Exporter` subclass named in the entry point
(``[project.entry-points."hwdiffnas.exporters"]``) and ``export/<backend>/exporter.py`` implements it; helper
modules sit beside it. Heavy runtimes are imported inside the methods, so loading a plug-in is cheap.

Every exporter writes files named from ``ModelMetadata.file_stem``, a fixed batch-1 input called ``input``
of the recorded shape and one output ``logits``; the metadata travels inside the file and ``read_metadata``
reads it back; ``run`` executes the written file with the backend's own runtime (used for validation).
"""
