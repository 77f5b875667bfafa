"""The documentation stays true: its YAML examples compile, and it covers every op, field and command.

(a) Every fenced ```yaml block in docs/*.md and README.md is checked:
    - a complete spec (top-level `blockgraph:` and `nodes:`) must load, pass the graph check and
      build on the meta device (and on the CPU when it is small, so init policies run too);
    - a fragment (a list of nodes, one node map, or a map of some top-level keys) is wrapped
      into a minimal spec with one input `x` of shape [3, 32, 32] ([64] when the first node
      is `linear`) and must pass the same checks. Comment lines at the top of a block steer it:
        # fragment: input [C, H, W]        the shape of `x`
        # fragment: inputs {a: [3, 8, 8], b: [8]}
        # fragment: vars {classes: 10}
        # error: <text>                    the block must fail with an error containing <text>
        # plugin: <module>[, <module>]     load these plugins first (importable from docs/examples)
        # not checked                      skip the block (use sparingly)
    - a study file (top-level `blockgraph_study:`) must load in both forms (compiler.study.load_study).
(b) blocks.md has a `### \\`op\\`` section for every registered op, with a generated table
    listing every field, a YAML example and a **Paper** or **Source** line naming a year;
    spec-language.md's "## Ops" table links every op there; the generated tables of both pages
    are in sync with the code; the plugin example quoted in blocks.md is docs/examples/
    cbam_plugin.py, and the summary shown for it is what `blockgraph summary` prints; the
    links between the two pages (and README.md's) point at files and headings that exist.
(c) docs/cli.md documents every subcommand and option of `python -m compiler`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import compiler
from compiler.blocks import registry

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SPEC_DOC = DOCS / "spec-language.md"
BLOCKS_DOC = DOCS / "blocks.md"
EXAMPLES = DOCS / "examples"
CLI_DOC = DOCS / "cli.md"
SPEC_KEYS = {"blockgraph", "extends", "name", "reference", "description", "inputs", "vars", "defaults",
             "blocks", "init", "nodes", "outputs", "plugins"}
DEFAULT_NODES = "nodes:\n  - {op: conv, out: 8, norm: batch}\n  - {op: gap}\n  - {op: linear, out: 10}\n"
CPU_BUILD_LIMIT = 2_000_000  # parameters: above this, build on the meta device only


def _doc_files() -> list[Path]:
    return sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]


def _yaml_blocks() -> list[tuple[str, int, str]]:
    """(file, line, text) of every ```yaml block (also indented ones, in list items); blocks
    quoted inside a ```` fence (an example of a docs section or of a docstring) are not
    examples themselves."""
    blocks = []
    for path in _doc_files():
        outer, current, start = None, None, 0
        for number, line in enumerate(path.read_text().splitlines(keepends=True), start=1):
            fence = re.match(r"^(\s*)(`{3,})(\S*)\s*$", line)
            if current is not None:
                if fence and fence.group(2) == "```" and not fence.group(3):
                    blocks.append((path.relative_to(ROOT).as_posix(), start, textwrap.dedent("".join(current))))
                    current = None
                else:
                    current.append(line)
            elif outer is not None:
                if fence and fence.group(2) == outer and not fence.group(3):
                    outer = None
            elif fence and len(fence.group(2)) > 3:
                outer = fence.group(2)
            elif fence and fence.group(3) == "yaml":
                current, start = [], number
    return blocks


BLOCKS = _yaml_blocks()


def _markers(block: str) -> dict[str, str]:
    """The `# key: value` comments at the top of a block."""
    out = {}
    for line in block.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        body = stripped.lstrip("#").strip()
        if body == "not checked":
            out["skip"] = ""
        elif body.startswith("error:"):
            out["error"] = body[len("error:"):].strip()
        elif body.startswith("plugin:"):
            out["plugin"] = body[len("plugin:"):].strip()
        elif body.startswith("fragment:"):
            key, _, value = body[len("fragment:"):].strip().partition(" ")
            out[key] = value.strip()
    return out


def _indent(text: str, n: int) -> str:
    return textwrap.indent(text, " " * n, lambda line: True)


def _as_spec(block: str, markers: dict[str, str]) -> str:
    """The YAML text of a complete spec for a block (itself, or the fragment wrapped)."""
    data = yaml.safe_load(block)
    if isinstance(data, dict) and "blockgraph" in data and "nodes" in data:
        return block
    if "inputs" in markers:
        inputs = markers["inputs"]
    elif "input" in markers:
        inputs = "{x: %s}" % markers["input"]
    else:
        first = data[0] if isinstance(data, list) and data else data
        linear = isinstance(first, dict) and first.get("op") == "linear"
        inputs = "{x: [64]}" if linear else "{x: [3, 32, 32]}"
    header = f"blockgraph: 1\nname: doc_example\ninputs: {inputs}\n"
    if "vars" in markers:
        header += f"vars: {markers['vars']}\n"
    if isinstance(data, list):
        return header + "nodes:\n" + _indent(block, 2)
    if isinstance(data, dict) and "op" in data:
        return header + "nodes:\n  -\n" + _indent(block, 4)
    if isinstance(data, dict) and set(data) <= SPEC_KEYS:
        kept = "".join(line for line in header.splitlines(True) if line.split(":")[0] not in data)
        return kept + block + ("" if "nodes" in data else DEFAULT_NODES)
    raise AssertionError("not a spec, a node, a list of nodes or a map of top-level keys: "
                         "make it one, or mark it '# not checked'")


