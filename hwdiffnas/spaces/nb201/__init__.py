"""NAS-Bench-201's cell space as a search-space plug-in (`NB201Space`); the cell type and the network live in
`hwdiffnas.space` and `hwdiffnas.materialize`."""

from hwdiffnas.spaces.nb201.space import NB201Space

__all__ = ["NB201Space"]
