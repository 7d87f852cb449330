"""OpenVINO IR exporter (via the ONNX exporter's graph), validated with the OpenVINO CPU plug-in in f32."""

from export.openvino.exporter import OpenVinoExporter

__all__ = ["OpenVinoExporter"]
