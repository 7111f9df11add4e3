"""Where the model's input tensor lies on the image: the geometry of a
preprocessing.

A classifier's preprocessing often resizes the short side and centre-crops
(ImageNet style), or pads; the layer's maps then cover a window of the image,
not the whole image. For an image of displayed size ``(W, H)`` the input frame
is described by a :class:`Frame` ``(ox, oy, sx, sy)``: input-normalised
coordinates ``(u, v)`` in ``[0, 1]`` lie at image-normalised coordinates
``(ox + sx * u, oy + sy * v)``. A centre crop has ``0 < sx <= 1``, a pad
``sx > 1`` and ``ox < 0``; the whole image is ``(0, 0, 1, 1)``.

Two ways to find it, per distinct image size (cached):

- **torchvision** transforms (v1 or v2: ``Compose``, ``Resize``,
  ``CenterCrop``, ``Pad``, the colour/type steps that keep geometry, and the
  weights presets ``ImageClassification``): the image corners are carried as
  ``torchvision.tv_tensors.KeyPoints`` through the v2 geometric kernels, which
  do not clamp points, so where the corners land gives the frame exactly.
- anything else (a user's callable, a FiftyOne zoo model's transforms): an
  empirical **probe**. Three images of the same size -- black, white, and one
  whose red channel is a horizontal ramp and green channel a vertical ramp --
  go through the transform; per output pixel ``(ramp - black) / (white -
  black)`` recovers the image coordinate it came from whatever the
  normalisation, and a robust least-squares line per axis gives the frame.
  The fit must explain most pixels to within 1 % of the image and the
  transform must be deterministic; otherwise the geometry is *unknown*.

Unknown geometry is never guessed silently: callers place maps on the whole
image, warn and record it (see :func:`fiftyone_plugin.compute_activation_maps`).
"""

from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2 as v2
from PIL import Image
from torchvision import tv_tensors

WHOLE_IMAGE = (0.0, 0.0, 1.0, 1.0)

# probe acceptance: residuals in image-normalised units
_PROBE_TOLERANCE = 0.01
_PROBE_MIN_INLIERS = 0.8


class GeometryError(Exception):
    """The geometry of a preprocessing cannot be determined."""


@dataclass(frozen=True)
class Frame:
    """The input frame on the image: ``(ox, oy, sx, sy)`` in image-normalised
    units (see the module docstring)."""

    ox: float
    oy: float
    sx: float
    sy: float

    def as_tuple(self):
        return (self.ox, self.oy, self.sx, self.sy)


# Steps that change values but not where a pixel is.
_NEUTRAL = {
    "ToTensor",
    "PILToTensor",
    "ToImage",
    "ToDtype",
    "ToPureTensor",
    "ConvertImageDtype",
    "Normalize",
    "ToPILImage",
    "Grayscale",
}


def _is_torchvision(obj):
    return type(obj).__module__.startswith("torchvision.")


def geometric_steps(transforms):
    """The transform as a list of torchvision v2 geometric transforms that
    carry keypoints, or ``None`` when some step is not a known torchvision
    transform (then only a probe can tell).

    Parameters
    ----------
    transforms : callable
        PIL image -> tensor.

    Returns
    -------
    list or None

    Examples
    --------
    >>> import torchvision.transforms as T
    >>> geometric_steps(T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()]))
    [Resize(size=[256], interpolation=bilinear, antialias=True), CenterCrop(size=(224, 224))]
    >>> geometric_steps(lambda image: image) is None
    True
    """
    name = type(transforms).__name__
    # our own picklable wrapper of torchvision weights' transforms
    if name == "_rgb_pil_first" and hasattr(transforms, "inner"):
        return geometric_steps(transforms.inner)
    if not _is_torchvision(transforms):
        if isinstance(transforms, torch.nn.Sequential):
            return _steps_of(list(transforms))
        return None
    if name == "Compose":
        return _steps_of(list(transforms.transforms))
    if name == "ImageClassification":  # torchvision weights' preset
        return [
            v2.Resize(list(transforms.resize_size), antialias=True),
            v2.CenterCrop(list(transforms.crop_size)),
        ]
    if name in _NEUTRAL:
        return []
    if name == "Resize":
        return [v2.Resize(transforms.size, max_size=getattr(transforms, "max_size", None))]
    if name == "CenterCrop":
        return [v2.CenterCrop(transforms.size)]
    if name == "Pad":
        # only where the image goes matters, not what fills the border
        return [v2.Pad(transforms.padding)]
    return None


