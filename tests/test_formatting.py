"""The one home of number formatting: hand-computed texts for counts and sizes."""

from compiler.blocks.registry import is_built_in
from compiler.formatting import human_bytes, human_count


def test_counts_take_a_decimal_suffix_above_a_thousand():
    assert human_count(512) == "512"
    assert human_count(1234567) == "1.23M"
    assert human_count(2_500_000_000, " MACs") == "2.50G MACs"
    assert human_count(999) == "999" and human_count(1000) == "1.00K"


def test_sizes_take_binary_units():
    assert human_bytes(256) == "256 B"
    assert human_bytes(1024) == "1.00 KiB"
    assert human_bytes(3 * 2**20 + 2**19) == "3.50 MiB"
    assert human_bytes(5 * 2**40) == "5.00 TiB"


def test_built_in_ops_are_the_ones_shipped_with_blockgraph():
    class Plugin:  # a class from outside the package, as a plugin's would be
        pass

    assert is_built_in("conv") and not is_built_in("no_such_op") and not is_built_in(Plugin)
