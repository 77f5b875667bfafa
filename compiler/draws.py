"""Random initialisation drawn once per tensor, beside the thread that builds.

Built the usual way, every layer draws PyTorch's default weights in its constructor, and a
model with its own init (torchvision's `kaiming_normal_`, a spec's `init:`) then draws again
over them: half the random numbers are thrown away, and all of them are drawn one after
another on the thread that also parses, checks and generates code. Drawing is most of the
cost of building a model on a CPU (~3 ns a value). So a build

1. records the draws a built-in block's layers make through `torch.nn.init` (`uniform_`,
   `normal_`, `kaiming_uniform_`: the defaults of conv and linear layers) instead of making
   them (`Recorder`, a TorchFunctionMode active only while a node's module is constructed);
2. drops the recorded draws of tensors the init policy sets and adds the policy's own
   (`Draws.schedule`), so each tensor is drawn exactly once;
3. hands them to worker threads once every module is built (the drawing kernels release
   the GIL), which draw while the main thread generates the forward code and on both cores
   after that (`Draws.close` waits for them).

The values depend on the seed alone, never on timing or on the number of cores: each tensor
goes to one of `STREAMS` generators by a fixed rule (the least-loaded so far, in node order),
the generators are seeded from the build's seed, and each stream draws in order.

A recorded tensor that the constructor goes on to use (anything but reading its shape) is
drawn on the spot, before that use, from the global generator; so is every draw made in any
other way (`torch.randn` in a plugin's constructor). Blocks from plugins are built without
recording at all: their constructors may do anything with their tensors.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import init as init_policies

STREAMS = 4
"""Independent generators a build draws from (fixed, so the values do not depend on the
machine); up to this many worker threads draw from them at once."""

_DEFERRABLE = {nn.init.uniform_, nn.init.normal_, nn.init.kaiming_uniform_}
"""torch.nn.init functions that overwrite every value of their tensor (so a later one makes an
earlier one moot) and whose calls reach a TorchFunctionMode as a whole."""

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
    anything but its shape is drawn first (from the global generator, on this thread)."""

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
                self.pending[id(tensor)] = (tensor, func, tuple(args[1:]), rest)  # a later draw replaces an earlier
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


def _stream_seed(base: int, stream: int) -> int:
    # mt19937 takes 32 bits of a seed: hash so that neighbouring bases and streams differ there
    digest = hashlib.blake2b(f"blockgraph-init:{base}:{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def _workers_for(device: torch.device) -> int:
    if device.type != "cpu":
        return 0  # accelerators draw asynchronously already: draw in order on this thread
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(STREAMS, cores))


class Draws:
    """The draws of one build: `recording()` around each node's construction, `schedule()`
    after it, `close()` at the end (waits for every draw; raises a worker's error)."""

    def __init__(self, device: torch.device, base_seed: int) -> None:
        self.generators = [torch.Generator(device=device).manual_seed(_stream_seed(base_seed, s))
                           for s in range(STREAMS)]
        self.load = [0] * STREAMS
        self.workers = _workers_for(device)
        self.queues: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(self.workers)]
        self.errors: list[BaseException] = []
        self.cancelled = False
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start drawing what is queued (and what comes later). Called once the modules are
        built: started earlier, the threads slow the main thread down more than they gain
        (each takes the GIL back after every draw while the main thread runs Python)."""
        if self.threads or not self.workers:
            return
        self.threads = [threading.Thread(target=self._work, args=(q,), daemon=True, name=f"blockgraph-init-{i}")
                        for i, q in enumerate(self.queues)]
        for thread in self.threads:
            thread.start()

    # -- recording --------------------------------------------------------------------------
    @contextmanager
    def recording(self, record: bool = True) -> Iterator[Recorder | None]:
        """Record the torch.nn.init draws made inside (with `record`); `schedule` takes them."""
        if not record:
            yield None
            return
        recorder = Recorder()
        with recorder:
            yield recorder

    # -- scheduling -------------------------------------------------------------------------
    def schedule(self, module: nn.Module, recorder: Recorder | None, policy: init_policies.InitPolicy,
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

    def _submit(self, tensor: torch.Tensor, draw: Callable[[torch.Generator], Any]) -> None:
        stream = min(range(STREAMS), key=self.load.__getitem__)
        self.load[stream] += tensor.numel() + 1000  # + a draw's fixed cost, in values
        generator = self.generators[stream]
        if not self.workers:
            with torch.no_grad():
                draw(generator)
            return
        self.queues[stream % self.workers].put((draw, generator))

    # -- the workers ------------------------------------------------------------------------
    def _work(self, items: queue.SimpleQueue) -> None:
        with torch.no_grad():
            while True:
                item = items.get()
                if item is None:
                    return
                if self.cancelled or self.errors:
                    continue
                draw, generator = item
                try:
                    draw(generator)
                except BaseException as exc:  # reported by close()
                    self.errors.append(exc)

    def close(self, cancel: bool = False) -> None:
        """Wait for every queued draw (or, with `cancel`, only for the ones under way)."""
        self.cancelled = self.cancelled or cancel
        if not cancel:
            self.start()
        for q in self.queues:
            q.put(None)
        for thread in self.threads:
            thread.join()
        self.threads = []
        if self.errors and not cancel:
            raise self.errors[0]


def _recorded(tensor: torch.Tensor, func: Callable, args: tuple, kwargs: dict) -> Callable[[torch.Generator], Any]:
    return lambda generator: func(tensor, *args, generator=generator, **kwargs)


def _by_policy(initializer: init_policies.Initializer, tensor: torch.Tensor) -> Callable[[torch.Generator], Any]:
    return lambda generator: initializer.apply(tensor.data, generator)


def base_seed(seed: int | None) -> int:
    """The build's seed, or (none given) one drawn from the global generator, so that
    `torch.manual_seed(n)` before a build fixes its weights as it does a hand-written model's."""
    if seed is not None:
        return seed
    return int(torch.randint(0, 2**62, (), dtype=torch.int64))
