"""Does the model really use a concept? Delete it from the image and look.

``concept_deletion`` is a causal test of a named concept, where the
summaries can only measure correlation (concept present <-> errors): for
each sample and each of an annotator's concepts present on it, the regions
of the concept's maps are occluded **in the image** with a neutral fill, the
whole model is run again on the edited image, and the new prediction and the
drop of the target-class probability are recorded. As a control, a region of
exactly the same shape and area is occluded at a random place off the
concept (seeded per sample and concept, so reruns agree). This is the
occlusion test of Zeiler & Fergus (ECCV 2014) applied to concept regions,
with the random-place control of the "remove and compare" family of
attribution checks; the concept-level deletion/insertion curves follow Fel
et al. (NeurIPS 2023, "A Holistic Approach to Unifying Automatic Concept
Extraction and Concept Importance Estimation") and the completeness figure
follows Yeh et al. (NeurIPS 2020, "On Completeness-aware Concept-Based
Explanations in Deep Neural Networks"), both carried out in image space.

Everything is registered as a FiftyOne custom run whose results round-trip
through ``dataset.load_run_results`` (:func:`load_deletion_results` turns
them back into DataFrames).
"""

import logging
import math
import zlib

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageFilter
from scipy import stats

import fiftyone as fo

from ..concepts.store import NOT_NAMEABLE, concept_field, validate_annotator
from ..maps.engine import _follow, _ModelState, read_logits
from .explanations import check_annotator
from ..maps.images import ImageLoadError, load_rgb_image
from ..maps.models import resolve_model
from ..runs import register_run, save_run_results
from ..storage import check_field_name, check_image_collection, maps_field_of
from .summaries import to_records

logger = logging.getLogger(__name__)

DELETION_RUN_TYPE = "concept_deletion"
FILLS = ("mean", "blur")

PER_SAMPLE_COLUMNS = [
    "sample_id", "concept", "num_maps", "area", "target",
    "label_before", "p_before", "label_after", "p_after", "target_drop",
    "control_label_after", "control_p_after", "control_target_drop",
    "control_overlap", "flipped", "control_flipped", "ground_truth",
]


# --------------------------------------------------------------------------
# image edits


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


def fill_region(image, region, fill="mean", blur_radius=None):
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


def _check_fill(fill):
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


def control_region(region, rng, avoid=None, tries=200):
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


def _seed(seed, *keys):
    return np.random.default_rng([int(seed)] + [zlib.crc32(str(k).encode("utf-8")) for k in keys])


# --------------------------------------------------------------------------
# the model


class _Classifier:
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


# --------------------------------------------------------------------------
# the run


class DeletionResults:
    """What :func:`concept_deletion` found.

    Attributes
    ----------
    per_sample : pandas.DataFrame
        one row per (sample, concept present): :data:`PER_SAMPLE_COLUMNS`.
        ``area`` is the occluded share of the image, ``target`` the class
        whose probability is followed (the class the sample's maps explain),
        ``p_*`` probabilities of ``target``, ``target_drop = p_before -
        p_after`` (likewise ``control_target_drop``), ``control_overlap``
        the share of the control region that still touches the concept (0
        unless no clear place was found; then nan drops mean no control).
    by_concept_class : pandas.DataFrame
        per (concept, predicted class before): ``n``, ``mean_drop``,
        ``mean_control_drop``, ``wilcoxon_p`` (one-sided paired Wilcoxon
        signed-rank test, scipy, that the drop exceeds the control drop; nan
        below 2 pairs or when all differences are 0), ``flipped`` and
        ``control_flipped`` (share of predictions changed), and with ground
        truth ``errors`` (samples wrong before), ``fixed`` (of those, right
        after deleting the concept) and ``control_fixed``.
    fixes : pandas.DataFrame
        the same error counts per concept over all classes (empty without
        ground truth).
    curves : dict or None
        concept-level deletion/insertion curves and completeness (see
        :func:`concept_deletion`).
    run_key : str
    """

    def __init__(self, per_sample, by_concept_class, fixes, curves=None, run_key=None, config=None):
        self.per_sample = per_sample
        self.by_concept_class = by_concept_class
        self.fixes = fixes
        self.curves = curves
        self.run_key = run_key
        self.config = config or {}

    def sentence(self, concept, predicted_class=None):
        """``"deleting <concept> fixes N of M errors (control: K)"``."""
        if self.fixes.empty:
            raise ValueError("no ground truth was given, so errors cannot be counted")
        if predicted_class is None:
            rows = self.fixes[self.fixes["concept"] == concept]
        else:
            table = self.by_concept_class
            rows = table[(table["concept"] == concept) & (table["predicted_class"] == predicted_class)]
        if rows.empty:
            raise ValueError(f"no deletion of {concept!r} was measured")
        row = rows.iloc[0]
        return (
            f"deleting {concept} fixes {int(row['fixed'])} of {int(row['errors'])} errors "
            f"(control: {int(row['control_fixed'])})"
        )


