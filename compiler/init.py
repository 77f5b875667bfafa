"""Weight and bias initialisation policies, chosen per op family and overridable per node.

```yaml
init:
  seed: 0                         # same seed, same weights
  conv: {weight: {kind: he_normal, mode: fan_out}, bias: zeros}
  linear: {weight: {kind: normal, std: 0.01}}
  bias: zeros                     # every family's bias unless the family says otherwise
nodes:
  - {op: conv, out: 64, init: {weight: xavier_uniform, bias: {kind: constant, value: 0.1}}}
```
A rule given as a bare name (``conv: he_normal``) sets the weight. Families: `conv`
(nn.Conv*), `linear` (nn.Linear), `norm` (batch/layer/instance/group norm: weight is the
scale gamma, bias the shift beta). Parameters no rule mentions keep PyTorch's own default
initialisation. The policies follow Glorot & Bengio 2010 (xavier) and He et al. 2015 (he).

A build (compiler.fx) constructs the layers as hand-written code would, under
`torch.manual_seed(seed)`, so each draws its default; `initialize` then sets the tensors the
policy names, drawing from the same generator in module order.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Kind = Literal["default", "uniform", "normal", "trunc_normal", "xavier_uniform", "xavier_normal", "he_uniform",
               "he_normal", "zeros", "ones", "constant", "orthogonal"]
Family = Literal["conv", "linear", "norm"]
ALIASES = {"kaiming_normal": "he_normal", "kaiming_uniform": "he_uniform", "glorot_normal": "xavier_normal",
           "glorot_uniform": "xavier_uniform", "zero": "zeros", "one": "ones"}
"""Other names users know the same initialisers by (PyTorch's, Keras')."""
MATRIX_KINDS = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "orthogonal")


def _no_matrix_init_for(value, what: str):
    if value is not None and value.needs_matrix:
        raise ValueError(f"{value.kind} needs a weight matrix (it uses fan in / fan out); a {what} is a vector: "
                         "use zeros, constant, uniform or normal")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True,
                              use_attribute_docstrings=True)


class Initializer(_Model):
    """One tensor's initialisation."""

    kind: Kind
    """default (PyTorch's), uniform, normal, trunc_normal (cut at `low`/`high`), xavier_uniform, xavier_normal, he_uniform,
    he_normal, zeros, ones, constant, orthogonal."""
    a: float = Field(0.01, gt=0)
    """uniform: values are drawn from [-a, a] (the seed's small uniform init)."""
    mean: float = 0.0
    """normal and trunc_normal: mean."""
    std: float = Field(0.01, gt=0)
    """normal and trunc_normal: standard deviation."""
    low: float | None = None
    """trunc_normal: values below are redrawn (default mean - 2 std; torchvision's GoogLeNet and
    Inception use -2, i.e. hardly any cut at std 0.01)."""
    high: float | None = None
    """trunc_normal: values above are redrawn (default mean + 2 std)."""
    gain: float = Field(1.0, gt=0)
    """xavier and orthogonal: scaling factor."""
    mode: Literal["fan_in", "fan_out"] = "fan_in"
    """he: preserve the variance of the forward (fan_in) or backward (fan_out) pass."""
    nonlinearity: Literal["relu", "leaky_relu", "linear", "tanh", "sigmoid"] = "relu"
    """he: the activation that follows."""
    slope: float = Field(0.01, ge=0)
    """he with leaky_relu: its negative slope."""
    value: float = 0.1
    """constant: the value (a small positive bias keeps ReLUs alive at the start)."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value):
        value = {"kind": value} if isinstance(value, str) else value
        if isinstance(value, dict) and isinstance(value.get("kind"), str) and value["kind"] in ALIASES:
            value = {**value, "kind": ALIASES[value["kind"]]}
        return value

    @model_validator(mode="after")
    def _ordered_bounds(self):
        if self.kind == "trunc_normal" and not self.bounds[0] < self.bounds[1]:
            raise ValueError(f"trunc_normal needs low < high, got low {self.bounds[0]:g} and high {self.bounds[1]:g}")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """trunc_normal's cut-offs: low and high, by default two standard deviations around the mean."""
        return (self.mean - 2 * self.std if self.low is None else self.low,
                self.mean + 2 * self.std if self.high is None else self.high)

    @property
    def needs_matrix(self) -> bool:
        return self.kind in MATRIX_KINDS

    def check(self, tensor) -> None:
        """Raise ValueError when this initialiser cannot fill `tensor` (a matrix init on a vector)."""
        if self.needs_matrix and tensor.dim() < 2:
            raise ValueError(f"{self.kind} initialisation needs a weight matrix, not a vector; use it for weights")

    def apply(self, tensor) -> None:
        """Fill `tensor` in place from the global generator, with torch.nn.init's function of
        this kind (so the formulas, fans and gains are torch's own)."""
        from torch import nn

        k = self.kind
        self.check(tensor)
        leaky_slope = self.slope if self.nonlinearity == "leaky_relu" else 0
        if k == "default":
            return
        if k == "uniform":
            nn.init.uniform_(tensor, -self.a, self.a)
        elif k == "normal":
            nn.init.normal_(tensor, self.mean, self.std)
        elif k == "trunc_normal":
            nn.init.trunc_normal_(tensor, self.mean, self.std, *self.bounds)
        elif k == "zeros":
            nn.init.zeros_(tensor)
        elif k == "ones":
            nn.init.ones_(tensor)
        elif k == "constant":
            nn.init.constant_(tensor, self.value)
        elif k == "xavier_uniform":
            nn.init.xavier_uniform_(tensor, self.gain)
        elif k == "xavier_normal":
            nn.init.xavier_normal_(tensor, self.gain)
        elif k == "orthogonal":
            nn.init.orthogonal_(tensor, self.gain)
        elif k == "he_uniform":
            nn.init.kaiming_uniform_(tensor, a=leaky_slope, mode=self.mode, nonlinearity=self.nonlinearity)
        else:
            nn.init.kaiming_normal_(tensor, a=leaky_slope, mode=self.mode, nonlinearity=self.nonlinearity)


