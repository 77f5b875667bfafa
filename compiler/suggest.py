""""Did you mean ...?": the one closeness rule behind every suggestion blockgraph makes.

A suggestion that is far from what the user wrote is worse than none: `$depth` answered with
"did you mean 'width'?" sends the reader after the wrong name. So every producer (spec keys,
ops, vars and references in compiler/spec/ and compiler/graph.py, train keys in
compiler/train/config.py, dataset names and options in compiler/data) asks `closest`, which
accepts only

- the same word in another case (`Conv` for `conv`),
- a name another framework uses for the option (`kernel_size` for `k`, from the caller's
  synonym table), or
- a close spelling: difflib's similarity ratio of the lower-cased words at least `CUTOFF`
  (0.75: one typo or a swapped pair in a word of four letters or more, `widht` -> `width`,
  `stme` -> `stem`; not `depth` -> `width`, 0.6).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

CUTOFF = 0.75
"""Least difflib ratio (of the lower-cased words) for a spelling to count as close."""


def closest(word: object, options: Iterable[object],
            synonyms: Mapping[str, Iterable[str]] | None = None) -> str | None:
    """The option the user most likely meant by `word`, or None when none is close."""
    word = str(word)
    names = [str(o) for o in options]
    lower = word.lower()
    for name in names:
        if name.lower() == lower and name != word:
            return name
    for target, others in (synonyms or {}).items():
        if lower in others and target in names:
            return target
    by_lower = {}
    for name in names:
        by_lower.setdefault(name.lower(), name)
    close = difflib.get_close_matches(lower, list(by_lower), n=1, cutoff=CUTOFF)
    return by_lower[close[0]] if close else None


def did_you_mean(word: object, options: Iterable[object],
                 synonyms: Mapping[str, Iterable[str]] | None = None) -> str:
    """'; did you mean 'x'?' for a close option, else '' (ready to append to a message)."""
    best = closest(word, options, synonyms)
    return f"; did you mean {best!r}?" if best is not None else ""
