"""Random initialisation drawn once per tensor, beside the thread that builds.

Built the usual way, every layer draws PyTorch's default weights in its constructor, and a
model with its own init (torchvision's `kaiming_normal_`, a spec's `init:`) then draws again
over them: half the random numbers are thrown away, and all of them are drawn one after
another on the thread that also parses, checks and generates code. Drawing is most of the
cost of building a model on a CPU (~3 ns a value with mt19937). So a build

1. records the draws a built-in block's layers make through `torch.nn.init` (`uniform_`,
   `normal_`, `kaiming_uniform_`: the defaults of conv and linear layers) instead of making
   them (`CallRecorder`: while a build runs, those functions are wrappers that record on a
   thread constructing a node's module; `Recorder`, a TorchFunctionMode, where that is not
   enough);
2. drops the recorded draws of tensors the init policy sets and adds the policy's own
   (`Draws.schedule`), so each tensor is drawn exactly once;
3. draws them, largest first, on helper threads (one per other core) from the moment every
   module is built, while the building thread generates the forward code, and on every core
   once that thread has nothing else to do (`Draws.close`: it draws too, then waits). The
   drawing kernels release the GIL. Uniform draws into CPU float tensors come from numpy's
   PCG64, written in place (`Source`: ~1.8 ns a value), the rest from torch.Generators.

The values depend on the seed alone, never on timing or on the number of cores: each tensor
has its own generator, seeded from the build's seed and the tensor's place in the build (a
hash; no two tensors of a build share mt19937's 32 bits of seed).

A node whose constructor writes into a tensor after its draw was recorded is built again under
`Recorder`, which draws a recorded tensor on the spot, before any use of it but reading its
shape, from the global generator; so is every draw made in any other way (`torch.randn` in a
plugin's constructor). Blocks from plugins are built without recording at all: their
constructors may do anything with their tensors.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import init as init_policies

MAX_HELPERS = 3
"""Threads that draw beside the building thread, at most (fewer on fewer cores)."""

_ORIGINALS = {name: getattr(nn.init, name) for name in ("uniform_", "normal_", "kaiming_uniform_")}
"""The torch.nn.init functions a build defers: they overwrite every value of their tensor (so a
later one makes an earlier one moot), and conv and linear layers draw their defaults with them."""

_local = threading.local()  # .recorder: the CallRecorder of the node this thread is building


def _record_or_call(func: Callable) -> Callable:
    @functools.wraps(func)
    def record_or_call(tensor, *args, **kwargs):
        recorder = getattr(_local, "recorder", None)
        if recorder is None:
            return func(tensor, *args, **kwargs)
        return recorder.record(func, tensor, args, kwargs)
    return record_or_call


_WRAPPERS = {name: _record_or_call(func) for name, func in _ORIGINALS.items()}
_UNWRAPPED = {**{f: f for f in _ORIGINALS.values()}, **{_WRAPPERS[n]: _ORIGINALS[n] for n in _ORIGINALS}}
_DEFERRABLE = set(_UNWRAPPED)
"""What a TorchFunctionMode sees of those calls (torch.nn.init hands itself on by its module's
names, which are the wrappers while a build runs)."""

_installed = 0
_install_lock = threading.Lock()


def _install_wrappers() -> None:
    """Route torch.nn.init's deferrable functions through `_record_or_call` while any build
    runs (they record only on a thread that is building a node; elsewhere they are the same
    functions)."""
    global _installed
    with _install_lock:
        if not _installed:
            for name, wrapper in _WRAPPERS.items():
                setattr(nn.init, name, wrapper)
        _installed += 1


def _remove_wrappers() -> None:
    global _installed
    with _install_lock:
        _installed -= 1
        if not _installed:
            for name, func in _ORIGINALS.items():
                if getattr(nn.init, name) is _WRAPPERS[name]:  # (unless somebody replaced it since)
                    setattr(nn.init, name, func)


class CallRecorder:
    """Records the calls of the deferrable torch.nn.init functions made on this thread while a
    node's module is constructed, instead of drawing. It sees nothing else: a constructor that
    writes into a recorded tensor afterwards (through it or a view) shows in the tensor's version
    counter (`disturbed`), and the node is then built again under the exact `Recorder`. Reading
    a recorded tensor's values in a constructor would go unseen: no built-in block does
    (tests/test_draws.py builds every registered op both ways and compares)."""

    def __init__(self) -> None:
        self.pending: dict[int, tuple[torch.Tensor, Callable, tuple, dict]] = {}
        self.versions: dict[int, int] = {}
        self._outer: CallRecorder | None = None

    def record(self, func: Callable, tensor: Any, args: tuple, kwargs: dict) -> Any:
        if (not isinstance(tensor, torch.Tensor) or kwargs.get("generator") is not None
                or any(isinstance(a, torch.Generator) for a in args) or tensor.is_inference()):
            return func(tensor, *args, **kwargs)  # its own generator, or no version counter: now
        if tensor._base is not None:  # a draw into a view: the recorded draw of its tensor first
            self._draw_now(tensor._base)
            return func(tensor, *args, **kwargs)
        self.pending[id(tensor)] = (tensor, func, args, {k: v for k, v in kwargs.items() if k != "generator"})
        self.versions[id(tensor)] = tensor._version  # a later draw into it replaces this one
        return tensor

    def _draw_now(self, tensor: torch.Tensor) -> None:
        recorded = self.pending.pop(id(tensor), None)
        if recorded is not None:
            tensor, func, args, kwargs = recorded
            func(tensor, *args, **kwargs)

    def disturbed(self) -> bool:
        """Whether a recorded tensor was written since its draw was recorded."""
        return any(tensor._version != self.versions[key] for key, (tensor, *_) in self.pending.items())

    def take(self) -> dict[int, tuple[torch.Tensor, Callable, tuple, dict]]:
        pending, self.pending, self.versions = self.pending, {}, {}
        return pending

    def __enter__(self) -> CallRecorder:
        self._outer, _local.recorder = getattr(_local, "recorder", None), self
        return self

    def __exit__(self, *exc) -> None:
        _local.recorder, self._outer = self._outer, None


_SHAPE_ONLY = {torch.Tensor.dim, torch.Tensor.size, torch.Tensor.numel, torch.Tensor.stride, torch.Tensor.__len__, torch.Tensor.is_floating_point,
               torch.Tensor.is_complex, torch.Tensor.element_size, torch.Tensor.shape.__get__,
               torch.Tensor.dtype.__get__, torch.Tensor.device.__get__, torch.Tensor.ndim.__get__,
               torch.Tensor.requires_grad.__get__, torch.Tensor.is_leaf.__get__, torch.Tensor.layout.__get__}
"""Uses of a tensor that do not read its values (layers compute fans from shapes)."""

_VIEWS = {torch.Tensor.__getitem__}
"""Uses that do not read values but give a view (`tensor[0][0].numel()` in torch.nn.init's fan
computation): a later use of the view counts as a use of the tensor."""


class Recorder(TorchFunctionMode):
    """Records `torch.nn.init` draws instead of making them; a recorded tensor used for
    anything but its shape is drawn first (from the global generator, on this thread). Exact,
    but every torch call made while it is active pays ~2 µs (a tenth of a small model's
    build): a node is built under it only where `CallRecorder` saw a recorded tensor written."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[int, tuple[torch.Tensor, Callable, tuple, dict]] = {}
        self.views: dict[int, tuple[torch.Tensor, int]] = {}
        """id of a view of a pending tensor -> (the view, kept alive; the id of the tensor)"""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        if func in _DEFERRABLE and kwargs.get("generator") is None:
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and not any(isinstance(a, torch.Generator) for a in args):
                rest = {k: v for k, v in kwargs.items() if k not in ("tensor", "generator")}
                self._draw_now_if_pending(tensor, views_only=True)  # a draw into a view of a recorded one
                self.pending[id(tensor)] = (tensor, _UNWRAPPED[func], tuple(args[1:]), rest)  # a later draw replaces an earlier
                return tensor
        pending, views = self.pending, self.views
        if not pending or func in _SHAPE_ONLY:
            return func(*args, **kwargs)
        if func in _VIEWS and args and (id(args[0]) in pending or id(args[0]) in views):
            view = func(*args, **kwargs)
            views[id(view)] = (view, views[id(args[0])][1] if id(args[0]) in views else id(args[0]))
            return view
        # most calls here touch no recorded tensor (the next layer's empty(), Parameter(), ...)
        for values in (args, kwargs.values()) if kwargs else (args,):
            for value in values:
                if id(value) in pending or id(value) in views:
                    self._draw_now_if_pending(value)
                elif type(value) in (list, tuple):
                    for item in value:
                        if id(item) in pending or id(item) in views:
                            self._draw_now_if_pending(item)
        return func(*args, **kwargs)

    def _draw_now_if_pending(self, value: Any, views_only: bool = False) -> None:
        if not isinstance(value, torch.Tensor):
            return
        key = id(value)
        if key in self.views:
            key = self.views[key][1]
        elif views_only:
            return
        if key in self.pending:
            tensor, func, args, kwargs = self.pending.pop(key)
            func(tensor, *args, **kwargs)

    def take(self) -> dict[int, tuple[torch.Tensor, Callable, tuple, dict]]:
        pending, self.pending, self.views = self.pending, {}, {}
        return pending


