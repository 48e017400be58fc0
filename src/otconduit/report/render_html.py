"""The report as one self-contained HTML page: the stylesheet inlined, every figure an
inline SVG, no script, no font or image fetched from anywhere -- it opens the same on an
air-gapped engineering laptop as in the PDF printer."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from otconduit.report.model import Report


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("otconduit.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=False,
    )


def render_html(report: Report) -> str:
    """The page for ``report`` (text values escaped; the figures' SVG is built escaped)."""
    env = environment()
    css = env.loader.get_source(env, "report.css")[0] if env.loader else ""
    return env.get_template("report.html.j2").render(report=report, css=css)
