"""Does the model really use a concept? Delete it from the image and look.

(Over 400 lines: a fifth is :func:`concept_deletion`'s docstring, which
documents the whole method.)

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

Everything is registered as a FiftyOne custom run: what
:func:`concept_deletion` returns is what ``dataset.load_run_results(key)``
returns (:class:`DeletionResults`). The image edits and model passes are in
:mod:`.occlusion`.

References
----------
.. [1] M. Hamidi-Haines, Z. Qi, A. Fern, F. Li and P. Tadepalli,
   "Interactive Naming for Explaining Deep Neural Networks: A Formative
   Study", arXiv:1812.07150, 2018.
.. [2] M. D. Zeiler and R. Fergus, "Visualizing and understanding
   convolutional networks", ECCV 2014.
.. [3] T. Fel et al., "A Holistic Approach to Unifying Automatic Concept
   Extraction and Concept Importance Estimation", NeurIPS 2023.
.. [4] C.-K. Yeh et al., "On Completeness-aware Concept-Based Explanations
   in Deep Neural Networks", NeurIPS 2020.
.. [5] F. Wilcoxon, "Individual comparisons by ranking methods",
   Biometrics Bulletin 1:80-83, 1945.
"""

import logging
import math

import numpy as np
import pandas as pd
from scipy import stats

from ..concepts.store import NOT_NAMEABLE, concept_field, list_concepts, validate_annotator
from ..maps.images import ImageLoadError, load_rgb_image
from ..maps.models import resolve_model
from ..runs import RunConfig, RunResults, jsonable, register_run, save_run_results
from ..storage import MAPS_FIELD, check_field_name, check_image_collection, maps_field_of
from .maptable import check_annotator, check_classification_field
from .occlusion import (
    Classifier,
    check_fill,
    concept_regions,
    curves_of,
    deletion_rows,
    measure,
    summarize_curves,
)

logger = logging.getLogger(__name__)

DELETION_RUN_TYPE = "concept_deletion"

PER_SAMPLE_COLUMNS = [
    "sample_id", "concept", "num_maps", "area", "target",
    "label_before", "p_before", "label_after", "p_after", "target_drop",
    "control_label_after", "control_p_after", "control_target_drop",
    "control_overlap", "flipped", "control_flipped", "ground_truth",
]
BY_CLASS_COLUMNS = ["concept", "predicted_class", "n", "mean_drop", "mean_control_drop", "wilcoxon_p",
                    "flipped", "control_flipped"]
FIX_COUNTS = ["errors", "fixed", "control_fixed"]
FIX_COLUMNS = ["concept", "n"] + FIX_COUNTS
_PER_SAMPLE_FLOATS = ["area", "p_before", "p_after", "target_drop", "control_p_after",
                      "control_target_drop", "control_overlap"]
_BY_CLASS_FLOATS = ["mean_drop", "mean_control_drop", "wilcoxon_p", "flipped", "control_flipped"]


class DeletionConfig(RunConfig):
    """Parameters of :func:`concept_deletion` (see there), with the model's
    name and fingerprint. The run writes no field."""

    run_type = DELETION_RUN_TYPE

    def __init__(self, annotator=None, maps_field=MAPS_FIELD, model=None, model_fingerprint=None,
                 concepts=None, gt_field=None, fill="mean", blur_radius=None, seed=0, curves=False,
                 batch_size=32, **kwargs):
        self.annotator = annotator
        self.maps_field = maps_field
        self.model = model
        self.model_fingerprint = model_fingerprint
        self.concepts = [concepts] if isinstance(concepts, str) else (None if concepts is None else list(concepts))
        self.gt_field = gt_field
        self.fill = fill
        self.blur_radius = blur_radius
        self.seed = int(seed)
        self.curves = bool(curves)
        self.batch_size = batch_size
        super().__init__(**kwargs)

    def validate(self, samples):
        check_image_collection(samples)
        maps_field_of(samples, self.maps_field)
        validate_annotator(self.annotator)
        check_annotator(samples, self.annotator, maps_field=self.maps_field)
        check_fill(self.fill)
        if self.gt_field is not None:
            try:
                check_classification_field(samples, check_field_name(self.gt_field, "gt_field"), "gt_field")
            except ValueError:
                raise ValueError(f"gt_field {self.gt_field!r} is not a Classification field") from None
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1; got {self.batch_size}")
        self.wanted(samples)

    def wanted(self, samples):
        """The concepts to delete (sorted): the requested ones, checked
        against the annotator's, or all of them."""
        known = set(list_concepts(samples, self.annotator, maps_field=self.maps_field)) - {NOT_NAMEABLE}
        if self.concepts is None:
            return sorted(known)
        unknown = [c for c in self.concepts if c not in known]
        if unknown:
            raise ValueError(f"{self.annotator} has no concept(s) {unknown}; known: {sorted(known)}")
        return sorted(set(self.concepts))


