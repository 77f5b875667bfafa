"""Analysis -> a drawing of the graph, through the graphviz package and the `dot` binary.

Nodes are coloured by op family and labelled with their id, op and parameter count; edges
carry the shape that flows along them. Repeats, composite blocks and user blocks are drawn
collapsed to one box by default (so DenseNet-201 stays readable) and as labelled clusters
when expanded (`depth`, or `expand=True` for everything). A legend lists the colours.
"""

from __future__ import annotations

import html
from pathlib import Path

from .analysis import Analysis, Unit, collapse
from .blocks import registry

COLOURS = {
    "conv": "#9ecae1", "linear": "#c6a9e0", "norm": "#fdd49e", "act": "#fdae6b", "pool": "#a1d99b",
    "merge": "#d9d9d9", "attention": "#f4a6c6", "reshape": "#ffffff", "regularizer": "#e5f5e0",
    "composite": "#bcbddc", "other": "#f0f0f0", "input": "#fee391", "block": "#dadaeb",
    "recurrent": "#fcbba1", "embedding": "#c7e9c0",
}
FORMATS = ("svg", "png", "pdf", "dot")


class RenderError(RuntimeError):
    """The graphviz binary is missing or failed."""


def _family(unit: Unit) -> str:
    if unit.kind == "user":
        return "block"
    cls = registry.get(unit.op)
    if unit.kind == "repeat" and cls is not None:
        return getattr(cls, "family", "other")
    return getattr(cls, "family", "other") if cls is not None else "other"


def _shape(shape) -> str:
    return "×".join(str(d) for d in shape)


def _count(n: int) -> str:
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{suffix}"
    return str(n)


def _label(unit: Unit) -> str:
    title = html.escape(unit.id)
    op = html.escape(unit.caption)  # residual ×5 (55 nodes): the repeat and the node count
    params = f"{_count(unit.params)} params" if unit.params else ""
    lines = [f"<B>{title}</B>", f'<FONT POINT-SIZE="10">{op}</FONT>']
    if params:
        lines.append(f'<FONT POINT-SIZE="9">{params}</FONT>')
    return "<" + "<BR/>".join(lines) + ">"


def to_graphviz(analysis: Analysis, depth: int | None = 0, rankdir: str = "TB", legend: bool = True):
    """A graphviz.Digraph of the analysis, collapsed below `depth` (None: everything)."""
    import graphviz

    spec = analysis.spec
    units = collapse(analysis, depth)
    shape_of = {u.id: u.shape for u in units}
    shape_of.update(spec.inputs)
    dot = graphviz.Digraph(spec.name, graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "nodesep": "0.25",
                                                  "ranksep": "0.35", "label": f"{spec.name}", "labelloc": "t"},
                           node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                                      "fontsize": "11", "margin": "0.12,0.05"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "9", "color": "#555555"})
    for name, shape in spec.inputs.items():
        dtype = "" if spec.dtype(name) == "float32" else f" {spec.dtype(name)}"  # token ids: int64
        dot.node(name, f"<<B>{html.escape(name)}</B><BR/>input {_shape(shape)}{dtype}>", fillcolor=COLOURS["input"],
                 shape="box", style="filled", id=f"input-{name}")
    clusters: dict[tuple[str, ...], object] = {}

    def container(parents: tuple[str, ...]):
        if not parents:
            return dot
        if parents not in clusters:
            parent = container(parents[:-1])
            group = spec.groups.get(parents[-1])
            sub = graphviz.Digraph(name=f"cluster_{parents[-1]}")
            sub.attr(label=f"{parents[-1]} ({group.op if group else ''})", style="rounded,dashed", color="#888888",
                     fontsize="10", fontname="Helvetica")
            clusters[parents] = (sub, parent)
        return clusters[parents][0]

    for unit in units:
        family = _family(unit)
        attrs = {"fillcolor": COLOURS.get(family, COLOURS["other"]), "id": f"node-{unit.id}",
                 "tooltip": f"{unit.id}: {unit.op}, out {_shape(unit.shape)}, {unit.params:,} params, "
                            f"{unit.macs:,} MACs, RF {unit.rf}"}
        if unit.kind != "node":
            attrs["style"] = "rounded,filled,bold"
            attrs["peripheries"] = "2"
        container(unit.parents).node(unit.id, _label(unit), **attrs)
    for unit in units:
        for src in unit.inputs:
            dot.edge(src, unit.id, label=_shape(shape_of[src]))
    for out in analysis.graph.outputs:
        target = next((u.id for u in units if out in u.members), out)
        dot.node(f"output_{out}", f"output {_shape(analysis.graph.shapes[out])}", shape="plaintext", style="")
        dot.edge(target, f"output_{out}")
    # attach clusters innermost first, so nested clusters end up inside their parents
    for parents in sorted(clusters, key=len, reverse=True):
        sub, parent = clusters[parents]
        parent.subgraph(sub)
    if legend:
        _legend(dot, {_family(u) for u in units} | {"input"})
    return dot


def _legend(dot, families: set[str]) -> None:
    rows = "".join(f'<TR><TD BGCOLOR="{COLOURS[f]}" WIDTH="14"></TD><TD ALIGN="LEFT">{f}</TD></TR>'
                   for f in sorted(families) if f in COLOURS)
    dot.node("legend", f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">'
                       f'<TR><TD COLSPAN="2"><B>legend</B></TD></TR>{rows}</TABLE>>',
             shape="plaintext", style="", id="legend")


def render(analysis: Analysis, output: str | Path, depth: int | None = 0, rankdir: str = "TB",
           legend: bool = True) -> Path:
    """Write the drawing to `output`; the format comes from its suffix (svg, png, pdf, dot)."""
    import graphviz

    output = Path(output)
    fmt = output.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"cannot render to {output.name!r}: the file name must end in " + ", ".join(f".{f}" for f in FORMATS))
    dot = to_graphviz(analysis, depth, rankdir, legend)
    if fmt == "dot":
        output.write_text(dot.source)
        return output
    try:
        data = dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RenderError("the graphviz program `dot` is not installed (Debian/Ubuntu: apt-get install graphviz; "
                          "./dev installs it)") from None
    except graphviz.CalledProcessError as exc:
        raise RenderError(f"graphviz failed: {exc.stderr.decode(errors='replace')[:500] if exc.stderr else exc}") from None
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(output)
    return output
