"""The bad-input corpus: every invalid spec gives its expected located message and exit code 1.

Each file in tests/bad_specs/ is a small spec with one mistake a user really makes. Its first
line says where the error must point and what it must say:

    # expect: LINE:COL: fragment ... another fragment

Fragments separated by `` ... `` must all appear, in that order, in one reported problem
located at LINE:COL. Comment lines right after it of the form ``# not: text`` name text that
no problem at LINE:COL may contain (a suggestion that must not be made). Cases that need binary content or big files (non-UTF-8 bytes, a 20 MB
file, an alias bomb, 5,000 nested brackets, a NUL byte) are generated into a temporary
directory by `GENERATED` below instead of being committed.

Every case is checked twice: in process (`compiler.load` + `compiler.analyze` raise a
`SpecError`; `compiler.cli.main` returns 1), and through the real command in one subprocess
for all files (exit status 1, ``FILE:LINE:COL: message`` lines, no traceback).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import compiler
from compiler import source
from compiler.cli import main

ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = ROOT / "tests" / "bad_specs"
CORPUS = sorted(CORPUS_DIR.glob("*.yaml"))
EXPECT = re.compile(r"^#\s*expect:\s*(\d+):(\d+):\s*(.+?)\s*$")
PROBLEM_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): \S")


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    line: int
    col: int
    fragments: tuple[str, ...]
    absent: tuple[str, ...] = ()

    def matches(self, text: str) -> bool:
        """All fragments appear in `text`, in order, and none of the absent texts."""
        if any(a in text for a in self.absent):
            return False
        pos = 0
        for fragment in self.fragments:
            pos = text.find(fragment, pos)
            if pos < 0:
                return False
            pos += len(fragment)
        return True

    @property
    def expected(self) -> str:
        return f"{self.line}:{self.col}: " + " ... ".join(self.fragments) + "".join(
            f" (without {a!r})" for a in self.absent)


def _parse_expect(first_line: str, where: str) -> tuple[int, int, tuple[str, ...]]:
    m = EXPECT.match(first_line)
    assert m, f"{where}: the first line must be '# expect: LINE:COL: message fragment', got {first_line!r}"
    return int(m.group(1)), int(m.group(2)), tuple(f.strip() for f in m.group(3).split(" ... "))


NOT = re.compile(r"^#\s*not:\s*(.+?)\s*$")


def _corpus_case(path: Path) -> Case:
    first, *rest = path.read_text(encoding="utf-8").split("\n")
    line, col, fragments = _parse_expect(first, path.name)
    absent = []
    for text in rest:
        m = NOT.match(text)
        if not m:
            break
        absent.append(m.group(1))
    return Case(path.stem, path, line, col, fragments, tuple(absent))


# -- generated cases ------------------------------------------------------------------------

HEADER = "blockgraph: 1\nname: generated\ninputs:\n  image: [3, 32, 32]\n"
NODES = "nodes:\n  - {op: conv, out: 16}\n  - {op: gap}\n  - {op: linear, out: 10}\n"


def _non_utf8() -> tuple[bytes, str]:
    # a Latin-1 editor saved "café" as one byte 0xe9: line 2, column 10
    data = b"blockgraph: 1\nname: caf\xe9\ninputs:\n  image: [3, 32, 32]\n" + NODES.encode()
    return data, "2:10: not UTF-8 text: byte 0xe9 cannot be decoded ... UTF-8"


def _huge_file() -> tuple[bytes, str]:
    # a valid spec followed by 20 MB of comment lines (a log pasted by mistake)
    body = (HEADER + NODES).encode()
    filler = (b"# " + b"x" * 98 + b"\n") * 200_000
    data = body + filler
    return data, f"1:1: file is {len(data):,} bytes; the limit is {source.MAX_BYTES:,} bytes"


def _alias_bomb() -> tuple[bytes, str]:
    # "billion laughs": nine levels of nine aliases each would expand to 10**9 values
    lines = ["vars:", "  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    text = HEADER + "\n".join(lines) + "\n" + NODES
    # values repeated: b 90, c 819, d 7,380, e 66,429 (74,718 so far); f's first *e goes past 100,000
    line_f = HEADER.count("\n") + 1 + lines.index(next(x for x in lines if x.startswith("  f:")))
    col = lines[lines.index(next(x for x in lines if x.startswith("  f:")))].index("*e") + 1
    return text.encode(), f"{line_f}:{col}: aliases repeat more than {source.MAX_ALIAS_VALUES:,} values"


def _nested_brackets() -> tuple[bytes, str]:
    # 5,000 nested flow lists: refused at the first one past the depth limit
    prefix = "  deep: "
    line = prefix + "[" * 5000 + "1" + "]" * 5000
    text = HEADER + "vars:\n" + line + "\n" + NODES
    # root map, vars map, then the lists: the list that would sit at depth MAX_DEPTH is refused
    col = len(prefix) + (source.MAX_DEPTH - 2) + 1
    return text.encode(), f"{HEADER.count(chr(10)) + 2}:{col}: nesting deeper than {source.MAX_DEPTH} levels"


def _nul_byte() -> tuple[bytes, str]:
    data = (HEADER + NODES).replace("name: generated", "name: gen\x00erated").encode()
    return data, "2:10: binary data (a NUL byte)"


def _utf16() -> tuple[bytes, str]:
    # Windows "Unicode" (UTF-16 LE with a byte-order mark)
    return (HEADER + NODES).encode("utf-16"), "1:1: not UTF-8 text ... looks like UTF-16"


GENERATED = {
    "gen_non_utf8": _non_utf8,
    "gen_huge_file": _huge_file,
    "gen_alias_bomb": _alias_bomb,
    "gen_nested_brackets": _nested_brackets,
    "gen_nul_byte": _nul_byte,
    "gen_utf16": _utf16,
}


@pytest.fixture(scope="module")
def generated_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("bad_specs")
    for name, make in GENERATED.items():
        data, expect = make()
        (directory / f"{name}.yaml").write_bytes(data)
        (directory / f"{name}.expect").write_text(expect, encoding="utf-8")
    return directory


def _generated_case(directory: Path, name: str) -> Case:
    line, col, fragments = _parse_expect("# expect: " + (directory / f"{name}.expect").read_text("utf-8"), name)
    return Case(name, directory / f"{name}.yaml", line, col, fragments)


CASE_IDS = [p.stem for p in CORPUS] + list(GENERATED)


@pytest.fixture
def case(request, generated_dir) -> Case:
    name = request.param
    if name in GENERATED:
        return _generated_case(generated_dir, name)
    return _corpus_case(CORPUS_DIR / f"{name}.yaml")


def _display(path: Path) -> str:
    """The path as given on the command line (relative to the repository when inside it)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# -- the corpus itself ----------------------------------------------------------------------

