"""How many octets each DNP3 object occupies, from the object library (1815 Annex A).

Only what is needed to walk a fragment from one object header to the next: fixed sizes,
packed-bit objects, and the groups whose size is carried elsewhere (the variation, a
size prefix, or the attribute's own length). Values are decoded by ``app`` for the few
objects that matter to monitoring (controls, analog outputs, time, device attributes).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final


def _group(group: int, sizes: dict[int, int]) -> dict[tuple[int, int], int]:
    return {(group, v): s for v, s in sizes.items()}


# Octets per object, by (group, variation). Comments: what the octets hold.
FIXED_SIZES: Final[Mapping[tuple[int, int], int]] = MappingProxyType(
    {
        **_group(1, {2: 1}),  # binary input with flags
        **_group(2, {1: 1, 2: 7, 3: 3}),  # binary input event: flags [+ 48/16-bit time]
        **_group(3, {2: 1}),  # double-bit input with flags
        **_group(4, {1: 1, 2: 7, 3: 3}),  # double-bit input event
        **_group(10, {2: 1}),  # binary output status
        **_group(11, {1: 1, 2: 7}),  # binary output event
        **_group(12, {1: 11, 2: 11}),  # CROB / pattern control block
        **_group(13, {1: 1, 2: 7}),  # binary output command event
        **_group(20, {1: 5, 2: 3, 3: 5, 4: 3, 5: 4, 6: 2, 7: 4, 8: 2}),  # counters
        **_group(
            21, {1: 5, 2: 3, 3: 5, 4: 3, 5: 11, 6: 9, 7: 11, 8: 9, 9: 4, 10: 2, 11: 4, 12: 2}
        ),  # frozen counters
        **_group(22, {1: 5, 2: 3, 3: 5, 4: 3, 5: 11, 6: 9, 7: 11, 8: 9}),  # counter events
        **_group(23, {1: 5, 2: 3, 3: 5, 4: 3, 5: 11, 6: 9, 7: 11, 8: 9}),  # frozen events
        **_group(30, {1: 5, 2: 3, 3: 4, 4: 2, 5: 5, 6: 9}),  # analog inputs
        **_group(31, {1: 5, 2: 3, 3: 11, 4: 9, 5: 4, 6: 2, 7: 5, 8: 9}),  # frozen analogs
        **_group(32, {1: 5, 2: 3, 3: 11, 4: 9, 5: 5, 6: 9, 7: 11, 8: 15}),  # analog events
        **_group(33, {1: 5, 2: 3, 3: 11, 4: 9, 5: 5, 6: 9, 7: 11, 8: 15}),  # frozen events
        **_group(34, {1: 2, 2: 4, 3: 4}),  # analog input deadbands
        **_group(40, {1: 5, 2: 3, 3: 5, 4: 9}),  # analog output status
        **_group(41, {1: 5, 2: 3, 3: 5, 4: 9}),  # analog output block: value + status
        **_group(42, {1: 5, 2: 3, 3: 11, 4: 9, 5: 5, 6: 9, 7: 11, 8: 15}),  # AO events
        **_group(43, {1: 5, 2: 3, 3: 11, 4: 9, 5: 5, 6: 9, 7: 11, 8: 15}),  # AO cmd events
        **_group(50, {1: 6, 2: 10, 3: 6, 4: 11}),  # time and date [+ interval]
        **_group(51, {1: 6, 2: 6}),  # common time of occurrence
        **_group(52, {1: 2, 2: 2}),  # time delay coarse (s) / fine (ms)
        **_group(101, {1: 2, 2: 4, 3: 8}),  # binary-coded decimal integers
        **_group(102, {1: 1}),  # unsigned 8-bit integer
        **_group(121, {1: 7}),  # security statistic
        **_group(122, {1: 7, 2: 13}),  # security statistic event
    }
)

# Objects packed as bits, by (group, variation): bits per object.
PACKED_BITS: Final[Mapping[tuple[int, int], int]] = MappingProxyType(
    {(1, 1): 1, (3, 1): 2, (10, 1): 1, (12, 3): 1, (80, 1): 1}
)

# Octet strings, virtual terminal objects: the variation is the length (1815 Annex A).
LENGTH_IS_VARIATION: Final = frozenset({110, 111, 112, 113})

NO_DATA_GROUPS: Final = frozenset({60})  # class data: a name, never values
DEVICE_ATTRIBUTES_GROUP: Final = 0


def object_size(group: int, variation: int) -> int | None:
    """Octets per object of a fixed-size object, or None when the header alone can't say."""
    size = FIXED_SIZES.get((group, variation))
    if size is not None:
        return size
    if group in LENGTH_IS_VARIATION and variation > 0:
        return variation
    return None
