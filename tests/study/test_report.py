"""A study's report from hand-made records (report_records.py): the tables hold what the test
computes by hand (means and sample standard deviations over seeds), every plot kind writes a
PNG and an SVG, a plot whose probe is missing gets a note instead of an exception, and the page
holds the escaped study file and links images that exist."""

from __future__ import annotations

import csv
import html
import json
import math
import re
from urllib.parse import unquote

import pytest

from compiler.study.plots import Plot
from compiler.study.report import write_report
from report_records import PARAMS, VALUES, make_records

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STUDY_TEXT = "name: depth\nfactors:\n  depth: {levels: [20, 56, 110]}  # <b>not bold</b> & `code`\n"
SMALL = [2.4, 1.8]
PLOTS = [
    Plot(kind="curve", y="train_loss", size=SMALL),
    Plot(kind="curve", y="val_error", size=SMALL, title="val error <%>"),
    Plot(kind="bar", label="params", size=SMALL),
    Plot(kind="bar", y="val_loss", at="final", size=SMALL, name="final-loss"),
    Plot(kind="scatter", x="params", log_x=True, size=SMALL),
    *[Plot(kind="probe", probe=name, size=SMALL) for name in
      ("signal_std", "filter_similarity", "landscape", "lesion", "dense_weights", "class_maps")],
    # one seed's excitations (over several seeds the plot notes that their channels differ)
    Plot(kind="probe", probe="se_excitations", where={"seed": [0]}, size=SMALL),
    Plot(kind="probe", probe="lesion", show="k", size=SMALL),
    Plot(kind="probe", probe="gradient_noise", size=SMALL),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return write_report(study_name="depth", study_text=STUDY_TEXT, records=make_records(), plots=PLOTS,
                        out_dir=out, order={"depth": ["56", "20", "110"]})


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_results_csv_has_a_row_per_trial_with_levels_and_final_metrics(report):
    rows = _rows(report.results_csv)
    assert [row["key"] for row in rows] == ["depth=20,seed=0", "depth=20,seed=1", "depth=56,seed=0",
                                            "depth=56,seed=1", "depth=56,seed=2", "depth=110,seed=0"]
    for row in rows[:4]:
        value = VALUES[(row["depth"], int(row["seed"]))]
        assert row["state"] == "complete" and float(row["value"]) == pytest.approx(value)
        assert float(row["final_val_top1"]) == pytest.approx(value)  # the last epoch is the best here
        assert float(row["final_train_top1"]) == 0.75 and row["epochs"] == "2"
        assert int(row["params"]) == PARAMS[row["depth"]] and row["error"] == ""
    failed, refused = rows[4], rows[5]
    assert failed["state"] == "failed" and failed["final_train_loss"] == ""  # nan is no number in the table
    assert "diverged" in failed["error"] and refused["state"] == "refused" and "unknown op" in refused["error"]


def test_summary_is_the_mean_and_sample_std_over_seeds_in_the_study_files_order(report):
    rows = _rows(report.summary_csv)
    assert [row["depth"] for row in rows] == ["56", "20", "110"]
    by_depth = {row["depth"]: row for row in rows}
    # hand-computed: the mean of two values, their sample std |a - b| / sqrt(2)
    assert float(by_depth["20"]["mean"]) == pytest.approx(0.72)
    assert float(by_depth["20"]["std"]) == pytest.approx(0.04 / math.sqrt(2))
    assert float(by_depth["56"]["mean"]) == pytest.approx(0.63)
    assert float(by_depth["56"]["std"]) == pytest.approx(0.06 / math.sqrt(2))
    assert by_depth["56"]["n"] == "2" and by_depth["56"]["not_complete"] == "1"  # the failed seed 2
    assert by_depth["110"]["n"] == "0" and by_depth["110"]["mean"] == "" and by_depth["110"]["not_complete"] == "1"


def test_results_json_holds_the_same_rows(report):
    data = json.loads(report.results_json.read_text())
    assert data["study"] == "depth" and data["factors"] == ["depth"]
    assert len(data["trials"]) == 6 and data["trials"][4]["final_train_loss"] is None
    summary = {row["depth"]: row for row in data["summary"]}
    assert summary["20"]["mean"] == pytest.approx(0.72) and summary["20"]["n"] == 2
    assert summary["110"]["std"] is None


def test_every_plot_writes_a_png_and_an_svg(report):
    assert len(report.plots) == len(PLOTS)
    assert len({plot.name for plot in report.plots}) == len(PLOTS)  # no plot overwrites another
    for plot in report.plots:
        data = plot.png.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, plot.name
        svg = plot.svg.read_text()
        assert svg.startswith("<?xml") and "<svg" in svg and svg.rstrip().endswith("</svg>"), plot.name


def test_a_probe_no_trial_recorded_is_a_note_not_an_error(report):
    missing = report.plots[-1]
    assert missing.notes and "gradient_noise" in missing.notes[0] and "lesion" in missing.notes[0]
    assert all(not plot.notes for plot in report.plots[:-1]), [p.notes for p in report.plots]
    assert "Note: no trial recorded probe" in report.markdown.read_text()


def test_the_page_escapes_the_study_file_and_links_images_that_exist(report):
    page = report.html.read_text()
    assert html.escape(STUDY_TEXT) in page and "<b>not bold</b>" not in page
    assert html.escape("unknown op 'conv<3>' & more") in page  # the refused trial's message
    assert "val error &lt;%&gt;" in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(PLOTS)
    for source in sources:
        assert (report.out_dir / unquote(html.unescape(source))).is_file(), source
    assert "<script" not in page and "<link" not in page and "http" not in page  # self-contained
    markdown = report.markdown.read_text()
    assert STUDY_TEXT.rstrip() in markdown and "![val error &lt;%&gt;](plots/" in markdown
    for source in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (report.out_dir / unquote(source)).is_file(), source


def test_markdown_summary_table_has_a_row_per_cell(report):
    markdown = report.markdown.read_text()
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| depth | metric | n | value (mean ± std)")
    assert table[1].startswith("| 56 | val_top1 | 2 | 0.63 ± 0.04243 |")
    assert table[2].startswith("| 20 | val_top1 | 2 | 0.72 ± 0.02828 |")


def test_a_report_without_probes_still_writes_every_file(tmp_path):
    files = write_report(study_name="bare", study_text="name: bare\n", records=make_records(with_probes=False),
                         plots=[Plot(kind="probe", probe="lesion", size=SMALL)], out_dir=tmp_path)
    assert files.plots[0].notes and files.plots[0].png.read_bytes().startswith(PNG_SIGNATURE)
    assert files.html.is_file() and files.results_csv.is_file()