def test_corpus_is_large_enough():
    assert len(CORPUS) >= 32, f"only {len(CORPUS)} bad specs in {CORPUS_DIR}"
    for path in CORPUS:
        _corpus_case(path)  # every file states its expectation


# -- in process -----------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASE_IDS, indirect=True)
def test_in_process(case: Case):
    with pytest.raises(compiler.SpecError) as info:
        compiler.analyze(compiler.load(str(case.path)))
    errors = info.value.errors
    assert errors, "a SpecError without problems"
    for problem in errors:
        assert problem.loc.file == str(case.path), f"problem located in another file: {problem}"
        assert problem.loc.line >= 1 and problem.loc.col >= 1, str(problem)
    found = [p for p in errors if (p.loc.line, p.loc.col) == (case.line, case.col) and case.matches(str(p))]
    got = "\n".join(f"  {p.loc.line}:{p.loc.col}: {p.path + ': ' if p.path else ''}{p.message}" for p in errors)
    assert found, f"expected {case.expected}\ngot:\n{got}"


@pytest.mark.parametrize("case", CASE_IDS, indirect=True)
def test_cli_main_exit_code(case: Case, capsys):
    status = main(["validate", str(case.path)])
    captured = capsys.readouterr()
    assert status == 1, f"exit status {status}; stderr:\n{captured.err}"
    assert "ok:" not in captured.out
    assert "internal error" not in captured.err, captured.err


# -- the real command, all files in one subprocess -------------------------------------------

