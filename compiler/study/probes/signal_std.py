"""`signal_std`: how the signal's scale changes through depth at initialisation.

For each weighted layer (conv, linear, recurrent; compiler.study.probes.layers) in graph order,
on the context's batch: the standard deviation of the layer's output (its response y = W x + b,
before the node's norm and activation) and of the loss's gradient with respect to that output.
This is the measurement of He et al. 2015 (Fig. 2/3) and Glorot & Bengio 2010: zero or tiny
uniform(±0.01) weights make both vanish after a few layers, Xavier's shrink layer by layer
through a deep ReLU stack, and He's keep them level.

A standard deviation is taken over every element of the batch's output (samples, channels and
positions together) without Bessel's correction (a one-element output gives 0, not NaN). The
gradient is that of the run's mean loss, so it carries the loss's 1/N. Gradients are taken with
`torch.autograd.grad` on the captured outputs of a scratch copy, so the model's weights, grads,
buffers and mode are left as found.

The pass runs in train mode by default: what the first training step sees (batch norm
normalising with the batch's own statistics, which is how it rescues a badly scaled init);
`mode: eval` measures the net as inference runs it (batch norm with its running statistics,
at initialisation the identity). Dropout's masks are drawn from the trial's seed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch

from .base import Probe, ProbeContext, ProbeValue, When
from .layers import LayerChoice, kinds_of, missing_layers, weighted_layers
from .scratch import device_of, same_draws, scratch_copy

MEASURED = ("conv", "linear", "recurrent")


def _first_tensor(output: Any) -> torch.Tensor:
    """A layer's output tensor (an nn.LSTM called directly returns (output, state))."""
    while isinstance(output, (tuple, list)):
        output = output[0]
    return output


def population_std(tensor: torch.Tensor) -> float:
    return tensor.detach().double().std(correction=0).item()


class SignalStd(Probe):
    """Per-layer activation and gradient standard deviation at initialisation."""

    name: ClassVar[str] = "signal_std"
    when: ClassVar[When] = "init"

    layers: LayerChoice = "all"
    """Which layers to measure: conv, linear, recurrent, or all of them."""
    mode: Literal["train", "eval"] = "train"
    """The mode of the measured pass: train (batch statistics, as the first step) or eval."""

    def applies_to(self, spec: Any, analysis: Any) -> str | None:
        return missing_layers(spec, kinds_of(self.layers, MEASURED))

    def measure(self, context: ProbeContext) -> dict[str, ProbeValue]:
        model = scratch_copy(context.model, training=self.mode == "train")
        layers = weighted_layers(model, kinds_of(self.layers, MEASURED))
        outputs: dict[str, torch.Tensor] = {}

        def keeper(name: str):
            def keep(module, args, output):
                if name in outputs:  # a second call: the first is kept
                    return None
                outputs[name] = _first_tensor(output)
                # the graph rewrites a conv's or linear's output in place (relu_, +=;
                # compiler/inplace.py): what flows on is a copy, so the kept one stays y = Wx + b
                return output.clone() if isinstance(output, torch.Tensor) else None
            return keep

        handles = [layer.module.register_forward_hook(keeper(layer.name)) for layer in layers]
        inputs = context.inputs
        if inputs.is_floating_point():
            inputs = inputs.detach().clone().requires_grad_(True)  # every output in the graph
        try:
            with torch.enable_grad(), same_draws(context.seed, device_of(model)):
                loss = context.loss(model(inputs), context.target)
        finally:
            for handle in handles:
                handle.remove()
        names = [layer.name for layer in layers if layer.name in outputs]
        captured = [outputs[name] for name in names]
        differentiable = [i for i, tensor in enumerate(captured) if tensor.requires_grad]
        grads = ()
        if differentiable and loss.requires_grad:
            grads = torch.autograd.grad(loss, [captured[i] for i in differentiable], allow_unused=True)
        gradient_std = [float("nan")] * len(names)  # an output the loss cannot differentiate
        for index, grad in zip(differentiable, grads):
            gradient_std[index] = 0.0 if grad is None else population_std(grad)
        return {
            "layers": names,
            "activation_std": [population_std(tensor) for tensor in captured],
            "gradient_std": gradient_std,
        }
