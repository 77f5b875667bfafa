"""Does a spec fit a dataset? Its input shape and its number of classes, with located messages."""

from __future__ import annotations

import re

from ..errors import Loc, Problem, SpecError

VAR_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
CLASS_WORDS = ("classes", "num_classes", "n_classes", "nclasses", "num_class", "labels", "outputs")


def _analysis(spec):
    from ..analysis import Analysis, analyze
    from ..spec import Spec, load

    if isinstance(spec, Analysis):
        return spec.spec, spec
    if not isinstance(spec, Spec):
        spec = load(spec)
    return spec, analyze(spec)


def spec_loc(spec, path: tuple) -> Loc:
    if spec.document is not None:
        return spec.document.loc(path)
    return Loc(spec.file, 1, 1)


def _dims(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def path_tuple(path: str) -> tuple:
    """'nodes[3].body[1]' -> ('nodes', 3, 'body', 1)."""
    out: list = []
    for name, index in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", path):
        out.append(name if name else int(index))
    return tuple(out)


def dataset_values(spec, info) -> dict[str, int]:
    """The values of the spec's vars bound to the dataset (`classes: {dataset: classes,
    default: 10}`) for `info`, for those that differ from what the spec holds now."""
    facts = {"classes": info.num_classes}
    values = {name: facts[fact] for name, fact in getattr(spec, "dataset_vars", {}).items()}
    return {name: v for name, v in values.items() if spec.vars.get(name) != v}


def class_var_problem(spec, var: str, what: str, wanted: int) -> Problem:
    """`what` (the spec's class count against the dataset's) is fixed by the var `var`: say how
    to set it, or to let the dataset set it, at the var's line. The one home of this advice
    for classification, segmentation, YOLO and region heads."""
    if var in getattr(spec, "overrides", {}):
        fix = f"the override --var {var}={spec.overrides[var]} sets it: set it to {wanted} or leave it out"
    else:
        fix = (f"set vars.{var} to {wanted} (--var {var}={wanted}), or let the dataset set it: "
               f"`{var}: {{dataset: classes, default: {spec.vars.get(var)}}}`")
    return Problem(spec_loc(spec, ("vars", var)), f"{what}: {fix}", f"vars.{var}")


def check_compatible(spec, info, input_name: str | None = None) -> None:
    spec, analysis = _analysis(spec)
    problems: list[Problem] = []
    name = _input(spec, info, input_name, problems)
    if name is not None:
        _check_input(spec, info, name, problems)
    if info.task == "classification":
        _check_classes(spec, analysis, info, problems)
    elif info.task == "regression":
        _check_targets(spec, analysis, info, problems)
    if problems:
        raise SpecError(problems)


def _input(spec, info, input_name, problems) -> str | None:
    if input_name is not None:
        if input_name not in spec.inputs:
            problems.append(Problem(spec_loc(spec, ("inputs",)), f"the spec has no input {input_name!r} to feed with "
                                    f"the dataset {info.name!r}; its inputs: {', '.join(spec.inputs)}", "inputs"))
            return None
        return input_name
    if len(spec.inputs) == 1:
        return next(iter(spec.inputs))
    fitting = [n for n, shape in spec.inputs.items() if len(shape) == len(info.shape)]
    if len(fitting) == 1:
        return fitting[0]
    problems.append(Problem(spec_loc(spec, ("inputs",)), f"the spec has {len(spec.inputs)} inputs "
                            f"({', '.join(spec.inputs)}): say which one the dataset {info.name!r} feeds "
                            "(input_name=...)", "inputs"))
    return None


def _check_input(spec, info, name: str, problems) -> None:
    if spec.dtype(name) == "int64":  # every dataset here gives float32 values
        problems.append(Problem(spec_loc(spec, ("inputs", name)), f"input {name!r} holds int64 token ids, but the "
                                f"dataset {info.name!r} gives float32 values {_dims(tuple(info.shape))}; no dataset "
                                "of token ids is built in yet", f"inputs.{name}"))
        return
    takes, gives = tuple(spec.inputs[name]), tuple(info.shape)
    if takes == gives:
        return
    hints = []
    if len(takes) == 3 and len(gives) == 3:
        if takes[1:] != gives[1:]:
            hints.append(f"size={takes[1]}" if takes[1] == takes[2] else f"size=[{takes[1]}, {takes[2]}]")
        if takes[0] != gives[0] and takes[0] in (1, 3):
            hints.append(f"channels={takes[0]}")
    if info.name == "adding" and len(takes) == 2 and takes[1] == gives[1]:
        hints.append(f"steps={takes[0]}")
    fix = f"set inputs.{name} to {_dims(gives)}"
    if hints:
        fix += f" (or pass {' / '.join(hints)})"
    problems.append(Problem(spec_loc(spec, ("inputs", name)), f"the dataset {info.name!r} gives {_dims(gives)}, "
                            f"the spec takes {_dims(takes)}; {fix}", f"inputs.{name}"))


def _node_vars(spec, node) -> list[str]:
    """The $vars the output node's own YAML mentions (e.g. `out: $classes`)."""
    if spec.document is None or not node.path.startswith("nodes"):
        return []
    value = spec.document.data
    try:
        for part in path_tuple(node.path):
            value = value[part]
    except (KeyError, IndexError, TypeError):
        return []
    found: list[str] = []

    def walk(v):
        if isinstance(v, str):
            found.extend(VAR_REF.findall(v))
        elif isinstance(v, dict):
            for key, item in v.items():
                if key not in ("in", "id", "op", "when"):
                    walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    walk(value)
    return found


def class_var(spec, node, width: int) -> str | None:
    def matches(name):
        value = spec.vars.get(name)
        return isinstance(value, int) and not isinstance(value, bool) and value == width

    named = [v for v in dict.fromkeys(_node_vars(spec, node)) if matches(v)]
    if len(named) == 1:
        return named[0]
    candidates = named or [v for v in spec.vars if matches(v)]
    if len(candidates) == 1:
        return candidates[0]
    for word in CLASS_WORDS:  # several vars have that value: prefer the one named like classes
        for v in candidates:
            if v.lower() == word:
                return v
    classy = [v for v in candidates if "class" in v.lower()]
    return classy[0] if len(classy) == 1 else None


def _check_classes(spec, analysis, info, problems) -> None:
    graph = analysis.graph
    nodes = {n.id: n for n in spec.nodes}
    seen = set()
    for out in graph.outputs:
        shape = tuple(graph.shapes[out])
        node = nodes.get(out)
        loc = node.loc if node is not None else (spec.output_locs[0] if spec.output_locs else Loc(spec.file))
        where = node.path if node is not None else "outputs"
        if len(shape) != 1:
            key = ("rank", out)
            if key not in seen:
                seen.add(key)
                problems.append(Problem(loc, f"the spec's output {out!r} is {_dims(shape)} per sample; a "
                                        f"classification dataset needs [classes] (here [{info.num_classes}]): end "
                                        "with gap or flatten and a linear layer", where))
            continue
        width = shape[0]
        if width == info.num_classes:
            continue
        var = class_var(spec, node, width) if node is not None else None
        if var is not None and var in getattr(spec, "dataset_vars", {}):
            continue  # bound to the dataset: training sets it (compiler.train, dataset_values)
        what = (f"the spec's output has {width} classes, the dataset {info.name!r} has {info.num_classes}")
        if var is not None:
            key = ("var", var)
            if key in seen:
                continue
            seen.add(key)
            problems.append(class_var_problem(spec, var, what, info.num_classes))
        else:
            key = ("node", out)
            if key in seen:
                continue
            seen.add(key)
            path = path_tuple(where) if node is not None else ()
            out_loc = loc
            if spec.document is not None and path and path + ("out",) in spec.document.marks:
                out_loc, where = spec.document.marks[path + ("out",)], f"{where}.out"
            problems.append(Problem(out_loc, f"{what}: make the output node {out!r} give {info.num_classes} "
                                    "(e.g. `out:` of its linear layer)", where))


def _check_targets(spec, analysis, info, problems) -> None:
    """A regression dataset's targets are one number per sample: every output must be [1]."""
    nodes = {n.id: n for n in spec.nodes}
    for out in analysis.graph.outputs:
        shape = tuple(analysis.graph.shapes[out])
        if shape == (1,):
            continue
        node = nodes.get(out)
        loc = node.loc if node is not None else (spec.output_locs[0] if spec.output_locs else Loc(spec.file))
        problems.append(Problem(loc, f"the spec's output {out!r} is {_dims(shape)} per sample; the dataset "
                                f"{info.name!r} is a regression with one target per sample: end with a linear "
                                "layer of `out: 1`", node.path if node is not None else "outputs"))
