"""A small asyncio S7comm client (ISO-on-TCP, RFC 1006) that binds its source address.

Frames follow the classic S7 protocol as documented for Snap7 and Wireshark's s7comm
dissector: TPKT (version 3) + COTP (CR/CC to connect, DT to carry data) + S7 PDU (protocol
id 0x32, ROSCTR job/ack-data/user-data, PDU reference, parameter and data lengths).
Only what the plant uses is implemented: setup communication, DB read/write, SZL read,
PLC stop / hot start, block upload, and a DB download driven by the PLC.
"""

from __future__ import annotations

import asyncio
import struct
import time

from otconduit.lab.netbind import BoundClient

JOB = 0x01
ACK = 0x02
ACK_DATA = 0x03
USERDATA = 0x07

FN_SETUP = 0xF0
FN_READ = 0x04
FN_WRITE = 0x05
FN_REQUEST_DOWNLOAD = 0x1A
FN_DOWNLOAD_BLOCK = 0x1B
FN_DOWNLOAD_ENDED = 0x1C
FN_START_UPLOAD = 0x1D
FN_UPLOAD = 0x1E
FN_END_UPLOAD = 0x1F
FN_PI_SERVICE = 0x28
FN_PLC_STOP = 0x29

AREA_DB = 0x84
TS_BYTE = 0x02
BLOCK_DB = b"0A"


class S7Error(RuntimeError):
    """The PLC refused a request (error class/code in the ACK_DATA header)."""


def _block_name(number: int, dest: bytes) -> bytes:
    """S7 file name of a block: '_' + type '0A' (DB) + 5-digit number + destination."""
    return b"_" + BLOCK_DB + f"{number:05d}".encode() + dest


