"""Which sites a hub accepts (``--sites FILE``), and the broker ACL that goes with it.

The broker authenticates each site (its own user, or a client certificate whose CN
is the user) and lets it publish only under ``conduit/v1/<site>/``; the hub checks again
that the topic's site is listed and that the envelope claims the same site. ::

    sites:
      - name: plant-a           # the site name the sensor runs with (--site)
        user: sensor-plant-a    # its broker user / certificate CN (default: the name)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from otconduit.uplink.envelope import PREFIX, SITE
from otconduit.yamlconf import load_model


class SiteEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    user: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SITE.match(v):
            raise ValueError(f"site name {v!r}: letters, digits, '_', '.', '-' (at most 64)")
        return v


class SitesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sites: list[SiteEntry] = Field(min_length=1)

    @field_validator("sites")
    @classmethod
    def _unique(cls, v: list[SiteEntry]) -> list[SiteEntry]:
        names = [s.name for s in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"site {sorted(dup)[0]!r} is listed twice")
        return v

    @property
    def names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.sites)


def load_sites(path: Path) -> SitesFile:
    """The sites file (raises :class:`otconduit.yamlconf.ConfigError`, one line)."""
    return load_model(path, SitesFile, "sites")


def mosquitto_acl(sites: SitesFile, hub_user: str) -> str:
    """A Mosquitto ``acl_file``: each site writes only its own topics, the hub reads all."""
    lines = [f"user {hub_user}", f"topic read {PREFIX}/#", ""]
    for s in sites.sites:
        lines += [f"user {s.user or s.name}", f"topic write {PREFIX}/{s.name}/#", ""]
    return "\n".join(lines)