class Rule(_Model):
    """How to initialise the weight and the bias of one family (or one node)."""

    weight: Initializer | None = None
    """The weight (kernel, matrix, or norm scale)."""
    bias: Initializer | None = None
    """The bias (or norm shift)."""

    @field_validator("bias")
    @classmethod
    def _vector(cls, value):
        return _no_matrix_init_for(value, "bias")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value):
        return _weight_shorthand(value)


def _weight_shorthand(value):
    """`he_normal` or `{kind: uniform, a: 0.01}` written where a rule goes is the weight's."""
    if isinstance(value, str) or (isinstance(value, dict) and "kind" in value):
        return {"weight": value}
    return value


class _FamilyRules(_Model):
    """Rules per op family, and a bias for every family that sets none."""

    conv: Rule | None = None
    """Convolutions."""
    linear: Rule | None = None
    """Fully connected layers."""
    norm: Rule | None = None
    """Normalisation layers (weight = the scale gamma, bias = the shift beta)."""
    bias: Initializer | None = None
    """Bias of every family that does not set its own."""

    @field_validator("bias")
    @classmethod
    def _vector_bias(cls, value):
        return _no_matrix_init_for(value, "bias")

    @field_validator("norm")
    @classmethod
    def _vector_norm(cls, value):
        _no_matrix_init_for(value and value.weight, "norm's scale (gamma)")
        return value


