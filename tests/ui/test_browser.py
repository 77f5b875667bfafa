"""The designer in a real browser: `streamlit run ui/app.py` in a subprocess, driven by
Playwright through Debian's Chromium (/usr/bin/chromium; never a downloaded browser).

Opens the app, inserts a block from the palette, picks resnet18 from the zoo, waits for the
graph's SVG, downloads it as a file, types an error into the editor and waits for its line
to be reported; then pastes a tiny spec, starts training in the Train tab, watches the
progress change and stops the run; runs a 2-value sweep in the Sweep tab; switches to the code
editor (Ace) and types an error into it. A second test opens a 2-level study of the tiny spec in
the Study tab, starts it and sees both trials finish and the report's plot. Screenshots
(designer-graph.png, designer-error.png, designer-train.png, designer-sweep.png,
designer-study.png) go to a temporary folder, or to docs/screenshots/ when
BLOCKGRAPH_SCREENSHOTS=1 (to refresh the pictures the docs show). Skipped when Chromium or
Playwright is missing.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "ui" / "app.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
DOC_SHOTS = ROOT / "docs" / "screenshots"
DEFAULT = (ROOT / "specs" / "default.yaml").read_text()
sys.path.insert(0, str(ROOT / "tests" / "train"))
from train_support import TINY, hooked_args  # noqa: E402
MAX_SHOT_BYTES = 300_000

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (Debian package `chromium`; ./dev installs it)", allow_module_level=True)
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    pytest.skip("playwright is not installed (pip extra `test`)", allow_module_level=True)
pytest.importorskip("streamlit")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free port of 127.0.0.1; killed (its whole process group) at the end."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    # a slowed-down trainer, so the progress is seen changing before the run ends
    command = [sys.executable, *hooked_args("0.1"), "-m", "streamlit", "run", str(APP), "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--", str(ROOT / "specs" / "default.yaml")]
    with open(log, "wb") as out:
        env = dict(os.environ, OMP_NUM_THREADS="1", BLOCKGRAPH_EDITOR="plain")
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer on {url} within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where screenshots go: docs/screenshots/ only when BLOCKGRAPH_SCREENSHOTS=1."""
    if os.environ.get("BLOCKGRAPH_SCREENSHOTS") == "1":
        return DOC_SHOTS
    return tmp_path_factory.mktemp("screenshots")


def screenshot(page, shots: Path, name: str) -> Path:
    page.mouse.move(5, 5)  # no hover tooltips in the picture
    page.evaluate("""() => {
        for (const el of document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]'))
            el.scrollTop = 0;
        window.scrollTo(0, 0);
    }""")
    page.wait_for_timeout(400)  # let the last rerun's fade-in finish
    shots.mkdir(parents=True, exist_ok=True)
    path = shots / name
    page.screenshot(path=str(path))
    assert path.stat().st_size < MAX_SHOT_BYTES, f"{name} is {path.stat().st_size:,} bytes"
    return path


