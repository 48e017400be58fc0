"""User errors of `conduit hub`, `conduit sites` and the `--uplink/--site` options: one
line, non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otconduit.hub.sites import load_sites
from otconduit.uplink.url import BrokerUrlError, parse_broker
from otconduit.yamlconf import ConfigError

CONDUIT = str(Path(sys.executable).parent / "conduit")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONDUIT, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["hub", "--broker", "http://x"], "use mqtt://"),
        (["hub", "--broker", "mqtt://u:p@127.0.0.1:1"], "allow_plaintext"),
        (["hub", "--broker", "mqtts://h?ca=/nonexistent.pem"], "does not exist"),
        (["hub", "--broker", "mqtt://h?bogus=1"], "unknown option"),
        (["hub", "--broker", "mqtt://127.0.0.1:1", "--sites", "/nonexistent.yaml"], "cannot read"),
        (["sites", "--db", "/nonexistent/hub.db"], "no database"),
        (["analyze", "x.pcap", "--site", "a"], "give --uplink too"),
        (["analyze", "x.pcap", "--uplink", "mqtt://127.0.0.1"], "needs --site"),
        (["analyze", "x.pcap", "--uplink", "mqtt://127.0.0.1", "--site", "a/b"], "--site"),
        (["sense", "--follow", "/tmp", "--uplink", "mqtt://127.0.0.1"], "needs --site"),
    ],
)
def test_user_errors_are_one_line(args: list[str], needle: str) -> None:
    r = _run(*args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_hub_without_broker_fails_in_one_line(tmp_path: Path) -> None:
    from tests.gateway.mqttbroker import free_port

    r = _run("hub", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--db", str(tmp_path / "h.db"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cannot reach the broker" in r.stderr


def test_sites_file(tmp_path: Path) -> None:
    f = tmp_path / "sites.yaml"
    f.write_text("sites:\n  - name: a\n  - name: b\n    user: sensor-b\n")
    assert load_sites(f).names == {"a", "b"}
    f.write_text("sites:\n  - name: a\n  - name: a\n")
    with pytest.raises(ConfigError, match="listed twice"):
        load_sites(f)
    f.write_text("sites:\n  - name: a\n  - name: 'x/y'\n")
    with pytest.raises(ConfigError, match=r"sites.yaml:3"):
        load_sites(f)


def test_broker_url() -> None:
    m = parse_broker("mqtt://127.0.0.1:1884")
    assert (m.host, m.port, m.tls, m.username) == ("127.0.0.1", 1884, None, None)
    m = parse_broker("mqtts://hub.example:8884")
    assert m.tls is not None and m.port == 8884
    assert parse_broker("mqtts://hub.example").port == 8883
    with pytest.raises(BrokerUrlError):
        parse_broker("mqtt://user:pw@127.0.0.1")  # a password in clear text over TCP
    assert parse_broker("mqtt://user:pw@127.0.0.1?allow_plaintext=1").password == "pw"
