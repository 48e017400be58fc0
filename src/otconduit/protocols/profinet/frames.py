"""PROFINET real-time frames on Ethernet (EtherType 0x8892): what a FrameID says
(IEC 61158-6-10 §4.2.2, FrameID ranges; IEC 61784-2 for the RT classes), and the
operation ``function_code`` ranges of the ``profinet`` protocol.

Every frame starts with a 2-byte FrameID; its range decides the rest: cyclic I/O data
(RT_CLASS_1/2/3, counted per source and FrameID, not decoded), alarms (RTA on 0xFC01
high and 0xFE01 low priority), DCP (0xFEFC-0xFEFF), PTCP time synchronisation
(0x0000-0x00FF and 0xFF00-0xFF5F, counted), fragments (0xFF80-0xFF8F, counted).
"""

from __future__ import annotations

from typing import Final

ETHERTYPE_PROFINET: Final = 0x8892

ALARM_HIGH: Final = 0xFC01
ALARM_LOW: Final = 0xFE01
DCP_HELLO: Final = 0xFEFC
DCP_GET_SET: Final = 0xFEFD
DCP_IDENTIFY_REQUEST: Final = 0xFEFE
DCP_IDENTIFY_RESPONSE: Final = 0xFEFF
DCP_FRAME_IDS: Final = frozenset(
    {DCP_HELLO, DCP_GET_SET, DCP_IDENTIFY_REQUEST, DCP_IDENTIFY_RESPONSE}
)

# Operation function_code ranges of protocol "profinet".
IOCM_BASE: Final = 0x000  # + DCE/RPC opnum (0 Connect ... 5 Read Implicit)
DCP_BASE: Final = 0x100  # + DCP ServiceID (3 Get, 4 Set, 5 Identify, 6 Hello)
ALARM_BASE: Final = 0x200  # + AlarmType (alarm notifications)
ALARM_ABORT: Final = 0x2FF  # ERR-RTA-PDU (the AR's alarm channel closed)
RT_BASE: Final = 0x300  # + RT class number (cyclic streams, one summary each)
RPC_PING: Final = 0x400  # DCE/RPC ping / no-call / working (liveness, not PNIO)


def kind(frame_id: int) -> str:
    """What a FrameID carries: ``rt_class_3``/``rt_class_2``/``rt_class_1`` cyclic data,
    ``rt_class_udp``, ``alarm``, ``dcp``, ``ptcp``, ``fragment``, or ``reserved``."""
    if frame_id <= 0x00FF:
        return "ptcp"  # RTC3/RTC2 sync frames (0x0020, 0x0080, ...)
    if frame_id <= 0x7FFF:
        return "rt_class_3"
    if frame_id <= 0xBFFF:
        return "rt_class_2"
    if frame_id <= 0xF7FF:
        return "rt_class_1"
    if frame_id <= 0xFBFF:
        return "rt_class_udp"
    if frame_id in (ALARM_HIGH, ALARM_LOW):
        return "alarm"
    if frame_id in DCP_FRAME_IDS:
        return "dcp"
    if 0xFF00 <= frame_id <= 0xFF5F:
        return "ptcp"
    if 0xFF80 <= frame_id <= 0xFF8F:
        return "fragment"
    return "reserved"


RT_CLASSES: Final = {"rt_class_1": 1, "rt_class_2": 2, "rt_class_3": 3, "rt_class_udp": 4}
CYCLIC: Final = frozenset(RT_CLASSES)
