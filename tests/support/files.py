"""Real files, made in code, for the attachment tests: what libmagic sees is what a user would send."""

from __future__ import annotations

import struct
import zlib

# An executable (ELF header), whatever it is called.
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(56) + b"\x90" * 200


def png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0\xff\0\0"))
        + chunk(b"IEND", b"")
    )


def wav(frames: int) -> bytes:
    """A WAV of silence: 8 kHz, 8-bit mono, `frames` samples."""
    data = bytes(frames)
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8)
    return (
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
