"""compiler.source: YAML text -> located values, safely.

Every test runs against both parser backends (libyaml and PyYAML's pure-Python parser) where
both are installed: the located tree and the messages must not depend on which one is used.
"""

from __future__ import annotations

import math
import string
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import source
from compiler.errors import Loc, SpecError
from compiler.source import parse

BACKENDS = ["libyaml", "python"] if source._CParser is not None else ["python"]


@pytest.fixture(params=BACKENDS, autouse=True)
def backend(request, monkeypatch):
    if request.param == "python":
        monkeypatch.setattr(source, "_CParser", None)
    return request.param


def error(text, **kwargs) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(text, **kwargs)
    assert len(info.value.errors) == 1
    return info.value


def where(exc: SpecError) -> tuple[int, int]:
    loc = exc.first.loc
    return loc.line, loc.col


# -- locations ------------------------------------------------------------------------------

SPEC = """\
blockgraph: 1
name: tiny
inputs:
  image: [3, 32, 32]
nodes:
  - {id: c1, op: conv, out: 16}
  - op: linear
    out: 10
"""


def test_values_and_locations_of_nested_values_and_keys():
    doc = parse(SPEC, file="tiny.yaml")
    assert doc.data == {"blockgraph": 1, "name": "tiny", "inputs": {"image": [3, 32, 32]},
                        "nodes": [{"id": "c1", "op": "conv", "out": 16}, {"op": "linear", "out": 10}]}
    assert doc.loc(()) == Loc("tiny.yaml", 1, 1)
    assert doc.loc(("name",)) == Loc("tiny.yaml", 2, 7)
    assert doc.loc(("inputs", "image")) == Loc("tiny.yaml", 4, 10)
    assert doc.loc(("inputs", "image", 2)) == Loc("tiny.yaml", 4, 18)
    assert doc.loc(("nodes", 0)) == Loc("tiny.yaml", 6, 5)
    assert doc.loc(("nodes", 0, "out")) == Loc("tiny.yaml", 6, 29)
    assert doc.loc(("nodes", 1)) == Loc("tiny.yaml", 7, 5)
    assert doc.loc(("nodes", 1, "out")) == Loc("tiny.yaml", 8, 10)
    # keys have their own locations
    assert doc.key_loc(("inputs", "image")) == Loc("tiny.yaml", 4, 3)
    assert doc.key_loc(("nodes", 0, "out")) == Loc("tiny.yaml", 6, 24)
    assert doc.key_loc(("nodes", 1, "out")) == Loc("tiny.yaml", 8, 5)
    assert doc.key_loc(("nodes",)) == Loc("tiny.yaml", 5, 1)


def test_loc_falls_back_to_the_nearest_located_parent():
    doc = parse(SPEC)
    assert doc.loc(("nodes", 1, "missing", 3)) == doc.loc(("nodes", 1))
    assert doc.loc(("nope",)) == doc.loc(())
    assert doc.key_loc(("nodes", 0, "k")) == doc.loc(("nodes", 0))
    assert doc.file == "<string>" and doc.text == SPEC


def test_columns_count_characters_not_bytes():
    doc = parse("name: \"é€\"\nout: [ü, 5]\n")
    assert doc.data == {"name": "é€", "out": ["ü", 5]}
    assert doc.loc(("out", 1)) == Loc("<string>", 2, 10)


