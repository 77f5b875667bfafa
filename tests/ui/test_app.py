"""The designer driven in-process with Streamlit's AppTest: open, edit, vars, palette, diff,
export, save. The editor's text is st.session_state["yaml"] (the text area's key)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("streamlit")


ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "ui" / "app.py"
DEFAULT = (ROOT / "specs" / "default.yaml").read_text()


def with_classes(text: str, n: int) -> str:
    """`text` with its class count set to `n`, whether written `classes: 10` or bound to the
    dataset (`classes: {dataset: classes, default: 10}`)."""
    return re.sub(r"(classes: (?:\{dataset: classes, default: )?)-?\d+", rf"\g<1>{n}", text, count=1)


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of `text` holding `fragment` (so the tests follow edits of default.yaml)."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def successes(at) -> list[str]:
    return [s.value for s in at.success]


def open_zoo(at, name: str) -> None:
    at.selectbox(key="zoo_pick").set_value(name)
    at.button(key="open_zoo").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def edit(at, text: str) -> None:
    at.text_area(key="yaml").input(text)
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_opens_the_default_spec(app):
    assert app.session_state["yaml"] == DEFAULT
    assert metric(app, "Parameters") == "288,746"
    assert any(s.startswith("Valid: 11 nodes; outputs classifier [10]") for s in successes(app))
    assert app.get("graphviz_chart"), "the graph is drawn"
    assert [t.label for t in app.tabs] == ["Design", "Palette", "Summary", "Diff", "Export", "Train", "Sweep",
                                           "Study"]


def test_spec_path_after_double_dash(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(sys, "argv", [str(APP), str(ROOT / "specs" / "vgg11.yaml")])
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert "name: vgg11" in at.session_state["yaml"]
    assert metric(at, "Parameters") == "132,863,336"


def test_zoo_spec_shows_its_parameter_count(app):
    open_zoo(app, "resnet18.yaml")
    assert "name: resnet18" in app.session_state["yaml"]
    assert metric(app, "Parameters") == "11,689,512"
    assert any("Opened specs/resnet18.yaml" in s for s in successes(app))
    # the summary table at depth 0: one row per stage
    rows = app.dataframe[0].value
    assert list(rows["id"]) == ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    assert int(rows["params"].sum()) == 11_689_512


def test_error_is_shown_at_its_line_and_the_last_graph_stays(app):
    bad = DEFAULT.replace("out: $classes", "out: -1")
    edit(app, bad)
    n = line_of(bad, "out: -1")
    title = f"line {n}, col 39: nodes[7].out: expected a positive integer, got -1"
    assert title in errors(app)
    quoted = [c.value for c in app.code if f">{n} |" in c.value]
    assert quoted, "the offending line is quoted"
    lines = quoted[0].splitlines()
    marked = next(i for i, line in enumerate(lines) if line.startswith(f">{n} |"))
    assert "out: -1" in lines[marked]
    caret = lines[marked + 1]
    assert caret.index("^") == lines[marked].index("-1"), "the caret is under column 39"
    # the last valid graph and numbers stay on screen
    assert metric(app, "Parameters") == "288,746"
    assert app.get("graphviz_chart")
    assert any("showing the last valid version" in e for e in errors(app))
    # fixing the text clears the problems
    edit(app, DEFAULT)
    assert not any(e.startswith("line ") for e in errors(app))


def test_yaml_syntax_error_is_located(app):
    edit(app, DEFAULT.replace("  - {id: pool, op: gap}", "  - {id: pool, op: gap"))
    n = line_of(DEFAULT, "  - {id: pool, op: gap}")
    assert any(e.startswith(f"line {n}, col ") and "invalid YAML" in e for e in errors(app)), errors(app)


def test_a_var_bound_to_the_dataset_says_so_in_its_help(app):
    classes = app.number_input(key="var:classes")
    assert classes.value == 10  # the default, for the graph and summary
    assert "Bound to the dataset" in (classes.help or "")
    assert "Bound to the dataset" not in (app.number_input(key="var:width").help or "")


def test_vars_panel_changes_the_count_not_the_text(app):
    width = app.number_input(key="var:width")
    assert width.value == 32
    width.set_value(16)
    app.run()
    assert metric(app, "Parameters") == "72,954"
    assert app.session_state["yaml"] == DEFAULT, "vars never touch the text"
    # reset
    app.button(key="reset_vars").click()
    app.run()
    assert app.number_input(key="var:width").value == 32
    assert metric(app, "Parameters") == "288,746"


def test_vars_follow_the_text(app):
    edit(app, DEFAULT.replace("width: 32 ", "width: 8  "))
    assert app.number_input(key="var:width").value == 8
    assert metric(app, "Parameters") != "288,746"


def test_batch_size_scales_activation_memory(app):
    one = metric(app, "Activations")
    app.number_input(key="batch").set_value(4)
    app.run()
    assert metric(app, "Activations") != one
    assert metric(app, "Parameters") == "288,746"


def test_palette_inserts_a_block_that_validates(app):
    app.selectbox(key="pal:op").set_value("dropout")
    app.run()
    app.selectbox(key="pal:after").set_value("pool")
    app.number_input(key="pal:dropout:p").set_value(0.1)
    next(b for b in app.button if b.label == "Insert").click()
    app.run()
    text = app.session_state["yaml"]
    lines, before = text.splitlines(), DEFAULT.splitlines()
    n = line_of(DEFAULT, "  - {id: pool, op: gap}")  # the new node goes on the line after it
    assert lines[n] == "  - {id: dropout1, op: dropout, p: 0.1}"
    assert lines[:n] + lines[n + 1:] == before, "the rest of the text is unchanged"
    assert any(s.startswith("Valid: 12 nodes") for s in successes(app))
    assert any(f"Inserted at line {n + 1}" in s for s in successes(app))


def test_palette_refuses_a_block_that_breaks_the_graph(app):
    app.selectbox(key="pal:op").set_value("linear")
    app.run()
    app.selectbox(key="pal:after").set_value("stage1")  # a linear layer in front of a conv stage
    next(b for b in app.button if b.label == "Insert").click()
    app.run()
    assert app.session_state["yaml"] == DEFAULT
    assert any(e.startswith("Not inserted") for e in errors(app))


def test_palette_inserts_a_user_block(app):
    app.selectbox(key="template_pick").set_value("ResNet-style with a user block")
    app.button(key="open_template").click()
    app.run()
    assert metric(app, "Parameters") == "175,258"
    app.selectbox(key="pal:op").set_value("basic")
    app.run()
    assert app.number_input(key="pal:basic:out").value == 64  # its last use: stage3
    app.selectbox(key="pal:after").set_value("stage3")
    next(b for b in app.button if b.label == "Insert").click()
    app.run()
    assert "  - {id: basic1, op: basic, out: 64}" in app.session_state["yaml"].splitlines()
    assert any(s.startswith("Valid:") for s in successes(app))
    assert metric(app, "Parameters") != "175,258"


def test_templates_are_valid(app):
    from ui.templates import TEMPLATES

    for label in TEMPLATES:
        app.selectbox(key="template_pick").set_value(label)
        app.button(key="open_template").click()
        app.run()
        assert not at_errors_in_text(app), (label, errors(app))
        assert any(s.startswith("Valid:") for s in successes(app)), label


def at_errors_in_text(at) -> list[str]:
    return [e for e in errors(at) if e.startswith("line ")]


def test_diff_lists_changes(app):
    open_zoo(app, "resnet50.yaml")
    app.selectbox(key="diff_zoo").set_value("seresnet50.yaml")
    app.run()
    headline = [m.value for m in app.markdown if "→" in m.value and "added" in m.value]
    assert headline == ["**resnet50 → seresnet50**: 0 added, 0 removed, 16 changed"]
    table = next(df.value for df in app.dataframe if "what" in df.value.columns)
    assert list(table["id"][:2]) == ["layer1.0", "layer1.1"]
    assert table["params Δ"].iloc[0] == 8464
    assert "se: None -> {'reduction': 16.0, 'divisor': 1}" in table["what"].iloc[0]
    assert any("28,088,024" in m.value for m in app.markdown)


def test_diff_with_pasted_yaml(app):
    app.radio(key="diff_mode").set_value("pasted YAML")
    app.run()
    app.text_area(key="diff_text").input(with_classes(DEFAULT, 100))
    app.run()
    headline = [m.value for m in app.markdown if "→" in m.value and "added" in m.value]
    assert headline == ["**cifar_small → cifar_small**: 0 added, 0 removed, 1 changed"]


def test_export_shows_the_generated_code(app):
    app.toggle(key="show_code").set_value(True)
    app.run()
    code = [c.value for c in app.code if c.language == "python"]
    assert code and code[0].lstrip().startswith("def forward(self, image)")
    labels = [b.label for b in app.get("download_button")]
    assert "Download YAML" in labels and "Download PyTorch code (forward)" in labels


def test_save_writes_the_text(app, tmp_path):
    target = tmp_path / "mine.yaml"
    edit(app, with_classes(DEFAULT, 7))
    app.text_input(key="save_path").input(str(target))
    app.button(key="save").click()
    app.run()
    assert target.read_text() == with_classes(DEFAULT, 7)
    assert any("Saved" in s for s in successes(app))
    # an existing other file is not overwritten without the checkbox
    other = tmp_path / "other.yaml"
    other.write_text("keep")
    app.text_input(key="save_path").input(str(other))
    app.button(key="save").click()
    app.run()
    assert other.read_text() == "keep"
    assert any("overwrite" in e for e in errors(app))


def test_train_tab_offers_the_form_and_no_run_yet(app):
    # the training itself: tests/ui/test_train_panel.py
    assert any(b.label == "Start" for b in app.button)
    assert any("No run yet" in c.value for c in app.caption)


def test_update_after_an_edit_is_fast(app):
    """Informational bound on the whole rerun (widgets included) after an edit of resnet50;
    the 300 ms goal for the update itself is benchmarks/ui_latency.py's."""
    import time

    open_zoo(app, "resnet50.yaml")
    text = app.session_state["yaml"]
    start = time.perf_counter()
    edit(app, text.replace("# ResNet-50", "# ResNet-5O", 1))
    assert time.perf_counter() - start < 3.0
    assert metric(app, "Parameters") == "25,557,032"