class DeletionResults(RunResults):
    """What :func:`concept_deletion` found.

    Attributes
    ----------
    per_sample_rows, by_concept_class_rows, fix_rows : list of dict
        the records of :attr:`per_sample`, :attr:`by_concept_class` and
        :attr:`fixes` (NaN stored as None).
    concepts : list of str
        the concepts deleted.
    curves : dict or None
        concept-level deletion/insertion areas and completeness (see
        :func:`concept_deletion`), None unless asked for.
    skipped : list of dict
        ``{"sample_id", "error"}`` of the images that could not be read.
    controls_not_clear : int
        control regions that could not be placed off their concept.
    """

    def __init__(self, samples, config, key, backend=None, per_sample_rows=None, by_concept_class_rows=None,
                 fix_rows=None, concepts=None, curves=None, skipped=None, controls_not_clear=0):
        super().__init__(samples, config, key, backend=backend)
        self.per_sample_rows = list(per_sample_rows or [])
        self.by_concept_class_rows = list(by_concept_class_rows or [])
        self.fix_rows = list(fix_rows or [])
        self.concepts = list(concepts or [])
        self.curves = curves
        self.skipped = list(skipped or [])
        self.controls_not_clear = int(controls_not_clear)

    @property
    def per_sample(self):
        """One row per (sample, concept present): :data:`PER_SAMPLE_COLUMNS`.
        ``area`` is the occluded share of the image, ``target`` the class
        whose probability is followed (the class the sample's maps explain),
        ``p_*`` probabilities of ``target``, ``target_drop = p_before -
        p_after`` (likewise ``control_target_drop``), ``control_overlap``
        the share of the control region that still touches the concept (0
        unless no clear place was found)."""
        df = pd.DataFrame(self.per_sample_rows, columns=PER_SAMPLE_COLUMNS)
        df[_PER_SAMPLE_FLOATS] = df[_PER_SAMPLE_FLOATS].astype(float)
        return df

    @property
    def by_concept_class(self):
        """Per (concept, predicted class before): ``n``, ``mean_drop``,
        ``mean_control_drop``, ``wilcoxon_p`` (one-sided paired Wilcoxon
        signed-rank test that the drop exceeds the control drop; nan below
        2 pairs or when all differences are 0), ``flipped`` and
        ``control_flipped`` (share of predictions changed), and with ground
        truth ``errors`` (samples wrong before), ``fixed`` (of those, right
        after deleting the concept) and ``control_fixed``."""
        rows = self.by_concept_class_rows
        with_gt = bool(rows) and "errors" in rows[0]
        df = pd.DataFrame(rows, columns=BY_CLASS_COLUMNS + (FIX_COUNTS if with_gt else []))
        df[_BY_CLASS_FLOATS] = df[_BY_CLASS_FLOATS].astype(float)
        return df

    @property
    def fixes(self):
        """The error counts per concept over all classes (empty without
        ground truth): ``concept, n, errors, fixed, control_fixed``."""
        return pd.DataFrame(self.fix_rows, columns=FIX_COLUMNS)

    def sentence(self, concept, predicted_class=None):
        """``"deleting <concept> fixes N of M errors (control: K)"``."""
        if not self.fix_rows:
            raise ValueError("no ground truth was given, so errors cannot be counted")
        if predicted_class is None:
            rows = [r for r in self.fix_rows if r["concept"] == concept]
        else:
            rows = [r for r in self.by_concept_class_rows
                    if r["concept"] == concept and r["predicted_class"] == predicted_class]
        if not rows:
            raise ValueError(f"no deletion of {concept!r} was measured")
        row = rows[0]
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


def summarize_deletions(per_sample, *, with_ground_truth):
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
    columns = BY_CLASS_COLUMNS + (FIX_COUNTS if with_ground_truth else [])
    return pd.DataFrame(rows, columns=columns), pd.DataFrame(fixes, columns=FIX_COLUMNS)


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


