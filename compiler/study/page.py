"""A study report's page, written twice from one `ReportPage`: report.md (Markdown) and
report.html (self-contained: its style inline, no script, no external asset; the plots as
images beside it, by relative path). Everything from the records or the study file is escaped
(html.escape; table cells' pipes; fences longer than any backtick run of the text), since a
level's label or an error message can hold any character. The one home of the page's tables.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..formatting import human_count
from .drawing import DrawnPlot
from .records import TrialRecord

TABLE_FILES = ("results.csv", "results.json", "summary.csv")
"""The tables written beside the page (compiler/study/report.py), linked from it."""
STYLE = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}pre{background:#f7f7f7;padding:.8rem;overflow:auto}
.note{color:#8a4b00}"""


@dataclass
class ReportPage:
    """What the page shows."""

    title: str
    study_name: str
    study_text: str
    records: list[TrialRecord]
    levels: list[str]
    """The summary's level columns (the factors, as results.csv names them)."""
    summary: list[dict[str, Any]]
    """compiler.study.report.summary_rows."""
    plots: list[DrawnPlot]
    out_dir: Path
    """Where the page is written: images are linked relative to it."""

    def relative(self, path: Path) -> str:
        return path.relative_to(self.out_dir).as_posix()

    def counts(self) -> str:
        by_state = {state: sum(r.state == state for r in self.records) for state in ("complete", "failed", "refused")}
        parts = ", ".join(f"{n} {state}" for state, n in by_state.items() if n)
        return f"{len(self.records)} trials" + (f" ({parts})" if parts else "")

    def problems(self) -> list[TrialRecord]:
        """The trials that did not complete, by trial number."""
        return sorted((r for r in self.records if r.state != "complete"), key=lambda r: (r.trial, r.key))


def number(value: Any) -> str:
    """A table's number: 4 significant digits, nothing for a missing one."""
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    """Cells as text, one list per row (as many as headers)."""


def summary_table(page: ReportPage) -> Table:
    headers = [*page.levels, "metric", "n", "value (mean ± std)", "min", "max", "params", "not complete"]
    rows = []
    for row in page.summary:
        mean = number(row["mean"]) + (f" ± {number(row['std'])}" if row["std"] is not None else "")
        params = "" if row["params"] is None else human_count(row["params"])
        rows.append([*(str(row[c]) for c in page.levels), row["metric"], str(row["n"]), mean,
                     number(row["min"]), number(row["max"]), params, str(row["not_complete"])])
    return Table(headers=headers, rows=rows)


def text(value: str) -> str:
    """Plain text in Markdown: `<`, `>` and `&` as entities (a renderer would read HTML)."""
    return html.escape(value, quote=False)


def markdown_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table; cells' pipes escaped, `<`, `>` and `&` as entities and
    line breaks made spaces."""
    def cell(value: str) -> str:
        return re.sub(r"\s*\n\s*", " ", text(value)).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n" for row in table.rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def fence(text: str, language: str = "") -> str:
    """`text` as a fenced Markdown block whose fence no backtick run inside it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    marks = "`" * max(3, longest + 1)
    return f"{marks}{language}\n{text.rstrip()}\n{marks}\n"


def code_span(text: str) -> str:
    marks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{marks}{pad}{text}{pad}{marks}"


def render_markdown(page: ReportPage) -> str:
    parts = [f"# {text(page.title)}\n", f"Study {code_span(page.study_name)}: {page.counts()}. "
             "Value: each trial's best epoch by its metric; std is over seeds (n - 1). Tables: "
             + ", ".join(f"[{name}]({name})" for name in TABLE_FILES) + ".\n",
             "## Summary\n", markdown_table(summary_table(page))]
    if page.plots:
        parts.append("## Plots\n")
    for plot in page.plots:
        parts.append(f"### {text(plot.title)}\n")
        alt = re.sub(r"([\[\]\\])", r"\\\1", text(plot.title))
        parts.append(f"![{alt}]({quote(page.relative(plot.png))})\n")
        parts.append(f"[SVG]({quote(page.relative(plot.svg))})\n")
        parts += [f"> Note: {text(note)}\n" for note in plot.notes]
    problems = page.problems()
    if problems:
        parts.append("## Failed and refused trials\n")
        for record in problems:
            parts.append(f"- {code_span(record.key)} ({record.state}, trial {record.trial}):\n")
            block = fence(record.error or "(no message recorded)", "text")
            parts.append("".join(f"  {line}" if line.strip() else line for line in block.splitlines(True)))
    parts += ["## Study file\n", fence(page.study_text, "yaml")]
    return "\n".join(parts)


def render_html(page: ReportPage) -> str:
    e = html.escape
    body = [f"<h1>{e(page.title)}</h1>",
            f"<p>Study <code>{e(page.study_name)}</code>: {e(page.counts())}. Value: each trial's best "
            "epoch by its metric; std is over seeds (n - 1). Tables: "
            + ", ".join(f'<a href="{e(quote(name))}">{e(name)}</a>' for name in TABLE_FILES) + ".</p>",
            "<h2>Summary</h2>", html_table(summary_table(page))]
    if page.plots:
        body.append("<h2>Plots</h2>")
    for plot in page.plots:
        png, svg = e(quote(page.relative(plot.png))), e(quote(page.relative(plot.svg)))
        body.append(f"<h3>{e(plot.title)}</h3>")
        body.append(f'<p><img src="{png}" alt="{e(plot.title)}"><br><a href="{svg}">SVG</a></p>')
        body += [f'<p class="note">Note: {e(note)}</p>' for note in plot.notes]
    problems = page.problems()
    if problems:
        body.append("<h2>Failed and refused trials</h2><ul>")
        for record in problems:
            body.append(f"<li><code>{e(record.key)}</code> ({e(record.state)}, trial {record.trial}):"
                        f"<pre>{e(record.error or '(no message recorded)')}</pre></li>")
        body.append("</ul>")
    body += ["<h2>Study file</h2>", f"<pre><code>{e(page.study_text)}</code></pre>"]
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{e(page.title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")
