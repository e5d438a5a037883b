"""PNG encoder/decoder and the filter mosaic (DeepLearnToolbox's visualize)."""
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from fastgrad import png
from fastgrad.visualize import mosaic, visualize


def independent_decode(data):
    """A decoder that trusts nothing from fastgrad.png: signature, IHDR
    fields, chunk CRCs, filter-0 rows only (what our encoder writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        kind = data[position + 4:position + 8]
        payload = data[position + 8:position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length:
                                          position + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF
        chunks.append((kind, payload))
        position += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour, method, filters, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1])
    assert (depth, method, filters, interlace) == (8, 0, 0, 0)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(b"".join(p for k, p in chunks if k == b"IDAT"))
    assert len(raw) == height * (1 + width * channels)
    rows = np.frombuffer(raw, np.uint8).reshape(height, -1)
    assert np.all(rows[:, 0] == 0)
    image = rows[:, 1:].reshape(height, width, channels)
    return image[:, :, 0] if channels == 1 else image


def filtered_png(image, filter_type):
    """An 8-bit greyscale PNG whose rows all use one filter (1-4), built
    independently of fastgrad.png, to exercise the decoder's unfiltering."""
    x = image.astype(np.int32)
    left = np.pad(x, ((0, 0), (1, 0)))[:, :-1]
    up = np.pad(x, ((1, 0), (0, 0)))[:-1]
    up_left = np.pad(x, ((1, 0), (1, 0)))[:-1, :-1]
    if filter_type == 1:
        predictor = left
    elif filter_type == 2:
        predictor = up
    elif filter_type == 3:
        predictor = (left + up) // 2
    else:
        p = left + up - up_left
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
        predictor = np.where((pa <= pb) & (pa <= pc), left,
                             np.where(pb <= pc, up, up_left))
    rows = np.concatenate([np.full((x.shape[0], 1), filter_type),
                           (x - predictor) & 0xFF], axis=1).astype(np.uint8)

    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", x.shape[1], x.shape[0], 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes()))
            + chunk(b"IEND", b""))


# -------------------------------------------------------------------- PNG

@given(image=hnp.arrays(np.uint8, st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=9),
    st.tuples(st.integers(1, 6), st.integers(1, 6),
              st.sampled_from([2, 3, 4])))))
def test_png_round_trip(image):
    data = png.encode_png(image)
    np.testing.assert_array_equal(independent_decode(data), image)
    np.testing.assert_array_equal(png.decode_png(data), image)


@pytest.mark.parametrize("filter_type", [1, 2, 3, 4])
def test_png_decoder_unfilters(filter_type):
    image = np.random.default_rng(filter_type).integers(
        0, 256, (7, 11)).astype(np.uint8)
    np.testing.assert_array_equal(
        png.decode_png(filtered_png(image, filter_type)), image)


