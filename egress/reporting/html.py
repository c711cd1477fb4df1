"""HTML pieces of the report: styles, embedded figures, tables with human headers.

The report is one file to forward by mail: every figure is an embedded PNG,
there is no script and no link. Tables show words, not column names
(:data:`HEADERS`), and numbers rounded to what they can mean: vehicle counts
(means over replications) as whole vehicles, minutes to one decimal.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable

import pandas as pd

from .plots import pyplot

CSS = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:1.2em auto;
color:#222;line-height:1.4;padding:0 1em}
h1{border-bottom:3px solid #2a6ebb;margin-bottom:0.3em;font-size:1.6em}
h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:0.85em;margin:0.6em 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#eef3fa}
td:first-child,th:first-child{text-align:left}
figure{margin:0.8em 0}figcaption{color:#444;font-size:0.9em}
img{max-width:100%;border:1px solid #ddd}
pre{background:#f6f6f6;padding:0.8em;overflow-x:auto;font-size:0.8em}
.note{color:#555;font-size:0.9em}
.summary{background:#eef6ee;border:2px solid #3c8d40;border-radius:6px;padding:0.6em 1.2em;
margin:0.8em 0}
.summary h2{border:none;margin:0.2em 0}
.answer{font-size:1.1em}
.validity{background:#f7f7fb;border:2px solid #6b6fa8;border-radius:6px;padding:0.6em 1.2em;
margin:0.8em 0}
.validity h2{border:none;margin:0.2em 0}
.ok{color:#2e7d32;font-weight:bold}.warn{color:#b26a00;font-weight:bold}
.bad{background:#fde8e8;border-left:4px solid #c0392b;padding:0.6em 1em}
.badword{color:#c0392b;font-weight:bold}
"""

#: Human headers for the columns a report may show.
HEADERS = {
    "scenario": "scenario", "policy": "policy", "fraction": "compliance", "group": "vehicles",
    "saving_min": "minutes saved per vehicle", "ci_low": "95% interval from",
    "ci_high": "95% interval to", "replications": "paired replications",
    "vehicles": "vehicles (mean per run)", "dropped": "vehicles dropped from the pair",
    "baseline_min": "mean travel time, baseline (min)",
    "policy_min": "mean travel time, with the policy (min)",
    "vehicle_hours_saved": "vehicle-hours saved", "vh_ci_low": "vehicle-hours, interval from",
    "vh_ci_high": "vehicle-hours, interval to", "event": "event",
    "calibration": "calibration", "complied": "complied", "teleports": "teleports",
    "key": "item", "value": "value", "software": "software", "version": "version",
}


def esc(text: object) -> str:
    return html.escape(str(text))


def p(text: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f"<p{c}>{esc(text)}</p>"


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def img(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{b64}">'


def figure(data: bytes, caption: str) -> str:
    """An embedded PNG with a caption that says what it shows."""
    return f"<figure>{img(data, caption)}<figcaption>{esc(caption)}</figcaption></figure>"


def fig_png(fig, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def table(df: pd.DataFrame, digits: int = 2, headers: dict[str, str] | None = None) -> str:
    """An HTML table with human headers (:data:`HEADERS`, then `headers`)."""
    names = {**HEADERS, **(headers or {})}
    shown = df.rename(columns={c: names.get(c, c.replace("_", " ")) for c in df.columns})
    return shown.to_html(index=False, border=0, na_rep="–",
                         float_format=lambda x: f"{x:,.{digits}f}")


def rows_table(rows: Iterable[tuple[str, str]], head: tuple[str, str] = ("item", "value")) -> str:
    """A two-column table of already formatted text."""
    body = "".join(f"<tr><td>{esc(a)}</td><td>{esc(b)}</td></tr>" for a, b in rows)
    return f"<table><tr><th>{esc(head[0])}</th><th>{esc(head[1])}</th></tr>{body}</table>"


def text_table(df: pd.DataFrame) -> str:
    """A table of formatted text, headers as given (left-aligned words)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><tr>{head}</tr>{body}</table>"


__all__ = ["CSS", "HEADERS", "esc", "fig_png", "figure", "img", "p", "pre", "rows_table",
           "table", "text_table"]
