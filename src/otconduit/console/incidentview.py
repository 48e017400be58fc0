"""One incident for the API and the pages, and the owner/status changes analysts make:
each written to the incident's own history (in the store, beside the incidents) and to
the console's audit log (who, when, from where), as alert changes are."""

from __future__ import annotations

from typing import Any

from otconduit.console.context import Console
from otconduit.console.errors import ApiError
from otconduit.console.incidents import IncidentError, change, history, label, parse_id


def number_of(incident_id: str) -> int:
    try:
        return parse_id(incident_id)
    except IncidentError as exc:
        raise ApiError(404, str(exc)) from None


def incident_detail(ctx: Console, incident_id: str) -> dict[str, Any]:
    """The incident as listed (closed ones too), with its change history."""
    number = number_of(incident_id)
    store = ctx.stores.reader()
    every = ctx.incidents(store, ctx.settings.incident_window, True)
    found = next((i for i in every if i["number"] == number), None)
    if found is None:
        raise ApiError(404, f"no incident {label(number)} (it may have merged into another)")
    return {**found, "history": history(store, number)}


def change_incident(
    ctx: Console,
    user: str,
    client: str | None,
    incident_id: str,
    *,
    owner: str | None = None,
    status: str | None = None,
    comment: str = "",
) -> list[dict[str, Any]]:
    """Set owner (a console user, or "" for nobody) and/or status; audited."""
    number = number_of(incident_id)
    target = f"incident:{label(number)}"
    if owner:
        names = {u["name"].casefold(): u["name"] for u in ctx.auth.users() if not u["disabled"]}
        if owner.strip().casefold() not in names:
            raise ApiError(422, f"no console user {owner[:64]!r} to own {label(number)}")
        owner = names[owner.strip().casefold()]
    try:
        made = ctx.stores.write(
            lambda st: change(st, number, user, owner=owner, status=status, comment=comment)
        )
    except IncidentError as exc:
        ctx.auth.audit(user, "incident.change", target, outcome="refused",
                       detail={"reason": str(exc)}, client=client)  # fmt: skip
        raise ApiError(404 if str(exc).startswith("no incident") else 422, str(exc)) from None
    for m in made:
        detail = {"from": m["old"], "to": m["new"], **({"comment": comment} if comment else {})}
        ctx.auth.audit(user, f"incident.{m['field']}", target, detail=detail, client=client)
    return made
