"""A minimal PNG encoder and decoder (zlib + struct, NumPy only).

Writes 8-bit greyscale, RGB or RGBA images, non-interlaced, filter type 0
(None) on every row. Reads any 8-bit, non-interlaced greyscale, grey+alpha,
RGB or RGBA PNG (all five row filters), which covers what this module and
common tools such as matplotlib write. Specification: PNG (Third Edition),
W3C, sections 5 (datastream), 7 (filtering) and 11 (chunks).
"""
import struct
import zlib

import numpy as np

from fastgrad.io import atomic_write

__all__ = ["encode_png", "write_png", "decode_png", "read_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# colour type -> channels (8-bit samples only)
_CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}


def _chunk(kind, payload):
    body = kind + payload
    return (struct.pack(">I", len(payload)) + body
            + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF))


def encode_png(image, compress_level=6):
    """PNG bytes of a uint8 image: (height, width) greyscale or
    (height, width, 3|4) RGB/RGBA. Height and width must be >= 1."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"encode_png: image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in _COLOUR_TYPE:
        raise ValueError(f"encode_png: image must be (H, W) or (H, W, 1-4), "
                         f"got shape {image.shape}")
    height, width, channels = image.shape
    if height < 1 or width < 1 or height >= 2**31 or width >= 2**31:
        raise ValueError(f"encode_png: bad image size {height}x{width}")
    header = struct.pack(">IIBBBBB", width, height, 8,
                         _COLOUR_TYPE[channels], 0, 0, 0)
    rows = np.zeros((height, 1 + width * channels), np.uint8)  # filter 0
    rows[:, 1:] = image.reshape(height, width * channels)
    return (_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), compress_level))
            + _chunk(b"IEND", b""))


def write_png(path, image, compress_level=6):
    """Write ``image`` (see :func:`encode_png`) to ``path`` atomically."""
    data = encode_png(image, compress_level)
    atomic_write(path, lambda handle: handle.write(data))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter(raw, height, width, channels):
    stride = width * channels
    out = np.zeros((height, stride), np.int32)
    previous = np.zeros(stride, np.int32)
    for row in range(height):
        kind = raw[row, 0]
        line = raw[row, 1:].astype(np.int32)
        if kind == 0:
            current = line
        elif kind == 2:
            current = (line + previous) & 0xFF
        elif kind == 1:
            # Sub: a running sum along the row, per channel, modulo 256.
            current = (np.cumsum(line.reshape(width, channels), axis=0)
                       & 0xFF).reshape(stride)
        elif kind in (3, 4):
            # Average and Paeth depend on the decoded left pixel: walk the
            # row one pixel at a time (decoding is for tests and inspection,
            # never on a training path).
            current = np.zeros(stride, np.int32)
            for start in range(0, stride, channels):
                stop = start + channels
                left = (current[start - channels:start] if start
                        else np.zeros(channels, np.int32))
                up = previous[start:stop]
                if kind == 3:
                    predictor = (left + up) // 2
                else:
                    up_left = (previous[start - channels:start] if start
                               else np.zeros(channels, np.int32))
                    predictor = _paeth(left, up, up_left)
                current[start:stop] = (line[start:stop] + predictor) & 0xFF
        else:
            raise ValueError(f"PNG: unknown filter type {kind} in row {row}")
        out[row] = current
        previous = current
    return out.astype(np.uint8)


def decode_png(data, source="<bytes>"):
    """Decode PNG bytes into a uint8 array (H, W) or (H, W, channels).

    Checks the signature and every chunk CRC; raises ValueError naming
    ``source`` on anything malformed or unsupported (bit depth other than 8,
    palette images, interlacing).
    """
    if data[:8] != _SIGNATURE:
        raise ValueError(f"{source}: not a PNG file (bad signature)")
    position, header, idat = 8, None, []
    while True:
        if position + 8 > len(data):
            raise ValueError(f"{source}: truncated PNG (no IEND chunk)")
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 8 + length + 4
        if end > len(data):
            raise ValueError(f"{source}: truncated {kind!r} chunk")
        body = data[position + 4:end - 4]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(body) & 0xFFFFFFFF != crc:
            raise ValueError(f"{source}: CRC mismatch in {kind!r} chunk")
        payload = body[4:]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"IDAT":
            idat.append(payload)
        elif kind == b"IEND":
            break
        position = end
    if header is None:
        raise ValueError(f"{source}: PNG without IHDR")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace != 0:
        raise ValueError(f"{source}: unsupported PNG (bit depth {depth}, "
                         f"colour type {colour}, interlace {interlace}); "
                         "only 8-bit non-interlaced grey/RGB(A)")
    channels = _CHANNELS[colour]
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as err:
        raise ValueError(f"{source}: corrupt PNG image data ({err})") from None
    if len(raw) != height * (1 + width * channels):
        raise ValueError(f"{source}: PNG image data has {len(raw)} bytes, "
                         f"expected {height * (1 + width * channels)}")
    raw = np.frombuffer(raw, np.uint8).reshape(height, 1 + width * channels)
    image = _unfilter(raw, height, width, channels)
    image = image.reshape(height, width, channels)
    return image[:, :, 0] if channels == 1 else image


def read_png(path):
    """Read a PNG file (see :func:`decode_png`)."""
    with open(path, "rb") as handle:
        return decode_png(handle.read(), source=str(path))
