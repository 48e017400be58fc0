"""Roles from behaviour: asking a device who it is at connect time does not make a
client an engineering station; mostly asking does."""

from __future__ import annotations

from otconduit.inventory.roles import Behaviour, infer_roles
from otconduit.model import OpClass


def _client(identity: int, reads: int, servers: int = 1) -> dict[str, Behaviour]:
    b = Behaviour(
        servers_polled={f"10.0.0.{i}" for i in range(servers)},
        classes_sent={OpClass.IDENTITY: identity, OpClass.READ: reads},
        operations_sent=identity + reads,
    )
    return {"bacnet": b}


def test_a_bms_that_says_who_is_once_and_polls_is_an_operator_station() -> None:
    roles = [g.role for g in infer_roles(_client(identity=2, reads=500))]
    assert roles == ["hmi_scada"]


def test_an_inventory_tool_asking_identities_is_an_engineering_station() -> None:
    roles = [g.role for g in infer_roles(_client(identity=40, reads=40))]
    assert "engineering_workstation" in roles


def test_identity_only_is_engineering() -> None:
    roles = [g.role for g in infer_roles(_client(identity=5, reads=0))]
    assert roles == ["engineering_workstation"]
