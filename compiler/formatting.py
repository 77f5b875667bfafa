"""How numbers are written for people: counts with a K/M/G suffix, sizes in binary units. One home,
so the CLI's summary, the trainer's memory messages, the budget check and the designer's tables
all print the same text for the same number."""

from __future__ import annotations

_COUNT_SCALES = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3))
_BYTE_SCALES = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def human_count(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M' (MACs, parameters); below 1,000 the number as it is: 512 -> '512'."""
    for suffix, scale in _COUNT_SCALES:
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"


def human_bytes(n: float) -> str:
    """A size in binary units: 256 -> '256 B', 3_210_000 -> '3.06 MiB', up to TiB."""
    for suffix, scale in _BYTE_SCALES:
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}"
    return f"{int(n)} B"
