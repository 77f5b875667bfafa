"""Integer token inputs (`tokens: {shape: [T], dtype: int64}`): the loader reads both forms of
an input with located errors, the graph check holds each op to the dtype it reads, a built
embedding + LSTM computes what the same network written by hand in torch computes, and every
export format takes int64 ids with a dynamic batch (ONNX checked in onnxruntime here)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import compiler
from compiler import SpecError
from compiler.sample_inputs import SampleInput, sample_batch, sample_inputs

TOKENS = """\
blockgraph: 1
name: tokens
vars: {steps: 7}
inputs:
  tokens: {shape: [$steps], dtype: int64}
nodes:
  - {id: emb, op: embedding, vocab: 50, dim: 8}
  - {id: rnn, op: lstm, hidden: 16, returns: last}
  - {id: head, op: linear, out: 3}
"""


def _spec(inputs: str, nodes: str = "  - {id: emb, op: embedding, vocab: 10, dim: 4}\n") -> str:
    return f"blockgraph: 1\nname: t\ninputs:\n{inputs}nodes:\n{nodes}"


def _problem(text: str):
    with pytest.raises(SpecError) as info:
        compiler.analyze(compiler.load(text))
    return info.value.first


# -- the loader ---------------------------------------------------------------------------------

def test_both_forms_of_an_input_give_a_shape_and_a_dtype():
    spec = compiler.load(_spec("  image: [3, 8, 8]\n  tokens: {shape: [$n], dtype: int64}\n  also: {shape: [4]}\n",
                               "  - {op: embedding, in: tokens, vocab: 10, dim: 4}\n"
                               "  - {op: conv, in: image, out: 2}\n  - {op: linear, in: also, out: 2}\n")
                         .replace("inputs:", "vars: {n: 5}\ninputs:"))
    assert spec.inputs == {"image": (3, 8, 8), "tokens": (5,), "also": (4,)}
    assert spec.input_dtypes == {"image": "float32", "tokens": "int64", "also": "float32"}
    assert spec.dtype("tokens") == "int64" and spec.dtype("image") == "float32"


@pytest.mark.parametrize("entry, where, fragments", [
    ("{shape: [5], dtype: int46}", (4, 31), ["inputs.tokens.dtype", "'float32' or 'int64'", "did you mean 'int64'"]),
    ("{shape: [5], dtyp: int64}", (4, 24), ["unknown key 'dtyp'", "did you mean 'dtype'"]),
    ("{shape: ['5'], dtype: int64}", (4, 20), ["positive integer size", "write 5 without quotes"]),
    ("{shape: [0], dtype: int64}", (4, 20), ["positive integer size, got 0"]),
    ("{shape: [], dtype: int64}", (4, 19), ["inputs.tokens.shape", "at least 1"]),
    ("{dtype: int64}", (4, 11), ["missing required key 'shape'"]),
    ("[5, '6']", (4, 15), ["inputs.tokens[1]", "write 6 without quotes"]),
])
def test_a_bad_input_entry_is_a_located_error(entry, where, fragments):
    with pytest.raises(SpecError) as info:
        compiler.load(_spec(f"  tokens: {entry}\n"))
    problem = info.value.first
    assert (problem.loc.line, problem.loc.col) == where, problem
    text = f"{problem.path}: {problem.message}"
    for fragment in fragments:
        assert fragment in text, text


# -- the graph check ----------------------------------------------------------------------------

def test_an_embedding_on_a_float_input_says_how_to_declare_ids():
    problem = _problem(_spec("  x: [12]\n"))
    assert (problem.loc.line, problem.loc.col) == (6, 5)
    assert problem.message == ("node 'emb' (embedding) reads 'x', a float32 input: embedding reads integer "
                               "token ids; declare it `x: {shape: [12], dtype: int64}`")


def test_an_embedding_on_a_node_output_is_refused():
    problem = _problem(_spec("  x: [12]\n", "  - {id: fc, op: linear, out: 12}\n"
                                            "  - {id: emb, op: embedding, vocab: 10, dim: 4}\n"))
    assert problem.loc.line == 7 and "reads 'fc', a node's float32 output" in problem.message


def test_token_ids_read_by_another_op_are_refused_at_that_node():
    problem = _problem(_spec("  tokens: {shape: [12], dtype: int64}\n",
                             "  - {id: emb, op: embedding, vocab: 10, dim: 4}\n"
                             "  - {id: fc, op: linear, in: tokens, out: 4}\n  - {op: add, in: [emb, fc]}\n"))
    assert problem.loc.line == 7
    assert problem.message.startswith("node 'fc' (linear) reads 'tokens', an int64 input of token ids: only "
                                      "embedding reads ids (start with `op: embedding`)")


def test_token_ids_inside_a_user_block_are_checked_where_the_block_reads_them():
    text = ("blockgraph: 1\nname: t\ninputs:\n  tokens: {shape: [6], dtype: int64}\n"
            "blocks:\n  encoder:\n    nodes:\n      - {id: emb, op: embedding, vocab: 20, dim: 4}\n"
            "      - {op: lstm, hidden: 5, returns: last}\n"
            "nodes:\n  - {id: enc, op: encoder}\n")
    assert compiler.analyze(compiler.load(text)).graph.shapes["enc.lstm1"] == (5,)
    problem = _problem(text.replace("{shape: [6], dtype: int64}", "[6]"))
    assert "a float32 input" in problem.message and "declare it `tokens: {shape: [6], dtype: int64}`" in problem.message


# -- example inputs -----------------------------------------------------------------------------

def test_sample_ids_stay_below_the_smallest_vocab_that_reads_them():
    text = _spec("  tokens: {shape: [40], dtype: int64}\n  x: [3]\n",
                 "  - {id: a, op: embedding, in: tokens, vocab: 3, dim: 4}\n"
                 "  - {id: b, op: embedding, in: tokens, vocab: 50, dim: 4}\n"
                 "  - {id: s, op: add, in: [a, b]}\n  - {op: linear, in: x, out: 2}\n") \
        .replace("nodes:", "outputs: [s, linear1]\nnodes:")
    inputs = sample_inputs(compiler.load(text))
    assert inputs == [SampleInput(shape=(40,), id_bound=3), SampleInput(shape=(3,))]
    ids, values = sample_batch(inputs, batch=50)
    assert ids.dtype == torch.int64 and ids.shape == (50, 40) and set(ids.unique().tolist()) == {0, 1, 2}
    assert values.dtype == torch.float32 and values.shape == (50, 3)


# -- the built module against torch -------------------------------------------------------------

class HandWritten(nn.Module):
    """The TOKENS spec written directly in torch."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, tokens):
        _, (h, _) = self.lstm(self.emb(tokens))
        return self.head(h[-1])