def _is_study(block: str) -> bool:
    data = yaml.safe_load(block)
    return isinstance(data, dict) and "blockgraph_study" in data


def _compile(text: str) -> None:
    spec = compiler.load(text)
    analysis = compiler.analyze(spec)
    compiler.build(spec, device="meta")
    if analysis.params <= CPU_BUILD_LIMIT:
        compiler.build(spec, device="cpu", seed=0)  # runs the init policies too


def test_docs_have_yaml_examples():
    assert len(BLOCKS) >= 30, "expected the docs to carry their YAML examples"


@pytest.mark.parametrize("where,line,block", BLOCKS, ids=[f"{w}:{n}" for w, n, _ in BLOCKS])
def test_yaml_example(where, line, block, monkeypatch):
    markers = _markers(block)
    if "skip" in markers:
        pytest.skip("marked '# not checked'")
    monkeypatch.chdir(ROOT / "specs")  # `extends: resnet50.yaml` in YAML text is relative to the cwd
    if "plugin" in markers:  # a spec's `plugins:` is only checked: load the plugin as a user would
        monkeypatch.syspath_prepend(str(EXAMPLES))
        compiler.load_plugins([name.strip() for name in markers["plugin"].split(",")])
    if _is_study(block):  # a study file: its paths resolve from specs/ like the spec examples'
        from compiler.study import load_study

        for quick in (False, True):
            try:
                load_study(block, quick=quick)
            except compiler.SpecError as exc:
                pytest.fail(f"{where}:{line}: the study file does not load (quick={quick}):\n{exc}")
        return
    text = _as_spec(block, markers)
    if "error" in markers:
        with pytest.raises(compiler.SpecError) as info:
            _compile(text)
        assert markers["error"] in str(info.value), f"{where}:{line}: expected {markers['error']!r}, got\n{info.value}"
        return
    try:
        _compile(text)
    except compiler.SpecError as exc:
        pytest.fail(f"{where}:{line}: the example does not compile:\n{exc}\n--- as checked:\n{text}")


# -- (b) every op and every field ---------------------------------------------------------------

def _builtin_ops() -> list[str]:
    """Registered ops defined in compiler.blocks (not plugins another test may have loaded)."""
    return [op for op in registry.names() if registry.is_built_in(op)]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _op_section(text: str, op: str) -> str:
    start = text.index(f"### `{op}`")
    end = re.compile(r"^##(#)? ", re.M).search(text, start + 4)
    return text[start: end.start() if end else len(text)]


def _table(section: str, op: str) -> str:
    start = section.index(f"<!-- table: op {op} -->")
    return section[start: section.index("<!-- end table -->", start)]


@pytest.mark.parametrize("op", _builtin_ops())
def test_every_op_is_documented_with_every_field(op):
    text = BLOCKS_DOC.read_text()
    assert f"### `{op}`" in text, f"docs/blocks.md has no section '### `{op}`'"
    section = _op_section(text, op)
    assert f"<!-- table: op {op} -->" in section, f"the `{op}` section has no generated table"
    assert "```yaml" in section, f"the `{op}` section has no YAML example"
    table = _table(section, op)
    for field in registry.get(op).model_fields:
        if field != "op":
            assert f"| `{field}` |" in table, f"field {field!r} of op {op!r} is not in its table"


@pytest.mark.parametrize("op", _builtin_ops())
def test_every_op_names_its_paper(op):
    """A `**Paper**:` (or `**Source**:`, for a layer older than any one architecture) paragraph
    with authors ("et al." or an *italic title*) and a year."""
    section = _op_section(BLOCKS_DOC.read_text(), op)
    match = re.search(r"^\*\*(?:Paper|Source)\*\*: (.+?)(?:\n\n|\Z)", section, re.M | re.S)
    assert match, f"the `{op}` section of docs/blocks.md has no '**Paper**:' or '**Source**:' paragraph"
    cited = match.group(1)
    assert re.search(r"\b(19|20)\d\d\b", cited), f"the paper of `{op}` has no year: {cited!r}"
    assert "et al." in cited or re.search(r"\*[^*\s][^*]*\*", cited), \
        f"the paper of `{op}` names no authors ('et al.') or title (*title*): {cited!r}"


def test_spec_language_lists_every_op():
    text = SPEC_DOC.read_text()
    ops = text[text.index("\n## Ops\n"): text.index("\n## Parameters, MACs")]
    for op in _builtin_ops():
        assert f"[`{op}`](blocks.md#{op})" in ops, f"the Ops table of docs/spec-language.md has no row for `{op}`"
    assert "### `" not in ops, "op sections belong in docs/blocks.md"


