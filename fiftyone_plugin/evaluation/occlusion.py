"""Image edits and model passes of the concept deletion check
(:mod:`.deletion`): a concept's region, its neutral fill, the same shape at
a random place off it (the control), the whole classifier on edited images,
and the concept-level deletion/insertion curves.

References
----------
.. [1] M. D. Zeiler and R. Fergus, "Visualizing and understanding
   convolutional networks", ECCV 2014 (occlusion).
.. [2] T. Fel et al., "A Holistic Approach to Unifying Automatic Concept
   Extraction and Concept Importance Estimation", NeurIPS 2023
   (deletion/insertion curves over concepts).
.. [3] C.-K. Yeh et al., "On Completeness-aware Concept-Based Explanations
   in Deep Neural Networks", NeurIPS 2020 (completeness).
"""

import math
import zlib

import numpy as np
import torch
from PIL import Image, ImageFilter

import fiftyone as fo

from ..maps.engine import _follow, _ModelState, read_logits

FILLS = ("mean", "blur")


def concept_region(boxes, masks, width, height):
    """The union of maps' regions as a boolean ``(height, width)`` mask.

    Each map is rendered with FiftyOne's own instance renderer
    (``fo.Detection.to_segmentation``): ``bounding_box`` ``[x, y, w, h]`` in
    relative coordinates, ``mask`` the region inside the box. A map without a
    mask counts with its whole box.
    """
    region = np.zeros((int(height), int(width)), dtype=np.uint8)
    for box, mask in zip(boxes, masks):
        if box is None:
            continue
        if mask is None:
            mask = np.ones((2, 2), dtype=bool)
        det = fo.Detection(bounding_box=list(box), mask=np.asarray(mask).astype(bool))
        det.to_segmentation(mask=region, target=1)
    return region.astype(bool)


def fill_region(image, region, *, fill="mean", blur_radius=None):
    """Occlude ``region`` of ``image`` with a neutral fill.

    Parameters
    ----------
    image : PIL.Image.Image
        RGB.
    region : ndarray of bool, shape ``(H, W)``
    fill : ``"mean"``, ``"blur"`` or an RGB triple
        ``"mean"``: the image's own mean colour (per channel, over the whole
        image), which removes shape, texture and local colour but adds no
        colour the image does not have; ``"blur"``: the image blurred with a
        Gaussian of ``blur_radius`` pixels (PIL's ``GaussianBlur``; default
        a tenth of the shorter side), which keeps the average colour of the
        neighbourhood; a triple: that colour.

    Returns
    -------
    PIL.Image.Image
    """
    array = np.asarray(image, dtype=np.uint8).copy()
    if region.shape != array.shape[:2]:
        raise ValueError(f"region {region.shape} does not match the image {array.shape[:2]}")
    if isinstance(fill, str) and fill == "mean":
        array[region] = np.rint(array.reshape(-1, 3).mean(axis=0)).astype(np.uint8)
    elif isinstance(fill, str) and fill == "blur":
        radius = blur_radius or max(1.0, min(array.shape[:2]) / 10)
        blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8)
        array[region] = blurred[region]
    else:
        array[region] = np.asarray(fill, dtype=np.uint8)
    return Image.fromarray(array)


def check_fill(fill):
    if isinstance(fill, str):
        if fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS} or an RGB triple; got {fill!r}")
        return fill
    try:
        triple = [int(v) for v in fill]
    except (TypeError, ValueError):
        triple = None
    if triple is None or len(triple) != 3 or not all(0 <= v <= 255 for v in triple):
        raise ValueError(f"fill must be one of {FILLS} or an RGB triple in 0..255; got {fill!r}")
    return triple


