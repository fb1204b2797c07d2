"""Files that are expensive to get wrong: crafted TIFF headers and a sparse 40k pyramid."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import tifffile


def huge_tiff_header(path: Path, width: int = 10**6, height: int = 10**6) -> Path:
    """A valid classic-TIFF header declaring ``width`` x ``height`` 8-bit pixels, and no pixels."""
    entries = [  # tag, type (3 SHORT, 4 LONG), count, value
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
        (262, 3, 1, 1), (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, height),
        (279, 4, 1, 0xFFFFFFFF),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = 8 + ifd_size
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, typ, count, value in entries:
        if tag == 273:
            value = data_offset
        packed = struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, typ, count) + packed
    out += struct.pack("<I", 0) + b"\x00" * 16  # no next IFD; a few pixels
    path.write_bytes(bytes(out))
    return path


def write_sparse_pyramid(path: Path, size: int = 40_000, channels: int = 2, tile: int = 512,
                         levels: int = 4) -> Path:
    """An OME-TIFF pyramid of ``size`` x ``size`` pixels whose tiles are all one pre-compressed zero tile."""
    enc = zlib.compress(np.zeros((tile, tile), np.uint8).tobytes())
    shapes = [(channels, size >> i, size >> i) for i in range(levels)]
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        for i, sh in enumerate(shapes):
            n = sh[0] * -(-sh[1] // tile) * -(-sh[2] // tile)
            kw = ({"subifds": levels - 1, "metadata": {"axes": "CYX", "Channel": {"Name": ["DAPI", "CD68"][:channels]},
                                                        "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}}
                  if i == 0 else {"subfiletype": 1})
            tw.write((enc for _ in range(n)), shape=sh, dtype="uint8", tile=(tile, tile), compression="zlib", **kw)
    return path