def _one_sided_wilcoxon(drops, controls):
    pairs = [(a, b) for a, b in zip(drops, controls) if not (math.isnan(a) or math.isnan(b))]
    if len(pairs) < 2:
        return math.nan
    diff = np.array([a - b for a, b in pairs])
    if np.all(diff == 0):
        return math.nan
    try:
        return float(stats.wilcoxon(diff, alternative="greater").pvalue)
    except ValueError:
        return math.nan


def summarize_deletions(per_sample, with_ground_truth):
    """The per (concept, class) and per concept tables of
    :class:`DeletionResults` from a ``per_sample`` table."""
    rows, fixes = [], []
    df = per_sample.copy()
    if with_ground_truth and not df.empty:
        df["error"] = df["label_before"] != df["ground_truth"]
        df["fixed"] = df["error"] & (df["label_after"] == df["ground_truth"])
        df["control_fixed"] = df["error"] & (df["control_label_after"] == df["ground_truth"])
    for (concept, cls), group in df.groupby(["concept", "label_before"], sort=True):
        row = {
            "concept": concept,
            "predicted_class": cls,
            "n": len(group),
            "mean_drop": float(group["target_drop"].mean()),
            "mean_control_drop": float(group["control_target_drop"].mean()),
            "wilcoxon_p": _one_sided_wilcoxon(group["target_drop"], group["control_target_drop"]),
            "flipped": float(group["flipped"].mean()),
            "control_flipped": float(group["control_flipped"].mean()),
        }
        if with_ground_truth:
            row.update(errors=int(group["error"].sum()), fixed=int(group["fixed"].sum()),
                       control_fixed=int(group["control_fixed"].sum()))
        rows.append(row)
    if with_ground_truth:
        for concept, group in df.groupby("concept", sort=True):
            fixes.append({
                "concept": concept,
                "n": len(group),
                "errors": int(group["error"].sum()),
                "fixed": int(group["fixed"].sum()),
                "control_fixed": int(group["control_fixed"].sum()),
            })
    columns = ["concept", "predicted_class", "n", "mean_drop", "mean_control_drop", "wilcoxon_p",
               "flipped", "control_flipped"] + (["errors", "fixed", "control_fixed"] if with_ground_truth else [])
    return (
        pd.DataFrame(rows, columns=columns),
        pd.DataFrame(fixes, columns=["concept", "n", "errors", "fixed", "control_fixed"]),
    )


def _read(samples, annotator, maps_field, gt_field):
    det = f"{maps_field}.detections"
    paths = ["id", "filepath", f"{det}.id", concept_field(annotator, maps_field),
             f"{det}.bounding_box", f"{det}.mask", f"{det}.target", f"{det}.share"]
    if gt_field is not None:
        paths.append(f"{gt_field}.label")
    columns = list(samples.values(paths))
    if gt_field is None:
        columns.append([None] * len(columns[0]))
    return zip(*columns)


