"""NAS-Bench-201's cell space as a search-space plug-in (`NB201Space`): the cell type (`cell`), the exact network
(`network`) and the plug-in (`space`); `hwdiffnas.space` and `hwdiffnas.materialize` re-export the first two
under their historical names."""

from hwdiffnas.spaces.nb201.space import NB201Space

__all__ = ["NB201Space"]