def test_designer_in_chromium(server, shots):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(server)
            chart = page.locator('[data-testid="stGraphVizChart"] svg')
            chart.first.wait_for(timeout=60_000)  # first run: imports, the default spec's graph
            assert "stage1" in chart.first.text_content()
            assert "conv ×2" in chart.first.text_content()  # `repeat: 2` of a conv, as its box says

            # the palette: a dropout after `pool`, inserted into the text, drawn in the graph
            page.get_by_role("tab", name="Palette").click()
            block = page.get_by_role("combobox", name="Block")
            block.click()
            block.fill("dropout")
            page.get_by_role("option", name="dropout", exact=True).click()
            after = page.get_by_role("combobox", name="Insert after")
            after.click()
            after.fill("pool")
            page.get_by_role("option", name="pool (gap)").click()
            page.get_by_role("button", name="Insert").click()
            at = next(i for i, line in enumerate(DEFAULT.splitlines(), 2) if line == "  - {id: pool, op: gap}")
            page.get_by_text(f"Inserted at line {at}: - {{id: dropout1, op: dropout, p: 0.3}}").wait_for()
            expect(page.locator('[data-testid="stTextArea"] textarea').first).to_have_value(
                re.compile(r"\n  - \{id: dropout1, op: dropout, p: 0\.3\}\n"))
            page.get_by_role("tab", name="Design").click()
            page.locator('[data-testid="stGraphVizChart"] svg #node-dropout1').wait_for()

            # open resnet18 from the zoo
            sidebar = page.locator('[data-testid="stSidebar"]')
            sidebar.get_by_text("Open", exact=True).click()
            combo = sidebar.get_by_role("combobox", name="Zoo spec")
            combo.click()
            combo.fill("resnet18")
            page.get_by_role("option", name="resnet18.yaml").click()
            sidebar.get_by_role("button", name="Open zoo spec").click()
            page.locator('[data-testid="stGraphVizChart"] svg #node-layer1').wait_for()
            svg_text = chart.first.text_content()
            assert "layer1" in svg_text and "layer4" in svg_text and "fc" in svg_text
            assert chart.first.locator("g.node").count() >= 8
            page.get_by_text("11,689,512").first.wait_for()
            sidebar.get_by_text("Open", exact=True).click()  # fold the menu again
            screenshot(page, shots, "designer-graph.png")

            # the SVG download (generated on click by graphviz's dot)
            with page.expect_download() as download:
                page.get_by_role("button", name="Download SVG").click()
            svg = Path(download.value.path()).read_text()
            assert "<svg" in svg and 'id="node&#45;layer1"' in svg  # dot writes '-' as &#45;

            # type an error: the problem is reported at its line, the last graph stays
            editor = page.locator('[data-testid="stTextArea"] textarea').first
            expect(editor).to_have_value(re.compile(r"\nname: resnet18\n"))
            text = editor.input_value()
            editor.fill(text.replace("reference:", "referense:"))
            editor.press("Control+Enter")
            page.get_by_text(re.compile(r"line 6, col 1: referense: unknown key 'referense'")).wait_for()
            page.get_by_text(re.compile(r">6 \| referense: torchvision")).first.wait_for()
            assert page.locator('[data-testid="stGraphVizChart"] svg #node-layer1').count() == 1
            screenshot(page, shots, "designer-error.png")

            # a class count the dataset does not have: the error names the open file and the
            # Vars field that fixes it, not a command-line flag
            editor.fill(TINY.replace("classes: 6", "classes: 10"))
            editor.press("Control+Enter")
            page.get_by_role("tab", name="Train").click()
            for label, value in (("Epochs", "1"), ("Train images", "64"), ("Validation images", "32")):
                box = page.get_by_role("spinbutton", name=label)
                box.fill(value)
                box.press("Tab")
            page.get_by_role("button", name="Start").click()
            mismatch = page.get_by_text(re.compile(r"specs/resnet18\.yaml:5:\d+: vars\.classes: .*set the classes "
                                                   r"field under Vars to 6"))
            mismatch.first.wait_for(timeout=60_000)
            assert "--var" not in mismatch.first.text_content()

            # train a tiny spec: the progress moves, Stop ends the run as "stopped"
            page.get_by_role("tab", name="Design").click()
            editor.fill(TINY)
            editor.press("Control+Enter")
            page.get_by_role("tab", name="Train").click()
            for label, value in (("Epochs", "50"), ("Batch size", "32"), ("Train images", "512"),
                                 ("Validation images", "64")):
                box = page.get_by_role("spinbutton", name=label)
                box.fill(value)
                box.press("Tab")
            page.get_by_role("button", name="Start").click()
            progress = page.get_by_text(re.compile(r"epoch \d+/50, step \d+/16"))
            try:
                progress.first.wait_for(timeout=60_000)
            except Exception:
                page.screenshot(path="/tmp/train_debug.png", full_page=True)
                raise
            first = progress.first.text_content()
            deadline = time.monotonic() + 30
            while progress.first.text_content() == first:
                assert time.monotonic() < deadline, f"the progress stayed at {first!r}"
                page.wait_for_timeout(250)
            page.get_by_role("button", name="Stop").click()
            page.get_by_text(re.compile(r"run 2.*stopped")).first.wait_for(timeout=30_000)  # run 1: the mismatch
            page.get_by_role("button", name="Resume").wait_for()
            screenshot(page, shots, "designer-train.png")

            # a 2-value sweep of TINY's width: the table fills with both values done
            page.get_by_role("tab", name="Sweep").click()
            values = page.get_by_role("textbox", name="Values")
            expect(values).to_have_value("4, 8, 16")  # proposed around width: 8
            values.fill("4, 8")
            for label, value in (("Epochs per value", "1"), ("Train images", "64"), ("Validation images", "32")):
                box = page.get_by_role("spinbutton", name=label)
                box.fill(value)
                box.press("Tab")
            page.get_by_role("button", name="Start sweep").click()
            page.get_by_text(re.compile(r"sweep 1: .*: done")).first.wait_for(timeout=90_000)
            table = page.locator('[data-testid="stDataFrame"]').last
            expect(table).to_contain_text("done")
            # accuracy vs parameters, in the Sweep tab (the Train tab's charts are there too, hidden)
            page.locator('[data-testid="stVegaLiteChart"]:visible').first.wait_for()
            screenshot(page, shots, "designer-sweep.png")

            # the code editor: an error typed into Ace is reported and its line marked
            page.get_by_role("tab", name="Design").click()
            page.get_by_text("Plain text editor").click()
            ace = page.frame_locator('iframe[title*="streamlit_ace"]').first
            ace.locator(".ace_content").wait_for()
            ace.locator(".ace_text-input").focus()
            page.keyboard.press("Control+End")
            page.keyboard.type("\nbogus_key: 1")
            page.get_by_text(re.compile(r"unknown key 'bogus_key'")).first.wait_for()
            ace.locator(".ace_gutter-cell.ace_error").first.wait_for()
            assert ace.locator(".ace_error-marker").count() == 1
        finally:
            browser.close()


def test_study_tab_in_chromium(server, shots, tmp_path):
    """Open a 2-level study of the tiny spec in the Study tab, start it, see both trials finish
    in its table and the report's plot drawn."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from study_support import write_study

    study_file = write_study(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(server)
            page.locator('[data-testid="stGraphVizChart"] svg').first.wait_for(timeout=60_000)
            page.get_by_role("tab", name="Study").click()
            page.get_by_text("Choose a study file.").wait_for()
            for label, value in (("Study file", str(study_file)), ("Runs folder", str(tmp_path / "runs"))):
                box = page.get_by_role("textbox", name=label)
                box.fill(value)
                box.press("Enter")
            page.get_by_text("0 of 2 trials finished").wait_for(timeout=60_000)
            table = page.locator('[data-testid="stDataFrame"]:visible').first
            expect(table).to_contain_text("pending")
            page.get_by_role("button", name="Start study").click()
            page.get_by_text("2 of 2 trials finished").wait_for(timeout=120_000)
            page.get_by_role("button", name="Download report.html").wait_for(timeout=60_000)
            expect(table).to_contain_text("complete")
            expect(table).not_to_contain_text("pending")
            plot = page.locator('[data-testid="stImage"] img:visible, [data-testid="stImageContainer"] img:visible')
            plot.first.wait_for()
            assert plot.first.evaluate("img => img.naturalWidth") > 100
            screenshot(page, shots, "designer-study.png")
        finally:
            browser.close()
