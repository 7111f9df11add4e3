"""Per-channel contributions of a convolutional layer to a class logit, and the
significant maps built from them.

Definition (documented in the README, "How a map is chosen"):

For an image, a layer output ``A`` of shape ``(C, h, w)`` and a target logit
``y``, the contribution of channel ``k`` is the gradient-weighted activation

    contribution[k] = sum_ij  A[k, i, j] * dy/dA[k, i, j]

and its per-position contribution is ``A[k, i, j] * dy/dA[k, i, j]``. When the
network after the layer is global-average-pooling followed by a linear layer,
``dy/dA[k, i, j] = W[y, k] / (h * w)``, so the contributions are *exact*: they
sum to the logit minus its bias. For other heads it is the first-order
(gradient x input) decomposition.

Everything here is a pure function on tensors (no FiftyOne, no I/O) so that it
can be tested against hand computations.

(Just over 400 lines: one definition, from contributions to regions, whose
kernels are read and tested together.)
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

# Regions are located on a fixed grid in relative image coordinates, so their
# precision does not depend on the layer's (often coarse) resolution.
REGION_GRID = 64

# Regions are 8-connected: a blob touching itself diagonally is one region.
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def channel_contributions(activations, gradients):
    """Gradient-weighted activation of every channel.

    Parameters
    ----------
    activations, gradients : torch.Tensor
        ``(B, C, h, w)`` layer outputs and the gradients of the target logit
        with respect to them.

    Returns
    -------
    torch.Tensor
        ``(B, C)`` signed contributions.

    Raises
    ------
    ValueError
        shapes that differ or are not ``(B, C, h, w)``.

    References
    ----------
    .. [1] Shrikumar, Greenside, Kundaje, "Learning Important Features
       Through Propagating Activation Differences", ICML 2017 (gradient x
       input).
    .. [2] Selvaraju et al., "Grad-CAM: Visual Explanations from Deep
       Networks via Gradient-based Localization", ICCV 2017.

    Examples
    --------
    A 1x1 layer of two channels whose logit is ``2 * a0 - a1``:

    >>> a = torch.tensor([[[[3.0]], [[1.0]]]])
    >>> g = torch.tensor([[[[2.0]], [[-1.0]]]])
    >>> channel_contributions(a, g).tolist()
    [[6.0, -1.0]]
    """
    if activations.shape != gradients.shape or activations.dim() != 4:
        raise ValueError(
            "activations and gradients must both have shape (B, C, h, w); got "
            f"{tuple(activations.shape)} and {tuple(gradients.shape)}"
        )
    return (activations * gradients).sum(dim=(2, 3))


@dataclass
class TopMaps:
    """The significant channels of a batch.

    ``channels``, ``contributions`` and ``shares`` are ``(B, k)``; ``keep`` is
    a boolean ``(B, k)`` mask of the maps that qualify (positive contribution
    and within the cumulative-share cut-off). Rank ``j`` is column ``j``.
    """

    channels: torch.Tensor
    contributions: torch.Tensor
    shares: torch.Tensor
    keep: torch.Tensor


def select_top_maps(contributions, *, top_k=5, cumulative_share=None):
    """Pick each image's significant channels.

    A channel qualifies when its contribution is positive. Channels are ranked
    by contribution; at most ``top_k`` are kept, and if ``cumulative_share`` is
    given, ranking stops at the first channel that brings the cumulative share
    of the positive contribution to at least ``cumulative_share``.

    Parameters
    ----------
    contributions : torch.Tensor
        ``(B, C)`` signed contributions.
    top_k : int
        maximum number of maps per image (>= 1).
    cumulative_share : float, optional
        in ``(0, 1]``. Default: no cut-off.

    Returns
    -------
    TopMaps

    Raises
    ------
    ValueError
        ``contributions`` not 2-D, ``top_k < 1``, or ``cumulative_share``
        outside ``(0, 1]``.

    Examples
    --------
    Positive contributions 6, 3 and 1 (total 10); the first two hold 90 %:

    >>> top = select_top_maps(torch.tensor([[1.0, 6.0, -2.0, 3.0]]), top_k=3, cumulative_share=0.8)
    >>> top.channels.tolist(), top.shares.tolist(), top.keep.tolist()
    ([[1, 3, 0]], [[0.6000000238418579, 0.30000001192092896, 0.10000000149011612]], [[True, True, False]])
    """
    if contributions.dim() != 2:
        raise ValueError("contributions must have shape (B, C)")
    if int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1; got {top_k}")
    if cumulative_share is not None and not 0 < cumulative_share <= 1:
        raise ValueError(
            f"cumulative_share must be in (0, 1]; got {cumulative_share}"
        )

    k = min(int(top_k), contributions.shape[1])
    values, channels = torch.topk(contributions, k, dim=1)
    positive_total = contributions.clamp(min=0).sum(dim=1, keepdim=True)
    shares = values.clamp(min=0) / positive_total.clamp(min=1e-30)
    keep = values > 0
    if cumulative_share is not None:
        before = shares.cumsum(dim=1) - shares
        # a small tolerance so that shares summing to exactly the cut-off
        # in real arithmetic are not split by rounding
        keep &= before < cumulative_share - 1e-9

    return TopMaps(channels, values, shares, keep)


def map_heatmaps(activations, gradients, channels):
    """Soft maps of the selected channels, each scaled to ``[0, 1]``.

    The map of channel ``k`` is its positive per-position contribution
    ``relu(A[k] * dy/dA[k])`` divided by its maximum (all-zero maps stay zero).

    Parameters
    ----------
    activations, gradients : torch.Tensor
        ``(B, C, h, w)``.
    channels : torch.Tensor
        ``(B, k)`` channel indices.

    Returns
    -------
    torch.Tensor
        ``(B, k, h, w)`` float maps.
    """
    b, _, h, w = activations.shape
    index = channels[:, :, None, None].expand(-1, -1, h, w)
    maps = (
        torch.gather(activations, 1, index) * torch.gather(gradients, 1, index)
    ).clamp(min=0)
    peak = maps.amax(dim=(2, 3), keepdim=True)
    return torch.where(peak > 0, maps / peak.clamp(min=1e-30), maps)


def sample_heatmap(activations, gradients):
    """Whole-image heatmap: positive summed per-position contributions
    (Grad-CAM-like), scaled to ``[0, 1]``. Returns ``(B, h, w)``."""
    summed = (activations * gradients).sum(dim=1).clamp(min=0)
    peak = summed.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, summed / peak.clamp(min=1e-30), summed)


def map_descriptors(activations, heatmaps):
    """Describe what each map highlights in the layer's feature space: the
    layer's activation vector averaged over positions with the map as weights.

    Two maps of the same visual part from different channels look at the same
    positions, so they get similar descriptors even though their channels
    differ; that is why the layout groups by content, not by channel.

    Parameters
    ----------
    activations : torch.Tensor
        ``(B, C, h, w)``.
    heatmaps : torch.Tensor
        ``(B, k, h, w)`` non-negative weights.

    Returns
    -------
    torch.Tensor
        ``(B, k, C)``.
    """
    weights = heatmaps / heatmaps.sum(dim=(2, 3), keepdim=True).clamp(min=1e-30)
    return torch.einsum("bchw,bkhw->bkc", activations, weights)


def upsample_maps(heatmaps, *, size=REGION_GRID):
    """Bilinearly upsample ``(..., h, w)`` maps to ``(..., size, size)`` on the
    relative image frame (cell ``i`` of ``h`` covers ``[i/h, (i+1)/h]``)."""
    shape = heatmaps.shape
    flat = heatmaps.reshape(-1, 1, shape[-2], shape[-1]).float()
    up = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
    return up.reshape(*shape[:-2], size, size)


def resample_to_image(maps, frames, size):
    """Resample maps from the model-input frame into the image's normalised
    frame, zero where the model never saw the image.

    Bilinear, with the input frame's edge values held up to its edge (as
    :func:`upsample_maps`, which is the whole-image case), via
    ``torch.nn.functional.affine_grid``/``grid_sample`` with one affine per
    image, so a batch of differently cropped images is one call.

    Parameters
    ----------
    maps : torch.Tensor
        ``(B, k, h, w)`` maps on the model-input frame (cell ``i`` of ``h``
        covers ``[i/h, (i+1)/h]`` of the input).
    frames : torch.Tensor
        ``(B, 4)`` ``(ox, oy, sx, sy)``: input-normalised ``(u, v)`` lies at
        image-normalised ``(ox + sx u, oy + sy v)`` (see
        :mod:`fiftyone_plugin.maps.geometry`).
    size : tuple
        ``(G_y, G_x)`` output cells covering the whole image.

    Returns
    -------
    torch.Tensor
        ``(B, k, G_y, G_x)`` float32; cells whose centre lies outside the
        input frame are 0.
    """
    b, k, h, w = maps.shape
    g_y, g_x = int(size[0]), int(size[1])
    frames = frames.to(device=maps.device, dtype=torch.float32)
    ox, oy, sx, sy = frames.unbind(1)
    # output X in [-1, 1] is image x = (X + 1) / 2; the input grid wants
    # 2u - 1 with u = (x - ox) / sx
    theta = torch.zeros(b, 2, 3, device=maps.device)
    theta[:, 0, 0] = 1 / sx
    theta[:, 0, 2] = (1 - 2 * ox) / sx - 1
    theta[:, 1, 1] = 1 / sy
    theta[:, 1, 2] = (1 - 2 * oy) / sy - 1
    grid = F.affine_grid(theta, (b, 1, g_y, g_x), align_corners=False)
    grid = grid.repeat_interleave(k, dim=0)
    out = F.grid_sample(
        maps.reshape(b * k, 1, h, w).float(), grid, mode="bilinear",
        padding_mode="border", align_corners=False,
    ).reshape(b, k, g_y, g_x)
    x = (torch.arange(g_x, device=maps.device) + 0.5) / g_x
    y = (torch.arange(g_y, device=maps.device) + 0.5) / g_y
    inside_x = (x[None] >= ox[:, None]) & (x[None] <= (ox + sx)[:, None])
    inside_y = (y[None] >= oy[:, None]) & (y[None] <= (oy + sy)[:, None])
    inside = inside_y[:, :, None] & inside_x[:, None, :]
    return out * inside[:, None].to(out.dtype)


def image_grid_size(h, w, frame, *, max_factor=4):
    """Cells for storing an ``h x w`` layer map over the whole image: the
    layer's cell size kept, so the window the model saw still spans ``h x w``
    cells (``ceil(h / sy) x ceil(w / sx)``, at least 1, at most
    ``max_factor`` times the layer's size). ``frame`` is ``(ox, oy, sx, sy)``.

    Examples
    --------
    A 7x7 layer whose input is the centre half of the image's width:

    >>> image_grid_size(7, 7, (0.25, 0.0, 0.5, 1.0))
    (7, 14)
    """
    _, _, sx, sy = (float(v) for v in frame)
    # a hair over an integer is that integer: frames travel as float32, and
    # probed frames are good to about 1/255 (8-bit ramps)
    g_y = min(max_factor * h, max(1, int(np.ceil(h / sy - 0.05))))
    g_x = min(max_factor * w, max(1, int(np.ceil(w / sx - 0.05))))
    return g_y, g_x


def map_region(upsampled, *, threshold=0.5):
    """Region of one map: the connected (8-neighbour) component around its
    peak where the map is at least ``threshold`` times its peak. The
    reference for :func:`map_regions`, which does the same for many maps at
    once.

    Parameters
    ----------
    upsampled : numpy.ndarray
        ``(G, G)`` map on the relative image frame.
    threshold : float
        fraction of the peak value, in ``(0, 1)``.

    Returns
    -------
    tuple
        ``(bounding_box, mask, peak)``: ``[x, y, w, h]`` in relative
        coordinates, the boolean mask of the component inside that box, and
        the peak ``[x, y]`` in relative coordinates. ``None`` for an all-zero
        map.

    Examples
    --------
    >>> grid = np.array([[0, 0, 0, 0], [0, 4, 3, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=float)
    >>> box, mask, peak = map_region(grid, threshold=0.5)
    >>> [float(v) for v in box], mask.tolist(), [float(v) for v in peak]
    ([0.25, 0.25, 0.5, 0.25], [[True, True]], [0.375, 0.375])
    """
    upsampled = np.asarray(upsampled)
    peak_value = float(upsampled.max())
    if not peak_value > 0:
        return None

    size_y, size_x = upsampled.shape
    row, col = np.unravel_index(int(np.argmax(upsampled)), upsampled.shape)
    labels, _ = ndimage.label(upsampled >= threshold * peak_value, structure=_EIGHT_CONNECTED)
    component = labels == labels[row, col]
    rows = np.flatnonzero(component.any(axis=1))
    cols = np.flatnonzero(component.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box = [c0 / size_x, r0 / size_y, (c1 - c0) / size_x, (r1 - r0) / size_y]
    peak = [(col + 0.5) / size_x, (row + 0.5) / size_y]
    return box, component[r0:r1, c0:c1], peak


def map_regions(upsampled, *, threshold=0.5):
    """:func:`map_region` for many maps at once, on the maps' device.

    The component around each peak is grown from the peak inside the
    thresholded area (8-connectivity, as in :func:`map_region`), all maps in
    parallel; on a GPU this keeps region finding off the CPU, where a loop
    over maps would cap throughput far below the model's.

    Parameters
    ----------
    upsampled : torch.Tensor
        ``(N, G, G)`` maps on the relative image frame.
    threshold : float

    On a CPU the same results come from :func:`map_region` per map, which is
    faster there.

    Returns
    -------
    tuple of torch.Tensor
        ``valid (N,)`` (False for all-zero maps), ``boxes (N, 4)`` as
        ``[x, y, w, h]``, ``peaks (N, 2)`` as ``[x, y]`` and ``components
        (N, G, G)`` boolean.
    """
    if upsampled.device.type == "cpu":
        return _map_regions_cpu(upsampled, threshold)
    return map_regions_dense(upsampled, threshold=threshold)


def map_regions_dense(upsampled, *, threshold=0.5):
    """The data-parallel implementation of :func:`map_regions` (any device)."""
    n, size_y, size_x = upsampled.shape
    flat = upsampled.reshape(n, -1)
    peak_value, peak_index = flat.max(dim=1)
    valid = peak_value > 0
    inside = upsampled >= (threshold * peak_value)[:, None, None]
    inside &= valid[:, None, None]

    seed = torch.zeros_like(flat)
    seed[torch.arange(n, device=flat.device), peak_index] = 1.0
    inside_f = inside.to(flat.dtype)[:, None]
    component = seed.reshape(n, 1, size_y, size_x) * inside_f
    # geodesic dilation: one 3x3 max-pool per step (two kernels), so a GPU
    # spends its time computing rather than launching; convergence checks
    # sync the device, so they come every 16 steps
    for step in range(size_y * size_x):
        grown = F.max_pool2d(component, 3, stride=1, padding=1) * inside_f
        if step % 16 == 15 and torch.equal(grown, component):
            break
        component = grown
    component = component[:, 0] > 0

    rows = component.any(dim=2)
    cols = component.any(dim=1)
    r0 = rows.float().argmax(dim=1)
    r1 = size_y - rows.flip(1).float().argmax(dim=1)
    c0 = cols.float().argmax(dim=1)
    c1 = size_x - cols.flip(1).float().argmax(dim=1)
    boxes = torch.stack(
        [c0 / size_x, r0 / size_y, (c1 - c0) / size_x, (r1 - r0) / size_y], dim=1
    )
    peak_row = torch.div(peak_index, size_x, rounding_mode="floor")
    peak_col = peak_index % size_x
    peaks = torch.stack([(peak_col + 0.5) / size_x, (peak_row + 0.5) / size_y], dim=1)
    return valid, boxes.double(), peaks.double(), component


def _map_regions_cpu(upsampled, threshold):
    # On a CPU, scipy's labelling per map is ~30x faster than the
    # data-parallel dilation (measured: 7 ms vs 245 ms for 80 maps).
    n, size_y, size_x = upsampled.shape
    valid = torch.zeros(n, dtype=torch.bool)
    boxes = torch.zeros(n, 4, dtype=torch.float64)
    peaks = torch.zeros(n, 2, dtype=torch.float64)
    components = torch.zeros(n, size_y, size_x, dtype=torch.bool)
    for i, grid in enumerate(upsampled.numpy()):
        region = map_region(grid, threshold=threshold)
        if region is None:
            continue
        box, mask, peak = region
        valid[i] = True
        boxes[i] = torch.tensor(box, dtype=torch.float64)
        peaks[i] = torch.tensor(peak, dtype=torch.float64)
        x0, y0 = round(box[0] * size_x), round(box[1] * size_y)
        components[i, y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] = torch.from_numpy(mask)
    return valid, boxes, peaks, components


def quantize(maps):
    """``[0, 1]`` float maps to uint8, the storage format of heatmaps.

    >>> quantize(torch.tensor([0.0, 0.5, 1.0, 2.0])).tolist()
    [0, 128, 255, 255]
    """
    return (maps.clamp(0, 1) * 255).round().to(torch.uint8)
