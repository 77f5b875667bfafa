"""Static shapes agree with reality: for every spec in specs/, the shape `analyze` infers for
each node equals the shape a real forward pass produces (batch dimension prepended; after a
region op such as roi_align the batch axis holds R regions per image, `Graph.regions`).

Two observers, because a spec node is not always one module call:
- forward hooks on `gm.get_submodule(node_id)` see nodes whose module is called whole;
- a `torch.fx.Interpreter` sees every fx node, including plain function calls (pooling,
  add, concat, flatten) and the inlined children of a fused `conv` Sequential; the last fx
  node emitted for a spec node is that node's output.

A node that emits no fx node at all (`identity`, an identity `shortcut`) passes its first
input through: it must own no module, and its run-time shape is that input's.
"""

from __future__ import annotations

import math

import pytest
import torch

import compiler
from compiler.detection.proposals import random_boxes
from support import OutputRecorder

BATCH = 1


def _inputs(spec, batch: int, seed: int = 0, boxes: tuple[str, ...] = ()) -> list[torch.Tensor]:
    """Random inputs; a boxes input (read by roi_align & co.) gets valid boxes inside the image."""
    gen = torch.Generator().manual_seed(seed)
    image = next(s for n, s in spec.inputs.items() if n not in boxes)
    return [random_boxes(batch, shape[0], image, generator=gen) if name in boxes
            else torch.randn(batch, *shape, generator=gen) for name, shape in spec.inputs.items()]


def _rows(graph, node_id: str) -> int:
    """Batch rows of a node's output: BATCH, times R boxes per image after a region op."""
    return BATCH * graph.regions.get(node_id, 1)


@pytest.fixture(scope="module")
def observed(spec_path):
    """What one forward pass of a spec's model shows, built and run once per spec."""
    spec = compiler.load(spec_path)
    analysis = compiler.analyze(spec)
    gm = compiler.build(spec, seed=0).eval()
    hooked: dict[str, tuple[int, ...]] = {}
    handles = []
    for node in spec.nodes:
        try:
            module = gm.get_submodule(node.id)
        except AttributeError:
            continue  # a stateless node: no module of its own

        def hook(_module, _args, output, node_id=node.id):
            assert isinstance(output, torch.Tensor), (node_id, type(output))
            hooked[node_id] = tuple(output.shape)

        handles.append(module.register_forward_hook(hook))
    recorder = OutputRecorder(gm)
    inputs = _inputs(spec, BATCH, boxes=tuple(analysis.graph.boxes))
    try:
        with torch.inference_mode():
            output = recorder.run(*inputs)
    finally:
        for h in handles:
            h.remove()
    # pass-through nodes (no fx node of their own) take the run-time shape of their first input
    runtime = {name: tuple(x.shape) for name, x in zip(spec.inputs, inputs)}
    runtime.update(recorder.shapes)
    passthrough = []
    graph = analysis.graph
    for node_id in graph.order:
        if node_id not in recorder.shapes:
            first = graph.inputs[node_id][0]
            passthrough.append(node_id)
            if first in runtime:
                runtime[node_id] = runtime[first]
    return {"spec": spec, "analysis": analysis, "gm": gm, "fx": recorder.shapes, "hooked": hooked,
            "runtime": runtime, "passthrough": passthrough, "output": output}


def test_spec_paths_cover_the_zoo(spec_paths):
    assert {"default.yaml", "vgg11.yaml", "vgg16.yaml", "vgg16_bn.yaml"} <= {p.name for p in spec_paths}


def test_every_node_is_observed(observed):
    spec, gm, graph = observed["spec"], observed["gm"], observed["analysis"].graph
    assert set(observed["fx"]) <= {n.id for n in spec.nodes}
    assert not set(observed["passthrough"]) & set(observed["fx"])
    for node_id in observed["passthrough"]:
        # emitting nothing is fine for `identity` and for nodes that pass their input through
        node = spec.node(node_id)
        assert not any(n.meta.get("blockgraph_node") == node_id for n in gm.graph.nodes)
        try:
            gm.get_submodule(node_id)
            owns_module = True
        except AttributeError:
            owns_module = False
        assert not owns_module, f"{node_id} ({node.op}) has a module but no fx node calls it"
        first = graph.inputs[node_id][0]
        assert graph.shapes[node_id] == graph.shapes[first], (
            f"{node_id} ({node.op}) emits no fx node, yet its static shape {graph.shapes[node_id]} "
            f"differs from its input {first}'s {graph.shapes[first]}")
    assert {n.id for n in spec.nodes} <= set(observed["runtime"])


def test_runtime_shapes_match_static_shapes(observed):
    analysis, runtime = observed["analysis"], observed["runtime"]
    static = analysis.graph.shapes
    rows = {node_id: _rows(analysis.graph, node_id) for node_id in analysis.graph.order}
    wrong = {node_id: (runtime[node_id], (rows[node_id], *static[node_id]))
             for node_id in analysis.graph.order if runtime.get(node_id) != (rows[node_id], *static[node_id])}
    assert not wrong, f"node: (run time, static) shapes differ: {wrong}"
    # the per-node stats carry the same shapes as the graph
    for stats in analysis.nodes:
        assert stats.shape == static[stats.id]


def test_hooked_modules_agree(observed):
    """Nodes whose module is called as a whole are seen by hooks too, with the same shape."""
    gm, hooked, shapes = observed["gm"], observed["hooked"], observed["fx"]
    graph = observed["analysis"].graph
    static = graph.shapes
    whole = {n.meta["blockgraph_node"] for n in gm.graph.nodes
             if n.op == "call_module" and n.target == n.meta.get("blockgraph_node")}
    assert whole <= set(hooked), f"hooks did not fire for {sorted(whole - set(hooked))}"
    for node_id, shape in hooked.items():
        assert shape == shapes[node_id] == (_rows(graph, node_id), *static[node_id]), node_id


def test_outputs_have_static_shapes(observed):
    analysis, out = observed["analysis"], observed["output"]
    outs = out if isinstance(out, tuple) else (out,)
    assert len(outs) == len(analysis.graph.outputs)
    for tensor, node_id in zip(outs, analysis.graph.outputs):
        assert tuple(tensor.shape) == (_rows(analysis.graph, node_id), *analysis.graph.shapes[node_id])
        assert torch.isfinite(tensor).all()


def test_default_spec_trains_one_step(repo_root):
    spec = compiler.load(repo_root / "specs" / "default.yaml")
    model = compiler.build(spec, seed=0).train()
    (shape,) = spec.inputs.values()
    graph = compiler.analyze(spec).graph
    (classes,) = graph.shapes[graph.outputs[0]]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, *shape, generator=gen)
    y = torch.randint(0, classes, (4,), generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    assert math.isfinite(loss.item())
    opt.zero_grad()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())
    opt.step()
    changed = sum(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert changed > 0
    with torch.no_grad():
        loss2 = torch.nn.functional.cross_entropy(model(x), y)
    assert math.isfinite(loss2.item())
