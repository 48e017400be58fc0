"""The packaging machine: an asyncua OPC UA server with PackML-style tags.

Tags are laid out as ``CasePacker/Command|Status|Admin/<tag>`` in the lab namespace. The
process loop pushes status values into the address space and picks up commands an HMI
wrote (``Command/CntrlCmd`` + ``Command/CmdChangeRequest``, as PackTags intend).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from asyncua import Server, ua
from asyncua.common.node import Node

from otconduit.lab import addresses as A
from otconduit.lab.register_maps import (
    PACKAGING_NAMESPACE,
    PACKAGING_OBJECT,
    PACKAGING_TAGS,
    UaTag,
)

_VARIANT = {
    "Int32": ua.VariantType.Int32,
    "Float": ua.VariantType.Float,
    "String": ua.VariantType.String,
    "Boolean": ua.VariantType.Boolean,
}
_INITIAL: dict[str, Any] = {"Int32": 0, "Float": 0.0, "String": "", "Boolean": False}
SERVER_NAME = "Conduit Lab CasePacker"
# What the machine says about itself: ApplicationDescription (GetEndpoints, CreateSession)
# and the Server object's BuildInfo (OPC 10000-5 §12.4), which an HMI may read.
APPLICATION_URI = "urn:conduit-lab:packaging-machine"
PRODUCT_URI = "urn:conduit-lab:cl-pack-6"
SOFTWARE_VERSION = "3.2.0"
BUILD_NUMBER = "3.2.0.117"
BUILD_DATE = datetime(2025, 11, 3, tzinfo=UTC)


def endpoint_url(ip: str, port: int) -> str:
    return f"opc.tcp://{ip}:{port}/conduit/packaging"


def node_id(tag: str) -> str:
    """String NodeId of a tag, stable so clients can address it without browsing."""
    return f"{PACKAGING_OBJECT}.{tag.replace('/', '.')}"


def string_node(ident: str, ns: int) -> ua.NodeId:
    return ua.NodeId(ua.String(ident), ua.Int16(ns))


class OpcUaDevice:
    """asyncua server for the case packer; ``push`` and ``take_commands`` run in its loop."""

    def __init__(self, name: str, ip: str, port: int = 4840) -> None:
        self.name = name
        self.ip = ip
        self.port = port
        self.url = endpoint_url(ip, port)
        self.ns = 0
        self._server: Server | None = None
        self._nodes: dict[str, Node] = {}
        self._tags: dict[str, UaTag] = {t.path: t for t in PACKAGING_TAGS}
        for name_ in ("asyncua", "asyncua.server", "asyncua.client"):
            logging.getLogger(name_).setLevel(logging.ERROR)

    async def start(self, speed_setpoint: float) -> None:
        server = Server()
        node = next((n for n in A.DEVICES if n.name == self.name), A.PACKAGING)
        vendor, model = node.vendor.split(" (")[0], node.model
        server.product_uri = PRODUCT_URI
        server.manufacturer_name = vendor
        await server.init()
        await server.set_application_uri(APPLICATION_URI)
        server.set_endpoint(self.url)
        server.set_server_name(SERVER_NAME)
        await server.set_build_info(
            PRODUCT_URI, vendor, model, SOFTWARE_VERSION, BUILD_NUMBER, BUILD_DATE
        )
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.ns = await server.register_namespace(PACKAGING_NAMESPACE)
        machine = await server.nodes.objects.add_object(
            string_node(PACKAGING_OBJECT, self.ns), ua.QualifiedName(PACKAGING_OBJECT, self.ns)
        )
        folders: dict[str, Node] = {}
        for tag in PACKAGING_TAGS:
            folder_name, leaf = tag.path.split("/")
            if folder_name not in folders:
                folders[folder_name] = await machine.add_object(
                    string_node(f"{PACKAGING_OBJECT}.{folder_name}", self.ns),
                    ua.QualifiedName(folder_name, self.ns),
                )
            initial = speed_setpoint if tag.path == "Command/MachSpeed" else _INITIAL[tag.type]
            var = await folders[folder_name].add_variable(
                string_node(node_id(tag.path), self.ns),
                ua.QualifiedName(leaf, self.ns),
                ua.Variant(initial, _VARIANT[tag.type]),
            )
            if tag.writable:
                await var.set_writable()
            self._nodes[tag.path] = var
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def push(self, values: dict[str, object]) -> None:
        """Write status values into the address space (server side, no network)."""
        server = self._server
        if server is None:
            return
        for path, value in values.items():
            tag = self._tags[path]
            dv = ua.DataValue(ua.Variant(value, _VARIANT[tag.type]))
            await server.write_attribute_value(self._nodes[path].nodeid, dv)

    async def take_commands(self) -> tuple[list[int], float | None]:
        """PackML commands requested since the last call, and a new speed setpoint if any."""
        if self._server is None:
            return [], None
        cmds: list[int] = []
        if await self._nodes["Command/CmdChangeRequest"].read_value():
            cmd = int(await self._nodes["Command/CntrlCmd"].read_value())
            if cmd:
                cmds.append(cmd)
            await self.push({"Command/CmdChangeRequest": False, "Command/CntrlCmd": 0})
        speed = float(await self._nodes["Command/MachSpeed"].read_value())
        return cmds, speed
