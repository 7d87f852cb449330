"""LiteRT/TFLite exporters: fp32 (direct NB201 converter or litert-torch) and int8 post-training quantized,
validated with the LiteRT interpreter."""

from export.tflite.exporter import (
    CONVERTERS,
    Int8Drift,
    TfliteExporter,
    TfliteInt8Exporter,
    TfliteTorchExporter,
    convert_fp32,
    int8_drift,
    int8_path_of,
    interpreter,
    quantize_int8,
    read_tflite_metadata,
    run_rows,
)

__all__ = ["CONVERTERS", "Int8Drift", "TfliteExporter", "TfliteInt8Exporter", "TfliteTorchExporter", "convert_fp32",
           "int8_drift", "int8_path_of", "interpreter", "quantize_int8", "read_tflite_metadata", "run_rows"]
