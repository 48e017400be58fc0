"""Operation classes of EtherNet/IP commands and CIP services: what a transaction does
to the device, in the vocabulary policy and detection speak.

The rules, in order (first match wins):

1. Wrappers (Multiple Service Packet, Unconnected Send) are ``other``: their embedded
   requests are operations of their own and carry the meaning.
2. Connection Manager: Forward Open / Large Forward Open / Forward Close -> ``session``;
   its Get Connection Data / Search / Owner -> ``read``.
3. Firmware update object (class 0xA1): anything but a Get -> ``firmware``.
4. File object (class 0x37, Vol 1 §5-42): Gets -> ``read``; uploads, downloads, sets,
   creates and deletes -> ``program`` (files hold programs, EDS and firmware images).
5. Object-specific services (0x4B..0x63) on Logix program structure (Program 0x68,
   Routine 0x6D, Task 0x70, anywhere in the path) -> ``program``: that is how Logix
   project uploads and downloads read and write logic.
6. Reset, Start, Stop (Vol 1 §A-4.5..A-4.7) -> ``control``; Set services on the Logix
   controller object (class 0x8E: run/program mode) or on a drive's Control Supervisor
   (class 0x29: run, fault reset, network control, Vol 1 §5-29) -> ``control``.
7. Get services -> ``read`` (``identity`` on the Identity object, class 0x01).
8. Set, Create, Delete, Apply, Restore, Save, member edits -> ``write``.
9. Logix tag services (symbolic paths, Symbol object 0x6B): Read Tag (Fragmented) ->
   ``read``; Write Tag (Fragmented), Read Modify Write Tag -> ``write``.
10. Everything else (NOP, Group Sync, PCCC, vendor services) -> ``other``.

Dangerous operations keep their class but say why they matter in ``detail["dangerous"]``
(:func:`dangerous_kind`; first match wins):

==================  =====================================================================
``firmware``        any operation classed ``firmware`` (Firmware update object 0xA1)
``program``         any operation classed ``program`` (File object 0x37, Logix program
                    structure 0x68/0x6D/0x70)
``reset``           Reset (0x05, Vol 1 §A-4.5) on any object; on the Identity object
                    (Vol 1 §5-2.3.2) it restarts the device, its ``reset_type`` 0
                    (power cycle), 1 (factory defaults), 2 (factory defaults except
                    communication parameters) is in ``detail["reset_type"]``
``start``           Start (0x06, Vol 1 §A-4.6) on any object
``stop``            Stop (0x07, Vol 1 §A-4.7) on any object
``mode_change``     Set services on the Logix controller object (0x8E): run/program mode
``drive_control``   Set services on a drive's Control Supervisor (0x29, Vol 1 §5-29):
                    run, fault reset, network control
``ip_address_change``  on the TCP/IP Interface object (0xF5, Vol 2 §5-4): Set Attributes
                    All, or a Set Attribute Single / Set Attribute List naming attribute
                    3 (Configuration Control: static / BOOTP / DHCP), 5 (Interface
                    Configuration: IP address, network mask, gateway, DNS, domain) or
                    6 (Host Name) -- a set of these moves or renames the device
``time_set``        Set services on the Time Sync object (0x43, Vol 1 §5-35, IEEE 1588
                    PTP) or on the Logix WallClockTime object (0x8B, Rockwell 1756-RM003
                    GSV/SSV objects): the device clock that time-stamps events and alarms
==================  =====================================================================

Set services here are Set Attributes All / List / Single and Set / Insert / Remove
Member. A Set Attribute List is judged by the first attribute id its data names (the
values have no length of their own, so the ids after it cannot be found).
"""

from __future__ import annotations

from typing import Final

from otconduit.model import OpClass
from otconduit.protocols.enip import cip, encap

_GET_SERVICES: Final = frozenset(
    {
        cip.GET_ATTRIBUTES_ALL,
        cip.GET_ATTRIBUTE_LIST,
        cip.GET_ATTRIBUTE_SINGLE,
        cip.FIND_NEXT_OBJECT_INSTANCE,
        cip.GET_MEMBER,
        cip.GET_CONNECTION_POINT_MEMBER_LIST,
    }
)
_SET_SERVICES: Final = frozenset(
    {
        cip.SET_ATTRIBUTES_ALL,
        cip.SET_ATTRIBUTE_LIST,
        cip.SET_ATTRIBUTE_SINGLE,
        cip.SET_MEMBER,
        cip.INSERT_MEMBER,
        cip.REMOVE_MEMBER,
    }
)
_WRITE_SERVICES: Final = _SET_SERVICES | {
    cip.CREATE,
    cip.DELETE,
    cip.APPLY_ATTRIBUTES,
    cip.RESTORE,
    cip.SAVE,
}
_CONTROL_SERVICES: Final = frozenset({cip.RESET, cip.START, cip.STOP})
_OBJECT_SPECIFIC: Final = range(0x4B, 0x64)
CLASS_TIME_SYNC: Final = 0x43  # Vol 1 §5-35 (IEEE 1588)
CLASS_WALL_CLOCK_TIME: Final = 0x8B  # Logix WallClockTime (1756-RM003)
CLASS_TCPIP_INTERFACE: Final = 0xF5  # Vol 2 §5-4
TCPIP_ADDRESS_ATTRIBUTES: Final = frozenset({3, 5, 6})  # config control, interface config, host

