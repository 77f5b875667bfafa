"""The memory budget: before `build` allocates a spec's weights, estimate the bytes from
`compiler.analyze` (which allocates nothing) and refuse a spec beyond the budget with a
located `BudgetError` that gives the estimate, the budget and how to raise it.

The budget is, first found: `max_memory=` (compiler.build), the CLI's `--max-memory`
(which sets the environment variable), `$BLOCKGRAPH_MAX_MEMORY`, else half of the memory
available on the device: MemAvailable in /proc/meminfo (or os.sysconf) for the CPU, the free
memory of a CUDA device. The meta device allocates nothing and is never refused; an unknown
amount of available memory is not checked.

Sizes are bytes, or a number with a suffix K, M, G or T (powers of 1024; "GB", "GiB" and
"G" mean the same): `8G`, `512MiB`, `1.5T`, `2e9`.

Training (`compiler.train`) has its own, larger estimate (gradients, optimizer state and the
activations of a batch: `estimate_train`), checked against `memory_budget` x the free memory,
or against `$BLOCKGRAPH_MAX_MEMORY` / `--max-memory` when given.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from .errors import Problem, SpecError
from .formatting import human_bytes

ENV = "BLOCKGRAPH_MAX_MEMORY"
DEFAULT_FRACTION = 0.5
HOW_TO_RAISE = (f"raise the budget with max_memory= (compiler.build), --max-memory SIZE (blockgraph) or "
                f"{ENV}=SIZE, or build on device='meta' (allocates nothing)")
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_SCALE = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


class BudgetError(SpecError):
    """Building (or training) the spec needs more memory than the budget. Located at the node
    that needs the most weight memory."""


def parse_size(value: Any) -> int:
    """Bytes from an int, a float or a text such as '8G', '512MiB', '1.5T', '2e9'.
    Raises ValueError for anything else (negative, zero, nan, unknown suffix)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 8G or 512M, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"expected a size such as 8G, 512M or 2e9 (bytes), got {value!r}")
        number = float(match.group(1)) * _SCALE[match.group(2).lower()]
    else:
        raise ValueError(f"expected a size such as 8G or 512M, got {value!r}")
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"a memory budget must be a positive size, got {value!r}")
    return int(number)


def available(device) -> tuple[int | None, str]:
    """Bytes available on `device` (a torch.device) and where the number comes from."""
    if device.type == "cuda":
        import torch

        try:
            free, _total = torch.cuda.mem_get_info(device)
        except Exception:  # no CUDA here: building on it fails with torch's own message
            return None, ""
        return int(free), f"free memory of {device}"
    if device.type != "cpu":
        return None, ""
    try:
        import psutil  # only if it is installed anyway
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available), "available RAM (psutil)"
    meminfo = Path("/proc/meminfo")
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free RAM (os.sysconf)"
    except (ValueError, OSError, AttributeError):
        return None, ""


def explicit_budget(max_memory: Any = None) -> tuple[int, str] | None:
    """(bytes, where it was set) from `max_memory` or $BLOCKGRAPH_MAX_MEMORY; None if neither.
    A bad value raises ValueError naming where it came from."""
    if max_memory is not None:
        try:
            return parse_size(max_memory), f"max_memory={max_memory!r}"
        except ValueError as exc:
            raise ValueError(f"max_memory: {exc}") from None
    env = os.environ.get(ENV, "").strip()
    if env:
        try:
            return parse_size(env), f"{ENV}={env}, or --max-memory"
        except ValueError as exc:
            raise ValueError(f"{ENV}: {exc}") from None
    return None


def budget(device, max_memory: Any = None) -> tuple[int | None, str]:
    """(bytes, how the budget was chosen) for building on `device`; (None, ...) means no check
    (the meta device, or available memory unknown)."""
    if device.type == "meta":
        return None, "the meta device allocates nothing"
    given = explicit_budget(max_memory)
    if given is not None:
        return given
    free, source = available(device)
    if free is None:
        return None, "available memory unknown"
    return int(free * DEFAULT_FRACTION), f"half of the {human_bytes(free)} {source}"


def _values(analysis) -> int:
    return analysis.params + analysis.buffers


def estimate_build(analysis, dtype=None) -> int:
    """Bytes `build` allocates: parameters and buffers in float32 (as created), plus a copy in
    `dtype` while converting to another dtype."""
    values = _values(analysis)
    extra = 0
    if dtype is not None:
        import torch

        if dtype != torch.float32:
            extra = values * torch.empty((), dtype=dtype, device="meta").element_size()
    return values * 4 + extra


def estimate_train(analysis) -> tuple[int, int, int]:
    """(total, weight part, activation part) to train: weights, gradients and two optimizer
    states (4x the weights) plus the activations of the analysis batch kept for backward (2x)."""
    weights = analysis.weight_bytes * 4
    acts = analysis.activation_bytes * 2
    return weights + acts, weights, acts


def _largest(analysis):
    spec_nodes = {n.id: n for n in analysis.spec.nodes}
    row = max(analysis.nodes, key=lambda r: r.params + r.buffers, default=None)
    if row is None or row.id not in spec_nodes:
        return None, None
    return row, spec_nodes[row.id]


def check_build(analysis, device, max_memory: Any = None, dtype=None) -> None:
    """Raise BudgetError if building `analysis.spec` on `device` needs more than the budget."""
    limit, how = budget(device, max_memory)
    if limit is None:
        return
    need = estimate_build(analysis, dtype)
    if need <= limit:
        return
    spec = analysis.spec
    row, node = _largest(analysis)
    biggest = ""
    if row is not None:
        biggest = f"; the largest is node {row.id!r} ({row.params + row.buffers:,} values, " \
                  f"{human_bytes((row.params + row.buffers) * 4)})"
    message = (f"building {spec.name} on {device} needs about {human_bytes(need)} "
               f"({analysis.params:,} parameters + {analysis.buffers:,} buffer values, float32){biggest}: "
               f"more than the memory budget of {human_bytes(limit)} ({how}); {HOW_TO_RAISE}")
    if node is not None:
        raise BudgetError(Problem(node.loc, message, node.path))
    from .errors import Loc

    raise BudgetError(Problem(Loc(str(spec.file or "<string>"), 1, 1), message))


__all__ = ["BudgetError", "ENV", "available", "budget", "check_build", "estimate_build", "estimate_train",
           "explicit_budget", "parse_size"]