def _steps_of(items):
    steps = []
    for item in items:
        sub = geometric_steps(item)
        if sub is None:
            return None
        steps.extend(sub)
    return steps


def frame_from_steps(steps, image_size):
    """Carry the image corners through ``steps`` (torchvision v2 kernels on
    ``tv_tensors.KeyPoints``, unclamped).

    Parameters
    ----------
    steps : list
        from :func:`geometric_steps`.
    image_size : tuple
        ``(W, H)`` in pixels.

    Returns
    -------
    tuple
        ``(Frame, (h_in, w_in))``: the frame and the size of the input
        tensor the steps produce.

    Examples
    --------
    Resize(256) then CenterCrop(224) of a 512 x 256 image: the crop keeps
    pixels 144..368 of 512 across and 16..240 of 256 down.

    >>> frame_from_steps([v2.Resize(256), v2.CenterCrop(224)], (512, 256))
    (Frame(ox=0.28125, oy=0.0625, sx=0.4375, sy=0.875), (224, 224))
    """
    width, height = image_size
    points = tv_tensors.KeyPoints(
        torch.tensor([[0.0, 0.0], [float(width), float(height)]], dtype=torch.float64),
        canvas_size=(height, width),
    )
    for step in steps:
        points = step(points)
    (x0, y0), (x1, y1) = points.tolist()
    h_in, w_in = points.canvas_size
    if not (x1 > x0 and y1 > y0):
        raise GeometryError("the preprocessing flips or collapses the image")
    frame = Frame(-x0 / (x1 - x0), -y0 / (y1 - y0), w_in / (x1 - x0), h_in / (y1 - y0))
    return frame, (h_in, w_in)


def _as_float_chw(tensor):
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 3:
        raise GeometryError("the preprocessing does not give a (C, H, W) tensor")
    return tensor.detach().to("cpu", torch.float64)


def probe_frame(transforms, image_size):
    """Find the frame of an arbitrary transform empirically (see the module
    docstring for the method).

    Parameters
    ----------
    transforms : callable
        PIL RGB image -> ``(C, h, w)`` tensor.
    image_size : tuple
        ``(W, H)`` in pixels.

    Returns
    -------
    tuple
        ``(Frame, (h_in, w_in))``.

    Raises
    ------
    GeometryError
        the transform is random, mixes the axes or the colour channels, or
        is not an axis-aligned scale + shift.
    """
    width, height = image_size
    # ramps through pixel centres, so pixel i encodes (i + 0.5) / W
    xs = (np.arange(width) + 0.5) / width
    ys = (np.arange(height) + 0.5) / height
    ramp = np.zeros((height, width, 3), dtype=np.uint8)
    ramp[..., 0] = np.round(xs * 255)[None, :]
    ramp[..., 1] = np.round(ys * 255)[:, None]
    ramp[..., 2] = 128
    images = {
        "black": Image.new("RGB", (width, height), (0, 0, 0)),
        "white": Image.new("RGB", (width, height), (255, 255, 255)),
        "ramp": Image.fromarray(ramp),
    }
    try:
        out = {k: _as_float_chw(transforms(v)) for k, v in images.items()}
        again = _as_float_chw(transforms(images["ramp"].copy()))
    except GeometryError:
        raise
    except Exception as e:
        raise GeometryError(f"the preprocessing fails on a probe image: {type(e).__name__}: {e}") from None
    if not torch.equal(again, out["ramp"]):
        raise GeometryError("the preprocessing is random (two calls on the same image differ)")
    if out["ramp"].shape[0] < 2:
        raise GeometryError("the preprocessing mixes colour channels; positions cannot be traced")
    _, h_in, w_in = out["ramp"].shape
    span = out["white"] - out["black"]
    seen = span.abs() > 1e-6
    relative = torch.where(seen, (out["ramp"] - out["black"]) / span.where(seen, torch.ones_like(span)), 0.0)
    u = (torch.arange(w_in, dtype=torch.float64) + 0.5) / w_in
    v = (torch.arange(h_in, dtype=torch.float64) + 0.5) / h_in
    # the outermost seen pixel on each side mixes in the image border (edge
    # clamping, antialiasing): out of the fit, still in the acceptance test
    inner_x = seen[0].clone()
    inner_x[:, 1:] &= seen[0][:, :-1]
    inner_x[:, :-1] &= seen[0][:, 1:]
    inner_y = seen[1].clone()
    inner_y[1:] &= seen[1][:-1]
    inner_y[:-1] &= seen[1][1:]
    fit_x = _robust_line(u[None, :].expand(h_in, w_in), relative[0], seen[0], inner_x, "horizontal")
    fit_y = _robust_line(v[:, None].expand(h_in, w_in), relative[1], seen[1], inner_y, "vertical")
    (sx, ox), (sy, oy) = fit_x, fit_y
    if not (sx > 0 and sy > 0):
        raise GeometryError("the preprocessing flips the image")
    return Frame(float(ox), float(oy), float(sx), float(sy)), (h_in, w_in)


