"""DNP3 transport function: reassembly of fragments from FIR/FIN/sequence segments."""

from __future__ import annotations

from otconduit.protocols.dnp3.transport import Transport, TransportReassembler, segment_header
from tests.protocols.dnp3_helpers import segments


def test_segment_header_bits() -> None:
    assert segment_header(0xC5) == (True, True, 5)
    assert segment_header(0x3F) == (False, False, 63)
    assert segment_header(0x80) == (True, False, 0)


def test_single_segment_fragment() -> None:
    rx = TransportReassembler()
    assert rx.push(bytes([0xC0]) + b"hello") == (b"hello", None, False)
    assert rx.pending == 0


def test_multi_segment_fragment_with_wraparound() -> None:
    fragment = bytes(range(256)) * 3  # 768 octets: four segments
    parts = segments(fragment, first_seq=62)
    assert len(parts) == 4 and [p[0] & 0x3F for p in parts] == [62, 63, 0, 1]
    rx = TransportReassembler()
    for part in parts[:-1]:
        assert rx.push(part) == (None, None, False)
    assert rx.pending == 3 * 249
    assert rx.push(parts[-1]) == (fragment, None, False)


def test_out_of_sequence_discards_fragment() -> None:
    parts = segments(b"x" * 600, first_seq=10)
    rx = TransportReassembler()
    rx.push(parts[0])
    done, problem, _ = rx.push(parts[2])  # seq 12 where 11 was due
    assert done is None and problem is not None and "out-of-sequence" in problem
    assert "expected seq 11, got 12" in problem and rx.pending == 0
    done, problem, _ = rx.push(parts[1])  # now nothing is in progress
    assert done is None and problem is not None and "without a first segment" in problem


def test_new_first_segment_abandons_unfinished() -> None:
    rx = TransportReassembler()
    rx.push(segments(b"y" * 300)[0])
    done, problem, _ = rx.push(bytes([0xC7]) + b"fresh")
    assert done == b"fresh" and problem is not None and "abandons 249 octets" in problem


def test_repeated_segment_is_dropped() -> None:
    parts = segments(b"z" * 300)
    rx = TransportReassembler()
    rx.push(parts[0])
    rx.push(parts[1])
    assert rx.push(parts[1]) == (None, None, False)  # a link-layer retry of the last one
    assert rx.duplicates == 1


def test_fragment_size_bound() -> None:
    rx = TransportReassembler(max_fragment=500)
    parts = segments(b"w" * 600)
    rx.push(parts[0])
    rx.push(parts[1])
    done, problem, _ = rx.push(parts[2])
    assert done is None and problem is not None and "exceeds 500" in problem
    assert rx.pending == 0


def test_empty_segment() -> None:
    done, problem, _ = TransportReassembler().push(b"")
    assert done is None and problem is not None


def test_bad_crc_taints_the_fragment_it_belongs_to() -> None:
    parts = segments(b"v" * 300)
    rx = TransportReassembler()
    rx.push(parts[0], bad_crc=True)
    assert rx.push(parts[1]) == (b"v" * 300, None, True)
    assert rx.push(bytes([0xC0]) + b"clean") == (b"clean", None, False)


def test_associations_are_separate_and_bounded() -> None:
    t = Transport(max_associations=2)
    a, b = segments(b"A" * 300), segments(b"B" * 300)
    t.push("a", a[0])
    t.push("b", b[0])
    assert t.push("a", a[1])[0] == b"A" * 300  # interleaving does not mix associations
    t.push("c", segments(b"C" * 300)[0])  # evicts "b", the least recently used
    assert t.buffered == 249
    done, problem, _ = t.push("b", b[1])
    assert done is None and problem is not None
