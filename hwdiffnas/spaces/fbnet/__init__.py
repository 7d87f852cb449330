"""HW-NAS-Bench's FBNet macro space: 22 searchable layers, each one of 9 MobileNet-class blocks."""

from hwdiffnas.spaces.fbnet.arch import BLOCKS, NUM_LAYERS, FBNetArch

__all__ = ["BLOCKS", "NUM_LAYERS", "FBNetArch"]
