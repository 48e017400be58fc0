"""``mqtt[s]://[user[:password]@]host[:port][?ca=FILE&cert=FILE&key=FILE]`` -> broker
settings (the gateway's :class:`~otconduit.gateway.config.Mqtt`).

The password may instead come from ``CONDUIT_MQTT_PASSWORD`` (kept out of ``ps``).
Credentials without TLS are refused unless the URL says ``allow_plaintext=1``."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import ValidationError

from otconduit.gateway.config import Mqtt, Tls

_QUERY = {"ca", "cert", "key", "insecure", "allow_plaintext"}


class BrokerUrlError(ValueError):
    """The broker URL is wrong; the message says how."""


def parse_broker(url: str, *, client_id: str = "") -> Mqtt:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BrokerUrlError(f"broker URL {url!r}: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise BrokerUrlError(f"broker URL {url!r}: use mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    if not parts.hostname:
        raise BrokerUrlError(f"broker URL {url!r} has no host")
    query = parse_qs(parts.query)
    unknown = set(query) - _QUERY
    if unknown:
        raise BrokerUrlError(
            f"broker URL: unknown option {sorted(unknown)[0]!r} (know {sorted(_QUERY)})"
        )

    def one(name: str) -> str | None:
        v = query.get(name)
        return v[-1] if v else None

    tls = None
    if parts.scheme == "mqtts":
        files = {k: Path(v) for k in ("ca", "cert", "key") if (v := one(k)) is not None}
        for k, p in files.items():
            if not p.is_file():
                raise BrokerUrlError(f"broker URL: {k} file {p} does not exist")
        tls = Tls(
            ca=files.get("ca"), cert=files.get("cert"), key=files.get("key"),
            insecure=one("insecure") in ("1", "true"),
        )  # fmt: skip
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if user is not None and password is None:
        password = os.environ.get("CONDUIT_MQTT_PASSWORD")
    try:
        return Mqtt(
            host=parts.hostname,
            port=port or (8883 if tls else 1883),
            client_id=client_id,
            username=user,
            password=password,
            tls=tls,
            allow_plaintext=one("allow_plaintext") in ("1", "true"),
        )
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise BrokerUrlError(f"broker URL {parts.scheme}://{parts.hostname}: {msg}") from None
