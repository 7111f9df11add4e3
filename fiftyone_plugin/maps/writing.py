"""Engine results into the dataset: maps placed on the image frame, turned
into ``fo.Detections`` with their prediction and heatmap, and written as
MongoDB updates; names people gave the replaced maps carried over (or the
run refused before it starts when they cannot be)."""

from datetime import datetime, timezone
from typing import NamedTuple, Optional

import numpy as np
import torch
from bson import ObjectId
from pymongo import UpdateOne

import fiftyone as fo

from ..concepts.store import CONCEPT_PREFIX, annotator_of
from . import contributions as C
from .display import HEATMAP_FLOOR, channel_label


def place_maps(heatmaps, sample_heatmaps, frames, *, grid=C.REGION_GRID):
    """Maps from the model-input frame to the image frame (see
    :mod:`fiftyone_plugin.maps.geometry`): zero where the model never saw the
    image.

    Parameters
    ----------
    heatmaps : torch.Tensor
        ``(B, k, h, w)`` per-map soft maps on the layer grid.
    sample_heatmaps : torch.Tensor
        ``(B, h, w)`` whole-image heatmaps on the layer grid.
    frames : torch.Tensor
        ``(B, 4)`` input frames ``(ox, oy, sx, sy)``.
    grid : int
        cells per side of the region grid.

    Returns
    -------
    tuple
        ``(regions_grid (B, k, grid, grid) float tensor, per-map uint8
        heatmaps (list of B arrays (k, g_y, g_x)), sample uint8 heatmaps
        (list of B arrays (g_y, g_x)))``; the stored heatmaps cover the whole
        image with the layer's cell size (:func:`contributions.image_grid_size`).
    """
    b_size, k, h, w = heatmaps.shape
    up = C.resample_to_image(heatmaps, frames, (grid, grid))
    both = torch.cat([heatmaps, sample_heatmaps[:, None].to(heatmaps.dtype)], dim=1)
    frames_cpu = frames.cpu()
    by_size = {}
    for b in range(b_size):
        by_size.setdefault(C.image_grid_size(h, w, frames_cpu[b].tolist()), []).append(b)
    maps_q, whole_q = [None] * b_size, [None] * b_size
    # one resampling per stored size: images of one size share a call
    for size, members in by_size.items():
        index = torch.tensor(members, device=heatmaps.device)
        placed = C.quantize(C.resample_to_image(both[index], frames[index], size)).cpu().numpy()
        for row, b in enumerate(members):
            maps_q[b], whole_q[b] = placed[row, :k], placed[row, k]
    return up, maps_q, whole_q


def _named_maps_pipeline(maps_field, sample_ids):
    """Per sample: the maps' identity and, for each map with names, its
    (channel, target) and its ``concept_*`` attributes."""
    names_of = {
        "$arrayToObject": {
            "$filter": {
                "input": {"$objectToArray": "$$d"},
                "cond": {"$eq": [{"$substrCP": ["$$this.k", 0, len(CONCEPT_PREFIX)]}, CONCEPT_PREFIX]},
            }
        }
    }
    return [
        {"$match": {"_id": {"$in": [ObjectId(i) for i in sample_ids]}, f"{maps_field}.detections.0": {"$exists": True}}},
        {
            "$project": {
                "identity": f"${maps_field}.map_identity",
                "maps": {
                    "$map": {
                        "input": f"${maps_field}.detections",
                        "as": "d",
                        "in": {"channel": "$$d.channel", "target": "$$d.target", "names": names_of},
                    }
                },
            }
        },
    ]


def _names_by_map(collection, maps_field, sample_ids):
    """``{sample_id: (identity, {(channel, target): {concept_<a>: name}})}``
    for the samples whose maps carry names."""
    found = {}
    for row in collection.aggregate(_named_maps_pipeline(maps_field, sample_ids)):
        named = {(m.get("channel"), m.get("target")): m["names"] for m in row["maps"] if m.get("names")}
        if named:
            found[str(row["_id"])] = (row.get("identity"), named)
    return found


