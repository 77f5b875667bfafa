"""The `blockgraph` command: a thin shell over compiler.load / analyze / build.

Exit status: 0 success, 1 a spec error (each printed as FILE:LINE:COL: message, never a
traceback), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from .errors import Loc, Problem, SpecError
from .formatting import human_bytes, human_count


def _parse_var(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, _, raw = text.partition("=")
    from .source import parse

    try:
        value = parse(f"v: {raw}").data["v"] if raw.strip() else raw
    except SpecError:
        value = raw
    return name.strip(), value


def _parse_max_memory(text: str) -> str:
    from .budget import parse_size

    try:
        parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="blockgraph", description="Neural networks as YAML graphs of blocks.")
    p.add_argument("--version", action="version", version=f"blockgraph {_version()}")
    p.add_argument("--plugin", "-p", action="append", default=[], metavar="MODULE",
                   help="import a module of custom blocks (repeatable; also $BLOCKGRAPH_PLUGINS)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_vars(cmd: argparse.ArgumentParser) -> argparse.ArgumentParser:
        cmd.add_argument("--var", "-D", action="append", default=[], type=_parse_var, metavar="NAME=VALUE",
                         help="override a var of the spec (repeatable)")
        return cmd

    def with_max_memory(cmd: argparse.ArgumentParser) -> argparse.ArgumentParser:
        cmd.add_argument("--max-memory", type=_parse_max_memory, metavar="SIZE",
                         help="memory budget for weights (and training), e.g. 8G or 512M; default "
                              "$BLOCKGRAPH_MAX_MEMORY, else half the available memory")
        return cmd

    v = with_vars(sub.add_parser("validate", help="check specs: syntax, keys, wiring and shapes"))
    v.add_argument("files", nargs="+", metavar="FILE")
    v.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    s = with_vars(sub.add_parser("summary", help="per-node shapes, parameters, MACs, receptive fields"))
    s.add_argument("file", metavar="FILE")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--batch", type=int, default=1, help="batch size for activation memory (default 1)")
    s.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16", "float64"])
    s.add_argument("--depth", type=int, default=None, metavar="N",
                   help="collapse repeats and blocks nested deeper than N levels into one row (0: top level)")
    r = with_vars(sub.add_parser("render", help="draw the graph (svg, png, pdf or dot) with graphviz"))
    r.add_argument("file", metavar="FILE")
    r.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.svg, OUT.png, OUT.pdf or OUT.dot")
    depth = r.add_mutually_exclusive_group()
    depth.add_argument("--expand", action="store_true", help="draw every node, blocks as clusters")
    depth.add_argument("--depth", type=int, default=0, metavar="N", help="expand blocks N levels deep (default 0)")
    r.add_argument("--lr", action="store_true", help="lay out left to right (default top to bottom)")
    r.add_argument("--no-legend", action="store_true", help="leave out the colour legend")
    d = with_vars(sub.add_parser("diff", help="nodes added, removed and changed between two specs"))
    d.add_argument("file", metavar="A")
    d.add_argument("other", metavar="B")
    d.add_argument("--depth", type=int, default=None, metavar="N", help="compare blocks deeper than N as units")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    u = sub.add_parser("ui", help="open the designer (a Streamlit app) in the browser")
    u.add_argument("file", nargs="?", default=None, metavar="SPEC", help="the spec to open (default specs/default.yaml)")
    u.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    u.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    u.add_argument("--browser", action="store_true", help="also open a browser window")
    sc = sub.add_parser("schema", help="print the JSON Schema of spec files (for editors)")
    sc.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead of printing it")
    b = with_max_memory(with_vars(sub.add_parser("build", help="compile to a PyTorch module and report it")))
    b.add_argument("file", metavar="FILE")
    b.add_argument("--code", action="store_true", help="print the generated forward()")
    t = with_max_memory(with_vars(sub.add_parser("train", help="train a spec on a dataset: metrics, checkpoints, resume, torchrun")))
    t.add_argument("file", nargs="?", default=None, metavar="SPEC", help="the spec to train (not with --resume)")
    t.add_argument("--config", metavar="FILE", help="a YAML file of train settings (over the spec's train: section)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR exactly")
    t.add_argument("--epochs", type=int, metavar="N", help="number of epochs")
    t.add_argument("--lr", type=float, metavar="X", help="peak learning rate")
    t.add_argument("--batch-size", type=int, metavar="N", help="global batch size (split over processes)")
    t.add_argument("--workers", type=int, metavar="N", help="data-loader processes per training process")
    t.add_argument("--device", metavar="D", help="auto (default), cpu, cuda, cuda:N or mps")
    t.add_argument("--amp", choices=["off", "bf16", "fp16"], help="mixed precision")
    t.add_argument("--compile", action="store_true", default=None, help="compile the model with torch.compile")
    t.add_argument("--run-dir", metavar="DIR", help="where checkpoints and metrics go (default runs/NAME-DATE-TIME)")
    t.add_argument("--dataset", metavar="NAME", help="dataset to train on (default shapes)")
    t.add_argument("--seed", type=int, metavar="N", help="seed of initialisation, data order and dropout")
    t.add_argument("--set", action="append", default=[], type=_parse_var, metavar="KEY=VALUE",
                   help="set any train setting, e.g. --set schedule=step (repeatable)")
    t.add_argument("-q", "--quiet", action="store_true", help="print only problems and the final line")
    w = with_max_memory(with_vars(sub.add_parser("import-weights", help="map another model's weights onto the spec (by structure)")))
    w.add_argument("file", metavar="SPEC")
    w.add_argument("--from", dest="source", required=True, metavar="SOURCE",
                   help="torchvision:NAME[:WEIGHTS], timm:NAME, reference (the spec's own), or a .safetensors/.pt file")
    w.add_argument("-o", "--output", required=True, metavar="OUT", help="where to write the weights (.safetensors)")
    w.add_argument("--no-strict", action="store_true", help="import what pairs up even if tensors are left unmatched")
    e = with_max_memory(with_vars(sub.add_parser("export", help="write ONNX, TorchScript, a torch.export program or a standalone .py")))
    e.add_argument("file", metavar="SPEC")
    e.add_argument("--format", "-f", required=True, choices=["onnx", "torchscript", "exported", "python"],
                   help="onnx, torchscript, exported (torch.export .pt2) or python (a file needing only torch)")
    e.add_argument("-o", "--output", required=True, metavar="OUT", help="the file to write")
    e.add_argument("--weights", metavar="W", help="weights to load first (blockgraph .safetensors, a state_dict file, "
                   "torchvision:NAME ...)")
    e.add_argument("--batch", type=int, default=2, help="example batch size for tracing (default 2; the batch stays dynamic)")
    e.add_argument("--onnx-exporter", choices=["dynamo", "legacy"], default="dynamo",
                   help="ONNX exporter: dynamo (torch.export-based, default) or legacy (TorchScript-based, faster)")
    e.add_argument("--no-check", action="store_true", help="do not reload the file and compare its outputs")
    from .study.cli import add_study_parser

    add_study_parser(sub)
    return p


def _cmd_study(args) -> int:
    from .study.cli import command

    return command(args)


def _version() -> str:
    from . import __version__

    return __version__


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


def _cmd_validate(args) -> int:
    from .graph import check
    from .spec import load

    status = 0
    for path in args.files:
        args.file = path  # the file an internal error would be reported against
        try:
            spec = load(path, vars=dict(args.var))
            graph = check(spec)
        except SpecError as exc:
            _print_problems(exc.errors)
            status = 1
            continue
        _print_problems(graph.warnings)
        if not args.quiet:
            outs = ", ".join(f"{o} {list(graph.shapes[o])}" + (" per region" if graph.regions.get(o, 1) != 1 else "")
                             for o in graph.outputs)
            print(f"{path}: ok: {len(spec.nodes)} nodes; outputs: {outs}")
    return status


def format_summary(analysis, depth: int | None = None) -> str:
    from .analysis import collapse

    header = ("node", "op", "output", "params", "MACs", "RF", "jump", "memory")
    measured = {n.id for n in analysis.nodes if n.measured}
    rows = []
    for u in collapse(analysis, depth):
        label = "  " * len(u.parents) + u.id + (f" ({len(u.members)} nodes)" if u.kind != "node" else "")
        shape = "x".join(map(str, u.shape)) + ("*" if measured & set(u.members) else "")
        if u.regions != 1:  # after roi_align & co.: R rows of this shape per image
            shape = f"{u.regions} x {shape}"
        rows.append((label, u.op, shape, f"{u.params:,}", human_count(u.macs), str(u.rf), str(u.jump),
                     human_bytes(u.activation_bytes)))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    right = {3, 4, 5, 6, 7}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    spec = analysis.spec
    out = [f"{spec.name}: " + ", ".join(f"{k} {list(v)}" + (" int64" if spec.dtype(k) == "int64" else "")
                                        for k, v in spec.inputs.items())]  # token ids say so
    if analysis.spec.description:
        out.append(analysis.spec.description.strip())
    out += [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    out.append("  ".join("-" * w for w in widths))
    if measured:
        out.append("* shape and MACs measured by a trial run on the meta device (the block has no shape rule)")
    out.append(f"parameters: {analysis.params:,} trainable, {analysis.buffers:,} in buffers")
    out.append(f"MACs: {analysis.macs:,} ({human_count(analysis.macs)}) per sample")
    per_region = max((n.regions for n in analysis.nodes), default=1)
    if per_region != 1:
        out.append(f"R x SHAPE: one row per region, R = the declared boxes per image; MACs and memory "
                   f"count all {per_region} regions of an image")
    out.append(f"weights: {human_bytes(analysis.weight_bytes)}; activations: {human_bytes(analysis.activation_bytes)} "
               f"at batch {analysis.batch}, {analysis.dtype}")
    return "\n".join(out)


def _cmd_summary(args) -> int:
    from .analysis import analyze
    from .spec import load

    if args.batch < 1:
        print("blockgraph summary: error: --batch must be at least 1", file=sys.stderr)
        return 2
    spec = load(args.file, vars=dict(args.var))
    analysis = analyze(spec, batch=args.batch, dtype=args.dtype)
    _print_problems(analysis.warnings)
    if args.depth is not None and args.depth < 0:
        print("blockgraph summary: error: --depth must be 0 or more", file=sys.stderr)
        return 2
    if args.json:
        data = analysis.to_dict()
        if args.depth is not None:
            from dataclasses import asdict

            from .analysis import collapse

            data["units"] = [{**asdict(u), "shape": list(u.shape), "parents": list(u.parents)}
                             for u in collapse(analysis, args.depth)]
        print(json.dumps(data, indent=2))
    else:
        print(format_summary(analysis, args.depth))
    return 0


def _cmd_render(args) -> int:
    from .analysis import analyze
    from .render import FORMATS, RenderError, render
    from .spec import load

    suffix = args.output.rsplit(".", 1)[-1].lower() if "." in args.output else ""
    if suffix not in FORMATS:
        print(f"blockgraph render: error: -o must end in {', '.join('.' + f for f in FORMATS)}", file=sys.stderr)
        return 2
    if args.depth < 0:
        print("blockgraph render: error: --depth must be 0 or more", file=sys.stderr)
        return 2
    analysis = analyze(load(args.file, vars=dict(args.var)))
    _print_problems(analysis.warnings)
    try:
        out = render(analysis, args.output, depth=None if args.expand else args.depth,
                     rankdir="LR" if args.lr else "TB", legend=not args.no_legend)
    except RenderError as exc:
        print(f"blockgraph render: error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: wrote {out}")
    return 0


def _cmd_diff(args) -> int:
    from .analysis import analyze
    from .diff import diff, format_diff
    from .spec import load

    if args.depth is not None and args.depth < 0:
        print("blockgraph diff: error: --depth must be 0 or more", file=sys.stderr)
        return 2
    a = analyze(load(args.file, vars=dict(args.var)))
    b = analyze(load(args.other, vars=dict(args.var)))
    result = diff(a, b, args.depth)
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_diff(result))
    return 0


def _cmd_ui(args) -> int:
    """Become `streamlit run ui/app.py` (same interpreter), listening on localhost by default.

    The process execs Streamlit in place instead of running it as a child, so the pid a
    service manager, a shell or a test was given *is* the server: SIGTERM, SIGINT or SIGHUP
    to it stops the server, where a child would have been left running, re-parented."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    app = root / "ui" / "app.py"
    if not app.is_file():
        print(f"blockgraph ui: error: the designer is not installed with this copy ({app} is missing)", file=sys.stderr)
        return 2
    spec = args.file or str(root / "specs" / "default.yaml")
    if not Path(spec).is_file():
        print(f"blockgraph ui: error: no such spec file {spec!r}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", args.host,
               "--server.port", str(args.port), "--server.headless", "false" if args.browser else "true",
               "--browser.gatherUsageStats", "false",
               # uploads are small spec texts: cap them (MB) and keep Streamlit's XSRF check on
               "--server.maxUploadSize", "5", "--server.enableXsrfProtection", "true",
               "--", str(Path(spec).resolve())]
    # the app runs in a fresh interpreter: hand it the --plugin modules through the environment
    env = dict(os.environ)
    plugins = [p for p in env.get("BLOCKGRAPH_PLUGINS", "").split(",") + list(args.plugin) if p.strip()]
    if plugins:
        env["BLOCKGRAPH_PLUGINS"] = ",".join(dict.fromkeys(plugins))
    print(f"blockgraph designer on http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, env)  # does not return (tests replace os.execve)
    return 0


def _cmd_schema(args) -> int:
    from pathlib import Path

    from .schema import dumps

    text = dumps(plugins=True)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_build(args) -> int:
    from .analysis import analyze
    from .fx import build
    from .spec import load

    spec = load(args.file, vars=dict(args.var))
    _print_problems(analyze(spec).warnings)
    module = build(spec)
    if args.code:
        print(module.code.strip("\n"))
    else:
        n = sum(p.numel() for p in module.parameters())
        print(f"{args.file}: built {type(module).__name__} with {n:,} parameters")
    return 0


def _cmd_train(args) -> int:
    import os

    from .train import TrainError, TrainingInterrupted, train
    from .train.config import set_value

    named = (("epochs", "--epochs"), ("lr", "--lr"), ("batch_size", "--batch-size"), ("workers", "--workers"),
             ("device", "--device"), ("amp", "--amp"), ("compile", "--compile"), ("run_dir", "--run-dir"),
             ("dataset", "--dataset"), ("seed", "--seed"))
    main_process = os.environ.get("RANK", "0") in ("", "0")
    if args.file is None and args.resume is None:
        print("blockgraph train: error: give a SPEC file to train, or --resume RUN_DIR", file=sys.stderr)
        return 2
    options: dict[str, Any] = {}
    names: dict[str, str] = {}
    for key, option in named:
        value = getattr(args, key)
        if value is not None:
            options[key], names[key] = value, option
    for key, value in args.set:
        if not key:
            print("blockgraph train: error: --set needs KEY=VALUE", file=sys.stderr)
            return 2
        set_value(options, key, value)
        names[key.split(".")[0]] = f"--set {key.split('.')[0]}"
    try:
        result = train(args.file, args.config, vars=dict(args.var) or None, resume=args.resume, quiet=args.quiet,
                       _names=names, _where="<command line>", **options)
    except SpecError as exc:
        if main_process:
            _print_problems(exc.errors)
        return 1
    except TrainingInterrupted as exc:
        if main_process:
            print(f"blockgraph train: {exc}", file=sys.stderr)
        return 130
    except TrainError as exc:
        if main_process:
            print(f"blockgraph train: error: {exc}", file=sys.stderr)
        return 1
    if args.quiet and main_process and result.final is not None:
        final = result.final
        print(f"{result.run_dir}: {result.epochs} epochs; val top-1 {100 * final['val_top1']:.2f}%")
    return 0


def _cmd_import_weights(args) -> int:
    from .fx import build
    from .spec import load
    from .weights import WeightImportError, import_weights, save_state_dict

    if not args.output.endswith(".safetensors"):
        print("blockgraph import-weights: error: -o must end in .safetensors", file=sys.stderr)
        return 2
    spec = load(args.file, vars=dict(args.var))
    source = args.source
    if source == "reference":
        if not spec.reference:
            print(f"blockgraph import-weights: error: {args.file} names no reference:", file=sys.stderr)
            return 2
        source = spec.reference
    from .sample_inputs import meta_batch, sample_inputs

    module = build(spec)
    try:
        report = import_weights(module, source, strict=not args.no_strict,
                                inputs=list(meta_batch(sample_inputs(spec), 2)))  # token ids stay int64
    except WeightImportError as exc:
        print(f"blockgraph import-weights: error: {exc}", file=sys.stderr)
        return 1
    save_state_dict(module, args.output, {"spec": spec.name, "source": str(args.source)})
    print(report)
    print(f"{args.file}: wrote {args.output}")
    return 0


def _cmd_export(args) -> int:
    from .export import ExportError, export
    from .spec import load
    from .weights import WeightImportError

    if args.batch < 1:
        print("blockgraph export: error: --batch must be at least 1", file=sys.stderr)
        return 2
    spec = load(args.file, vars=dict(args.var))
    try:
        out = export(spec, args.format, args.output, weights=args.weights, batch=args.batch,
                     exporter=args.onnx_exporter, verify=not args.no_check)
    except (ExportError, WeightImportError) as exc:
        print(f"blockgraph export: error: {exc}", file=sys.stderr)
        return 1
    checked = "" if args.no_check else " (outputs checked at batch 1 and 3)"
    print(f"{args.file}: wrote {out} ({args.format}, dynamic batch){checked}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler = {"validate": _cmd_validate, "summary": _cmd_summary, "build": _cmd_build,
               "render": _cmd_render, "schema": _cmd_schema, "diff": _cmd_diff, "ui": _cmd_ui,
               "train": _cmd_train, "import-weights": _cmd_import_weights,
               "export": _cmd_export, "study": _cmd_study}[args.command]
    from .plugins import PluginError, load_entry_points, load_from_environment, load_plugins

    try:
        load_entry_points()
        load_from_environment()
        load_plugins(args.plugin)
    except PluginError as exc:
        print(f"blockgraph: error: {exc}", file=sys.stderr)
        return 2
    from .budget import ENV as MAX_MEMORY_ENV, explicit_budget

    saved_budget = os.environ.get(MAX_MEMORY_ENV)
    try:
        explicit_budget()
    except ValueError as exc:
        print(f"blockgraph: error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "max_memory", None) is not None:  # seen by every build and by training
        os.environ[MAX_MEMORY_ENV] = args.max_memory
    try:
        return handler(args)
    except SpecError as exc:
        _print_problems(exc.errors)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `blockgraph summary X | head`
        sys.stderr.close()
        return 0
    except Exception as exc:  # a bug of ours: still no traceback for the user
        print(f"{Loc(getattr(args, 'file', '-'), 1, 1)}: internal error: {type(exc).__name__}: {exc} "
              "(please report this with the spec)", file=sys.stderr)
        return 1
    finally:
        if saved_budget is None:
            os.environ.pop(MAX_MEMORY_ENV, None)
        else:
            os.environ[MAX_MEMORY_ENV] = saved_budget


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