@pytest.fixture(scope="module")
def cli_run(generated_dir) -> subprocess.CompletedProcess:
    paths = [_display(p) for p in CORPUS] + [str(generated_dir / f"{n}.yaml") for n in GENERATED]
    return subprocess.run([sys.executable, "-m", "compiler", "validate", *paths], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cli_batch_status_and_no_traceback(cli_run):
    assert cli_run.returncode == 1, cli_run.stderr[-2000:]
    for stream in (cli_run.stdout, cli_run.stderr):
        assert "Traceback" not in stream, stream[-4000:]
        assert "internal error" not in stream, stream[-4000:]
    assert "ok:" not in cli_run.stdout, cli_run.stdout
    for line in cli_run.stderr.splitlines():
        assert PROBLEM_LINE.match(line), f"not a FILE:LINE:COL: message line: {line!r}"


@pytest.mark.parametrize("case", CASE_IDS, indirect=True)
def test_cli_message(case: Case, cli_run):
    shown = _display(case.path)
    mine = [line for line in cli_run.stderr.splitlines() if line.startswith(shown + ":")]
    assert mine, f"no problem printed for {shown}; stderr:\n{cli_run.stderr[-3000:]}"
    prefix = f"{shown}:{case.line}:{case.col}: "
    assert any(line.startswith(prefix) and case.matches(line[len(prefix):]) for line in mine), (
        f"expected {prefix}{' ... '.join(case.fragments)}\ngot:\n" + "\n".join(mine))


# -- every case is quick and small ------------------------------------------------------------

_MEASURE = r"""
import io, json, sys, time, tracemalloc, resource, contextlib
import compiler
from compiler.cli import main

paths = sys.argv[1:]

def load_analyze(path):
    try:
        compiler.analyze(compiler.load(path))
    except compiler.SpecError:
        pass

def cli(path):
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        main(["validate", path])

load_analyze(paths[0])  # warm up: imports, schemas
cli(paths[0])
result = {}
for path in paths:
    row = {}
    for name, run in (("load_analyze", load_analyze), ("cli", cli)):
        start = time.perf_counter()
        run(path)
        row[name] = time.perf_counter() - start
    tracemalloc.start()
    load_analyze(path)
    cli(path)
    row["traced_peak"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    result[path] = row
# VmHWM, this process's own peak RSS: ru_maxrss would also carry the peak of the pytest process
# that spawned it (Linux keeps the old address space's high-water mark across a vfork + exec)
with open("/proc/self/status") as fh:
    hwm = next(line for line in fh if line.startswith("VmHWM:"))
result["maxrss"] = int(hwm.split()[1]) * 1024  # kB
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def measured(generated_dir) -> dict:
    """Seconds (load + analyze; `validate` through cli.main) and peak Python allocations
    (tracemalloc) of every case, in one fresh process after a warm-up (imports); and that
    process's peak RSS, which bounds what any single case used, native memory included."""
    import json

    paths = [str(p) for p in CORPUS] + [str(generated_dir / f"{n}.yaml") for n in GENERATED]
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *paths], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")
def test_every_case_takes_under_a_second_and_under_a_gib(measured):
    gib = 2**30
    slow = {Path(p).name: row for p, row in measured.items() if p != "maxrss"
            and (row["load_analyze"] >= 1.0 or row["cli"] >= 1.0)}
    assert not slow, f"cases taking a second or more: {slow}"
    big = {Path(p).name: row["traced_peak"] for p, row in measured.items() if p != "maxrss"
           and row["traced_peak"] >= gib}
    assert not big, f"cases allocating a GiB or more: {big}"
    assert measured["maxrss"] < gib, f"the process peaked at {measured['maxrss'] / gib:.2f} GiB"
    assert len(measured) - 1 == len(CORPUS) + len(GENERATED)


# -- the reverse trap: numbers that YAML 1.1 would read as strings ------------------------------

FLOATS = """\
blockgraph: 1
name: floats
inputs:
  image: [3, 8, 8]
vars: {lr: 1e-3, p: 5E-1, big: 1e3, neg: -2.5e-4, plus: +1e-3, dot: .5}
init:
  conv: {weight: {kind: normal, std: 1e-2}}
nodes:
  - {id: c, op: conv, out: 4, act: {kind: leaky_relu, slope: 1e-2}}
  - {id: d, op: dropout, p: 2.5e-1}
  - {id: e, op: dropout, p: $p}
  - {id: f, op: dropout, p: $lr * 100}
  - {id: g, op: gap}
train:
  lr: 1e-3
  weight_decay: 5e-4
"""


def test_exponent_numbers_are_floats_everywhere():
    """`1e-3` (and 5E-1, 1e3, -2.5e-4, +1e-3, .5) is the float a user meant in spec vars, node
    parameters, init policies, the train: section and --var/--set values, not a string (as
    YAML 1.1 and PyYAML's safe_load read `1e-3`)."""
    import yaml

    from compiler.cli import _parse_var
    from compiler.train.config import resolve_config, spec_source

    assert yaml.safe_load("lr: 1e-3") == {"lr": "1e-3"}  # the trap this guards against
    raw = source.parse(FLOATS).data
    assert raw["vars"] == {"lr": 0.001, "p": 0.5, "big": 1000.0, "neg": -0.00025, "plus": 0.001, "dot": 0.5}
    assert all(type(v) is float for v in raw["vars"].values())
    assert type(raw["nodes"][1]["p"]) is float and raw["nodes"][1]["p"] == 0.25
    assert type(raw["nodes"][0]["act"]["slope"]) is float and raw["nodes"][0]["act"]["slope"] == 0.01
    assert type(raw["init"]["conv"]["weight"]["std"]) is float and raw["init"]["conv"]["weight"]["std"] == 0.01
    assert type(raw["train"]["lr"]) is float and raw["train"]["weight_decay"] == 0.0005

    spec = compiler.load(FLOATS)
    assert spec.vars["lr"] == 0.001 and spec.vars["big"] == 1000.0
    model = compiler.build(spec)
    assert model.d.p == 0.25 and model.e.p == 0.5 and model.f.p == pytest.approx(0.1)
    assert model.c.act.negative_slope == 0.01
    assert spec.init.conv.weight.std == 0.01
    cfg = resolve_config([spec_source(spec)])
    assert cfg.lr == 0.001 and cfg.weight_decay == 0.0005
    assert _parse_var("lr=1e-3") == ("lr", 0.001) and _parse_var("wd=5E-4") == ("wd", 0.0005)
    # quoted, it is text (and refused where a number is expected)
    assert source.parse("lr: '1e-3'").data == {"lr": "1e-3"}