@pytest.mark.parametrize("given", ["ids", "none"])
def test_the_built_module_takes_ids_and_equals_the_hand_written_model(given, tmp_path):
    """The weights pair by execution order: on the given ids, or (none given) on the meta batch
    of int64 ids made from the spec file the module records."""
    torch.manual_seed(3)
    reference = HandWritten().eval()
    path = tmp_path / "tokens.yaml"
    path.write_text(TOKENS)
    model = compiler.build(path, seed=0).eval()
    ids = torch.randint(0, 50, (4, 7), generator=torch.Generator().manual_seed(0))
    report = compiler.import_weights(model, reference, inputs=[ids] if given == "ids" else None)
    assert report.complete and report.order == "execution"
    with torch.no_grad():
        torch.testing.assert_close(model(ids), reference(ids), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fmt, suffix", [("onnx", ".onnx"), ("torchscript", ".pt"), ("exported", ".pt2"),
                                         ("python", ".py")])
def test_every_export_format_takes_ids_with_a_dynamic_batch(fmt, suffix, tmp_path):
    from compiler.export import export, load_exported

    path = tmp_path / "tokens.yaml"
    path.write_text(TOKENS)
    model = compiler.build(path, seed=0).eval()  # a module built from a file: export reads its inputs there
    out = export(model, fmt, tmp_path / f"m{suffix}")  # export verifies at batches 1 and 3 itself
    loaded = load_exported(out, fmt)
    if fmt == "python":
        loaded = loaded()
        loaded.load_state_dict(model.state_dict())
        loaded.eval()
    for batch in (1, 5):
        ids = torch.randint(0, 50, (batch, 7), generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            torch.testing.assert_close(loaded(ids), model(ids), rtol=1e-4, atol=1e-5)


def test_onnx_declares_an_int64_input_with_a_dynamic_batch(tmp_path):
    import onnxruntime as ort

    from compiler.export import export

    out = export(compiler.load(TOKENS), "onnx", tmp_path / "m.onnx", verify=False)
    (declared,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).get_inputs()
    assert declared.name == "tokens" and declared.type == "tensor(int64)"
    assert not isinstance(declared.shape[0], int) and declared.shape[1:] == [7]


def test_a_dataset_of_values_is_refused_for_a_token_input():
    from compiler.data import DatasetInfo, check_compatible

    with pytest.raises(SpecError) as info:
        check_compatible(compiler.load(TOKENS), DatasetInfo("mnist", 10, (1, 28, 28), [str(i) for i in range(10)]))
    problem = info.value.first
    assert problem.loc.line == 5 and problem.path == "inputs.tokens"
    assert "input 'tokens' holds int64 token ids, but the dataset 'mnist' gives float32 values" in problem.message


def test_the_summary_says_which_input_holds_ids(tmp_path, capsys):
    from compiler.cli import main

    path = tmp_path / "tokens.yaml"
    path.write_text(TOKENS)
    assert main(["summary", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "tokens: tokens [7] int64"


def test_the_json_summary_and_the_drawing_name_the_dtype():
    analysis = compiler.analyze(compiler.load(TOKENS))
    data = analysis.to_dict()
    assert data["inputs"] == {"tokens": [7]} and data["input_dtypes"] == {"tokens": "int64"}
    from compiler.render import to_graphviz

    assert "input 7 int64>" in to_graphviz(analysis).source  # the label: `input 7 int64` (shapes as the page draws them)