def control_region(region, rng, *, avoid=None, tries=200):
    """The same shape as ``region`` moved to a random place off it.

    The shape is translated by a uniformly drawn offset that keeps its
    bounding box inside the image; the first offset whose moved region does
    not touch ``avoid`` (default: ``region`` itself) is taken. If none of
    ``tries`` offsets is clear, the one with the least overlap is used.

    Returns
    -------
    moved : ndarray of bool ``(H, W)`` or None
        None when the region is empty.
    overlap : float
        share of the moved region's pixels lying on ``avoid`` (0 when clear).
    """
    avoid = region if avoid is None else avoid
    ys, xs = np.nonzero(region)
    if ys.size == 0:
        return None, math.nan
    height, width = region.shape
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    best, best_overlap = None, math.inf
    for _ in range(int(tries)):
        ny = rng.integers(0, height - (y1 - y0))
        nx = rng.integers(0, width - (x1 - x0))
        moved = np.zeros_like(region)
        moved[ys - y0 + ny, xs - x0 + nx] = True
        overlap = float((moved & avoid).sum() / ys.size)
        if overlap < best_overlap:
            best, best_overlap = moved, overlap
        if overlap == 0:
            break
    return best, best_overlap


def seeded_rng(seed, *keys):
    """A generator seeded by ``seed`` and ``keys`` (CRC32 of their text:
    stable across processes, unlike ``hash``)."""
    return np.random.default_rng([int(seed)] + [zlib.crc32(str(k).encode("utf-8")) for k in keys])




class Classifier:
    """Runs the whole model on PIL images and returns class probabilities,
    reading the model's output as :class:`~fiftyone_plugin.maps.engine.LayerGradientEngine`
    does (the output as wide as the classes; one logit is a sigmoid binary
    classifier). The model runs in eval mode; :meth:`restore` puts back its
    mode and device as given."""

    def __init__(self, spec, device=None, batch_size=32):
        self.spec = spec
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.state = _ModelState(spec.module)
        self.module = spec.module.to(self.device).eval()
        self.batch_size = int(batch_size)
        self.path = None

    def restore(self):
        self.state.restore(self.spec.module)

    @torch.no_grad()
    def probabilities(self, images):
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.stack([self.spec.transforms(im) for im in images[start : start + self.batch_size]])
            output = self.module(batch.to(self.device))
            if self.path is None:
                self.path, self.width = read_logits(output, batch.shape[0], self.spec.classes)
            logits = _follow(output, self.path).float()
            if self.width == 1:
                positive = torch.sigmoid(logits)
                probs = torch.cat([1 - positive, positive], dim=1)
            else:
                probs = torch.softmax(logits, dim=1)
            out.append(probs.cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0))




