"""The one bulk read of maps, concepts and predictions that every
evaluation builds on (:func:`read_maps` into a :class:`MapTable` of flat
arrays), and the input checks they share."""

from dataclasses import dataclass, field

import numpy as np

import fiftyone as fo

from ..concepts.store import NOT_NAMEABLE, concept_field, list_annotators, validate_annotator
from ..maps.compute import default_field_names
from ..storage import MAPS_FIELD, check_field_name, resolve_maps


def default_run_key(prefix, annotator, maps_field=MAPS_FIELD):
    """``<prefix>_<annotator>`` (``_<maps_field>`` appended for other maps
    fields than ``actmaps``), so each annotator's results are their own run.

    Examples
    --------
    >>> default_run_key("untrustworthy", "alice"), default_run_key("report", "bob", "maps2")
    ('untrustworthy_alice', 'report_bob_maps2')
    """
    key = f"{prefix}_{annotator}"
    return key if maps_field == MAPS_FIELD else f"{key}_{maps_field}"


@dataclass
class MapTable:
    """Maps, concepts and predictions of a collection, as flat arrays.

    Per sample (only samples whose maps field is set; ``S`` of them):
    ``sample_ids``, ``predicted`` (label or None), ``confidence`` (nan when
    missing), ``ground_truth`` (label or None; all None without a
    ``gt_field``), ``filepaths``.

    Per map (``M`` of them, in sample order): ``map_sample`` (index into the
    per-sample arrays), ``map_ids``, ``concepts`` (the annotator's name, None
    when not named, :data:`NOT_NAMEABLE` when judged not nameable),
    ``shares``, ``contributions``, ``channels``, ``layers``, ``ranks``,
    ``boxes`` (``[x, y, w, h]`` relative).
    """

    annotator: str
    maps_field: str
    prediction_field: str
    gt_field: object
    sample_ids: list
    filepaths: list
    predicted: np.ndarray
    confidence: np.ndarray
    ground_truth: np.ndarray
    map_sample: np.ndarray
    map_ids: list
    concepts: np.ndarray
    shares: np.ndarray
    contributions: np.ndarray
    channels: np.ndarray
    layers: np.ndarray
    ranks: np.ndarray
    boxes: list = field(repr=False)
    num_skipped: int = 0

    @property
    def num_samples(self):
        return len(self.sample_ids)

    @property
    def named(self):
        """Per map: has a real concept (not None, not NOT_NAMEABLE)."""
        return np.array(
            [c is not None and c != NOT_NAMEABLE for c in self.concepts], dtype=bool
        )

    @property
    def correct(self):
        """Per sample: True/False where the ground truth is known, else None."""
        return np.array(
            [None if g is None or p is None else bool(p == g)
             for p, g in zip(self.predicted, self.ground_truth)],
            dtype=object,
        )


def prediction_field_of(samples, maps_field=MAPS_FIELD, *, prediction_field=None):
    """The prediction field that goes with ``maps_field``: the one recorded
    in its activation-maps run, else the default name."""
    if prediction_field is not None:
        return check_field_name(prediction_field, "prediction_field")
    if maps_field in samples._dataset.list_runs():
        config = samples._dataset.get_run_info(maps_field).config
        name = getattr(config, "prediction_field", None)
        if name:
            return name
    return default_field_names(maps_field)["prediction_field"]


def check_classification_field(samples, name, what):
    field_ = samples.get_field(name)
    if field_ is None:
        raise ValueError(f"samples have no {what} {name!r}")
    if getattr(field_, "document_type", None) is not fo.Classification:
        raise ValueError(f"{what} {name!r} is not a Classification field")
    return name


def check_annotator(samples, annotator, *, maps_field=MAPS_FIELD):
    """``annotator`` must have named (or judged) maps in ``maps_field``."""
    validate_annotator(annotator)
    known = list_annotators(samples, maps_field=maps_field)
    if annotator not in known:
        raise ValueError(
            f"annotator {annotator!r} has named no maps in {maps_field!r}; "
            f"annotators there: {known}"
        )
    return annotator