def _auc(values):
    """Area under a curve sampled at evenly spaced x in [0, 1] (trapezoid)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return math.nan
    return float(np.trapezoid(values, dx=1.0 / (values.size - 1)))


def concept_deletion(
    samples,
    annotator,
    model,
    concepts=None,
    maps_field="actmaps",
    gt_field=None,
    fill="mean",
    blur_radius=None,
    seed=0,
    curves=False,
    run_key=None,
    batch_size=32,
    device=None,
    weights=None,
    classes=None,
    transforms=None,
    image_size=None,
):
    """Delete each named concept from the images and measure what the model does.

    For every sample of ``samples`` and every concept of ``annotator``
    present on it (a concept is present when one of the sample's maps has
    that name; :data:`~fiftyone_plugin.NOT_NAMEABLE` is never deleted), the
    union of the regions (``bounding_box`` + ``mask``) of the concept's maps
    on that sample is filled (see :func:`fill_region`) and the whole model
    is run again. The control fills a region of the same shape and area at a
    random place that does not touch the concept (:func:`control_region`;
    the random generator is seeded by ``seed``, the sample id and the
    concept, so a rerun gives the same places).

    The probability followed is that of the class the sample's maps explain
    (their ``target``; the prediction on the unedited image when the maps
    name none); ``label_before`` is the model's prediction on the unedited
    image, computed afresh with ``model``.

    With ``curves=True``, concept-level deletion and insertion curves
    (Fel et al., NeurIPS 2023) are measured per sample with at least one
    concept: the concepts are ordered by their own deletion drop, largest
    first; the deletion curve removes them cumulatively (x = share of the
    sample's concepts removed, y = target probability), the insertion curve
    starts from the image with every named concept region filled *and*
    everything else filled too (the whole image in the fill), and puts back
    the concepts' regions (keeping only them) one by one. Their areas (mean
    over samples; lower deletion area and higher insertion area mean the
    ordering finds what the model uses) are reported, along with the
    completeness of the named concepts after Yeh et al. (NeurIPS 2020), here
    in image space: ``(p(keep only the named concepts) - p(all filled)) /
    (p(unedited) - p(all filled))``, the share of the model's confidence
    above the blank baseline that the named regions alone restore (mean and
    median over samples whose unedited and blank probabilities differ).

    Parameters
    ----------
    samples : SampleCollection
        images with maps in ``maps_field``.
    annotator : str
        whose concepts are deleted.
    model : torch.nn.Module, str or TorchImageModel
        the classifier (:func:`~fiftyone_plugin.maps.models.resolve_model`; with
        ``weights``, ``classes``, ``transforms``, ``image_size``). Map
        regions are in relative coordinates of the displayed image (EXIF
        orientation applied, placed through the preprocessing's geometry by
        :func:`~fiftyone_plugin.compute_activation_maps`), so regions are
        occluded in the image itself and any preprocessing (resize, crop,
        pad) then runs on the edited image as usual.
    concepts : str or list of str, optional
        only these concepts (default: all of the annotator's).
    maps_field : str
    gt_field : str, optional
        a ``fo.Classification`` field; with it, errors fixed by each deletion
        are counted ("deleting it fixes N of M errors (control: K)").
    fill : ``"mean"`` (default), ``"blur"`` or an RGB triple
    blur_radius : float, optional
        pixels, for ``fill="blur"``.
    seed : int
        seeds the control places.
    curves : bool
        also measure deletion/insertion curves and completeness (costs one
        model pass per concept and sample more).
    run_key : str, optional
        default ``concept_deletion_<annotator>``.
    batch_size : int
    device : str, optional

    Returns
    -------
    DeletionResults

    Raises
    ------
    ValueError
        bad annotator, concept, fill, field or model; raised before any
        run is registered.
    """
    check_image_collection(samples)
    maps_field_of(samples, maps_field)
    validate_annotator(annotator)
    check_annotator(samples, annotator, maps_field)
    run_key = check_field_name(run_key or f"concept_deletion_{annotator}", "run_key")
    fill = _check_fill(fill)
    if gt_field is not None:
        field = samples.get_field(check_field_name(gt_field, "gt_field"))
        if field is None or getattr(field, "document_type", None) is not fo.Classification:
            raise ValueError(f"gt_field {gt_field!r} is not a Classification field")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    from ..concepts.store import list_concepts

    known = set(list_concepts(samples, annotator, maps_field)) - {NOT_NAMEABLE}
    if concepts is not None:
        concepts = [concepts] if isinstance(concepts, str) else list(concepts)
        unknown = [c for c in concepts if c not in known]
        if unknown:
            raise ValueError(f"{annotator} has no concept(s) {unknown}; known: {sorted(known)}")
        if NOT_NAMEABLE in concepts:
            raise ValueError("NOT_NAMEABLE marks maps without a concept; it cannot be deleted")
        wanted = set(concepts)
    else:
        wanted = known
    spec = resolve_model(model, weights=weights, classes=classes, transforms=transforms, image_size=image_size)
    classifier = _Classifier(spec, device=device, batch_size=batch_size)

    try:
        rows, curve_rows, skipped = [], [], []
        for sample_id, path, _ids, names, boxes, masks, targets, shares, gt in _read(
            samples, annotator, maps_field, gt_field
        ):
            groups = {}
            for k, name in enumerate(names or []):
                if name in wanted:
                    groups.setdefault(name, []).append(k)
            if not groups:
                continue
            try:
                image = load_rgb_image(path)
            except ImageLoadError as e:
                skipped.append({"sample_id": sample_id, "error": str(e)})
                continue
            width, height = image.size
            regions, controls = {}, {}
            for concept, ks in sorted(groups.items()):
                region = concept_region([boxes[k] for k in ks], [masks[k] for k in ks], width, height)
                if not region.any():
                    continue
                moved, overlap = control_region(region, _seed(seed, sample_id, concept))
                regions[concept] = region
                controls[concept] = (moved, overlap)
            if not regions:
                continue
            edited = [image]
            for concept, region in regions.items():
                edited.append(fill_region(image, region, fill, blur_radius))
                edited.append(fill_region(image, controls[concept][0], fill, blur_radius))
            probs = classifier.probabilities(edited)
            before = int(np.argmax(probs[0]))
            target_names = {t for t in (targets or []) if t is not None}
            target = spec.class_index(next(iter(target_names))) if len(target_names) == 1 else None
            target = before if target is None or target >= probs.shape[1] else target
            drops = {}
            for j, (concept, region) in enumerate(regions.items()):
                p_del, p_ctl = probs[1 + 2 * j], probs[2 + 2 * j]
                overlap = controls[concept][1]
                after, ctl_after = int(np.argmax(p_del)), int(np.argmax(p_ctl))
                drop = float(probs[0, target] - p_del[target])
                ctl_drop = float(probs[0, target] - p_ctl[target])
                drops[concept] = drop
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
                    "target_drop": drop,
                    "control_label_after": spec.class_name(ctl_after),
                    "control_p_after": float(p_ctl[target]),
                    "control_target_drop": ctl_drop,
                    "control_overlap": overlap,
                    "flipped": after != before,
                    "control_flipped": ctl_after != before,
                    "ground_truth": gt,
                })
            if curves:
                curve_rows.append(_curves(classifier, image, regions, drops, target, probs[0, target], fill, blur_radius))
    finally:
        classifier.restore()

    per_sample = pd.DataFrame(rows, columns=PER_SAMPLE_COLUMNS)
    by_class, fixes = summarize_deletions(per_sample, gt_field is not None)
    curve_summary = _summarize_curves(curve_rows) if curves else None
    not_clear = int((per_sample["control_overlap"] > 0).sum()) if len(per_sample) else 0
    if not_clear:
        logger.warning("%d control region(s) could not be placed off their concept; see control_overlap", not_clear)
    if skipped:
        logger.warning("%d sample(s) could not be read and were skipped", len(skipped))

    config = {
        "annotator": annotator,
        "maps_field": maps_field,
        "model": spec.name,
        "model_fingerprint": spec.fingerprint,
        "concepts": sorted(wanted),
        "gt_field": gt_field,
        "fill": fill,
        "blur_radius": blur_radius,
        "seed": int(seed),
        "curves": bool(curves),
        "controls_not_clear": not_clear,
        "skipped_samples": len(skipped),
    }
    register_run(samples, run_key, DELETION_RUN_TYPE, config)
    save_run_results(samples, run_key, {
        "per_sample": to_records(per_sample),
        "by_concept_class": to_records(by_class),
        "fixes": to_records(fixes),
        "curves": curve_summary,
        "skipped": skipped,
    })
    return DeletionResults(per_sample, by_class, fixes, curve_summary, run_key, config)


def _curves(classifier, image, regions, drops, target, p_full, fill, blur_radius):
    order = sorted(regions, key=lambda c: -drops[c])
    width, height = image.size
    everything = np.ones((height, width), dtype=bool)
    removed = np.zeros((height, width), dtype=bool)
    kept = np.zeros((height, width), dtype=bool)
    deletion_images, insertion_images = [], [fill_region(image, everything, fill, blur_radius)]
    for concept in order:
        removed |= regions[concept]
        kept |= regions[concept]
        deletion_images.append(fill_region(image, removed, fill, blur_radius))
        insertion_images.append(fill_region(image, ~kept, fill, blur_radius))
    probs = classifier.probabilities(deletion_images + insertion_images)[:, target]
    k = len(order)
    deletion = [float(p_full)] + [float(p) for p in probs[:k]]
    insertion = [float(p) for p in probs[k:]]
    blank, only = insertion[0], insertion[-1]
    completeness = (only - blank) / (p_full - blank) if abs(p_full - blank) > 1e-6 else math.nan
    return {"deletion": deletion, "insertion": insertion, "completeness": completeness}


def _summarize_curves(curve_rows):
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


def load_deletion_results(samples, run_key):
    """Rebuild :class:`DeletionResults` from a stored ``concept_deletion`` run."""
    info = samples.get_run_info(run_key)
    if getattr(info.config, "run_type", None) != DELETION_RUN_TYPE:
        raise ValueError(f"run {run_key!r} is not a concept deletion")
    results = samples.load_run_results(run_key, cache=False)
    config = info.config.serialize()
    per_sample = pd.DataFrame(results.per_sample, columns=PER_SAMPLE_COLUMNS)
    by_class = pd.DataFrame(results.by_concept_class)
    fixes = pd.DataFrame(results.fixes, columns=["concept", "n", "errors", "fixed", "control_fixed"])
    return DeletionResults(per_sample, by_class, fixes, results.curves, run_key, config)