def test_bytes_and_paths(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes("\ufeffa: 1\n".encode("utf-8"))  # a byte-order mark is accepted
    doc = parse(path)
    assert doc.data == {"a": 1} and doc.file == str(path)
    assert parse(b"a: [1]\n").data == {"a": [1]}
    assert parse(path, file="shown.yaml").loc(("a",)).file == "shown.yaml"


def test_unreadable_path_is_located(tmp_path):
    exc = error(tmp_path / "absent.yaml")
    assert where(exc) == (1, 1) and "cannot read file" in exc.first.message
    exc = error(tmp_path)  # a directory
    assert "cannot read file" in exc.first.message


# -- scalars: YAML 1.2 core schema --------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("1e-3", 0.001), ("1.5e3", 1500.0), ("-2.5", -2.5), (".5", 0.5), ("1.", 1.0), ("+3", 3),
    ("42", 42), ("-7", -7), ("1_000", 1000), ("0x10", 16), ("0xff", 255), ("0o17", 15),
    ("true", True), ("False", False), ("TRUE", True), ("null", None), ("~", None), ("", None),
    ("no", "no"), ("yes", "yes"), ("on", "on"), ("off", "off"), ("y", "y"), ("n", "n"), ("No", "No"),
    ("'1'", "1"), ('"true"', "true"), ("0b11", "0b11"), ("1:30", "1:30"), ("2001-12-14", "2001-12-14"),
    ("relu", "relu"), ("$width * 2", "$width * 2"), ("!!str 5", "5"), ("!!int '7'", 7),
    ("!!float 2", 2.0), ("!!bool true", True), ("!!null ''", None), ("! 12", "12"),
])
def test_core_schema_scalars(text, value):
    got = parse(f"v: {text}\n").data["v"]
    assert got == value and type(got) is type(value)


def test_infinities_and_nan():
    data = parse("a: .inf\nb: -.inf\nc: +.INF\nd: .nan\ne: .NaN\n").data
    assert data["a"] == math.inf and data["b"] == -math.inf and data["c"] == math.inf
    assert math.isnan(data["d"]) and math.isnan(data["e"])


def test_explicit_tag_with_a_bad_value_is_located():
    exc = error("a: 1\nb: !!int abc\n")
    assert where(exc) == (2, 4)
    assert "'abc' is not a valid !!int" in exc.first.message and exc.first.path == "b"


def test_block_scalars_and_multiline_strings():
    data = parse("a: |\n  line1\n  line2\nb: >\n  folded\n  text\n").data
    assert data == {"a": "line1\nline2\n", "b": "folded text\n"}


# -- merge keys -----------------------------------------------------------------------------

def test_merge_key_with_override_and_locations():
    text = ("base: &base {k: 3, act: relu, norm: batch}\n"
            "node:\n"
            "  <<: *base\n"
            "  act: gelu\n")
    doc = parse(text)
    assert doc.data["node"] == {"act": "gelu", "k": 3, "norm": "batch"}
    assert doc.loc(("node", "act")) == Loc("<string>", 4, 8)   # the explicit key wins
    assert doc.loc(("node", "k")) == Loc("<string>", 1, 17)    # merged: located where it is written


def test_merge_list_earlier_maps_win():
    text = "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc: {<<: [*a, *b], z: 3}\n"
    assert parse(text).data["c"] == {"x": 1, "y": 1, "z": 3}


def test_merge_of_inline_map_and_refusals():
    assert parse("c: {<<: {x: 1}, y: 2}\n").data["c"] == {"x": 1, "y": 2}
    exc = error("a: &a [1, 2]\nc:\n  <<: *a\n")
    assert where(exc) == (3, 7) and "merge key '<<' takes a map" in exc.first.message
    exc = error("a: <<\n")
    assert "only allowed as a key" in exc.first.message


# -- refusals -------------------------------------------------------------------------------

def test_duplicate_key_names_the_first_line():
    exc = error("nodes:\n  - op: conv\n    out: 16\n    k: 3\n    out: 32\n")
    assert where(exc) == (5, 5)
    assert exc.first.message == "duplicate key 'out' (first defined at line 3)"
    assert exc.first.path == "nodes[0].out"
    exc = error("a: {b: 1, c: 2, b: 3}\n")
    assert where(exc) == (1, 17) and "duplicate key 'b' (first defined at line 1)" in exc.first.message


@pytest.mark.parametrize("text, shown", [
    ("a: !!python/object/apply:os.system ['echo hi']\n", "!!python/object/apply:os.system"),
    ("a: !!python/name:os.system\n", "!!python/name:os.system"),
    ("a: !!python/object:collections.OrderedDict {}\n", "!!python/object:collections.OrderedDict"),
    ("a: !custom 3\n", "!custom"),
    ("a: !!binary aGVsbG8=\n", "!!binary"),
    ("a: !!timestamp 2001-12-14\n", "!!timestamp"),
    ("a: !!set {x: null}\n", "!!set"),
    ("a: !!omap [x: 1]\n", "!!omap"),
])
def test_tags_are_refused(text, shown):
    exc = error(text)
    assert where(exc) == (1, 4)
    assert exc.first.message.startswith(f"tag {shown!r} is not allowed")
    assert exc.first.path == "a"


