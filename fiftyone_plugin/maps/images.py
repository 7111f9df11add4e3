"""Reading images robustly: every file becomes an RGB PIL image or a clear,
recordable error -- never a crash of the whole run."""

import numpy as np
from PIL import Image, ImageOps

# Smaller than this, a classifier sees nothing but interpolation artefacts.
MIN_IMAGE_SIDE = 8


class ImageLoadError(Exception):
    """A sample's file cannot be used; the message is stored on the sample."""


def load_rgb_image(path, *, target_size=None):
    """Open ``path`` as an 8-bit RGB image in the frame FiftyOne shows.

    The EXIF ``Orientation`` tag (values 1-8) is applied with Pillow's
    ``ImageOps.exif_transpose``, as the App does when it displays the image
    and as FiftyOne's metadata reports its width and height.

    Grayscale, palette, RGBA (alpha dropped), CMYK and 16-bit/float images are
    converted; 16-bit and float data are scaled by their own range rather than
    clipped. ``target_size`` lets JPEG decoding skip work for huge images.

    Raises
    ------
    ImageLoadError
        missing, unreadable, truncated, non-image or too-small files.
    """
    try:
        with Image.open(path) as image:
            if target_size and image.format == "JPEG":
                image.draft("RGB", (target_size, target_size))
            image.load()
            # a copy with the orientation applied and the tag removed
            return _to_rgb(ImageOps.exif_transpose(image))
    except FileNotFoundError:
        raise ImageLoadError(f"file not found: {path}") from None
    except Image.DecompressionBombError as e:
        raise ImageLoadError(f"image too large to decode safely: {e}") from None
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError) as e:
        # PIL raises these for truncated/corrupt/non-image files
        raise ImageLoadError(f"cannot read image {path}: {e}") from None


def _to_rgb(image):
    if min(image.size) < MIN_IMAGE_SIDE:
        raise ImageLoadError(
            f"image is {image.size[0]}x{image.size[1]} px; at least "
            f"{MIN_IMAGE_SIDE} px per side is needed"
        )
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        gray = ((array - low) * scale).round().astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    ):
        # composite on white: transparent regions are "nothing", not black
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image