def _robust_line(t, value, seen, inner, axis):
    """Least-squares ``value = a * t + b`` over the ``inner`` pixels,
    refitted on those near the line (ramps blur at the image's borders);
    accepted when it explains most ``seen`` pixels to within tolerance."""
    t_all, value_all = t[seen].numpy(), value[seen].numpy()
    t, value = t[inner].numpy(), value[inner].numpy()
    if t.size < 4 or np.ptp(t) <= 0:
        t, value = t_all, value_all
    if t.size < 4 or np.ptp(t) <= 0:
        raise GeometryError(f"too few probe pixels to trace the {axis} axis")
    keep = np.ones(t.size, dtype=bool)
    for _ in range(4):
        a, b = np.polyfit(t[keep], value[keep], 1)
        residual = np.abs(a * t + b - value)
        # 8-bit ramps: about 1/255 of quantisation per pixel
        limit = max(2.5 / 255, 4 * float(np.median(residual)))
        if (residual <= limit).sum() < 4:
            break
        keep = residual <= limit
    fits = np.abs(a * t_all + b - value_all) <= _PROBE_TOLERANCE
    if fits.mean() < _PROBE_MIN_INLIERS:
        raise GeometryError(
            f"the {axis} axis is not a scale + shift of the image "
            f"({fits.mean():.0%} of probe pixels fit; rotations, warps and colour mixing are not traced)"
        )
    return a, b


class Geometry:
    """The frame of a preprocessing for each image size (cached).

    Parameters
    ----------
    transforms : callable
        PIL RGB image -> ``(3, h, w)`` tensor.

    Attributes
    ----------
    method : str
        ``"torchvision"`` (keypoints through v2 kernels) or ``"probe"``.
    """

    def __init__(self, transforms):
        self.transforms = transforms
        self.steps = geometric_steps(transforms)
        self.method = "torchvision" if self.steps is not None else "probe"
        self._cache = {}

    def describe(self):
        """A short description for the run config."""
        if self.method == "torchvision":
            kinds = [type(s).__name__ for s in self.steps]
            return "torchvision keypoints through " + ("+".join(kinds) if kinds else "no geometric step")
        return "empirical probe of the preprocessing (ramp images, per image size)"

    def frame(self, image_size, input_shape=None):
        """The :class:`Frame` for an image of ``image_size = (W, H)``.

        ``input_shape`` ``(h_in, w_in)``, when given, is the size of the
        tensor the preprocessing actually produced for the image; an
        analysis that disagrees with it falls back to the probe.

        Raises
        ------
        GeometryError
            where it cannot be determined.
        """
        key = (tuple(image_size), tuple(input_shape) if input_shape else None)
        if key not in self._cache:
            try:
                self._cache[key] = (self._frame(image_size, input_shape), None)
            except GeometryError as e:
                self._cache[key] = (None, e)
        frame, error = self._cache[key]
        if error is not None:
            raise error
        return frame

    def _frame(self, image_size, input_shape):
        if self.steps is not None:
            frame, shape = frame_from_steps(self.steps, image_size)
            if input_shape is None or tuple(shape) == tuple(input_shape):
                return frame
        frame, shape = probe_frame(self.transforms, image_size)
        if input_shape is not None and tuple(shape) != tuple(input_shape):
            raise GeometryError(
                f"the preprocessing gives a {tuple(input_shape)} tensor for the image "
                f"but {tuple(shape)} for a probe of the same size"
            )
        return frame
