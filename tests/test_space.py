import csv

import numpy as np
import pytest

from hwdiffnas.errors import UserError
from hwdiffnas.space import (
    GRAPH_ADJACENCY,
    GRAPH_NODES,
    INPUT_CLASS,
    NUM_CELLS,
    OPS,
    OUTPUT_CLASS,
    Cell,
    all_cells,
)

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_round_trip_and_ops():
    c = Cell.from_str(ARCH)
    assert c.ops == (3, 3, 4, 1, 3, 1)
    assert c.arch_str == ARCH and str(c) == ARCH
    assert Cell.from_ops(c.op_names) == c
    assert Cell.parse("3,3,4,1,3,1") == c
    assert Cell.parse(ARCH) == c
    assert hash(c) == hash(Cell((3, 3, 4, 1, 3, 1)))


@pytest.mark.parametrize("bad", [
    "", "nor_conv_3x3~0", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "|none~0|+|none~0|+|none~0|none~1|none~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", "1,2,3", "1,2,3,4,5,6",
])
def test_bad_strings_are_user_errors(bad):
    with pytest.raises(UserError):
        Cell.parse(bad)


def test_unknown_op_is_named():
    with pytest.raises(UserError, match="unknown op 'conv'.*nor_conv_3x3"):
        Cell.from_str("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_enumeration():
    cells = list(all_cells())
    assert len(cells) == NUM_CELLS == 15625
    assert len(set(cells)) == NUM_CELLS
    assert sum(not c.is_connected for c in cells) == 341


def test_graph_encoding():
    c = Cell.from_str(ARCH)
    classes, adj = c.graph()
    assert classes.shape == (GRAPH_NODES,) and adj.shape == (GRAPH_NODES, GRAPH_NODES)
    assert classes[0] == INPUT_CLASS and classes[-1] == OUTPUT_CLASS
    assert Cell.from_graph(classes) == c
    # input feeds the three edges leaving node 0; the three edges entering node 3 feed the output
    assert list(np.nonzero(GRAPH_ADJACENCY[0])[0]) == [1, 2, 4]
    assert list(np.nonzero(GRAPH_ADJACENCY[:, 7])[0]) == [4, 5, 6]
    # edge 0->1 feeds edges 1->2 and 1->3; it is a DAG (strictly upper triangular)
    assert list(np.nonzero(GRAPH_ADJACENCY[1])[0]) == [3, 5]
    assert not np.tril(GRAPH_ADJACENCY).any()
    with pytest.raises(UserError):
        Cell.from_graph([0] * 8)


def test_live_edges():
    c = Cell.from_ops(["nor_conv_3x3", "none", "none", "none", "none", "skip_connect"])
    assert not c.is_connected and not any(c.live_edges())
    c = Cell.from_ops(["nor_conv_3x3", "avg_pool_3x3", "none", "none", "skip_connect", "none"])
    assert c.is_connected and c.live_edges() == (True, False, False, False, True, False)


def test_isomorphism_classes():
    keys = {c.isomorphism_key for c in all_cells()}
    assert len(keys) == 14125
    a = Cell.from_ops([3, 1, 0, 2, 4, 0])
    b = Cell.from_ops([1, 3, 0, 2, 0, 4])
    assert a.isomorphism_key == b.isomorphism_key
    assert len(OPS) == 5


def test_canonical_form_reproduces_nats_classes(nb201_dir):
    with open(nb201_dir / "arch_index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == NUM_CELLS
    rep_of_class: dict[str, int] = {}
    for r in rows:
        c = Cell.from_str(r["arch_str"])
        assert c.nats_unique_str == r["nats_unique_str"], r["arch_str"]
        assert c.is_connected == (r["connected"] == "True")
        rep_of_class.setdefault(c.nats_unique_str, int(r["iso_rep_idx"]))
        assert rep_of_class[c.nats_unique_str] == int(r["iso_rep_idx"])
    assert len(rep_of_class) == 6466


def test_neighbourhood_counts_and_distances():
    from hwdiffnas.space import neighbourhood

    c = Cell.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    assert neighbourhood(c, 0) == [c]
    one, two = neighbourhood(c, 1), neighbourhood(c, 2)
    assert one[0] == c and len(one) == 1 + 6 * 4 and len(set(one)) == len(one)
    assert len(two) == 1 + 6 * 4 + 15 * 16 and set(one) <= set(two)
    dist = [sum(a != b for a, b in zip(c.ops, x.ops)) for x in two]
    assert max(dist) == 2 and dist == sorted(dist)
