"""The generated sequence datasets: the adding problem and the shapes read row by row."""

from __future__ import annotations

import pytest
import torch

from compiler.data import DatasetError, build_dataset, check_compatible
from compiler.errors import SpecError


def test_adding_items_follow_the_definition():
    dataset, info = build_dataset("adding", "train", train_size=500, steps=40)
    assert (info.name, info.task, info.shape, info.num_classes) == ("adding", "regression", (40, 2), 0)
    assert len(dataset) == 500
    for index in (0, 17, 499):
        x, y = dataset[index]
        assert x.shape == (40, 2) and x.dtype == torch.float32 and y.shape == (1,)
        values, markers = x[:, 0], x[:, 1]
        marked = torch.nonzero(markers).flatten().tolist()
        assert len(marked) == 2 and marked[0] < 20 <= marked[1], "one marker in each half"
        assert set(markers.unique().tolist()) == {0.0, 1.0}
        assert ((0 <= values) & (values < 1)).all()
        assert y.item() == pytest.approx(values[marked].sum().item(), abs=1e-6)


def test_adding_baseline_is_the_variance_of_two_uniforms():
    dataset, _ = build_dataset("adding", "train", train_size=20_000, steps=10)
    targets = torch.stack([dataset[i][1] for i in range(len(dataset))])
    # Predicting the mean sum 1.0 costs Var(U(0,1) + U(0,1)) = 2/12.
    assert ((targets - 1.0) ** 2).mean().item() == pytest.approx(2 / 12, abs=0.005)


def test_adding_is_a_function_of_seed_and_split():
    a, _ = build_dataset("adding", "train", train_size=50, steps=12, seed=3)
    b, _ = build_dataset("adding", "train", train_size=50, steps=12, seed=3)
    c, _ = build_dataset("adding", "val", val_size=50, steps=12, seed=3)
    d, _ = build_dataset("adding", "train", train_size=50, steps=12, seed=4)
    assert torch.equal(a[7][0], b[7][0])
    assert not torch.equal(a[7][0], c[7][0]) and not torch.equal(a[7][0], d[7][0])


@pytest.mark.parametrize("options, message", [
    ({"steps": 1}, "steps is the sequence length"),
    ({"stepz": 5}, "did you mean 'steps'?"),
    ({"channels": 3}, "has no option 'channels'"),
    ({"size": 32}, "has no image size"),
])
def test_adding_refuses_bad_options(options, message):
    with pytest.raises(DatasetError, match=message):
        build_dataset("adding", "train", **options)


def test_shapes_rows_are_the_image_rows_side_by_side():
    images, _ = build_dataset("shapes", "val", val_size=6)
    rows, info = build_dataset("shapes", "val", val_size=6, layout="rows")
    assert info.shape == (32, 96) and info.task == "classification" and info.num_classes == 6
    image, label = images[4]
    sequence, same_label = rows[4]
    assert same_label == label and sequence.shape == (32, 96)
    for row in (0, 13, 31):  # step h = channel 0's row h, then channel 1's, then channel 2's
        assert torch.equal(sequence[row], torch.cat([image[0, row], image[1, row], image[2, row]]))


def test_shapes_rows_only_for_classification():
    with pytest.raises(DatasetError, match="layout 'rows'"):
        build_dataset("shapes", "val", val_size=4, layout="rows", task="segmentation")
    with pytest.raises(DatasetError, match="layout must be"):
        build_dataset("shapes", "val", val_size=4, layout="columns")


SPEC = """blockgraph: 1
name: flat_adding
inputs:
  seq: [100, 2]
nodes:
  - {id: flat, op: flatten}
  - {id: head, op: linear, out: 3}
"""


def test_a_spec_that_does_not_fit_the_adding_problem_is_told_where():
    _, info = build_dataset("adding", "val", val_size=4, steps=50)
    with pytest.raises(SpecError) as caught:
        check_compatible(SPEC, info)
    messages = [(p.loc.line, p.message) for p in caught.value.errors]
    assert messages[0][0] == 4 and "gives [50, 2], the spec takes [100, 2]" in messages[0][1]
    assert "steps=100" in messages[0][1]
    assert messages[1][0] == 7 and "is [3] per sample" in messages[1][1] and "out: 1" in messages[1][1]
    check_compatible(SPEC.replace("out: 3", "out: 1"), build_dataset("adding", "val", val_size=4)[1])


def test_shapes_rows_in_batches_are_rows_too():
    # the DataLoader asks for a batch at once (__getitems__): each item is still a sequence
    rows, _ = build_dataset("shapes", "val", val_size=6, layout="rows")
    batch = rows.__getitems__([1, 4])
    assert [tuple(x.shape) for x, _ in batch] == [(32, 96), (32, 96)]
    assert torch.equal(batch[1][0], rows[4][0]) and batch[1][1] == rows[4][1]
    loader = torch.utils.data.DataLoader(rows, batch_size=3)
    assert next(iter(loader))[0].shape == (3, 32, 96)


def test_the_input_of_a_spec_says_what_it_needs_of_the_data():
    from compiler.data import input_options

    assert input_options("shapes", (3, 32, 32)) == {"size": 32}
    assert input_options("cifar10", (3, 24, 40)) == {"size": [24, 40]}
    assert input_options("adding", (50, 2)) == {"steps": 50}
    assert input_options("shapes", (16, 48)) == {"layout": "rows", "size": [16, 16]}
    assert input_options("shapes", (16, 16), {"channels": 1}) == {"layout": "rows", "size": [16, 16]}
    assert input_options("shapes", (16, 48), {"layout": "image"}) == {}  # the run's own choice wins