@pytest.mark.parametrize("doc", [SPEC_DOC, BLOCKS_DOC], ids=lambda p: p.name)
def test_generated_tables_are_in_sync(doc):
    gen = _gen()
    text = doc.read_text()
    assert gen.render(text, doc.name) == text, \
        f"docs/{doc.name} is out of date: run python docs/gen_reference.py"
    if doc == BLOCKS_DOC:
        assert gen.missing_ops(text) == []


# -- the plugin example of blocks.md ------------------------------------------------------------

def _plugin_section() -> str:
    text = BLOCKS_DOC.read_text()
    start = text.index("## Custom Python blocks (plugins)")
    end = re.compile(r"^## ", re.M).search(text, start + 3)
    return text[start: end.start() if end else len(text)]


def test_plugin_code_in_the_docs_is_the_example_file():
    blocks = re.findall(r"^```python\n(.*?)^```$", _plugin_section(), re.S | re.M)
    assert blocks, "docs/blocks.md shows no ```python block in its plugin section"
    source = (EXAMPLES / "cbam_plugin.py").read_text()
    assert blocks[0].rstrip("\n") == source.rstrip("\n"), \
        "the CBAM code in docs/blocks.md is not docs/examples/cbam_plugin.py: run python docs/gen_reference.py"


def test_plugin_summary_in_the_docs_is_real(tmp_path):
    """The `summary` output shown for the CBAM spec is what the command prints."""
    section = _plugin_section()
    spec = next(b for w, _, b in BLOCKS if w == "docs/blocks.md" and "\nname: cbam_net\n" in b)
    shown = re.search(r"^```text\n\$ PYTHONPATH=docs/examples blockgraph (.+?)\n(.*?)^```$", section, re.S | re.M)
    assert shown, "docs/blocks.md shows no '$ PYTHONPATH=docs/examples blockgraph ...' output"
    args = shown.group(1).split()
    assert args[-1] == "cbam_net.yaml"
    (tmp_path / "cbam_net.yaml").write_text(spec)
    env = {k: v for k, v in os.environ.items() if k != "BLOCKGRAPH_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES), str(ROOT)])
    result = subprocess.run([sys.executable, "-m", "compiler", *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip("\n") == shown.group(2).rstrip("\n"), \
        f"docs/blocks.md shows another summary than the command prints:\n{result.stdout}"


# -- links between the pages ----------------------------------------------------------------------

def _anchors(text: str) -> set[str]:
    """GitHub's ids of the headings of a markdown page (outside code blocks)."""
    anchors, fenced = set(), False
    for line in text.splitlines():
        if re.match(r"^\s*```", line):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"^#{1,6} (.+)$", line)):
            anchors.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("doc", [SPEC_DOC, BLOCKS_DOC, ROOT / "README.md"], ids=lambda p: p.name)
def test_links_resolve(doc):
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if re.match(r"\w+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        assert dest.exists(), f"{doc.name} links to {target}: no such file"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest.read_text()), f"{doc.name} links to {target}: no such heading"


def test_node_keys_and_top_level_keys_are_documented():
    from compiler.spec import NODE_KEYS, SpecDocument

    text = SPEC_DOC.read_text()
    node_table = text[text.index("## Nodes"): text.index("## Wiring")]
    rows = re.findall(r"^\| `([^`]+)` \|", node_table, re.M)
    assert tuple(rows) == NODE_KEYS, "the node-keys table lists the keys of compiler.spec.NodeKeys, in order"
    for key in SpecDocument.model_fields:
        assert f"**`{key}`**" in text, f"top-level key {key!r} has no entry"


# -- (c) every CLI command and option -------------------------------------------------------------

def _help(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "compiler", *args, "--help"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def _subcommands() -> list[str]:
    text = _help()
    choices = re.search(r"\{([\w,-]+)\}", text)
    if choices:
        return choices.group(1).split(",")
    block = text.split("positional arguments:")[1].split("\n\n")[0]
    return re.findall(r"^    (\w[\w-]*)\s", block, re.M)


def _options(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text.split("options:", 1)[1])) - {"-h", "--help"}


def test_every_cli_command_and_option_is_documented():
    doc = CLI_DOC.read_text()
    commands = _subcommands()
    assert {"validate", "summary", "build"} <= set(commands)
    for option in _options(_help()):
        assert f"`{option}" in doc, f"global option {option} is not in docs/cli.md"
    for command in commands:
        assert f"## `{command}`" in doc, f"command {command!r} has no section in docs/cli.md"
        for option in _options(_help(command)):
            assert f"`{option}" in doc, f"option {option} of {command!r} is not in docs/cli.md"
    for code in ("0", "1", "2"):
        assert re.search(rf"\|\s*`?{code}`?\s*\|", doc), f"exit code {code} is not in the exit-code table"
