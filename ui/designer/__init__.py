"""What the designer computes, without Streamlit: the app (ui/app.py and ui/tabs/) only draws
widgets. One module per job:

- `files`: the repository, the zoo, the spec named on the command line, Save (atomic, and only
  inside the workspace).
- `caching`: `refresh(text, vars, file, ...)`, the update after every edit (load + analyze +
  DOT source + summary rows), and the other cached loads (a zoo spec, a diff); `warm_up()`.
- `exports`: the generated forward() as a .py file, the ONNX file.
- `text_edits`: `node_entries` / `insert_node` / `flow_line` put a new node into the text as
  one ``- {op: ..., ...}`` line after a chosen node, leaving the rest of the text unchanged.
- `forms`: `palette_fields` / `collect_args` turn a block's parameters (compiler.params) or a
  user block's `params:` into form fields and back into arguments; the vars panel's readers.
- `jobs`: `TrainJob`, the slot where a background trainer plugs in.
- `session`: `DesignerSession`, the per-browser-session state (st.session_state["designer"]).

Problems are worded by ui/problems.py (`quote_problem`: ``line 14, col 22: nodes[3].out: ...``
with the line quoted and a caret under the column). Every name the app, the other ui modules
and the tests use is importable from `ui.designer` itself.
"""

from compiler import SpecError
from ui.designer.caching import (DTYPES, Result, View, analyse, diff_default, diff_of, dot_source, freeze_vars,
                                 load_text, parse_document, refresh, summary_rows, svg_of, thaw_vars, warm_up,
                                 zoo_result)
from ui.designer.exports import ONNX_PACKAGES, code_file, generated_code, onnx_bytes, onnx_missing
from ui.designer.files import (DEFAULT_SPEC, ROOT, SPECS, outside_workspace, save_roots, save_text, spec_from_argv,
                               zoo)
from ui.designer.forms import (FormField, block_doc, collect_args, form_kind, overrides, palette_fields, palette_ops,
                               parse_var, var_kind)
from ui.designer.jobs import TrainJob
from ui.designer.session import DesignerSession
from ui.designer.text_edits import (InsertError, NodeEntry, flow_line, insert_node, node_entries, read_value,
                                    unique_id, yaml_scalar)
from ui.problems import UNTITLED, in_text, problem_title, quote_lines, quote_problem, short_path, source_name

__all__ = [
    "DEFAULT_SPEC", "DTYPES", "ONNX_PACKAGES", "ROOT", "SPECS", "UNTITLED", "DesignerSession", "FormField",
    "InsertError", "NodeEntry", "Result", "SpecError", "TrainJob", "View", "analyse", "block_doc", "code_file",
    "collect_args", "diff_default", "diff_of", "dot_source", "flow_line", "form_kind", "freeze_vars",
    "generated_code", "in_text", "insert_node", "load_text", "node_entries", "onnx_bytes", "onnx_missing",
    "outside_workspace", "overrides", "palette_fields", "palette_ops", "parse_document", "parse_var",
    "problem_title", "quote_lines", "quote_problem", "read_value", "refresh", "save_roots", "save_text",
    "short_path", "source_name", "spec_from_argv", "summary_rows", "svg_of", "thaw_vars", "unique_id", "var_kind",
    "warm_up", "yaml_scalar", "zoo", "zoo_result",
]