def test_tags_are_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(SpecError):
        parse(f"a: !!python/object/apply:os.system ['touch {marker}']\n")
    assert not marker.exists()


def test_size_limit(tmp_path):
    big = "# " + "x" * source.MAX_BYTES + "\na: 1\n"
    exc = error(big)
    assert where(exc) == (1, 1) and "the limit is 2,000,000" in exc.first.message
    exc = error(big.encode())
    assert "bytes; the limit is 2,000,000 bytes" in exc.first.message
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * 20_000_000)
    exc = error(path)
    assert exc.first.message == f"file is {20_000_005:,} bytes; the limit is {source.MAX_BYTES:,} bytes"


def test_alias_bomb_is_refused_quickly_with_a_location():
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    exc = error("\n".join(lines) + "\n")
    elapsed = time.perf_counter() - start
    assert "aliases repeat more than 100,000 values" in exc.first.message
    # values repeated so far: b 90, c 819, d 7,380, e 66,429; f's first *e passes the limit
    assert where(exc) == (6, 8)
    assert elapsed < 20, f"took {elapsed:.1f} s"  # unbounded, it would take minutes and gigabytes


def test_aliases_within_the_limit_are_copies():
    doc = parse("a: &a {k: 3}\nb: *a\nc: [*a, *a]\n")
    assert doc.data == {"a": {"k": 3}, "b": {"k": 3}, "c": [{"k": 3}, {"k": 3}]}
    assert doc.data["b"] is not doc.data["a"]  # no shared mutable values
    assert doc.loc(("b",)) == Loc("<string>", 2, 4)  # the alias is located where it is used
    assert doc.loc(("b", "k")) == Loc("<string>", 1, 11)  # its contents where they are written


def test_self_referencing_alias():
    exc = error("vars:\n  a: &a [1, *a]\n")
    assert where(exc) == (2, 13)
    assert exc.first.message == "alias *a refers to the value that contains it (&a at line 2, column 6)"
    assert exc.first.path == "vars.a[1]"
    exc = error("m: &m {x: *m}\n")
    assert where(exc) == (1, 11) and "refers to the value that contains it" in exc.first.message


def test_undefined_and_duplicate_anchors():
    exc = error("a: *nowhere\n")
    assert where(exc) == (1, 4) and "alias *nowhere names no anchor" in exc.first.message
    exc = error("a: &x 1\nb: &x 2\n")
    assert where(exc) == (2, 4) and "anchor &x is defined twice (first at line 1, column 4)" in exc.first.message


@pytest.mark.parametrize("shape", ["flow_list", "flow_map", "block_list", "block_map"])
def test_deep_nesting_is_refused_at_the_limit(shape):
    n, limit = 5000, source.MAX_DEPTH
    if shape == "flow_list":
        text, at = "x: " + "[" * n + "]" * n + "\n", (1, 4 + limit - 1)
    elif shape == "flow_map":
        text, at = "x: " + "{a: " * n + "1" + "}" * n + "\n", (1, 4 + 4 * (limit - 1))
    elif shape == "block_list":
        text, at = "x:\n" + "- " * n + "1\n", (2, 1 + 2 * (limit - 1))
    else:  # indentation grows with depth: 200 levels are enough
        text, at = "".join(" " * i + "k:\n" for i in range(200)) + " " * 200 + "v\n", (limit + 1, limit + 1)
    start = time.perf_counter()
    exc = error(text)
    assert exc.first.message == f"nesting deeper than {limit} levels"
    assert where(exc) == at
    assert time.perf_counter() - start < 20


def test_nesting_up_to_the_limit_is_fine():
    depth = source.MAX_DEPTH - 1  # the root map plus 63 lists
    data = parse("x: " + "[" * depth + "]" * depth + "\n").data
    for _ in range(depth):
        data = data["x"] if isinstance(data, dict) else data[0] if data else data
    assert data == []


