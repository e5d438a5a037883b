"""DeepLearnToolbox's ``visualize``: a mosaic of filters, saved as a PNG."""
import math

import numpy as np

from fastgrad.png import write_png

__all__ = ["visualize", "mosaic"]

_GAP_VALUE = 255          # DeepLearnToolbox fills gaps with the maximum: white
_FLAT_VALUE = 128         # a constant tile has no range: mid grey


def _as_tiles(weights, shape):
    """(n_tiles, height, width) float64 tiles and the default column count."""
    if not isinstance(weights, np.ndarray) and hasattr(weights, "numpy"):
        weights = weights.numpy()            # a fastgrad Tensor
    weights = np.asarray(weights)
    if weights.dtype.kind not in "biuf":
        raise TypeError(f"visualize: weights must be real numbers, got dtype "
                        f"{weights.dtype}")
    if weights.ndim not in (2, 3, 4):
        raise ValueError(f"visualize: weights must be 2-D (n_filters, "
                         f"n_pixels), 3-D (n_filters, height, width) or 4-D "
                         f"(out_maps, in_maps, height, width); got shape "
                         f"{weights.shape}")
    if weights.shape[0] == 0 or weights.size == 0:
        raise ValueError(f"visualize: no filters to show (shape "
                         f"{weights.shape})")
    n_bad = int(np.count_nonzero(~np.isfinite(weights)))
    if n_bad:
        raise ValueError(f"visualize: weights contain {n_bad} NaN or "
                         f"infinite value(s) (shape {weights.shape})")
    n_columns = None
    if weights.ndim == 4:
        if weights.shape[1] > 1:
            n_columns = weights.shape[1]     # one row per output map
        weights = weights.reshape(-1, *weights.shape[2:])
    if weights.ndim == 2:
        n_pixels = weights.shape[1]
        if shape is None:
            side = math.isqrt(n_pixels)
            if side * side != n_pixels:
                raise ValueError(
                    f"visualize: each filter has {n_pixels} values, not a "
                    "perfect square; pass shape=(height, width)")
            shape = (side, side)
        shape = tuple(int(s) for s in shape)
        if (len(shape) != 2 or min(shape) < 1
                or shape[0] * shape[1] != n_pixels):
            raise ValueError(f"visualize: shape {shape} does not hold the "
                             f"{n_pixels} values of each filter")
        weights = weights.reshape(-1, *shape)
    elif shape is not None and tuple(shape) != weights.shape[1:]:
        raise ValueError(f"visualize: shape {tuple(shape)} contradicts the "
                         f"filter shape {weights.shape[1:]}")
    return weights.astype(np.float64), n_columns


def mosaic(weights, shape=None, n_columns=None, gap=1, normalize="tile",
           value_range=None):
    """The mosaic image of :func:`visualize` as uint8 (height, width)."""
    tiles, default_columns = _as_tiles(weights, shape)
    n_tiles, height, width = tiles.shape
    if normalize not in ("tile", "global"):
        raise ValueError(f"visualize: normalize must be 'tile' or 'global', "
                         f"got {normalize!r}")
    if int(gap) != gap or gap < 0:
        raise ValueError(f"visualize: gap must be an integer >= 0, got {gap}")
    gap = int(gap)
    if n_columns is None:
        n_columns = default_columns or math.ceil(math.sqrt(n_tiles))
    if int(n_columns) != n_columns or n_columns < 1:
        raise ValueError(f"visualize: n_columns must be an integer >= 1, "
                         f"got {n_columns}")
    n_columns = min(int(n_columns), n_tiles)
    n_rows = math.ceil(n_tiles / n_columns)

    if normalize == "tile":
        low = tiles.min(axis=(1, 2), keepdims=True)
        high = tiles.max(axis=(1, 2), keepdims=True)
    else:
        if value_range is None:
            value_range = (tiles.min(), tiles.max())
        low, high = (float(v) for v in value_range)
        if not high >= low:
            raise ValueError(f"visualize: value_range {value_range} needs "
                             "low <= high")
        low = np.full((n_tiles, 1, 1), low)
        high = np.full((n_tiles, 1, 1), high)
    span = high - low
    flat = span == 0
    scaled = (np.clip(tiles, low, high) - low) / np.where(flat, 1.0, span)
    pixels = np.where(flat, _FLAT_VALUE, np.rint(scaled * 255))
    pixels = pixels.astype(np.uint8)

    # Cells of (height + gap) x (width + gap), gap on the bottom/right edge,
    # laid out row by row, then the trailing gap is cropped.
    cells = np.full((n_rows * n_columns, height + gap, width + gap),
                    _GAP_VALUE, np.uint8)
    cells[:n_tiles, :height, :width] = pixels
    grid = cells.reshape(n_rows, n_columns, height + gap, width + gap)
    image = grid.transpose(0, 2, 1, 3).reshape(n_rows * (height + gap),
                                               n_columns * (width + gap))
    return np.ascontiguousarray(image[:image.shape[0] - gap,
                                      :image.shape[1] - gap])


def visualize(weights, path=None, shape=None, *, n_columns=None, gap=1,
              scale=1, normalize="tile", value_range=None):
    """Save a mosaic of filters as a greyscale PNG (DeepLearnToolbox's
    ``visualize``), and return the image.

    Parameters
    ----------
    weights : array or Tensor
        (n_filters, n_pixels): one filter per row, e.g. an NN weight matrix
        (out, in) of the first layer, or an RBM's W (n_hidden, n_visible);
        pixels in row-major order (as fastgrad's (N, 28, 28) images
        flattened). DeepLearnToolbox takes the transpose, one filter per
        column, in MATLAB's column-major order: pass ``W``, not ``W.T``.
        Also (n_filters, height, width), or conv weights (out_maps, in_maps,
        height, width), shown one output map per row.
    path : where to write the PNG (atomically); None only returns the image.
    shape : (height, width) of a filter, needed when n_pixels is not a
        perfect square.
    n_columns : tiles per row (default ceil(sqrt(n_filters))).
    gap : pixels of white between tiles (DeepLearnToolbox: 1).
    scale : integer up-scaling (nearest neighbour) of the whole mosaic, for
        small filters such as 5x5 convolutions.
    normalize : "tile" (default) maps each tile's own [min, max] to black to
        white; "global" uses one range for all tiles, ``value_range`` or the
        weights' [min, max] (DeepLearnToolbox's default). A constant tile is
        mid grey.

    Returns
    -------
    uint8 array (rows * (height + gap) - gap, columns * (width + gap) - gap)
    multiplied by ``scale``: the pixels written.
    """
    if int(scale) != scale or scale < 1:
        raise ValueError(f"visualize: scale must be an integer >= 1, got "
                         f"{scale}")
    image = mosaic(weights, shape, n_columns, gap, normalize, value_range)
    scale = int(scale)
    if scale > 1:
        image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    if path is not None:
        write_png(path, image)
    return image
