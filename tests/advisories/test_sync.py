"""`conduit advisories sync` against a CSAF provider on 127.0.0.1: the 2017 advisories of
the snapshot, served as CISA serves them (ROLIE feed, changes.csv, index.txt) from a
temporary folder. No internet: every URL is the local server's."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from otconduit.advisories.sync import SyncError, sync
from otconduit.store import Store
from otconduit.store import advisories as adb
from tests.advisories.conftest import SNAPSHOT, needs_csaf

pytestmark = needs_csaf
CISA = "https://raw.githubusercontent.com/cisagov/CSAF/develop/csaf_files/OT/white/"
YEAR = "2017"
CONDUIT = Path(sys.executable).with_name("conduit")


@dataclass
class Provider:
    root: Path
    base: str  # http://127.0.0.1:port
    requests: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)  # white/2017/x.json

    def touch(self, rel: str) -> None:
        """Make a file newer than any If-Modified-Since the client holds."""
        t = time.time() + 10
        os.utime(self.root / rel, (t, t))


class _Handler(SimpleHTTPRequestHandler):
    log: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        self.log.append(self.path)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    root = tmp_path / "site"
    white = root / "white"
    with tarfile.open(SNAPSHOT) as tar:
        for m in tar:
            if m.isfile() and (m.name.startswith(f"white/{YEAR}/") or "/" not in m.name[6:]):
                tar.extract(m, root, filter="data")
    docs = sorted(str(p.relative_to(root)) for p in (white / YEAR).glob("*.json"))
    # CISA's index files, kept as CISA writes them, cut down to the one year.
    for name in ("changes.csv", "index.txt"):
        lines = (white / name).read_text().splitlines()
        (white / name).write_text("\n".join(x for x in lines if f"/{YEAR}/" in x) + "\n")
    log: list[str] = []
    handler = type("H", (_Handler,), {"log": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    feed = json.loads((white / "cisa-csaf-ot-feed-tlp-white.json").read_text())
    feed["feed"]["entry"] = [e for e in feed["feed"]["entry"] if f"/{YEAR}/" in json.dumps(e)]
    # A mirror serves the feed with its own links.
    text = json.dumps(feed).replace(CISA, f"{base}/white/")
    (white / "feed.json").write_text(text)
    meta = root / ".well-known" / "csaf" / "provider-metadata.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(
        json.dumps(
            {
                "canonical_url": f"{base}/.well-known/csaf/provider-metadata.json",
                "metadata_version": "2.0",
                "role": "csaf_trusted_provider",
                "distributions": [{"rolie": {"feeds": [{"url": f"{base}/white/feed.json"}]}}],
            }
        )
    )
    # Hash files for three documents, and a wrong one for a fourth.
    for rel in docs[:3]:
        digest = hashlib.sha512((root / rel).read_bytes()).hexdigest()
        (root / (rel + ".sha512")).write_text(f"{digest}  {Path(rel).name}\n")
    (root / (docs[3] + ".sha512")).write_text("00" * 64 + "  tampered.json\n")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Provider(root, base, log, docs)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_rolie_through_provider_metadata(provider: Provider, tmp_path: Path) -> None:
    n = len(provider.docs)
    assert n == 187
    with Store(tmp_path / "c.db") as store:
        rep = sync(store, provider.base + "/")  # the host: /.well-known/csaf/ is found
        assert rep.kind == "rolie" and rep.listed == n
        assert rep.fetched == n and rep.imported.new == n - 1  # one failed its hash
        assert rep.imported.skipped == 1 and "sha512 does not match" in rep.imported.problems[0][1]
        assert (rep.verified, rep.unverified) == (3, n - 4)
        assert adb.count(store) == n - 1
        # Again: the feed has not changed (304), nothing else is asked for.
        provider.requests.clear()
        rep = sync(store, provider.base + "/")
        assert rep.not_modified and rep.fetched == 0
        assert provider.requests == [
            "/.well-known/csaf/provider-metadata.json",
            "/white/feed.json",
        ]
        # One advisory is revised: only it is fetched.
        rel = provider.docs[10]
        doc = json.loads((provider.root / rel).read_text())
        tid = doc["document"]["tracking"]["id"]
        doc["document"]["tracking"]["version"] = "99"
        doc["document"]["title"] += " (revised)"
        (provider.root / rel).write_text(json.dumps(doc))
        feed = json.loads((provider.root / "white/feed.json").read_text())
        for e in feed["feed"]["entry"]:
            if e["id"] == tid:
                e["updated"] = "2030-01-01T00:00:00.000000Z"
        (provider.root / "white/feed.json").write_text(json.dumps(feed))
        provider.touch("white/feed.json")
        provider.requests.clear()
        rep = sync(store, provider.base + "/")
        assert (rep.fetched, rep.imported.updated, rep.current) == (1, 1, n - 1)
        assert sum(1 for r in provider.requests if r.endswith(".json") and "/20" in r) == 1
        got = adb.document(store, tid)
        assert got is not None and got[0]["version"] == "99"


def test_directory_with_changes_csv(provider: Provider, tmp_path: Path) -> None:
    """CISA's changes.csv names paths from its repository's root (csaf_files/OT/white/...)."""
    n = len(provider.docs)
    with Store(tmp_path / "c.db") as store:
        rep = sync(store, provider.base + "/white/")
        assert rep.kind == "changes.csv" and rep.listed == n and rep.fetched == n
        assert rep.imported.new == n - 1 and rep.imported.skipped == 1
        provider.requests.clear()
        assert sync(store, provider.base + "/white/").not_modified
        assert provider.requests == ["/white/changes.csv"]
        # A row's time changes: that document alone is fetched (its bytes are the same).
        lines = (provider.root / "white/changes.csv").read_text().splitlines()
        path, _ = lines[5].split(",")
        lines[5] = f"{path},2030-01-01T00:00:00.000000Z"
        (provider.root / "white/changes.csv").write_text("\n".join(lines) + "\n")
        provider.touch("white/changes.csv")
        rep = sync(store, provider.base + "/white/")
        assert (rep.fetched, rep.imported.unchanged, rep.current) == (1, 1, n - 1)


def test_index_txt_fetches_only_new_documents(provider: Provider, tmp_path: Path) -> None:
    index = provider.root / "white/index.txt"
    lines = index.read_text().splitlines()
    index.write_text("\n".join(lines[:-1]) + "\n")
    with Store(tmp_path / "c.db") as store:
        rep = sync(store, provider.base + "/white/index.txt")
        assert rep.kind == "index.txt" and rep.fetched == len(lines) - 1
        index.write_text("\n".join(lines) + "\n")
        provider.touch("white/index.txt")
        rep = sync(store, provider.base + "/white/index.txt")
        assert (rep.listed, rep.fetched, rep.current) == (len(lines), 1, len(lines) - 1)


def test_unusable_sources_fail_in_one_line(provider: Provider, tmp_path: Path) -> None:
    with Store(tmp_path / "c.db") as store:
        with pytest.raises(SyncError, match="not found"):
            sync(store, provider.base + "/nothing.json")
        with pytest.raises(SyncError, match="neither a ROLIE feed"):
            sync(store, provider.base + "/white/2017/" + Path(provider.docs[0]).name)
        with pytest.raises(SyncError, match="only http and https"):
            sync(store, "ftp://127.0.0.1/feed.json")
        with pytest.raises(SyncError, match=r"no changes\.csv or index\.txt"):
            sync(store, provider.base + "/white/2017/")


def test_cli(provider: Provider, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    env = dict(os.environ, COLUMNS="200")
    res = subprocess.run(
        [
            str(CONDUIT),
            "advisories",
            "sync",
            "--url",
            provider.base + "/white/feed.json",
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "187 listed" in res.stdout and "186 new" in res.stdout
    assert res.stderr.count("skipped ") == 1 and "Traceback" not in res.stderr
    res = subprocess.run(
        [
            str(CONDUIT),
            "advisories",
            "sync",
            "--url",
            "http://127.0.0.1:9/feed.json",
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