def refuse_to_lose_names(collection, maps_field, sample_ids, map_identity, *, chunk=10_000):
    """Raise before computing if recomputing would replace named maps by maps
    of another model, layer, preprocessing or explained class."""
    lost, annotators = 0, set()
    for start in range(0, len(sample_ids), chunk):
        found = _names_by_map(collection, maps_field, sample_ids[start : start + chunk])
        for identity, named in found.values():
            if identity != map_identity:
                lost += len(named)
                for names in named.values():
                    annotators.update(annotator_of(k) for k in names)
    if lost:
        raise ValueError(
            f"recomputing would replace {lost} named map(s) (named by {', '.join(sorted(annotators))}) "
            f"with maps of a different model, layer, preprocessing or explained class, whose names "
            f"cannot carry over; export the names first (fpl.export_concepts) and pass "
            f"discard_names=True, or compute into another maps_field"
        )


class BatchMaps(NamedTuple):
    """One batch's maps as numpy arrays (``B`` images, ``k`` candidate maps
    each, ``g`` the region grid's cells per side); map ``j`` of image ``b``
    is kept where ``keep[b, j]``."""

    channels: np.ndarray  # (B, k) int, channel of each map
    contributions: np.ndarray  # (B, k) float, contribution to the target logit
    shares: np.ndarray  # (B, k) float, fraction of the positive contribution
    keep: np.ndarray  # (B, k) bool, selected and with a region
    boxes: np.ndarray  # (B, k, 4) float, [x, y, w, h] relative to the image
    peaks: np.ndarray  # (B, k, 2) float, [x, y] relative to the image
    components: np.ndarray  # (B, k, g, g) bool, the region around the peak
    heatmaps: list  # B uint8 arrays (k, g_y, g_x), per-map soft maps
    whole: list  # B uint8 arrays (g_y, g_x), the whole-image heatmap
    descriptors: Optional[np.ndarray]  # (B, k, C) float16, or None
    targets: np.ndarray  # (B,) int, the class explained
    predicted: np.ndarray  # (B,) int, the predicted class
    confidence: np.ndarray  # (B,) float, its softmax (or sigmoid) probability


def batch_maps(result, frames, *, top_k, cumulative_share=None, region_threshold=0.5,
               store_descriptors=True):
    """The per-batch kernel: an engine result into the batch's maps.

    Parameters
    ----------
    result : fiftyone_plugin.maps.engine.LayerPass
        activations and gradients ``(B, C, h, w)``, targets ``(B,)`` and
        probabilities ``(B, classes)`` of one batch.
    frames : torch.Tensor
        ``(B, 4)`` input frames ``(ox, oy, sx, sy)`` on the image.
    top_k : int
        at most this many maps per image.
    cumulative_share : float, optional
        stop once the kept maps reach this share of the positive contribution.
    region_threshold : float, default 0.5
        a map's region is where it is at least this fraction of its peak.
    store_descriptors : bool, default True
        compute each map's descriptor.

    Returns
    -------
    BatchMaps

    References
    ----------
    Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization", ICCV 2017; Shrikumar et al., "Learning
    Important Features Through Propagating Activation Differences" (gradient
    x input), ICML 2017 (see :mod:`fiftyone_plugin.maps.contributions`).
    """
    acts, grads = result.activations, result.gradients
    top = C.select_top_maps(C.channel_contributions(acts, grads), top_k=top_k, cumulative_share=cumulative_share)
    heat = C.map_heatmaps(acts, grads, top.channels)
    b_size, k = heat.shape[:2]
    up, heat_q, whole = place_maps(heat, C.sample_heatmap(acts, grads), frames)
    grid = up.shape[-1]
    valid, boxes, peaks, components = (
        t.cpu().numpy() for t in C.map_regions(up.reshape(-1, grid, grid), threshold=region_threshold)
    )
    descriptors = C.map_descriptors(acts, heat).half().cpu().numpy() if store_descriptors else None
    # softmax, or the sigmoid of a single-logit binary model (engine)
    confidence, predicted = result.probabilities.max(dim=1)
    return BatchMaps(
        channels=top.channels.cpu().numpy(),
        contributions=top.contributions.cpu().numpy(),
        shares=top.shares.cpu().numpy(),
        keep=top.keep.cpu().numpy() & valid.reshape(b_size, k),
        boxes=boxes.reshape(b_size, k, 4),
        peaks=peaks.reshape(b_size, k, 2),
        components=components.reshape(b_size, k, grid, grid),
        heatmaps=heat_q,
        whole=whole,
        descriptors=descriptors,
        targets=result.targets.cpu().numpy(),
        predicted=predicted.cpu().numpy(),
        confidence=confidence.cpu().numpy(),
    )


