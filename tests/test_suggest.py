"""The one "did you mean" rule (compiler/suggest.py) and the producers that share it."""

from __future__ import annotations

import difflib

import pytest

import compiler
from compiler.spec import SYNONYMS
from compiler.suggest import CUTOFF, closest, did_you_mean
from compiler.train.config import suggest as train_suggest

# (what the user wrote, the options, the suggestion): one typo, a swapped pair, a dropped or
# doubled letter, another case, another framework's name
CLOSE = [
    ("widht", ["width", "classes"], "width"),
    ("stme", ["stem", "fc"], "stem"),
    ("grups", ["groups", "eps"], "groups"),
    ("linaer", ["linear", "conv"], "linear"),
    ("maxpol", ["maxpool", "avgpool"], "maxpool"),
    ("Conv", ["conv", "concat"], "conv"),
    ("OUT", ["out", "k"], "out"),
    ("cifar", ["cifar10", "mnist"], "cifar10"),
    ("trainsize", ["train_size", "val_size"], "train_size"),
    ("kernel_size", ["out", "k", "stride"], "k"),
    ("padding", ["out", "k", "pad"], "pad"),
]
# far pairs: difflib's default cutoff (0.6) would pair every one of them
FAR = [
    ("depth", ["width"]),
    ("activation", ["transition"]),
    ("out", ["cut"]),
    ("scale", ["shape"]),
    ("stem", ["stage"]),
]


@pytest.mark.parametrize("word, options, expected", CLOSE)
def test_close_words_are_suggested(word, options, expected):
    assert closest(word, options, SYNONYMS) == expected
    assert did_you_mean(word, options, SYNONYMS) == f"; did you mean {expected!r}?"


@pytest.mark.parametrize("word, options", FAR)
def test_far_words_are_not(word, options):
    assert difflib.get_close_matches(word, options, n=1, cutoff=0.6), "not a trap for the old rule"
    assert closest(word, options, SYNONYMS) is None
    assert did_you_mean(word, options, SYNONYMS) == ""


def test_the_cutoff_is_the_ratio_of_lower_cased_words():
    # 'stme' -> 'stem' is exactly 0.75 (3 of 4 letters in order): the weakest pair accepted
    assert difflib.SequenceMatcher(None, "stme", "stem").ratio() == CUTOFF
    assert closest("STME", ["stem"]) == "stem"
    assert closest("anything", []) is None
    assert closest("kernel_size", ["out"], SYNONYMS) is None  # a synonym only for an option offered


def _spec_errors(text: str) -> list[str]:
    with pytest.raises(compiler.SpecError) as info:
        compiler.analyze(compiler.load(text))
    return [str(p) for p in info.value.errors]


def test_every_producer_uses_the_rule():
    """Spec vars, node keys, ops, references, train keys and dataset names all refuse the far
    suggestion and make the close one."""
    head = "blockgraph: 1\nname: t\ninputs: {x: [3, 8, 8]}\nvars: {width: 4}\nnodes:\n"
    far = _spec_errors(head + "  - {op: conv, out: $depth}\n  - {op: transform}\n")
    far += _spec_errors(head + "  - {id: stem, op: conv, out: 4}\n  - {op: conv, out: 4, in: stage}\n")
    assert len(far) == 3 and not any("did you mean" in m for m in far), far
    close = _spec_errors(head + "  - {op: conv, out: $widht}\n  - {op: Conv, out: 4}\n  - {op: activation}\n")
    assert "did you mean 'width'?" in close[0] and "did you mean 'conv'?" in close[1]
    assert "did you mean 'act'?" in close[2]  # a synonym, however far the spelling
    assert train_suggest("epohcs") == "; did you mean 'epochs'?"
    assert train_suggest("bs") == "; did you mean 'batch_size'?"
    assert train_suggest("depth") == ""


def test_datasets_use_the_rule():
    from compiler.data import DatasetError, build_dataset

    with pytest.raises(DatasetError, match="did you mean 'mnist'"):
        build_dataset("mnsit", "train")
    with pytest.raises(DatasetError) as info:
        build_dataset("imagenet", "train")
    assert "did you mean" not in str(info.value)
    with pytest.raises(DatasetError) as info:
        build_dataset("shapes", "train", size=8, objcts=2)
    assert "did you mean 'objects'?" in str(info.value)
    with pytest.raises(DatasetError) as info:
        build_dataset("shapes", "train", size=8, colour="red")
    assert "did you mean" not in str(info.value)
