import pytest
import torch

from hwdiffnas.errors import UserError
from hwdiffnas.materialize import MacroConfig, build_network, dataset_spec, network_info
from hwdiffnas.space import Cell

IDX_9930 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("ops,dataset,params", [
    ([3] * 6, "cifar10", 1_531_546),
    ([0] * 6, "cifar10", 73_306),
])
def test_reference_parameter_counts(ops, dataset, params):
    assert network_info(Cell.from_ops(ops), dataset).params == params


def test_idx_9930_cifar100(nb201_dir):
    import csv

    with open(nb201_dir / "arch_index.csv", newline="") as fh:
        arch = next(r["arch_str"] for r in csv.DictReader(fh) if r["idx"] == "9930")
    assert arch == IDX_9930
    assert network_info(Cell.from_str(arch), "cifar100").params == 1_294_356


def test_macs_of_largest_cell():
    info = network_info(Cell.from_ops([3] * 6), "cifar10")
    assert info.macs == 220_119_680  # NB201 quotes 220.11 MFLOPs for this cell
    assert info.flops == 2 * info.macs


def test_none_edges_are_dropped_not_multiplied():
    net = build_network(Cell.from_ops([3, 0, 0, 0, 1, 0]))
    cell = net.cells[0]
    assert set(cell.edges.keys()) == {"1<-0", "3<-1"}
    graph = torch.jit.trace(net, torch.zeros(1, 3, 32, 32)).inlined_graph
    assert "aten::mul" not in str(graph)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
@pytest.mark.parametrize("ops", [[0] * 6, [3, 3, 3, 0, 0, 0], [1] * 6, [3] * 6, [0, 4, 2, 0, 2, 0]])
def test_every_kind_of_cell_runs(ops, dataset):
    spec = dataset_spec(dataset)
    net = build_network(Cell.from_ops(ops), dataset)
    with torch.no_grad():
        out = net(torch.randn(spec.input_shape))
    assert out.shape == (1, spec.num_classes)
    assert torch.isfinite(out).all()


def test_zeros_rule_keeps_ops_after_dead_node_and_prune_removes_them():
    # node 1 receives only `none`; edge 1->3 (conv) reads it
    c = Cell.from_ops([0, 3, 0, 0, 3, 1])
    zeros = build_network(c, macro=MacroConfig(dead_nodes="zeros")).cells[0]
    pruned = build_network(c, macro=MacroConfig(dead_nodes="prune")).cells[0]
    assert "3<-1" in zeros.edges and "3<-1" not in pruned.edges
    assert set(pruned.edges) == {"2<-0", "3<-2"}


def test_zeros_rule_matches_nb201_function():
    """With BN shifted, a conv reading a zero node adds BN's constant; NB201 computes the same."""
    torch.manual_seed(0)
    c = Cell.from_ops([0, 1, 0, 0, 3, 1])  # node1 = 0; node3 = conv(node1) + node2 ; node2 = x
    cell = build_network(c).cells[0]
    bn = cell.edges["3<-1"][2]
    bn.bias.data.fill_(0.5)
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        y = cell(x)
    torch.testing.assert_close(y, x + 0.5)


def test_bad_dataset_and_rule():
    with pytest.raises(UserError, match="known: cifar10, cifar100, ImageNet16-120"):
        dataset_spec("mnist")
    with pytest.raises(UserError):
        MacroConfig(dead_nodes="drop")
    assert dataset_spec("c100").name == "cifar100"
