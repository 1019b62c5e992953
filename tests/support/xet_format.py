"""Reading what hf_xet uploads to Xet storage, so the test Hub can rebuild each file and check it.

The formats are Hugging Face's Xet protocol (https://huggingface.co/docs/xet: "Xorb Formation &
Serialization Format" and "MDB Shard File Format Specification"), as hf_xet 1.8 sends them:

- a xorb is a run of chunks, each an 8-byte header (version u8, compressed size u24 LE,
  compression scheme u8, uncompressed size u24 LE) then the chunk's bytes, compressed with
  scheme 0 (none), 1 (LZ4 frame) or 2 (bytes regrouped by position mod 4, then LZ4 frame);
- a shard is a 48-byte header (32-byte tag, version u64, footer size u64), then the file info
  section and the xorb (CAS) info section, each a run of 48-byte records closed by a "bookend"
  record whose hash is all 0xff. A file's record is its header (hash, flags u32, entry count
  u32), one entry per xorb range (xorb hash, flags, unpacked bytes, first chunk, end chunk), then
  as many verification records if flag bit 31 is set, then one metadata record holding the
  file's sha256 if flag bit 30 is set.

Hashes travel as four little-endian u64 words; their text form prints each word as 16 hex
digits, which is how hf_xet names a xorb in the upload URL and how sha256 reads normally.

Not checked here: the chunk hashes and the xorb's merkle hash (blake3). The stub checks instead
that the rebuilt bytes have the sha256 the shard and the commit claim.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RECORD = 48
_BOOKEND = b"\xff" * 32
_WITH_VERIFICATION = 1 << 31
_WITH_METADATA = 1 << 30
_LZ4_MAGIC = 0x184D2204


class XetFormatError(ValueError):
    """The bytes are not a xorb or shard as the Xet protocol defines them."""


def hash_text(raw: bytes) -> str:
    """A 32-byte hash as stored (four LE u64 words) -> its text form."""
    return "".join(f"{word:016x}" for word in struct.unpack("<4Q", raw))


@dataclass(frozen=True)
class FileRange:
    xorb: str
    unpacked_bytes: int
    chunk_start: int
    chunk_end: int


@dataclass(frozen=True)
class FileInfo:
    xet_hash: str
    sha256: str | None
    ranges: tuple[FileRange, ...]

    @property
    def size(self) -> int:
        return sum(r.unpacked_bytes for r in self.ranges)


# -- xorbs --------------------------------------------------------------------------------------


def xorb_chunks(data: bytes) -> list[bytes]:
    """The uncompressed chunks of a serialized xorb (stops at a footer, if any)."""
    chunks: list[bytes] = []
    offset = 0
    while offset + 8 <= len(data):
        version = data[offset]
        if version != 0:  # a footer (the xorb's own metadata) follows the last chunk
            break
        compressed = int.from_bytes(data[offset + 1 : offset + 4], "little")
        scheme = data[offset + 4]
        size = int.from_bytes(data[offset + 5 : offset + 8], "little")
        body = data[offset + 8 : offset + 8 + compressed]
        if len(body) != compressed:
            raise XetFormatError(f"chunk {len(chunks)} is cut short")
        chunk = _decompress(body, scheme)
        if len(chunk) != size:
            raise XetFormatError(f"chunk {len(chunks)}: {len(chunk)} bytes, header says {size}")
        chunks.append(chunk)
        offset += 8 + compressed
    if not chunks:
        raise XetFormatError("no chunks in xorb")
    return chunks


def _decompress(body: bytes, scheme: int) -> bytes:
    if scheme == 0:
        return body
    if scheme == 1:
        return lz4_frame_decode(body)
    if scheme == 2:
        return _ungroup4(lz4_frame_decode(body))
    raise XetFormatError(f"unknown compression scheme {scheme}")


def _ungroup4(grouped: bytes) -> bytes:
    """Undo byte grouping: group k holds the bytes at positions k, k+4, k+8..."""
    n = len(grouped)
    out = bytearray(n)
    start = 0
    for k in range(4):
        count = n // 4 + (1 if k < n % 4 else 0)
        out[k::4] = grouped[start : start + count]
        start += count
    return bytes(out)


def lz4_frame_decode(data: bytes) -> bytes:
    """Decode one LZ4 frame (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md)."""
    if len(data) < 7 or struct.unpack_from("<I", data)[0] != _LZ4_MAGIC:
        raise XetFormatError("not an LZ4 frame")
    flags = data[4]
    pos = 6 + (8 if flags & 0x08 else 0) + (4 if flags & 0x01 else 0) + 1  # + descriptor checksum
    block_checksum = bool(flags & 0x10)
    out = bytearray()
    while True:
        (size,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if size == 0:
            return bytes(out)
        raw, size = bool(size & 0x80000000), size & 0x7FFFFFFF
        block = data[pos : pos + size]
        pos += size + (4 if block_checksum else 0)
        if raw:
            out += block
        else:
            _lz4_block_decode(block, out)


def _lz4_block_decode(block: bytes, out: bytearray) -> None:
    """Append one LZ4 block's output to `out` (matches may reach into earlier blocks)."""
    pos = 0
    while pos < len(block):
        token = block[pos]
        pos += 1
        literals = token >> 4
        if literals == 15:
            while True:
                extra = block[pos]
                pos += 1
                literals += extra
                if extra != 255:
                    break
        out += block[pos : pos + literals]
        pos += literals
        if pos >= len(block):
            return  # the last sequence has literals only
        distance = block[pos] | block[pos + 1] << 8
        pos += 2
        length = token & 0x0F
        if length == 15:
            while True:
                extra = block[pos]
                pos += 1
                length += extra
                if extra != 255:
                    break
        length += 4
        start = len(out) - distance
        if distance <= 0 or start < 0:
            raise XetFormatError("LZ4 match points before the start of the data")
        for i in range(length):  # byte by byte: a match may overlap what it writes
            out.append(out[start + i])


