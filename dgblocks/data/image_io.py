"""Decoding image files safely: a pixel limit read from the header, bounded sizes, and
errors that name the file (:class:`DataError`)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch
from torch import Tensor

from dgblocks._checks import DGBlocksError, ValueRangeError, check_int

__all__ = ["DataError", "DataWarning", "MAX_IMAGE_PIXELS", "check_image_size", "load_image"]

# largest image decoded or produced (4096 x 4096): re-ID crops are far smaller, and a bigger
# file is a mistake or a decompression bomb (Pillow's own limit is 89 Mpx, then a warning)
MAX_IMAGE_PIXELS = 4096 * 4096


class DataError(DGBlocksError):
    """An image file cannot be decoded, or a dataset file name does not parse (names it)."""


class DataWarning(RuntimeWarning):
    """A dataset loads but something in it is suspicious (names the files or identities);
    ``--check-data`` lists each one as a problem."""


def check_image_size(size: Any, *, name: str = "size") -> tuple[int, int] | None:
    """``None`` or ``(H, W)``: two ints >= 1 with ``H * W <= MAX_IMAGE_PIXELS`` (else a
    :class:`~dgblocks.ValueRangeError` naming ``name``).

    Example:
        >>> check_image_size([256, 128])
        (256, 128)
    """
    if size is None:
        return None
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise ValueRangeError(f"{name}: expected (H, W), got {size!r}")
    h = check_int(size[0], name=f"{name}[0]", minimum=1)
    w = check_int(size[1], name=f"{name}[1]", minimum=1)
    if h * w > MAX_IMAGE_PIXELS:
        raise ValueRangeError(f"{name}: expected at most {MAX_IMAGE_PIXELS} pixels (4096 x "
                              f"4096), got {h} x {w}")
    return h, w


def load_image(path: str, size: tuple[int, int] | None = None) -> Tensor:
    """Decode an image file with Pillow into a float32 ``(3, H, W)`` tensor in ``[0, 1]``.

    ``size = (H, W)`` resizes with bilinear interpolation (Pillow) while decoding. A file
    that cannot be decoded (missing, a folder, truncated, not an image, over
    :data:`MAX_IMAGE_PIXELS` pixels: read from its header, before decoding) raises
    :class:`DataError` naming it; a bad ``size`` raises naming ``size``.
    """
    from PIL import Image

    size = check_image_size(size)
    if not isinstance(path, (str, os.PathLike)):
        raise ValueRangeError(f"path: expected a file path, got {type(path).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise DataError(f"{str(path)!r}: {w} x {h} pixels, more than the "
                                f"{MAX_IMAGE_PIXELS} (4096 x 4096) an image may have "
                                "(dgblocks.data.image_io.MAX_IMAGE_PIXELS)")
            im = im.convert("RGB")
            if size is not None:
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
            img = data.view(im.size[1], im.size[0], 3).permute(2, 0, 1)
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as err:  # PIL: truncated, unidentified, bomb ...
        raise DataError(f"{str(path)!r}: cannot decode the image "
                        f"({type(err).__name__}: {err})") from err
    return img.float().div_(255.0)