def _tensor_seed(base: int, index: int) -> int:
    # mt19937 takes 32 bits of a seed: hash so that neighbouring bases and indices differ there
    digest = hashlib.blake2b(f"blockgraph-init:{base}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def _helpers_for(device: torch.device) -> int:
    """Threads that draw beside the one that builds: one per other core (up to
    `MAX_HELPERS`), so that the builder never waits for a core; that thread joins them once it
    has nothing else to do. None off the CPU (accelerators draw asynchronously already)."""
    if device.type != "cpu":
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(0, min(MAX_HELPERS, cores - 1))


class Draws:
    """The draws of one build: `recording()` around each node's construction, `schedule()`
    after it, `start()` once every module is built, `close()` at the end (draws what is left
    beside the helpers, waits for them, raises a draw's error)."""

    def __init__(self, device: torch.device, base_seed: int) -> None:
        self.device = device
        self.base_seed = base_seed
        self.inline = device.type != "cpu"
        self.helpers = _helpers_for(device)
        self.pending: list[tuple[int, int, Callable[[Source], Any]]] = []
        """(values, seed, draw) of each queued tensor; drawn largest first"""
        self.seeds: set[int] = set()  # low 32 bits of every tensor seed so far: kept distinct
        self.count = 0
        self.lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.cancelled = False
        self.started = False
        self.threads: list[threading.Thread] = []
        self.wrapped = True
        _install_wrappers()

    def start(self) -> None:
        """Start the helpers on what is queued. Called once the modules are built: started
        earlier, they slowed the building thread down more than they gained (a helper takes
        the GIL back after every draw while that thread runs Python, and two busy cores each
        ran slower; handing the GIL over between nodes cost ~0.2 ms a time)."""
        if self.started:
            return
        self.started = True
        with self.lock:
            self.pending.sort(key=lambda item: item[0])  # pop() takes the largest: an even finish
        self.threads = [threading.Thread(target=self._drain, daemon=True, name=f"blockgraph-init-{i}")
                        for i in range(self.helpers)]
        for thread in self.threads:
            thread.start()

    # -- recording --------------------------------------------------------------------------
    @contextmanager
    def recording(self, record: bool = True, exact: bool = False) -> Iterator[CallRecorder | Recorder | None]:
        """Record the torch.nn.init draws made inside (with `record`): their calls, or with
        `exact` every use of the tensors too (see `Recorder`); `schedule` takes them."""
        if not record:
            yield None
            return
        recorder = Recorder() if exact else CallRecorder()
        with recorder:
            yield recorder

    # -- scheduling -------------------------------------------------------------------------
    def schedule(self, module: nn.Module, recorder: CallRecorder | Recorder | None, policy: init_policies.InitPolicy,
                 override: init_policies.NodeInit | None, family: str) -> None:
        """Queue the draws of a freshly built node: per tensor, the policy's initialiser where a
        rule sets it (a recorded default of it is dropped), else its recorded default. Raises
        ValueError for a rule that cannot apply (a matrix init on a vector)."""
        pending = recorder.take() if recorder is not None else {}
        seen: set[int] = set()
        known: dict[tuple, dict] = {}  # what the policy sets, per kind of layer (rules() reads no more)
        for sub in module.modules():
            owned = [(n, t) for n, t in (*sub._parameters.items(), *sub._buffers.items()) if t is not None]
            if not owned:
                continue
            kind = (type(sub), getattr(sub, "weight", None) is None, getattr(sub, "bias", None) is None)
            by_policy = known.get(kind)
            if by_policy is None:
                by_policy = known[kind] = init_policies.rules(sub, policy, override, family)
            for name, tensor in owned:
                if id(tensor) in seen:
                    continue  # a tensor two layers share: drawn once
                seen.add(id(tensor))
                initializer = by_policy.get(name)
                recorded = pending.pop(id(tensor), None)
                if initializer is not None:
                    initializer.check(tensor)
                    self._submit(tensor, _by_policy(initializer, tensor))
                elif recorded is not None:
                    self._submit(tensor, _recorded(*recorded))
        for tensor, func, args, kwargs in pending.values():  # a tensor the module does not keep
            func(tensor, *args, **kwargs)

    def _submit(self, tensor: torch.Tensor, draw: Callable[[Source], Any]) -> None:
        """Queue one tensor's draw with its own generator, seeded from the build's seed and the
        tensor's place in the build: the values then do not depend on which thread draws it,
        nor when."""
        seed = _tensor_seed(self.base_seed, self.count)
        self.count += 1
        while seed & 0xFFFFFFFF in self.seeds:  # two tensors of a build never share a stream
            seed = _tensor_seed(seed, self.count)
        self.seeds.add(seed & 0xFFFFFFFF)
        if self.inline:
            self._draw(seed, draw)
            return
        with self.lock:
            self.pending.append((tensor.numel(), seed, draw))

    # -- drawing ----------------------------------------------------------------------------
    def _draw(self, seed: int, draw: Callable[[Source], Any]) -> None:
        with torch.no_grad():
            draw(Source(seed, self.device))

    def _drain(self) -> None:
        """Draw queued tensors, largest first, until none is left (or a draw failed)."""
        while not (self.cancelled or self.errors):
            with self.lock:
                if not self.pending:
                    return
                _, seed, draw = self.pending.pop()
            try:
                self._draw(seed, draw)
            except BaseException as exc:  # reported by close()
                self.errors.append(exc)

    def close(self, cancel: bool = False) -> None:
        """Draw what is left beside the helpers and wait for them (or, with `cancel`, only for
        the draws under way)."""
        if self.wrapped:
            self.wrapped = False
            _remove_wrappers()
        if cancel:
            self.cancelled = True
        else:
            self.start()
            self._drain()
        for thread in self.threads:
            thread.join()
        self.threads = []
        if self.errors and not cancel:
            raise self.errors[0]


class Source:
    """The random numbers of one tensor, from its own seed. Uniform draws into a CPU float
    tensor come from numpy's PCG64 (written in place, the GIL released: ~1.8 ns a value against
    mt19937's ~2.8, and the draws are most of a build); everything else from a torch.Generator
    seeded with the same seed."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.seed, self.device = seed, device
        self._generator: torch.Generator | None = None

    @property
    def generator(self) -> torch.Generator:
        if self._generator is None:
            self._generator = torch.Generator(device=self.device).manual_seed(self.seed)
        return self._generator

    def uniform_(self, tensor: torch.Tensor, low: float, high: float) -> None:
        """Fill `tensor` with values drawn uniformly from [low, high)."""
        if tensor.device.type == "cpu" and tensor.dtype in _NUMPY_FLOATS and tensor.is_contiguous() and tensor.numel():
            values = tensor.detach().numpy()
            numpy.random.Generator(numpy.random.PCG64(self.seed)).random(out=values.reshape(-1), dtype=values.dtype)
            values *= high - low
            values += low
        else:
            tensor.uniform_(low, high, generator=self.generator)


_NUMPY_FLOATS = (torch.float32, torch.float64)


def _uniform_range(func: Callable, tensor: torch.Tensor, args: tuple, kwargs: dict) -> tuple[float, float] | None:
    """The range a recorded `uniform_` or `kaiming_uniform_` call draws from (None for other
    calls, and where torch.nn.init itself should decide: no fan of a vector, no values)."""
    if func is _ORIGINALS["uniform_"]:
        named = {**dict(zip(("a", "b"), args)), **kwargs}
        return float(named.get("a", 0.0)), float(named.get("b", 1.0))
    if func is _ORIGINALS["kaiming_uniform_"] and tensor.dim() >= 2 and tensor.numel():
        bound = init_policies.kaiming_bound(tensor, **dict(zip(("a", "mode", "nonlinearity"), args)), **kwargs)
        return -bound, bound
    return None


def _recorded(tensor: torch.Tensor, func: Callable, args: tuple, kwargs: dict) -> Callable[[Source], Any]:
    def draw(source: Source) -> None:
        span = _uniform_range(func, tensor, args, kwargs)
        if span is None:
            func(tensor, *args, generator=source.generator, **kwargs)
        else:
            source.uniform_(tensor, *span)
    return draw


def _by_policy(initializer: init_policies.Initializer, tensor: torch.Tensor) -> Callable[[Source], Any]:
    def draw(source: Source) -> None:
        bound = initializer.uniform_bound(tensor)
        if bound is None:
            initializer.apply(tensor.data, source.generator)
        else:
            source.uniform_(tensor, -bound, bound)
    return draw


def base_seed(seed: int | None) -> int:
    """The build's seed, or (none given) one drawn from the global generator, so that
    `torch.manual_seed(n)` before a build fixes its weights as it does a hand-written model's."""
    if seed is not None:
        return seed
    return int(torch.randint(0, 2**62, (), dtype=torch.int64))
