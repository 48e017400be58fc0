"""The holes of a templated operation detail: how many of each kind an operation has,
and the kinds a template's text segments end with. Shared by the fast path that writes
templated details and the store that renders them (``detail_render``)."""

from __future__ import annotations

N_INTS = 8  # integer holes per operation
N_FRAMES = 8  # frame holes per operation (the messages of its transaction)

H_END = 0  # text only (the last segment of a detail)
H_INT = 1  # integer hole, written in decimal
H_LIST = 2  # list hole, written as a JSON list of integers
H_HEX = 3  # list hole of bytes, written as a JSON string of hex digits
H_FRAME = 4  # the frame number of message ``index`` of the transaction