class S7Client(BoundClient):
    """One S7 connection; every method sends one job (and waits for its answer)."""

    def __init__(
        self, host: str, source: str, port: int = 102, rack: int = 0, slot: int = 2
    ) -> None:
        super().__init__(host, source, port, timeout=3.0)
        self.rack = rack
        self.slot = slot
        self.pdu_ref = 0

    # -- transport --------------------------------------------------------------------------
    async def _send_tpkt(self, payload: bytes) -> None:
        assert self._writer is not None
        self.last_sent = time.time()
        self._writer.write(struct.pack(">BBH", 3, 0, len(payload) + 4) + payload)
        await self._writer.drain()

    async def _recv_tpkt(self) -> bytes:
        assert self._reader is not None
        head = await asyncio.wait_for(self._reader.readexactly(4), self.timeout)
        _v, _r, length = struct.unpack(">BBH", head)
        return await asyncio.wait_for(self._reader.readexactly(length - 4), self.timeout)

    async def _send_pdu(self, pdu: bytes) -> None:
        await self._send_tpkt(b"\x02\xf0\x80" + pdu)  # COTP DT, last data unit

    async def _recv_pdu(self) -> bytes:
        frame = await self._recv_tpkt()
        if len(frame) < 3 or frame[1] != 0xF0:
            raise S7Error(f"unexpected COTP frame {frame[:3].hex()}")
        return frame[3:]

    async def connect(self) -> None:
        await self._open()
        remote_tsap = 0x0100 | (self.rack << 5) | self.slot
        params = (
            b"\xc0\x01\x0a" + b"\xc1\x02\x01\x00" + b"\xc2\x02" + struct.pack(">H", remote_tsap)
        )
        cr = struct.pack(">BBHHB", 6 + len(params), 0xE0, 0, 1, 0) + params
        await self._send_tpkt(cr)
        cc = await self._recv_tpkt()
        if len(cc) < 2 or cc[1] != 0xD0:
            raise S7Error("COTP connection refused")
        await self._job(struct.pack(">BBHHH", FN_SETUP, 0, 1, 1, 480))

    # -- S7 PDUs ----------------------------------------------------------------------------
    def _header(self, rosctr: int, params: bytes, data: bytes) -> bytes:
        self.pdu_ref = (self.pdu_ref % 0xFFFF) + 1
        return struct.pack(">BBHHHH", 0x32, rosctr, 0, self.pdu_ref, len(params), len(data))

    async def _job(self, params: bytes, data: bytes = b"") -> tuple[bytes, bytes]:
        """Send a job, return (parameters, data) of the ACK_DATA."""
        async with self._lock:
            await self._send_pdu(self._header(JOB, params, data) + params + data)
            return self._split_ack(await self._recv_pdu())

    @staticmethod
    def _split_ack(pdu: bytes) -> tuple[bytes, bytes]:
        if len(pdu) < 12 or pdu[0] != 0x32 or pdu[1] not in (ACK, ACK_DATA):
            raise S7Error(f"unexpected S7 answer {pdu[:12].hex()}")
        _p, _t, _r, _ref, plen, dlen, eclass, ecode = struct.unpack(">BBHHHHBB", pdu[:12])
        if eclass or ecode:
            raise S7Error(f"S7 error class {eclass:#x} code {ecode:#x}")
        return pdu[12 : 12 + plen], pdu[12 + plen : 12 + plen + dlen]

    @staticmethod
    def _any_pointer(db: int, start: int, size: int) -> bytes:
        bit_addr = start * 8
        return struct.pack(">BBBBHHB", 0x12, 0x0A, 0x10, TS_BYTE, size, db, AREA_DB) + bytes(
            [(bit_addr >> 16) & 0xFF, (bit_addr >> 8) & 0xFF, bit_addr & 0xFF]
        )

    async def read_db(self, db: int, start: int, size: int) -> bytes:
        _params, data = await self._job(bytes([FN_READ, 1]) + self._any_pointer(db, start, size))
        if len(data) < 4 or data[0] != 0xFF:
            raise S7Error(f"read DB{db} failed, return code {data[:1].hex()}")
        return data[4 : 4 + size]

    async def write_db(self, db: int, start: int, payload: bytes) -> None:
        params = bytes([FN_WRITE, 1]) + self._any_pointer(db, start, len(payload))
        data = struct.pack(">BBH", 0x00, 0x04, len(payload) * 8) + payload
        _params, answer = await self._job(params, data)
        if not answer or answer[0] != 0xFF:
            raise S7Error(f"write DB{db} failed, return code {answer[:1].hex()}")

    async def plc_stop(self) -> None:
        await self._job(bytes([FN_PLC_STOP]) + bytes(5) + b"\x09P_PROGRAM")

    async def plc_hot_start(self) -> None:
        await self._job(bytes([FN_PI_SERVICE]) + bytes(6) + b"\xfd\x00\x00\x09P_PROGRAM")

    async def read_szl(self, szl_id: int, index: int = 0) -> bytes:
        """User-data request, function group 4 (CPU functions), subfunction 1 (read SZL)."""
        params = bytes([0x00, 0x01, 0x12, 0x04, 0x11, 0x44, 0x01, 0x00])
        data = struct.pack(">BBHHH", 0xFF, 0x09, 4, szl_id, index)
        async with self._lock:
            await self._send_pdu(self._header(USERDATA, params, data) + params + data)
            pdu = await self._recv_pdu()
        if len(pdu) < 10 or pdu[1] != USERDATA:
            raise S7Error("unexpected SZL answer")
        plen, dlen = struct.unpack(">HH", pdu[6:10])
        return pdu[10 + plen : 10 + plen + dlen]

    async def upload_db(self, number: int) -> bytes:
        """Block upload (PLC -> engineering station): start, fragments, end."""
        name = _block_name(number, b"A")
        params, _ = await self._job(bytes([FN_START_UPLOAD]) + bytes(7) + b"\x09" + name)
        upload_id = params[7] if len(params) > 7 else 1
        blob = b""
        for _ in range(64):
            params, data = await self._job(bytes([FN_UPLOAD]) + bytes(6) + bytes([upload_id]))
            blob += data[4:]
            if len(params) < 2 or params[1] == 0:
                break
        await self._job(bytes([FN_END_UPLOAD]) + bytes(6) + bytes([upload_id]))
        return blob

    async def download_db(self, number: int, payload: bytes) -> None:
        """Block download: request it, then answer the PLC's fragment and end requests."""
        size = f"{len(payload):06d}".encode()
        params = (
            bytes([FN_REQUEST_DOWNLOAD, 0x00, 0x01])
            + bytes(5)
            + b"\x09"
            + _block_name(number, b"P")
            + b"\x0d1"
            + size
            + size
        )
        await self._job(params)
        async with self._lock:
            for _ in range(64):
                job = await self._recv_pdu()
                if len(job) < 11 or job[1] != JOB:
                    raise S7Error("PLC did not drive the download")
                ref = struct.unpack(">H", job[4:6])[0]
                fn = job[10]
                if fn == FN_DOWNLOAD_BLOCK:
                    chunk, payload = payload[:200], payload[200:]
                    ack_params = bytes([FN_DOWNLOAD_BLOCK, 1 if payload else 0])
                    ack_data = struct.pack(">HH", len(chunk), 0x00FB) + chunk
                elif fn == FN_DOWNLOAD_ENDED:
                    ack_params, ack_data = bytes([FN_DOWNLOAD_ENDED]), b""
                else:
                    raise S7Error(f"unexpected PLC job {fn:#x} during download")
                head = struct.pack(
                    ">BBHHHHBB", 0x32, ACK_DATA, 0, ref, len(ack_params), len(ack_data), 0, 0
                )
                await self._send_pdu(head + ack_params + ack_data)
                if fn == FN_DOWNLOAD_ENDED:
                    return
        raise S7Error("download did not end")
