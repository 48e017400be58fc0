"""Print the report's HTML to PDF with headless Chromium, driven by Playwright.

Why Chromium and not WeasyPrint: Debian's ``chromium`` is already what the console's
browser tests drive, and Playwright (a maintained Python client) already in the test
extras drives it without a browser download; WeasyPrint would add a package and its
Pango stack for one feature. Chromium also lays out the inline SVG figures and CSS
paged media (A4, a landscape page for wide figures, no page break inside a table row)
exactly as the HTML shows them, and Playwright's footer template numbers the pages.

Nothing is fetched while printing: the page is set from a string and every request it
might make is refused, so a stray URL in the data can never reach the network.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from otconduit.report import ReportError

TIMEOUT_MS = 120_000
FOOTER = (
    '<div style="font-size:7pt;color:#6b7280;width:100%;padding:0 14mm;'
    'font-family:DejaVu Sans,Arial,sans-serif;display:flex;justify-content:space-between">'
    '<span>{title}</span><span>page <span class="pageNumber"></span> of '
    '<span class="totalPages"></span></span></div>'
)


def chromium() -> str | None:
    """The Chromium to print with: ``$CONDUIT_CHROMIUM``, else Debian's ``chromium``."""
    env = os.environ.get("CONDUIT_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def write_pdf(html: str, out: Path, *, footer: str = "") -> None:
    """Print ``html`` to ``out`` (A4). Raises ReportError with one line when Playwright or
    Chromium is missing or the browser fails."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ReportError(
            "a PDF needs Playwright (pip install playwright) and Chromium "
            "(apt-get install chromium); or write --output report.html"
        ) from None
    exe = chromium()
    if exe is None:
        raise ReportError(
            "a PDF needs Chromium (apt-get install chromium, or set CONDUIT_CHROMIUM); "
            "or write --output report.html"
        )
    from html import escape

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=exe,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                timeout=TIMEOUT_MS,
            )
            try:
                page = browser.new_page()
                page.route("**/*", _refuse)
                page.set_content(html, wait_until="load", timeout=TIMEOUT_MS)
                page.pdf(
                    path=str(out),
                    format="A4",
                    print_background=True,
                    prefer_css_page_size=True,
                    display_header_footer=True,
                    header_template="<div></div>",
                    footer_template=FOOTER.format(title=escape(footer)),
                )
            finally:
                browser.close()
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReportError(f"Chromium could not print the report: {first}") from None


def _refuse(route: Any) -> None:
    """Every request the page makes is refused (inline data needs none)."""
    route.abort()