_ENCAP_CLASSES: Final = {
    encap.REGISTER_SESSION: OpClass.SESSION,
    encap.UNREGISTER_SESSION: OpClass.SESSION,
    encap.LIST_IDENTITY: OpClass.IDENTITY,
    encap.LIST_SERVICES: OpClass.IDENTITY,
    encap.LIST_INTERFACES: OpClass.IDENTITY,
    encap.START_DTLS: OpClass.SESSION,
}


def encap_op_class(command: int) -> OpClass:
    """Class of an encapsulation command that is not a CIP carrier."""
    return _ENCAP_CLASSES.get(command, OpClass.OTHER)


def cip_op_class(service: int, class_id: int | None, classes: tuple[int, ...] = ()) -> OpClass:
    """Class of a CIP request ``service`` (reply bit clear) to ``class_id``; ``classes``
    lists every class named in the request path."""
    service &= 0x7F
    path_classes = set(classes) | ({class_id} if class_id is not None else set())
    if service == cip.MULTIPLE_SERVICE_PACKET:
        return OpClass.OTHER
    if class_id == cip.CLASS_CONNECTION_MANAGER:
        if service in (cip.FORWARD_OPEN, cip.LARGE_FORWARD_OPEN, cip.FORWARD_CLOSE):
            return OpClass.SESSION
        if service in (cip.GET_CONNECTION_DATA, cip.SEARCH_CONNECTION_DATA):
            return OpClass.READ
        if service == cip.GET_CONNECTION_OWNER:
            return OpClass.READ
        if service == cip.UNCONNECTED_SEND:
            return OpClass.OTHER
    if class_id == cip.CLASS_FIRMWARE_UPDATE and service not in _GET_SERVICES:
        return OpClass.FIRMWARE
    if class_id == cip.CLASS_FILE:
        return OpClass.READ if service in _GET_SERVICES else OpClass.PROGRAM
    if service in _OBJECT_SPECIFIC and path_classes & cip.LOGIX_PROGRAM_CLASSES:
        return OpClass.PROGRAM
    if service in _CONTROL_SERVICES:
        return OpClass.CONTROL
    if service in _SET_SERVICES and class_id in (
        cip.CLASS_LOGIX_CONTROLLER,
        cip.CLASS_CONTROL_SUPERVISOR,
    ):
        return OpClass.CONTROL
    if service in _GET_SERVICES:
        return OpClass.IDENTITY if class_id == cip.CLASS_IDENTITY else OpClass.READ
    if service in _WRITE_SERVICES:
        return OpClass.WRITE
    if class_id not in (None, cip.CLASS_SYMBOL):
        return OpClass.OTHER
    if service in (cip.READ_TAG, cip.READ_TAG_FRAGMENTED, cip.GET_INSTANCE_ATTRIBUTE_LIST):
        return OpClass.READ
    if service in (cip.WRITE_TAG, cip.WRITE_TAG_FRAGMENTED, cip.READ_MODIFY_WRITE_TAG):
        return OpClass.WRITE
    return OpClass.OTHER


def _first_listed_attribute(data: bytes) -> int | None:
    """The first attribute id of a Set Attribute List request (Vol 1 §A-4.4: count UINT,
    then attribute id UINT and value, repeated); values have no length of their own,
    so only the first id can be read without knowing the object's attribute types."""
    if len(data) < 4 or int.from_bytes(data[0:2], "little") == 0:
        return None
    return int.from_bytes(data[2:4], "little")


def dangerous_kind(
    service: int,
    class_id: int | None,
    attribute_id: int | None = None,
    classes: tuple[int, ...] = (),
    data: bytes = b"",
) -> str | None:
    """Why a CIP request (reply bit clear) is dangerous, or None: the table in the module
    docstring. ``data`` is the request data (used for Set Attribute List)."""
    service &= 0x7F
    op = cip_op_class(service, class_id, classes)
    if op is OpClass.FIRMWARE:
        return "firmware"
    if op is OpClass.PROGRAM:
        return "program"
    if service == cip.RESET:
        return "reset"
    if service == cip.START:
        return "start"
    if service == cip.STOP:
        return "stop"
    if service not in _SET_SERVICES:
        return None
    if class_id == cip.CLASS_LOGIX_CONTROLLER:
        return "mode_change"
    if class_id == cip.CLASS_CONTROL_SUPERVISOR:
        return "drive_control"
    if class_id in (CLASS_TIME_SYNC, CLASS_WALL_CLOCK_TIME):
        return "time_set"
    if class_id == CLASS_TCPIP_INTERFACE:
        if service == cip.SET_ATTRIBUTES_ALL:
            return "ip_address_change"
        attribute = _first_listed_attribute(data) if service == cip.SET_ATTRIBUTE_LIST else None
        if attribute_id in TCPIP_ADDRESS_ATTRIBUTES or attribute in TCPIP_ADDRESS_ATTRIBUTES:
            return "ip_address_change"
    return None