def test_diff_against_the_saved_text(app):
    edit(app, with_classes(DEFAULT, 100))
    app.radio(key="diff_mode").set_value("the saved text")
    app.run()
    headline = [m.value for m in app.markdown if "→" in m.value and "added" in m.value]
    assert headline == ["**cifar_small → cifar_small**: 0 added, 0 removed, 1 changed"]
    table = next(df.value for df in app.dataframe if "what" in df.value.columns)
    assert table["id"].iloc[0] == "classifier" and table["params Δ"].iloc[0] == 1290 * 10 - 1290


def test_the_sequence_specs_open_draw_and_take_a_recurrent_block_from_the_palette(app):
    open_zoo(app, "lstm_adding.yaml")
    assert metric(app, "Parameters") == "67,713"  # nn.LSTM(2, 128) + nn.Linear(128, 1)
    assert app.get("graphviz_chart"), "the graph is drawn"
    assert any(s.startswith("Valid: 2 nodes; outputs head [1]") for s in successes(app))
    # a GRU from the palette, after the LSTM: a valid sequence -> sequence -> ... chain
    edit(app, app.session_state["yaml"].replace("returns: last}", "returns: all}"))
    app.selectbox(key="pal:op").set_value("gru")
    app.run()
    app.selectbox(key="pal:after").set_value("rnn")
    app.number_input(key="pal:gru:hidden").set_value(32)
    next(b for b in app.button if b.label == "Insert").click()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert "op: gru, hidden: 32" in app.session_state["yaml"]
    assert any(s.startswith("Valid: 3 nodes") for s in successes(app)), successes(app)
    open_zoo(app, "gru_shapes_rows.yaml")
    assert any(s.startswith("Valid: 2 nodes; outputs classifier [10]") for s in successes(app))


def test_the_default_spec_trains_with_one_click(app):
    """A newcomer's first click: Train -> Start on specs/default.yaml as it opens, no field
    changed. The run starts on the built-in dataset (its classes bound to the dataset) and
    takes steps; it is stopped after the first one, which keeps the test short."""
    import time

    next(b for b in app.button if b.label == "Start").click()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    job = app.session_state["designer"].train
    deadline = time.monotonic() + 240
    events = []
    while not any(e["kind"] == "step" for e in events):
        assert job.running or any(e["kind"] == "step" for e in events), (job.error, events)
        assert time.monotonic() < deadline, "no training step within 4 minutes"
        events = job.events()
        time.sleep(0.2)
    job.cancel()
    job.join(120)
    start = next(e for e in events if e["kind"] == "start")
    assert start["dataset"] == "shapes" and start["classes"] == 6
    from compiler.train import TrainingInterrupted

    assert isinstance(job.error, TrainingInterrupted), job.error  # stopped by the test, nothing else
