"""A device's reports to one station (unicast I-Am, COV notifications) name the device as
``dst`` and the station that asked or subscribed as ``src``, so that roles follow who
reads whom (found with the lab's BMS workstation, which looked like a BACnet server);
reports to no one in particular keep their sender as ``src``."""

from __future__ import annotations

from otconduit.model import IdentityClaim, OpClass, Operation
from otconduit.protocols.base import DecoderEvent
from tests.protocols import bacnet_helpers as B

C2S, S2C = 0, 1
STATION, DEVICE = "10.0.0.1", "10.0.0.2"  # bacnet_helpers.ENDPOINTS: client, server


def ops(events: list[DecoderEvent]) -> dict[str, Operation]:
    return {e.function: e for e in events if isinstance(e, Operation)}


def cov_notification() -> bytes:
    """(Unconfirmed)COVNotification parameters (135 §13.7): process 1, device 6010,
    analog-input 1, 60 s left, present-value 21.5."""
    values = B.opening(4) + B.ctx(0, 85) + B.opening(2) + B.app_real(21.5) + B.closing(2)
    return (
        B.ctx(0, 1) + B.ctx_obj(1, 8, 6010) + B.ctx_obj(2, 0, 1) + B.ctx(3, 60)
        + values + B.closing(4)
    )  # fmt: skip


SUBSCRIBE = B.ctx(0, 1) + B.ctx_obj(1, 0, 1) + B.ctx(2, 0) + B.ctx(3, 300)


def test_notification_to_a_subscriber_is_a_read_of_the_device() -> None:
    events = B.decode(
        [
            (C2S, B.unicast(B.confirmed(1, 5, SUBSCRIBE))),
            (S2C, B.unicast(B.simple_ack(1, 5))),
            (S2C, B.unicast(B.unconfirmed(2, cov_notification()))),
        ]
    )
    by_fn = ops(events)
    sub, note = by_fn["subscribe_cov"], by_fn["unconfirmed_cov_notification"]
    assert (sub.src_ip, sub.dst_ip) == (STATION, DEVICE) and "report" not in sub.detail
    assert (note.src_ip, note.dst_ip, note.operation) == (STATION, DEVICE, OpClass.READ)
    assert note.detail["report"] is True
    assert (note.src_port, note.dst_port) == (B.ENDPOINTS.client_port, B.ENDPOINTS.server_port)


def test_confirmed_notification_acknowledged_by_the_subscriber() -> None:
    events = B.decode(
        [
            (C2S, B.unicast(B.confirmed(1, 5, SUBSCRIBE))),
            (S2C, B.unicast(B.simple_ack(1, 5))),
            (S2C, B.unicast(B.confirmed(9, 1, cov_notification()))),
            (C2S, B.unicast(B.simple_ack(9, 1))),
        ]
    )
    note = ops(events)["confirmed_cov_notification"]
    assert (note.src_ip, note.dst_ip, note.detail["report"]) == (STATION, DEVICE, True)
    assert (note.request_frame, note.response_frame) == (3, 4)


def test_unicast_i_am_answers_the_asker_and_claims_for_the_device() -> None:
    events = B.decode(
        [
            (C2S, B.unicast(B.unconfirmed(8, B.ctx(0, 6010) + B.ctx(1, 6010)))),
            (S2C, B.unicast(B.unconfirmed(0, B.i_am(6010, 999)))),
        ]
    )
    by_fn = ops(events)
    assert (by_fn["who_is"].src_ip, by_fn["who_is"].dst_ip) == (STATION, DEVICE)
    i_am = by_fn["i_am"]
    assert (i_am.src_ip, i_am.dst_ip, i_am.detail["report"]) == (STATION, DEVICE, True)
    claimed = {(c.ip, c.attribute) for c in events if isinstance(c, IdentityClaim)}
    assert (DEVICE, "bacnet_device_instance") in claimed


def test_reports_no_station_asked_for_keep_their_sender() -> None:
    # An I-Am by unicast to an address that never spoke (a subnet's .255, as some devices
    # send it), a broadcast I-Am, and a notification to a host that never subscribed.
    for datagram in (
        B.unicast(B.unconfirmed(0, B.i_am(6010, 999))),
        B.broadcast(B.unconfirmed(0, B.i_am(6010, 999))),
        B.unicast(B.unconfirmed(2, cov_notification())),
    ):
        (op,) = ops(B.decode([(S2C, datagram)])).values()
        assert (op.src_ip, op.dst_ip) == (DEVICE, STATION) and "report" not in op.detail
