"""The HTML report is one self-contained page: every section, no external reference of
any kind, and text from the wire escaped."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from otconduit.store import Store
from tests.report.conftest import GATEWAY, POLICY, run

SECTIONS = (
    "Summary",
    "Govern",
    "Identify",
    "Protect",
    "Detect",
    "Respond",
    "Recover",
    "Roadmap KPIs",
    "Appendix",
)
# Attributes that make a browser fetch (or navigate to) something.
REFERENCE = re.compile(
    r"""\b(?:src|href|xlink:href|action|poster|data|srcset)\s*=\s*["']?([^"'\s>]*)""", re.I
)


def write(db: Path, out: Path, *extra: str) -> str:
    res = run("report", "--db", str(db), "--policy", str(POLICY), "-o", str(out), *extra)
    assert res.exit_code == 0, res.output
    assert f"wrote {out}" in res.stderr
    return out.read_text(encoding="utf-8")


def test_self_contained(lab_db: Path, tmp_path: Path) -> None:
    html = write(lab_db, tmp_path / "report.html", "--gateway", str(GATEWAY))
    refs = REFERENCE.findall(html)
    assert refs, "the table of contents links to its sections"
    assert all(r.startswith("#") for r in refs), [r for r in refs if not r.startswith("#")]
    lowered = html.lower()
    for banned in (
        "<script",
        "<link",
        "<iframe",
        "<img",
        "<object",
        "<embed",
        "@import",
        "@font-face",
    ):
        assert banned not in lowered, banned
    assert set(re.findall(r"url\(\s*([^)]*)\)", html)) == {"#netmap-arrow"}
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html  # not even as text
    assert html.count("<svg") >= 5


def test_every_section_and_figure(lab_db: Path, tmp_path: Path) -> None:
    html = write(lab_db, tmp_path / "report.html")
    for title in SECTIONS:
        assert re.search(rf"<h2>{re.escape(title)}(<span|</h2>)", html), title
    for code in ("GV", "ID", "PR", "DE", "RS", "RC"):
        assert f'<span class="code">{code}</span>' in html
    for fig in (
        "Identity coverage",
        "Network map by Purdue level",
        "Policy violations by rule",
        "Detection coverage: ATT&amp;CK for ICS matrix",
        "Alerts by severity",
        "How level 0-1 data reaches IT",
    ):
        assert re.search(rf"Figure \d+: {re.escape(fig)}", html), fig
    assert "Not visible to Conduit" in html
    from otconduit.detect.runbooks import runbooks

    assert "Runbooks (joint IT/OT response, one per alert category)" in html
    for rb in runbooks().values():  # every runbook with who to involve
        assert f"<td>{rb.category}</td>" in html


def test_text_from_the_wire_is_escaped(lab_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "conduit.db"
    shutil.copy(lab_db, db)
    evil = "<script>alert(1)</script>"
    with Store(db) as st:
        st.conn.execute(
            "INSERT INTO asset_attributes (asset_id, capture_id, kind, name, value, source, "
            "confidence) SELECT id, NULL, 'identity', 'name', ?, 'user', 0.99 FROM assets "
            "WHERE ip = '127.0.10.10'",
            (evil,),
        )
    html = write(db, tmp_path / "report.html")
    assert evil not in html and "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_without_policy_or_gateway(analysed_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    res = run("report", "--db", str(analysed_db), "-o", str(out))
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "No zones-and-conduits policy was given" in html
    assert "Not part of this report: no gateway config given (--gateway)." in html
    assert "Not measured: needs --policy" in html
