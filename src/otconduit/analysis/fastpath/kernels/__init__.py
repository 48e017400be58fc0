"""Compiled loops of the fast path (numba, cached on disk).

``headers`` reads link, IP and TCP headers of a whole block into columns; ``flowtable``
maps a packet's 4-tuple to the slot of a connection a lane owns; ``slots`` is the TCP
and framing stage every lane shares (sequence checks, retransmissions, PDUs split over
segments or several in one, kept messages for a hand-over); ``shapes`` finds the
template of a finished transaction; ``columns`` expands transactions into stored
columns. One module per protocol (``modbus``, ``s7``, ``enip``, ``dnp3``) holds its pass
over a block and its transaction shape.
"""