def _delete_concepts(samples, config, spec, classifier, wanted):
    """The deletion loop over the samples: per-sample rows, curve rows and
    the samples skipped because their image could not be read."""
    rows, curve_rows, skipped = [], [], []
    for sample_id, path, _ids, names, boxes, masks, targets, _shares, gt in _read(
        samples, config.annotator, config.maps_field, config.gt_field
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
        regions, controls = concept_regions(image, groups, boxes, masks, sample_id, config.seed)
        if not regions:
            continue
        probs, before, target = measure(classifier, spec, image, regions, controls, targets, config)
        sample_rows, drops = deletion_rows(spec, sample_id, groups, regions, controls, probs, before, target, gt)
        rows.extend(sample_rows)
        if config.curves:
            curve_rows.append(curves_of(classifier, image, regions, drops, target, probs[0, target],
                                        fill=config.fill, blur_radius=config.blur_radius))
    return rows, curve_rows, skipped


def concept_deletion(
    samples,
    annotator,
    model,
    *,
    concepts=None,
    maps_field=MAPS_FIELD,
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
    on that sample is filled (see :func:`~.occlusion.fill_region`) and the whole model
    is run again. The control fills a region of the same shape and area at a
    random place that does not touch the concept (:func:`~.occlusion.control_region`;
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
    maps_field : str, default ``"actmaps"``
    gt_field : str, optional
        a ``fo.Classification`` field; with it, errors fixed by each deletion
        are counted ("deleting it fixes N of M errors (control: K)").
    fill : ``"mean"`` (default), ``"blur"`` or an RGB triple
    blur_radius : float, optional
        pixels, for ``fill="blur"``.
    seed : int, default 0
        seeds the control places.
    curves : bool, default False
        also measure deletion/insertion curves and completeness (costs one
        model pass per concept and sample more).
    run_key : str, optional
        default ``concept_deletion_<annotator>``.
    batch_size : int, default 32
        images per model pass.
    device : str, optional
        default ``"cuda"`` when available, else ``"cpu"``.
    weights, classes, transforms, image_size : optional
        passed to :func:`~fiftyone_plugin.maps.models.resolve_model`.

    Returns
    -------
    DeletionResults
        the same as ``samples.load_run_results(run_key)``.

    Raises
    ------
    ValueError
        bad annotator, concept, fill, field or model; raised before any
        run is registered.
    """
    run_key = check_field_name(run_key or f"concept_deletion_{annotator}", "run_key")
    config = DeletionConfig(
        annotator=annotator, maps_field=maps_field, concepts=concepts, gt_field=gt_field,
        fill=check_fill(fill), blur_radius=blur_radius, seed=seed, curves=curves, batch_size=batch_size,
    )
    if config.concepts is not None and NOT_NAMEABLE in config.concepts:
        raise ValueError("NOT_NAMEABLE marks maps without a concept; it cannot be deleted")
    # the inputs are checked before a model is loaded (register_run checks them again)
    config.validate(samples)
    spec = resolve_model(model, weights=weights, classes=classes, transforms=transforms, image_size=image_size)
    config.model, config.model_fingerprint = spec.name, spec.fingerprint
    register_run(samples, run_key, config)
    wanted = config.wanted(samples)

    classifier = Classifier(spec, device=device, batch_size=batch_size)
    try:
        rows, curve_rows, skipped = _delete_concepts(samples, config, spec, classifier, set(wanted))
    finally:
        classifier.restore()

    per_sample = pd.DataFrame(rows, columns=PER_SAMPLE_COLUMNS)
    by_class, fixes = summarize_deletions(per_sample, with_ground_truth=gt_field is not None)
    not_clear = int((per_sample["control_overlap"] > 0).sum()) if len(per_sample) else 0
    if not_clear:
        logger.warning("%d control region(s) could not be placed off their concept; see control_overlap", not_clear)
    if skipped:
        logger.warning("%d sample(s) could not be read and were skipped", len(skipped))
    results = DeletionResults(
        samples, config, run_key,
        per_sample_rows=jsonable(per_sample), by_concept_class_rows=jsonable(by_class),
        fix_rows=jsonable(fixes), concepts=wanted,
        curves=jsonable(summarize_curves(curve_rows)) if curves else None,
        skipped=skipped, controls_not_clear=not_clear,
    )
    save_run_results(samples, run_key, results)
    return results
