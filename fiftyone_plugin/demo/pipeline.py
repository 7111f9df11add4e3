"""The concept world end to end, measured against its ground truth: which
part each map points at, pointing accuracy, layout purity, and naming by
simulated annotators (SIMULATION: real naming is done by people in the App).
"""

import numpy as np
from PIL import Image

from ..concepts.store import assign_concept
from .annotators import default_annotators, part_under_point


def map_parts(samples, maps_field="actmaps", mask_field="part_mask", tolerance_px=2):
    """``{map_id: part id}``: the ground-truth part under each map's peak
    (0 background, 1 head, 2 body, 3 sun)."""
    ids, peaks, mask_paths = samples.values(
        [f"{maps_field}.detections.id", f"{maps_field}.detections.peak", f"{mask_field}.mask_path"]
    )
    parts = {}
    for map_ids, map_peaks, mask_path in zip(ids, peaks, mask_paths):
        if not map_ids or mask_path is None:
            continue
        mask = np.asarray(Image.open(mask_path))
        for map_id, (x, y) in zip(map_ids, map_peaks):
            parts[map_id] = part_under_point(mask, x, y, tolerance_px=tolerance_px)
    return parts


def pointing_accuracy(parts):
    """Fraction of maps whose peak lies on a part or the cue (not background)."""
    values = np.fromiter(parts.values(), dtype=int)
    if values.size == 0:
        raise ValueError("no maps to measure")
    return float((values > 0).mean())


def simulate_annotators(samples, annotators=None, maps_field="actmaps", parts=None):
    """Have simulated annotators name every map of ``samples`` by the part
    under its peak, in their own words; written through
    :func:`fiftyone_plugin.assign_concept`, one call per concept.

    Returns ``{annotator name: number of maps named}``.
    """
    annotators = annotators if annotators is not None else default_annotators()
    parts = parts if parts is not None else map_parts(samples, maps_field)
    ids, heads, bodies = samples.values(
        [f"{maps_field}.detections.id", "head_shape", "body_pattern"]
    )
    named = {}
    for annotator in annotators:
        groups = {}
        for map_ids, head, body in zip(ids, heads, bodies):
            for map_id in map_ids or []:
                concept = annotator.name_map(parts[map_id], head, body, key=map_id)
                if concept is not None:
                    groups.setdefault(concept, []).append(map_id)
        for concept, group in groups.items():
            assign_concept(samples, group, concept, annotator.name, maps_field=maps_field)
        named[annotator.name] = sum(len(g) for g in groups.values())
    return named
