"""A busy asset's page pages each of its lists on its own (25 rows, previous/next), in
the API and on the page, instead of listing every conversation it ever had."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.conftest import Env, make_env
from tests.console.synth import write_plant

HUB = "10.20.0.5"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Env]:
    db = tmp_path / "hub.db"
    peers = [f"10.20.{1 + i // 200}.{1 + i % 200}" for i in range(300)]
    write_plant(db, [(HUB, []), *((p, ["plc"]) for p in peers)], [(HUB, p, 502) for p in peers],
                ops_per_conv=1)  # fmt: skip
    e = make_env(db, tmp_path, policy=None)
    yield e
    e.ctx.close()


def test_api_pages_each_list(hub: Env) -> None:
    c = hub.client("viewer")
    first = c.get(f"/api/assets/{HUB}").json()
    assert first["conversations_total"] == 300 and len(first["conversations"]) == 25
    assert first["limit"] == 25 and len(first["operations"]["items"]) == 25
    nxt = c.get(f"/api/assets/{HUB}", params={"conversations_offset": 25}).json()
    assert nxt["conversations_offset"] == 25 and len(nxt["conversations"]) == 25
    ids = {x["id"] for x in first["conversations"]} | {x["id"] for x in nxt["conversations"]}
    assert len(ids) == 50  # no repeats
    older = c.get(f"/api/assets/{HUB}",
                  params={"operations_cursor": first["operations"]["next"]}).json()  # fmt: skip
    assert older["operations"]["items"][0]["ts"] <= first["operations"]["items"][-1]["ts"]
    assert c.get(f"/api/assets/{HUB}", params={"conversations_offset": 2**63}).status_code == 422


def test_page_shows_25_rows_and_section_pagers(hub: Env) -> None:
    c = hub.client("viewer")
    html = c.get(f"/assets/{HUB}").text
    table = html[html.index('id="asset-conversations"') :]
    assert table[: table.index("</table>")].count("<tr><td>") == 25
    pager = re.search(r'id="asset-conversations-pager".*?</div>', html, re.S)
    assert pager and 'href="?conv_offset=25#conversations"' in pager.group(0)
    assert "page 1 of 12" in pager.group(0)
    page2 = c.get(f"/assets/{HUB}", params={"conv_offset": 275, "ops_cursor": ""}).text
    assert "page 12 of 12" in page2
    assert c.get(f"/assets/{HUB}", params={"conv_offset": 2**64}).status_code == 200
    assert 'id="asset-operations-pager"' in html and "older &rarr;" in html
