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
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

# Regions are located on a fixed grid in relative image coordinates, so their
# precision does not depend on the layer's (often coarse) resolution.
REGION_GRID = 64


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


def select_top_maps(contributions, top_k=5, cumulative_share=None):
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
        in ``(0, 1]``.

    Returns
    -------
    TopMaps
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


def upsample_maps(heatmaps, size=REGION_GRID):
    """Bilinearly upsample ``(..., h, w)`` maps to ``(..., size, size)`` on the
    relative image frame (cell ``i`` of ``h`` covers ``[i/h, (i+1)/h]``)."""
    shape = heatmaps.shape
    flat = heatmaps.reshape(-1, 1, shape[-2], shape[-1]).float()
    up = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
    return up.reshape(*shape[:-2], size, size)


def map_region(upsampled, threshold=0.5):
    """Region of one map: the connected component around its peak where the
    map is at least ``threshold`` times its peak.

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
    """
    upsampled = np.asarray(upsampled)
    peak_value = float(upsampled.max())
    if not peak_value > 0:
        return None

    size_y, size_x = upsampled.shape
    row, col = np.unravel_index(int(np.argmax(upsampled)), upsampled.shape)
    labels, _ = ndimage.label(upsampled >= threshold * peak_value)
    component = labels == labels[row, col]
    rows = np.flatnonzero(component.any(axis=1))
    cols = np.flatnonzero(component.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box = [c0 / size_x, r0 / size_y, (c1 - c0) / size_x, (r1 - r0) / size_y]
    peak = [(col + 0.5) / size_x, (row + 0.5) / size_y]
    return box, component[r0:r1, c0:c1], peak


def quantize(maps):
    """``[0, 1]`` float maps to uint8, the storage format of heatmaps."""
    return (maps.clamp(0, 1) * 255).round().to(torch.uint8)
