"""Operation classes of BACnet services, network layer messages and BVLC functions: what
a transaction does to a device, in the vocabulary policy and detection speak.

- ``read``: property, range, file-free reads, alarm/event summaries, COV subscriptions
  and the notifications they produce (a device reporting values is a read of it)
- ``write``: property writes, list edits, object creation/deletion, alarm
  acknowledgement, time synchronisation, BDT/FDT and routing table changes, You-Are
- ``control``: ReinitializeDevice, DeviceCommunicationControl, life safety operations
- ``program``: AtomicReadFile / AtomicWriteFile (files hold programs, configuration and
  firmware images)
- ``identity``: Who-Is / I-Am / Who-Has / I-Have / Who-Am-I, router and network number
  discovery
- ``session``: virtual terminal, authentication and network security messages, foreign
  device registration, router connection establishment
- ``diagnostic``: router busy/available
- ``other``: private transfers, text messages, audit notifications, everything unnamed

``function_code`` spaces (one integer per operation, kept apart):

=================  ==========================================
0..255             confirmed service choice
0x100 + choice     unconfirmed service choice
0x200 + type       network layer message type
0x300 + function   BVLC function (BVLL management)
0x400              a Reject or Abort without its request (no service)
=================  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from otconduit.model import OpClass

UNCONFIRMED_BASE: Final = 0x100
NETWORK_BASE: Final = 0x200
BVLC_BASE: Final = 0x300
UNKNOWN_SERVICE: Final = 0x400

READ, WRITE, CONTROL, PROGRAM = OpClass.READ, OpClass.WRITE, OpClass.CONTROL, OpClass.PROGRAM
IDENTITY, SESSION, OTHER = OpClass.IDENTITY, OpClass.SESSION, OpClass.OTHER
DIAGNOSTIC = OpClass.DIAGNOSTIC

CONFIRMED_CLASSES: Final[Mapping[int, OpClass]] = MappingProxyType(
    {
        0: WRITE,  # acknowledge_alarm
        1: READ,  # confirmed_cov_notification
        2: READ,  # confirmed_event_notification
        3: READ,  # get_alarm_summary
        4: READ,  # get_enrollment_summary
        5: READ,  # subscribe_cov
        6: PROGRAM,  # atomic_read_file
        7: PROGRAM,  # atomic_write_file
        8: WRITE,  # add_list_element
        9: WRITE,  # remove_list_element
        10: WRITE,  # create_object
        11: WRITE,  # delete_object
        12: READ,  # read_property
        13: READ,  # read_property_conditional
        14: READ,  # read_property_multiple
        15: WRITE,  # write_property
        16: WRITE,  # write_property_multiple
        17: CONTROL,  # device_communication_control
        18: OTHER,  # confirmed_private_transfer
        19: OTHER,  # confirmed_text_message
        20: CONTROL,  # reinitialize_device
        21: SESSION,  # vt_open
        22: SESSION,  # vt_close
        23: SESSION,  # vt_data
        24: SESSION,  # authenticate
        25: SESSION,  # request_key
        26: READ,  # read_range
        27: CONTROL,  # life_safety_operation
        28: READ,  # subscribe_cov_property
        29: READ,  # get_event_information
        30: READ,  # subscribe_cov_property_multiple
        31: READ,  # confirmed_cov_notification_multiple
        32: OTHER,  # confirmed_audit_notification
        33: READ,  # audit_log_query
    }
)
UNCONFIRMED_CLASSES: Final[Mapping[int, OpClass]] = MappingProxyType(
    {
        0: IDENTITY,  # i_am
        1: IDENTITY,  # i_have
        2: READ,  # unconfirmed_cov_notification
        3: READ,  # unconfirmed_event_notification
        4: OTHER,  # unconfirmed_private_transfer
        5: OTHER,  # unconfirmed_text_message
        6: WRITE,  # time_synchronization
        7: IDENTITY,  # who_has
        8: IDENTITY,  # who_is
        9: WRITE,  # utc_time_synchronization
        10: WRITE,  # write_group
        11: READ,  # unconfirmed_cov_notification_multiple
        12: OTHER,  # unconfirmed_audit_notification
        13: IDENTITY,  # who_am_i
        14: WRITE,  # you_are
    }
)
NETWORK_CLASSES: Final[Mapping[int, OpClass]] = MappingProxyType(
    {
        0x00: IDENTITY,  # who_is_router_to_network
        0x01: IDENTITY,  # i_am_router_to_network
        0x02: IDENTITY,  # i_could_be_router_to_network
        0x03: OTHER,  # reject_message_to_network
        0x04: DIAGNOSTIC,  # router_busy_to_network
        0x05: DIAGNOSTIC,  # router_available_to_network
        0x06: WRITE,  # initialize_routing_table (an empty one is a query: see network_class)
        0x07: READ,  # initialize_routing_table_ack
        0x08: SESSION,  # establish_connection_to_network
        0x09: SESSION,  # disconnect_connection_to_network
        0x0A: SESSION,
        0x0B: SESSION,
        0x0C: SESSION,
        0x0D: SESSION,
        0x0E: SESSION,
        0x0F: SESSION,
        0x10: SESSION,
        0x11: SESSION,
        0x12: IDENTITY,  # what_is_network_number
        0x13: IDENTITY,  # network_number_is
    }
)
BVLC_CLASSES: Final[Mapping[int, OpClass]] = MappingProxyType(
    {
        0x00: OTHER,  # BVLC-Result without a request
        0x01: WRITE,  # Write-Broadcast-Distribution-Table
        0x02: READ,  # Read-Broadcast-Distribution-Table
        0x03: READ,
        0x05: SESSION,  # Register-Foreign-Device
        0x06: READ,  # Read-Foreign-Device-Table
        0x07: READ,
        0x08: WRITE,  # Delete-Foreign-Device-Table-Entry
    }
)


def confirmed_class(service: int) -> OpClass:
    return CONFIRMED_CLASSES.get(service, OTHER)


def unconfirmed_class(service: int) -> OpClass:
    return UNCONFIRMED_CLASSES.get(service, OTHER)


def network_class(message_type: int, routing_entries: int | None = None) -> OpClass:
    """Initialize-Routing-Table with no entries asks for the table: a read."""
    if message_type == 0x06 and not routing_entries:
        return READ
    return NETWORK_CLASSES.get(message_type, OTHER)


def bvlc_class(function: int) -> OpClass:
    return BVLC_CLASSES.get(function, OTHER)