# -- shards -------------------------------------------------------------------------------------


def shard_files(data: bytes) -> list[FileInfo]:
    """The files a shard records, with the xorb ranges that make them up."""
    if len(data) < RECORD:
        raise XetFormatError("shard shorter than its header")
    files: list[FileInfo] = []
    pos = RECORD
    while True:
        record = data[pos : pos + RECORD]
        if len(record) < RECORD:
            raise XetFormatError("file info section has no bookend")
        pos += RECORD
        if record[:32] == _BOOKEND:
            return files
        flags, count = struct.unpack_from("<II", record, 32)
        ranges = []
        for _ in range(count):
            xorb, _flags, unpacked, first, end = struct.unpack_from("<32sIIII", data, pos)
            ranges.append(FileRange(hash_text(xorb), unpacked, first, end))
            pos += RECORD
        if flags & _WITH_VERIFICATION:
            pos += RECORD * count
        sha256 = None
        if flags & _WITH_METADATA:
            sha256 = hash_text(data[pos : pos + 32])
            pos += RECORD
        files.append(FileInfo(hash_text(record[:32]), sha256, tuple(ranges)))


def rebuild(info: FileInfo, xorbs: dict[str, list[bytes]]) -> bytes:
    """The file's bytes from the stored xorbs' chunks; XetFormatError if a range is missing."""
    parts = []
    for part in info.ranges:
        chunks = xorbs.get(part.xorb)
        if chunks is None:
            raise XetFormatError(f"xorb {part.xorb} was never uploaded")
        piece = b"".join(chunks[part.chunk_start : part.chunk_end])
        if part.chunk_end > len(chunks) or len(piece) != part.unpacked_bytes:
            raise XetFormatError(f"xorb {part.xorb}: chunks {part.chunk_start}..{part.chunk_end}")
        parts.append(piece)
    return b"".join(parts)