def test_nul_and_control_characters():
    exc = error("a: 1\nname: ab\x00c\n")
    assert where(exc) == (2, 9) and exc.first.message == "binary data (a NUL byte) in a YAML file"
    exc = error(b"a: 1\nb: x\x07\n")
    assert where(exc) == (2, 5) and "U+0007 (a control character)" in exc.first.message


def test_non_utf8_is_located():
    exc = error(b"a: 1\nname: caf\xe9\n")
    assert where(exc) == (2, 10)
    assert exc.first.message.startswith("not UTF-8 text: byte 0xe9 cannot be decoded")
    exc = error("x: é\ny: ö".encode() + b"\xff\n")  # the column counts characters, not bytes
    assert where(exc) == (2, 5)
    exc = error("a: 1\n".encode("utf-16"))
    assert where(exc) == (1, 1) and "looks like UTF-16" in exc.first.message


@pytest.mark.parametrize("text", ["", "   \n\n", "# only a comment\n", "\ufeff"])
def test_empty_document(text):
    exc = error(text, file="e.yaml")
    assert str(exc.first).startswith("e.yaml:1:1: the file is empty")


def test_explicit_empty_document_is_null():
    assert parse("---\n").data is None
    assert parse("--- # nothing\n...\n").data is None


def test_multiple_documents_are_refused_at_the_second():
    exc = error("a: 1\n---\nb: 2\n")
    assert where(exc) == (2, 1) and "one YAML document" in exc.first.message
    exc = error("---\na: 1\n...\n---\nb: 2\n")
    assert where(exc) == (4, 1)


@pytest.mark.parametrize("text, at, fragment", [
    ("inputs:\n  image: [3, 32, 32\nnodes: []\n", (2, 10), "this '[' is not closed"),
    ("a: {b: 1\n", (1, 4), "this '{' is not closed"),
    ("a: 'abc\nb: 2\n", (1, 4), "this quoted string is not closed"),
    ("a:\n\tb: 1\n", (2, 1), "a tab character here; YAML indents with spaces only"),
    ("a: b: c\n", (1, 5), "': ' cannot appear here"),
    ("a: @b\n", (1, 4), "'@' cannot start a value here; put the value in quotes"),
    ("- a\nb: 1\n", (2, 1), "invalid YAML"),
])
def test_invalid_yaml_is_located(text, at, fragment):
    exc = error(text)
    assert where(exc) == at
    assert exc.first.message.startswith("invalid YAML") and fragment in exc.first.message


def test_keys_must_be_scalars():
    exc = error("? [a, b]\n: 1\n")
    assert where(exc) == (1, 3) and "a key must be a plain name" in exc.first.message


def test_non_string_keys_are_their_text():
    assert parse("1: a\ntrue: b\n~: c\n").data == {"1": "a", "true": "b", "~": "c"}


# -- hypothesis: never anything but a value or a located SpecError --------------------------

def _parse_or_located_error(text) -> None:
    try:
        parse(text)
    except SpecError as exc:
        assert exc.errors
        for problem in exc.errors:
            assert isinstance(problem.loc, Loc) and problem.loc.line >= 1 and problem.loc.col >= 1


YAMLISH = st.text(alphabet=string.printable + "é€\x85\u2028", max_size=200)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(YAMLISH)
def test_random_text_parses_or_gives_a_located_error(text):
    _parse_or_located_error(text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a:", " ", "  ", "- ", "[", "]", "{", "}", ",", ": ", "\n", "&x ", "*x", "<<: ",
                                 "'", '"', "!!int ", "!t ", "#", "---\n", "1", "-1.5e3", "? ", "|\n", "\t", "%"]),
                max_size=60).map("".join))
def test_yaml_token_soup_parses_or_gives_a_located_error(text):
    _parse_or_located_error(text)


NAMES = st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=8)
SCALARS = (st.none() | st.booleans() | st.integers(-(2**62), 2**62)
           | st.floats(allow_nan=False, allow_infinity=False) | NAMES)
TREES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=4),
                     max_leaves=25)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TREES, st.booleans())
def test_dumped_structures_round_trip(tree, flow):
    text = yaml.safe_dump({"root": tree}, default_flow_style=flow, allow_unicode=True)
    doc = parse(text)
    assert doc.data == {"root": tree}
    assert all(loc.line >= 1 and loc.col >= 1 for loc in doc.marks.values())