class MapWriter:
    """Turns a batch's maps into MongoDB update operations, and counts what
    it wrote (``processed``, ``failed``, ``num_maps``, ``names_kept``,
    ``geometry_unknown``)."""

    def __init__(self, dataset, maps_field, fields, config_hash, layer_name, spec, map_identity):
        self.collection = dataset._sample_collection
        self.maps_field = maps_field
        self.fields = fields
        self.config_hash = config_hash
        self.layer_name = layer_name
        self.spec = spec
        self.map_identity = map_identity
        self.processed = self.failed = self.num_maps = self.names_kept = 0
        self.geometry_unknown = 0

    def error_ops(self, failures):
        """``[(sample_id, message)]`` into updates of the error field."""
        now = datetime.now(timezone.utc)
        self.failed += len(failures)
        # existing maps stay: a file that went missing must not erase names
        return [
            UpdateOne(
                {"_id": ObjectId(sample_id)},
                {"$set": {self.fields["error_field"]: message, "last_modified_at": now}},
            )
            for sample_id, message in failures
        ]

    def map_ops(self, ids, maps, frame_known):
        """One update per sample of ``ids`` from ``maps`` (:class:`BatchMaps`),
        carrying over the names of the maps they replace where the maps are
        the same (same identity, channel and target)."""
        now = datetime.now(timezone.utc)
        old_names = _names_by_map(self.collection, self.maps_field, ids)
        ops = []
        for b, sample_id in enumerate(ids):
            identity, named = old_names.get(sample_id, (None, {}))
            detections = self._detections(maps, b, named if identity == self.map_identity else {})
            extra = {}
            if not frame_known[b]:
                extra["geometry_unknown"] = True
                self.geometry_unknown += 1
            doc = fo.Detections(
                detections=detections, config_hash=self.config_hash, map_identity=self.map_identity,
                **extra,
            )
            prediction = fo.Classification(
                label=self.spec.class_name(int(maps.predicted[b])),
                confidence=float(maps.confidence[b]),
            )
            # below the floor the App shows the image, not the scale's low end
            heatmap = fo.Heatmap(map=maps.whole[b], range=[HEATMAP_FLOOR, 255])
            ops.append(
                UpdateOne(
                    {"_id": ObjectId(sample_id)},
                    {
                        "$set": {
                            self.maps_field: doc.to_dict(),
                            self.fields["prediction_field"]: prediction.to_dict(),
                            self.fields["heatmap_field"]: heatmap.to_dict(),
                            self.fields["error_field"]: None,
                            "last_modified_at": now,
                        }
                    },
                )
            )
            self.num_maps += len(detections)
        self.processed += len(ids)
        return ops

    def _detections(self, maps, b, keep_names):
        grid = maps.components.shape[-1]
        target_name = self.spec.class_name(int(maps.targets[b]))
        detections = []
        for j in np.flatnonzero(maps.keep[b]):
            channel = int(maps.channels[b, j])
            x0, y0, w, h = np.rint(maps.boxes[b, j] * grid).astype(int)
            attrs = dict(
                label=channel_label(channel),
                bounding_box=maps.boxes[b, j].tolist(),
                mask=maps.components[b, j, y0 : y0 + h, x0 : x0 + w],
                layer=self.layer_name,
                channel=channel,
                rank=len(detections) + 1,
                contribution=float(maps.contributions[b, j]),
                share=float(maps.shares[b, j]),
                target=target_name,
                peak=maps.peaks[b, j].tolist(),
                heatmap=maps.heatmaps[b][j],
            )
            if maps.descriptors is not None:
                attrs["descriptor"] = maps.descriptors[b, j]
            names = keep_names.get((channel, target_name))
            if names:
                attrs.update(names)
                self.names_kept += 1
            detections.append(fo.Detection(**attrs))
        return detections