def read_maps(samples, annotator, *, maps_field=MAPS_FIELD, prediction_field=None, gt_field=None):
    """Read every map of ``samples`` with ``annotator``'s concept, and every
    sample's prediction (and ground truth), in one ``values()`` call.

    Parameters
    ----------
    samples : SampleCollection
        whole images (not a patches view).
    annotator : str
        whose concepts are read.
    maps_field : str, default ``"actmaps"``
        a ``fo.Detections`` field of activation maps.
    prediction_field : str, optional
        a ``fo.Classification`` field; default: the one recorded by the
        maps run (:func:`prediction_field_of`).
    gt_field : str, optional
        a ``fo.Classification`` ground-truth field (default: none; then
        ``MapTable.ground_truth`` is all None).

    Returns
    -------
    MapTable

    Raises
    ------
    ValueError
        no maps field, unknown annotator, missing or non-Classification
        prediction / ground-truth field.
    """
    # whole images: a patches view is refused with the shared rule's message
    resolve_maps(samples, maps_field=maps_field, whole_images=True)
    check_annotator(samples, annotator, maps_field=maps_field)
    prediction_field = prediction_field_of(samples, maps_field, prediction_field=prediction_field)
    check_classification_field(samples, prediction_field, "prediction field")
    if gt_field is not None:
        check_classification_field(samples, check_field_name(gt_field, "gt_field"), "ground-truth field")

    columns = samples.values(_paths(annotator, maps_field, prediction_field, gt_field))
    ids, filepaths, labels, confidences, map_ids = columns[:5]
    gts = columns[12] if gt_field is not None else [None] * len(ids)
    keep = [i for i, m in enumerate(map_ids) if m is not None]
    per_map = _flatten(keep, map_ids, columns[5:12])
    return MapTable(
        annotator=annotator,
        maps_field=maps_field,
        prediction_field=prediction_field,
        gt_field=gt_field,
        sample_ids=[ids[i] for i in keep],
        filepaths=[filepaths[i] for i in keep],
        predicted=_objects([labels[i] for i in keep]),
        confidence=_floats([confidences[i] for i in keep]),
        ground_truth=_objects([gts[i] for i in keep]),
        map_sample=np.array(per_map["sample"], dtype=np.int64),
        map_ids=per_map["id"],
        concepts=_objects(per_map["concept"]),
        shares=np.nan_to_num(_floats(per_map["share"]), nan=0.0),
        contributions=_floats(per_map["contribution"]),
        channels=np.array([-1 if c is None else int(c) for c in per_map["channel"]], dtype=np.int64),
        layers=_objects(per_map["layer"]),
        ranks=np.array([0 if r is None else int(r) for r in per_map["rank"]], dtype=np.int64),
        boxes=per_map["box"],
        num_skipped=len(ids) - len(keep),
    )


_PER_MAP = ("concept", "share", "contribution", "channel", "layer", "rank", "box")


def _paths(annotator, maps_field, prediction_field, gt_field):
    """The ``values()`` paths of :func:`read_maps`: five per sample, then
    the per-map attributes in the order of ``_PER_MAP``, then the ground
    truth."""
    det = f"{maps_field}.detections"
    paths = [
        "id",
        "filepath",
        f"{prediction_field}.label",
        f"{prediction_field}.confidence",
        f"{det}.id",
        concept_field(annotator, maps_field),
        f"{det}.share",
        f"{det}.contribution",
        f"{det}.channel",
        f"{det}.layer",
        f"{det}.rank",
        f"{det}.bounding_box",
    ]
    if gt_field is not None:
        paths.append(f"{gt_field}.label")
    return paths


def _flatten(keep, map_ids, per_map_columns):
    """Per-sample lists of map attributes as flat per-map lists (an
    attribute missing on a sample's maps reads as None)."""
    per_map = {k: [] for k in ("sample", "id") + _PER_MAP}
    for s, i in enumerate(keep):
        n = len(map_ids[i])
        per_map["sample"].extend([s] * n)
        per_map["id"].extend(map_ids[i])
        for name, values in zip(_PER_MAP, per_map_columns):
            per_map[name].extend(list(values[i]) if values[i] is not None else [None] * n)
    return per_map


def _floats(values):
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _objects(values):
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def sample_concepts(table):
    """Per sample, ``{concept: (summed share, number of maps)}`` of its maps
    with a real concept."""
    out = [dict() for _ in range(table.num_samples)]
    for s, concept, share in zip(table.map_sample, table.concepts, table.shares):
        if concept is None or concept == NOT_NAMEABLE:
            continue
        total, n = out[s].get(concept, (0.0, 0))
        out[s][concept] = (total + float(share), n + 1)
    return out
