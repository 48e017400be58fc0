"""Which addresses a probe may talk to. Active requests to a plant are opt-in and
bounded: a target is probed only when it lies in the allow-list (the policy's zones marked
``probe: true``, and any ``--allow`` CIDR); one target outside it refuses the whole run,
so a typo never sends half a run somewhere unintended."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from otconduit.policy.model import Policy

MAX_TARGETS = 1024  # addresses one run may expand to


class TargetError(ValueError):
    """A target that cannot or may not be probed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Target:
    ip: str
    allowed_by: str  # "zone cell-1 (probe: true)" or "--allow 127.0.10.0/24"
    name: str | None = None  # the policy's host name


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(texts: list[str]) -> list[Network]:
    out = []
    for t in texts:
        try:
            out.append(ipaddress.ip_network(t.strip(), strict=False))
        except ValueError:
            raise TargetError(f"--allow {t!r} is not an IP address or CIDR network") from None
    return out


def _expand(target: str, policy: Policy | None) -> list[str]:
    text = target.strip()
    if policy is not None and text in policy.hosts:
        return [policy.hosts[text]]
    try:
        return [str(ipaddress.ip_address(text))]
    except ValueError:
        pass
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        known = " or a host the policy names" if policy is not None else ""
        raise TargetError(
            f"target {target!r} is not an IP address, a CIDR network{known}"
        ) from None
    if net.num_addresses > MAX_TARGETS + 2:
        raise TargetError(
            f"target {target} holds {net.num_addresses} addresses: at most {MAX_TARGETS}"
        )
    hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
    return [str(h) for h in hosts]


def _forbidden(ip: str) -> str | None:
    """Addresses no probe goes to whatever the allow-list says."""
    a = ipaddress.ip_address(ip)
    if a.is_multicast:
        return "a multicast address"
    if a.is_unspecified:
        return "the unspecified address"
    if a.version == 4 and a == ipaddress.IPv4Address("255.255.255.255"):
        return "the broadcast address"
    return None


def resolve(targets: list[str], policy: Policy | None, allow: list[str]) -> list[Target]:
    """The addresses to probe, each with what allows it; raises :class:`TargetError` when
    there is no allow-list or any address is outside it."""
    nets = _networks(allow)
    if policy is None and not nets:
        raise TargetError(
            "refusing to probe without an allow-list: give --policy FILE (zones marked "
            "'probe: true') or --allow CIDR"
        )
    out: list[Target] = []
    seen: set[str] = set()
    refused: list[str] = []
    for t in targets:
        for ip in _expand(t, policy):
            if ip in seen:
                continue
            seen.add(ip)
            bad = _forbidden(ip)
            if bad:
                raise TargetError(f"target {ip} is {bad}: never probed")
            why = None
            addr = ipaddress.ip_address(ip)
            zone = policy.zone_of(ip) if policy is not None else None
            if zone is not None and zone.probe:
                why = f"zone {zone.name} (probe: true)"
            else:
                net = next((n for n in nets if addr.version == n.version and addr in n), None)
                if net is not None:
                    why = f"--allow {net}"
            if why is None:
                where = f"zone {zone.name} is not probe: true" if zone else "not allowed"
                refused.append(f"{ip} ({where})")
                continue
            out.append(Target(ip, why, policy.host_name(ip) if policy is not None else None))
            if len(out) > MAX_TARGETS:
                raise TargetError(f"more than {MAX_TARGETS} targets in one run")
    if refused:
        more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        raise TargetError(
            "outside the allow-list, nothing was sent: " + ", ".join(refused[:5]) + more
        )
    if not out:
        raise TargetError("no target to probe")
    return out
