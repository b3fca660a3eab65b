"""HTML pages of a teaching package: an index and one page per case.

Plain, self-contained HTML (no script, no external resources) so the package opens
from a USB stick or a course website.  Every user text is escaped; the "unknown
case" layout puts the diagnosis in a ``<details>`` element, closed by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
h1, h2 { font-weight: 600; } .meta { color: #666; }
figure { display: inline-block; margin: 0 1rem 1rem 0; vertical-align: top; }
figure img { max-width: 28rem; max-height: 28rem; background: #000; }
figcaption { font-size: 0.9em; color: #444; max-width: 28rem; }
.tags span { background: #eef; border-radius: 3px; padding: 0 0.4em; margin-right: 0.3em; }
.exemplars figure img { max-width: 12rem; max-height: 12rem; }
section { margin-bottom: 1.5rem; } pre { white-space: pre-wrap; font-family: inherit; }
.warning { color: #a40; }
"""


@dataclass
class FigureView:
    """An image on a page: the PNG and its caption lines."""

    png: str
    caption: list[str] = field(default_factory=list)


@dataclass
class CasePage:
    """What a case page shows (all text already de-identified)."""

    number: int
    file: str
    title: str
    modality: str
    labels: list[str]
    tags: list[str]
    history: str
    findings: str
    diagnosis: str
    discussion: str
    citations: str
    free_text: str
    figures: list[FigureView]
    similar: list[FigureView]
    dissimilar: list[FigureView]
    warnings: list[str]
    # The case's report (de-identified), shown with the answer: it names the findings.
    report: str = ""


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def _text(label: str, text: str) -> str:
    if not text.strip():
        return ""
    return f"<section><h2>{escape(label)}</h2><pre>{escape(text)}</pre></section>"


def _figures(figures: list[FigureView], prefix: str) -> str:
    out = []
    for fig in figures:
        caption = "<br>".join(escape(c) for c in fig.caption if c)
        alt = escape("; ".join(c for c in fig.caption if c))
        out.append(f"<figure><img src=\"{escape(prefix + fig.png)}\" alt=\"{alt}\">"
                   f"<figcaption>{caption}</figcaption></figure>")
    return "".join(out)


def case_page(case: CasePage, collection: str, *, unknown: bool = True) -> str:
    """Return the HTML of one case page.

    With ``unknown`` (the default), findings, diagnosis and discussion sit in a closed
    ``<details>`` block so the page can be used as an unknown case.
    """
    tags = "".join(f"<span>{escape(t)}</span>" for t in case.tags)
    head = (f"<p><a href=\"../index.html\">{escape(collection)}</a></p>"
            f"<h1>Case {case.number}: {escape(case.title)}</h1>"
            f"<p class=\"meta\">{escape(case.modality)}</p>"
            + (f"<p class=\"tags\">{tags}</p>" if tags else ""))
    warnings = "".join(f"<p class=\"warning\">{escape(w)}</p>" for w in case.warnings)
    images = f"<section>{_figures(case.figures, '../')}</section>"
    answer = (_text("Findings", case.findings) + _text("Diagnosis", case.diagnosis) +
              (f"<section><h2>Labels</h2><p>{escape(', '.join(case.labels))}</p></section>"
               if case.labels else "") +
              _text("Discussion", case.discussion) + _text("Report", case.report))
    if unknown and answer:
        answer = f"<details><summary>Show the answer</summary>{answer}</details>"
    exemplars = ""
    if case.similar:
        exemplars += ("<section class=\"exemplars\"><h2>Similar cases</h2>"
                      f"{_figures(case.similar, '../')}</section>")
    if case.dissimilar:
        exemplars += ("<section class=\"exemplars\"><h2>Dissimilar cases</h2>"
                      f"{_figures(case.dissimilar, '../')}</section>")
    body = (head + warnings + _text("History", case.history) + images + answer + exemplars +
            _text("Notes", case.free_text) + _text("References", case.citations))
    return _page(f"{collection}: case {case.number}", body)


def index_page(collection: str, description: str, cases: list[CasePage]) -> str:
    """Return the HTML of the package's index page."""
    rows = []
    for case in cases:
        thumb = (f"<img src=\"{escape(case.figures[0].png)}\" alt=\"\" "
                 f"style=\"max-width:6rem;max-height:6rem;background:#000\">"
                 if case.figures else "")
        tags = ", ".join(case.tags)
        rows.append(f"<tr><td>{thumb}</td><td><a href=\"{escape(case.file)}\">Case "
                    f"{case.number}: {escape(case.title)}</a></td><td>{escape(case.modality)}"
                    f"</td><td>{escape(tags)}</td></tr>")
    body = (f"<h1>{escape(collection)}</h1>" +
            (f"<p>{escape(description)}</p>" if description else "") +
            "<table><thead><tr><th></th><th>Case</th><th>Modality</th><th>Tags</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>"
            "<p class=\"meta\">De-identified teaching package (DICOM PS3.15 Basic Application "
            "Confidentiality Profile). DICOM files and a DICOMDIR are in <code>dicom/</code>.</p>")
    return _page(collection, body)
