"""Located tree -> `Spec`: the top level checked, vars resolved, inputs, plugins, user blocks,
`defaults:` and `scaling:` read, the nodes expanded (compiler/spec/expand.py), outputs named.

`load` (a path or YAML text), `load_document` (an already parsed document) and `with_vars`
(a loaded spec again, with more vars set) are the entry points; each raises `SpecError`
listing every located problem found before the graph check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..blocks import registry
from ..errors import Loc
from ..source import Document, parse
from .checking import Checker, Scope
from .document import ID_PATTERN, BlockDef, Scaling, SpecDocument, is_path_like, resolve_extends
from .expand import MAX_NODES, Expander
from .heads import Default, Definitions
from .inputs import read_input
from .messages import describe, did_you_mean, unknown_key
from .node_keys import NODE_KEYS
from .results import Spec
from .values import Vars


class _Loader:
    """One load of one document: the header's parts in order, then the nodes."""

    def __init__(self, doc: Document, overrides: dict | None):
        self.doc = doc
        self.checker = Checker(doc)
        self.out = self.checker.out
        self.overrides = overrides or {}

    def load(self) -> Spec:
        doc, checker = self.doc, self.checker
        data = doc.data
        if not isinstance(data, dict):
            checker.error((), f"a spec is a map with blockgraph, name, inputs and nodes; got {describe(data)}")
            self.out.raise_if_errors()
        header = checker.validate(SpecDocument, data, (), "a spec", None)
        self.out.raise_if_errors()
        assert isinstance(header, SpecDocument)
        values = Vars(header.vars, doc, self.overrides, self.out)
        resolved_vars = values.resolve_all()
        inputs = {name: read_input(checker, name, written, values) for name, written in header.inputs.items()}
        self._check_plugins(header)
        definitions = Definitions(user_blocks=self._user_blocks(header))
        definitions.defaults = self._defaults(header, definitions)
        failures = checker.failures
        scaling = checker.resolve(header.scaling, ("scaling",), values)
        if checker.failures == failures:
            definitions.scaling = checker.validate(Scaling, scaling, ("scaling",), "scaling") or Scaling()
        expander = Expander(checker, definitions)
        top = Scope(prefix="", group=(), inputs={n: n for n in inputs}, values=values, path=("nodes",))
        expander.expand(header.nodes, top)
        if len(expander.nodes) > MAX_NODES:
            self.out.problems = [p for p in self.out.problems if "more than" in p.message] or self.out.problems
        if not expander.nodes and not self.out.errors:
            checker.error(("nodes",), "no node is left: every node is left out by `when:` or has `repeat: 0`")
        outputs, output_locs = self._outputs(header, expander)
        self.out.raise_if_errors()
        return Spec(name=header.name, inputs={n: i.shape for n, i in inputs.items()},
                    input_dtypes={n: i.dtype for n, i in inputs.items()}, nodes=expander.nodes,
                    outputs=outputs, output_locs=output_locs, aliases=expander.aliases, vars=resolved_vars,
                    init=header.init, reference=header.reference, description=header.description, file=doc.file,
                    text=doc.text, input_locs={n: i.loc for n, i in inputs.items()}, warnings=self.out.warnings,
                    document=doc, blocks=definitions.user_blocks, groups=expander.groups,
                    overrides=dict(self.overrides), dataset_vars=dict(values.bound))

    def _check_plugins(self, header: SpecDocument) -> None:
        from ..plugins import loaded

        for i, name in enumerate(header.plugins):
            if name not in loaded():
                self.checker.error(("plugins", i), f"this spec needs plugin {name!r}: load it with --plugin {name} "
                                   "(a spec naming a plugin never imports it, since importing runs code)")

    def _user_blocks(self, header: SpecDocument) -> dict[str, BlockDef]:
        blocks, error = {}, self.checker.error
        for name, raw in header.blocks.items():
            path = ("blocks", name)
            if not ID_PATTERN.fullmatch(name):
                error(path, f"a block name is letters, digits and _, got {name!r}", True)
                continue
            if registry.get(name) is not None:
                error(path, f"block {name!r} has the name of a built-in op; choose another name", True)
                continue
            definition = self.checker.validate(BlockDef, raw, path, f"block {name!r}")
            if definition is None:
                continue
            for pname in definition.params:
                if not ID_PATTERN.fullmatch(pname) or pname in NODE_KEYS:
                    error(path + ("params", pname), f"parameter name {pname!r} must be letters, digits and _ "
                          f"and not one of {', '.join(NODE_KEYS)}", True)
            blocks[name] = definition
        return blocks

    def _defaults(self, header: SpecDocument, definitions: Definitions) -> dict[str, dict[str, Default]]:
        """op -> {key: its default}; keys are checked against the op's fields now."""
        out: dict[str, dict[str, Default]] = {}
        error = self.checker.error
        for op, args in header.defaults.items():
            path = ("defaults", op)
            fields = definitions.fields(op)
            if fields is None:
                error(path, f"unknown op {op!r}{did_you_mean(op, definitions.op_names())}", True)
                continue
            for key, value in args.items():
                if key not in fields:
                    error(path + (key,), unknown_key(key, f"for op {op!r}", fields), True)
                else:
                    out.setdefault(op, {})[key] = Default(value=value, path=path + (key,))
        return out

    def _outputs(self, header: SpecDocument, expander: Expander) -> tuple[list[str], list[Loc]]:
        if header.outputs is None:
            if not expander.nodes:
                return [], []
            last = expander.nodes[-1]
            top = last.group[0] if last.group else last.id
            return [top], [last.loc]
        names = [header.outputs] if isinstance(header.outputs, str) else list(header.outputs)
        if not names:
            self.checker.error(("outputs",), "outputs lists at least one node id")
        locs = [self.doc.loc(("outputs",) + ((i,) if isinstance(header.outputs, list) else ()))
                for i in range(len(names))]
        for name, loc in zip(names, locs):
            if name in expander.disabled:
                self.out.error(loc, f"output {name!r} is left out by its `when:` (line {expander.disabled[name].line})",
                               "outputs")
        return names, locs


def load(source: str | os.PathLike | bytes, vars: dict[str, Any] | None = None, *,
         file: str | os.PathLike | None = None) -> Spec:
    """Load a spec from a path or from YAML text; `vars` override the spec's vars.

    `file` names YAML text as if it were read from that path (an editor's buffer): problems
    are reported against it and `extends:` resolves next to it rather than in the working
    directory. Raises `SpecError` listing every located problem found before the graph check.
    """
    if is_path_like(source):
        doc = parse(Path(source), file=str(file) if file is not None else None)
    else:
        doc = parse(source, file=str(file) if file is not None else None)
    return _Loader(resolve_extends(doc), vars).load()


def with_vars(spec: Spec, values: dict[str, Any]) -> Spec:
    """`spec` loaded again from its document with `values` added to its overrides (how the
    trainer sets vars bound to the dataset). Raises SpecError like `load`."""
    if spec.document is None:
        raise ValueError("with_vars needs a spec loaded from text (this one has no document)")
    return _Loader(spec.document, {**spec.overrides, **values}).load()


def load_document(doc: Document, vars: dict[str, Any] | None = None) -> Spec:
    """A `Spec` from an already parsed, self-contained document (e.g. a checkpoint's saved
    spec, whose `extends:` is already merged)."""
    return _Loader(doc, vars).load()
