"""ONNX exporter (torch.onnx, TorchScript-based by default), validated with onnxruntime."""

from export.onnx.exporter import OPSET, OPSET_DYNAMO, OnnxExporter, torch_to_onnx

__all__ = ["OPSET", "OPSET_DYNAMO", "OnnxExporter", "torch_to_onnx"]