def test_png_errors(tmp_path):
    with pytest.raises(TypeError, match="uint8"):
        png.encode_png(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        png.encode_png(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ValueError, match="size"):
        png.encode_png(np.zeros((0, 2), np.uint8))
    data = png.encode_png(np.arange(12, dtype=np.uint8).reshape(3, 4))
    path = tmp_path / "bad.png"
    for bad, message in [(b"GIF89a" + data[6:], "signature"),
                         (data[:-20], "truncated"),
                         (data[:40] + bytes([data[40] ^ 1]) + data[41:],
                          "CRC")]:
        path.write_bytes(bad)
        with pytest.raises(ValueError, match=message) as info:
            png.read_png(path)
        assert str(path) in str(info.value)


# ---------------------------------------------------------------- mosaic

def test_visualize_known_pixels(tmp_path):
    # Three 2x2 filters (rows of a (3, 4) matrix, row-major pixels).
    weights = np.array([[0.0, 1.0, 2.0, 3.0],       # ramp 0..3
                        [-1.0, -1.0, 1.0, 1.0],     # top dark, bottom light
                        [5.0, 5.0, 5.0, 5.0]])      # constant
    path = tmp_path / "filters.png"
    image = visualize(weights, path)
    # ceil(sqrt(3)) = 2 columns, 2 rows, 1-pixel white gaps: 5x5.
    expected = np.array([[0, 85, 255, 0, 0],
                         [170, 255, 255, 255, 255],
                         [255, 255, 255, 255, 255],
                         [128, 128, 255, 255, 255],
                         [128, 128, 255, 255, 255]], np.uint8)
    np.testing.assert_array_equal(image, expected)
    np.testing.assert_array_equal(independent_decode(path.read_bytes()),
                                  expected)
    assert path.read_bytes()[12:16] == b"IHDR"
    assert struct.unpack(">II", path.read_bytes()[16:24]) == (5, 5)


def test_visualize_global_range_scale_and_layouts(tmp_path):
    weights = np.array([[0.0, 1.0, 2.0, 3.0], [-1.0, -1.0, 1.0, 1.0]])
    image = mosaic(weights, normalize="global", gap=0)
    # One range [-1, 3] for both tiles: -1 -> 0, 3 -> 255.
    np.testing.assert_array_equal(image, [[64, 128, 0, 0],
                                          [191, 255, 128, 128]])
    image = mosaic(weights, normalize="global", value_range=(0, 2), gap=0,
                   n_columns=1)
    # Values outside the range are clipped: -1 -> 0 (black).
    np.testing.assert_array_equal(image, [[0, 128], [255, 255],
                                          [0, 0], [128, 128]])
    big = visualize(weights, tmp_path / "big.png", scale=3, gap=2)
    assert big.shape == (2 * 3, (2 + 2 + 2) * 3)
    np.testing.assert_array_equal(big[::3, ::3], mosaic(weights, gap=2))
    # Non-square filters with shape; 3-D input; 4-D conv weights one output
    # map per row.
    rect = mosaic(np.arange(12.0).reshape(2, 6), shape=(2, 3), gap=1)
    assert rect.shape == (2, 7)
    assert mosaic(np.ones((5, 3, 3)) * np.arange(5)[:, None, None]).shape == (
        7, 11)
    conv = mosaic(np.random.default_rng(0).normal(size=(6, 4, 5, 5)))
    assert conv.shape == (6 * 6 - 1, 4 * 6 - 1)


def test_visualize_mnist_sized_filters_from_a_tensor_like(tmp_path):
    class FakeTensor:
        def __init__(self, data):
            self.data = data

        def numpy(self):
            return self.data

    weights = np.random.default_rng(1).normal(size=(100, 784)).astype(
        np.float32)
    image = visualize(FakeTensor(weights), tmp_path / "w.png")
    assert image.shape == (10 * 29 - 1, 10 * 29 - 1)
    decoded = png.read_png(tmp_path / "w.png")
    np.testing.assert_array_equal(decoded, image)
    # Each tile spans the full black-to-white range; tile k is row k.
    tile = decoded[29:57, 58:86]
    assert tile.min() == 0 and tile.max() == 255
    row = weights[12].reshape(28, 28)
    assert tile[np.unravel_index(row.argmax(), row.shape)] == 255


def test_visualize_rejects_bad_input(tmp_path):
    cases = [
        (np.ones(9), {}, ValueError, "2-D"),
        (np.ones((1, 1, 1, 1, 1)), {}, ValueError, "2-D"),
        (np.ones((0, 9)), {}, ValueError, "no filters"),
        (np.array([[1.0, np.nan, 0, 0]]), {}, ValueError, "1 NaN"),
        (np.array([[1.0, np.inf, 0, 0]]), {}, ValueError, "infinite"),
        (np.ones((3, 30)), {}, ValueError, "30 values, not a perfect square"),
        (np.ones((3, 30)), {"shape": (4, 7)}, ValueError, "does not hold"),
        (np.ones((3, 4, 4)), {"shape": (2, 8)}, ValueError, "contradicts"),
        (np.ones((3, 4), complex), {}, TypeError, "real"),
        (np.ones((3, 4)), {"gap": -1}, ValueError, "gap"),
        (np.ones((3, 4)), {"scale": 0}, ValueError, "scale"),
        (np.ones((3, 4)), {"n_columns": 0}, ValueError, "n_columns"),
        (np.ones((3, 4)), {"normalize": "per-pixel"}, ValueError, "normalize"),
        (np.ones((3, 4)), {"normalize": "global", "value_range": (1, 0)},
         ValueError, "low <= high"),
    ]
    for weights, kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            visualize(weights, tmp_path / "x.png", **kwargs)
    assert not (tmp_path / "x.png").exists()
