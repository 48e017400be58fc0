"""The PDF, read back with poppler's pdftotext and pdftoppm: every section, the figures
the store gives, page numbers, the network map drawn in red where violations are, and
the ATT&CK matrix on a landscape page. Printed by Debian's chromium through Playwright
(skips when either, or poppler-utils, is missing)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from otconduit.report.pdf import chromium
from tests.report.conftest import POLICY, cli_json, run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium() is None, reason="chromium is not installed"),
    pytest.mark.skipif(
        shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
        reason="poppler-utils (pdftotext, pdftoppm) is not installed",
    ),
]


def pages(pdf: Path) -> list[str]:
    out = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    return [" ".join(p.split()) for p in out.stdout.split("\f")[:-1]]


def page_image(pdf: Path, number: int, tmp: Path) -> np.ndarray:
    """Page ``number`` (1-based) as an RGB array at 100 dpi."""
    stem = tmp / f"page{number}"
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "100",
            "-f",
            str(number),
            "-l",
            str(number),
            "-singlefile",
            str(pdf),
            str(stem),
        ],
        check=True,
    )
    data = (tmp / f"page{number}.ppm").read_bytes()
    head = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert head is not None
    w, h = int(head[1]), int(head[2])
    return np.frombuffer(data[head.end() :], np.uint8)[: w * h * 3].reshape(h, w, 3)


def red_pixels(img: np.ndarray) -> int:
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return int(np.count_nonzero((r > 150) & (r - g > 70) & (r - b > 70)))


@pytest.fixture(scope="module")
def pdf(lab_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report-pdf") / "report.pdf"
    res = run("report", "--db", str(lab_db), "--policy", str(POLICY), "-o", str(out))
    assert res.exit_code == 0, res.output
    assert out.read_bytes().startswith(b"%PDF-")
    return out


def find(texts: list[str], needle: str) -> int:
    """1-based number of the first page holding ``needle``."""
    return next(i + 1 for i, t in enumerate(texts) if needle in t)


def test_sections_and_page_numbers(pdf: Path) -> None:
    texts = pages(pdf)
    assert len(texts) >= 10
    for title in (
        "Summary",
        "Govern GV",
        "Identify ID",
        "Protect PR",
        "Detect DE",
        "Respond RS",
        "Recover RC",
        "Roadmap KPIs",
        "Appendix",
    ):
        assert any(t.startswith(title) for t in texts), title
    for i, t in enumerate(texts, 1):
        assert f"page {i} of {len(texts)}" in t


def test_figures_equal_the_store(pdf: Path, lab_db: Path) -> None:
    text = " ".join(pages(pdf))
    assets = cli_json("assets", "--db", str(lab_db))
    violations = cli_json("violations", "--db", str(lab_db))
    alerts = cli_json("alerts", "--db", str(lab_db))
    found = re.search(r"inventory holds ([\d,]+) assets \(([\d,]+) scan target", text)
    assert found is not None, "the summary states the counts"
    assert int(found[1].replace(",", "")) == len(assets)
    assert int(found[2].replace(",", "")) == 1  # the probed 127.0.10.99
    found = re.search(r"([\d,]+) policy violations are stored", text)
    assert found is not None and int(found[1].replace(",", "")) == len(violations)
    found = re.search(r"([\d,]+) alerts were raised, ([\d,]+) of them critical", text)
    assert found is not None and int(found[1]) == len(alerts)
    assert int(found[2]) == sum(1 for a in alerts if a["severity"] == "critical")
    for a in assets:  # every level 0-1 device is in the appendix by address
        if a["ip"].startswith("127.0.10."):
            assert a["ip"] in text


def test_network_map_is_drawn(pdf: Path, tmp_path: Path) -> None:
    texts = pages(pdf)
    n = find(texts, "Network map by Purdue level.")
    for label in ("cell-1 (5)", "idmz (2)", "enterprise (2)", "conveyor-plc", "IDMZ (3.5)"):
        assert label in texts[n - 1], label
    img = page_image(pdf, n, tmp_path)
    assert red_pixels(img) > 200  # the violations' lines and arrows
    # A page with no figure in red (the govern section's first page) has far less.
    assert red_pixels(page_image(pdf, find(texts, "Govern GV"), tmp_path)) < red_pixels(img) / 4


def test_attack_matrix_on_a_landscape_page(pdf: Path, tmp_path: Path) -> None:
    texts = pages(pdf)
    n = find(texts, "Detection coverage: ATT&CK for ICS matrix.")
    text = texts[n - 1]
    for tactic in ("Initial Access", "Inhibit Response Function", "Impair Process Control"):
        assert tactic in text
    assert "T0843 (1)" in text  # program download, named by one alert
    img = page_image(pdf, n, tmp_path)
    assert img.shape[1] > img.shape[0]  # wider than high
    portrait = page_image(pdf, n - 1, tmp_path)
    assert portrait.shape[0] > portrait.shape[1]