class NodeInit(_FamilyRules):
    """A node's own `init:`: `weight` and `bias` apply to the node's own family (the conv of a
    `conv` node, not its fused norm; every family of a block made of several kinds);
    `conv`/`linear`/`norm` set one family inside the node (e.g. zero gamma of a residual's
    last norm)."""

    weight: Initializer | None = None
    """The weight of the node's own family."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value):
        return _weight_shorthand(value)


class RecurrentRule(_Model):
    """The recurrent layers' matrices, gate by gate: PyTorch stacks the gates' blocks in one
    tensor (an LSTM's `weight_hh` is [4H, H]: input, forget, cell and output gates), and each
    gate's block is filled on its own, as if it were its own layer."""

    input: Initializer | None = None
    """Each gate's [H, F] block of the input weights (`weight_ih`): xavier, he, uniform..."""
    recurrent: Initializer | None = None
    """Each gate's [H, H] block of the recurrent weights (`weight_hh`): e.g. orthogonal
    (Saxe et al. 2014), so repeated steps neither grow nor shrink the state at the start."""


class LSTMRule(RecurrentRule):
    """`init.lstm`: the LSTM layers' matrices and forget-gate bias."""

    forget_bias: float | None = None
    """The forget gate's initial bias (Gers et al. 2000; 1.0 per Jozefowicz et al. 2015), so the
    cell keeps its past at the start. PyTorch keeps two bias vectors per layer: `b_ih`'s
    forget slice is set to this value and `b_hh`'s to 0, so their sum, the gate's bias, is it.
    Unset: PyTorch's default U(-1/sqrt(H), 1/sqrt(H)) in both."""


class GRURule(RecurrentRule):
    """`init.gru`: the GRU layers' matrices."""

    @model_validator(mode="before")
    @classmethod
    def _no_forget_gate(cls, value):
        if isinstance(value, dict) and "forget_bias" in value:
            raise ValueError("a GRU has no forget gate (Cho et al. 2014: reset and update gates): forget_bias is "
                             "an LSTM setting (init.lstm)")
        return value


class InitPolicy(_FamilyRules):
    """The spec's `init:` section."""

    seed: int | None = Field(None, ge=0)
    """Seed of the random initialisation; the same seed gives the same weights."""
    lstm: LSTMRule | None = None
    """LSTM layers (`lstm`, and its layer-normalised form): `forget_bias`, `input`, `recurrent`."""
    gru: GRURule | None = None
    """GRU layers: `input`, `recurrent`."""


def family_of(module) -> Family | None:
    from torch import nn

    if isinstance(module, (nn.modules.conv._ConvNd,)):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
        return "norm"
    return None


def rules(sub, policy: InitPolicy, override: NodeInit | None = None, own_family: str = "") -> dict[str, Initializer]:
    """What the policy sets in `sub` (one conv, linear or norm of a node): the initialiser of its
    `weight` and of its `bias`, each present only when one applies (and is not `default`). The
    node's own rules come first, then the spec's family rule, then the spec-wide bias; a
    tensor left out keeps the default its layer's constructor drew.

    One entry per tensor name, so a rule for another tensor of a layer (an LSTM's forget-gate
    bias, its recurrent matrices) is one more entry here, and `initialize` sets it unchanged."""
    family = family_of(sub)
    if family is None:
        return {}
    override = override or NodeInit()
    rule: Rule | None = getattr(policy, family)
    node_rule: Rule | None = getattr(override, family)
    mine = own_family not in ("conv", "linear", "norm") or family == own_family
    weight = (node_rule and node_rule.weight) or (mine and override.weight) or (rule and rule.weight)
    bias = (node_rule and node_rule.bias) or (mine and override.bias) or (rule and rule.bias) or policy.bias
    return {name: init for name, init in (("weight", weight), ("bias", bias))
            if init is not None and init.kind != "default" and getattr(sub, name, None) is not None}


def initialize(module, policy: InitPolicy, override: NodeInit | None = None, own_family: str = "") -> None:
    """Set the tensors the policy names in `module`, one node's freshly built module, in one
    pass and in module order, from the global generator: what a hand-written model's
    `__init__` does after building its layers (torchvision's `kaiming_normal_` loop). The
    layers' own default draws stay where no rule applies. Raises ValueError for a rule that
    cannot apply (a matrix init on a vector)."""
    import torch

    with torch.no_grad():
        for sub in module.modules():
            for name, initializer in rules(sub, policy, override, own_family).items():
                initializer.apply(getattr(sub, name))
            _initialize_recurrent(sub, policy)


def _recurrent_rule(sub, policy: InitPolicy) -> tuple[RecurrentRule | None, int]:
    """The rule of a recurrent layer and its number of gates: nn.LSTM and the layer-normalised
    LSTM's cells (4), nn.GRU (3); (None, 0) for any other module."""
    from torch import nn

    if isinstance(sub, nn.LSTM) or type(sub).__name__ == "LayerNormLSTMCell":
        return policy.lstm, 4
    if isinstance(sub, nn.GRU):
        return policy.gru, 3
    return None, 0


def _initialize_recurrent(sub, policy: InitPolicy) -> None:
    """`init.lstm` / `init.gru` on one recurrent layer: each gate's block of `weight_ih*` and
    `weight_hh*` (one per layer and direction), and the forget gate's bias slice [H, 2H) (gate
    order i, f, g, o, PyTorch's): `bias_ih*` (or the cell's single `bias`) takes the value,
    `bias_hh*` 0."""
    rule, gates = _recurrent_rule(sub, policy)
    if rule is None:
        return
    for name, tensor in sub.named_parameters(recurse=False):
        hidden = tensor.shape[0] // gates
        chosen = rule.input if name.startswith("weight_ih") else rule.recurrent if name.startswith("weight_hh") else None
        if chosen is not None and chosen.kind != "default":
            for gate in range(gates):
                chosen.apply(tensor[gate * hidden:(gate + 1) * hidden])
        forget_bias = getattr(rule, "forget_bias", None)
        if forget_bias is not None and name.startswith("bias"):
            tensor[hidden:2 * hidden] = 0.0 if name.startswith("bias_hh") else forget_bias