def _auc(values):
    """Area under a curve sampled at evenly spaced x in [0, 1] (trapezoid)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return math.nan
    return float(np.trapezoid(values, dx=1.0 / (values.size - 1)))


def curves_of(classifier, image, regions, drops, target, p_full, *, fill, blur_radius=None):
    """One sample's concept-level deletion and insertion curves [2]_ and
    the completeness of its named concepts [3]_, in image space.

    The concepts are ordered by their own deletion drop (``drops``, largest
    first); the deletion curve removes them cumulatively from the image
    (starting at ``p_full``), the insertion curve starts from the image all
    filled and puts the concepts' regions back one by one.

    Returns
    -------
    dict
        ``{"deletion": [k + 1 probabilities], "insertion": [k + 1
        probabilities], "completeness": float}`` (nan when the unedited and
        the blank image give the same probability).
    """
    order = sorted(regions, key=lambda c: -drops[c])
    width, height = image.size
    everything = np.ones((height, width), dtype=bool)
    removed = np.zeros((height, width), dtype=bool)
    kept = np.zeros((height, width), dtype=bool)
    deletion_images, insertion_images = [], [fill_region(image, everything, fill=fill, blur_radius=blur_radius)]
    for concept in order:
        removed |= regions[concept]
        kept |= regions[concept]
        deletion_images.append(fill_region(image, removed, fill=fill, blur_radius=blur_radius))
        insertion_images.append(fill_region(image, ~kept, fill=fill, blur_radius=blur_radius))
    probs = classifier.probabilities(deletion_images + insertion_images)[:, target]
    k = len(order)
    deletion = [float(p_full)] + [float(p) for p in probs[:k]]
    insertion = [float(p) for p in probs[k:]]
    blank, only = insertion[0], insertion[-1]
    completeness = (only - blank) / (p_full - blank) if abs(p_full - blank) > 1e-6 else math.nan
    return {"deletion": deletion, "insertion": insertion, "completeness": completeness}


def summarize_curves(curve_rows):
    """Mean deletion and insertion areas (trapezoid over x in [0, 1]) and
    the mean and median completeness of :func:`curves_of`'s rows (None
    where there is none)."""
    if not curve_rows:
        return {"num_samples": 0, "deletion_auc": None, "insertion_auc": None,
                "completeness_mean": None, "completeness_median": None}
    deletion = [_auc(r["deletion"]) for r in curve_rows]
    insertion = [_auc(r["insertion"]) for r in curve_rows]
    completeness = np.array([r["completeness"] for r in curve_rows], dtype=float)
    completeness = completeness[~np.isnan(completeness)]
    return {
        "num_samples": len(curve_rows),
        "deletion_auc": float(np.mean(deletion)),
        "insertion_auc": float(np.mean(insertion)),
        "completeness_mean": float(completeness.mean()) if completeness.size else None,
        "completeness_median": float(np.median(completeness)) if completeness.size else None,
    }


def concept_regions(image, groups, boxes, masks, sample_id, seed):
    """Per concept present: its region and its control ``(region,
    overlap)``; concepts whose region is empty are left out."""
    width, height = image.size
    regions, controls = {}, {}
    for concept, ks in sorted(groups.items()):
        region = concept_region([boxes[k] for k in ks], [masks[k] for k in ks], width, height)
        if not region.any():
            continue
        regions[concept] = region
        controls[concept] = control_region(region, seeded_rng(seed, sample_id, concept))
    return regions, controls


def measure(classifier, spec, image, regions, controls, targets, config):
    """Run the model on the image, each concept deleted and each control;
    returns the probabilities (rows: unedited, then deleted and control
    per concept), the prediction before and the followed target."""
    edited = [image]
    for concept, region in regions.items():
        edited.append(fill_region(image, region, fill=config.fill, blur_radius=config.blur_radius))
        edited.append(fill_region(image, controls[concept][0], fill=config.fill, blur_radius=config.blur_radius))
    probs = classifier.probabilities(edited)
    before = int(np.argmax(probs[0]))
    target_names = {t for t in (targets or []) if t is not None}
    target = spec.class_index(next(iter(target_names))) if len(target_names) == 1 else None
    target = before if target is None or target >= probs.shape[1] else target
    return probs, before, target


def deletion_rows(spec, sample_id, groups, regions, controls, probs, before, target, gt):
    """The per-sample rows of one image, and each concept's drop."""
    rows, drops = [], {}
    for j, (concept, region) in enumerate(regions.items()):
        p_del, p_ctl = probs[1 + 2 * j], probs[2 + 2 * j]
        after, ctl_after = int(np.argmax(p_del)), int(np.argmax(p_ctl))
        drops[concept] = float(probs[0, target] - p_del[target])
        rows.append({
            "sample_id": sample_id,
            "concept": concept,
            "num_maps": len(groups[concept]),
            "area": float(region.mean()),
            "target": spec.class_name(target),
            "label_before": spec.class_name(before),
            "p_before": float(probs[0, target]),
            "label_after": spec.class_name(after),
            "p_after": float(p_del[target]),
            "target_drop": drops[concept],
            "control_label_after": spec.class_name(ctl_after),
            "control_p_after": float(p_ctl[target]),
            "control_target_drop": float(probs[0, target] - p_ctl[target]),
            "control_overlap": controls[concept][1],
            "flipped": after != before,
            "control_flipped": ctl_after != before,
            "ground_truth": gt,
        })
    return rows, drops
