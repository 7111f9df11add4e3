"""Explanations: each classification explained by the concepts an annotator
gave to its significant maps.

A sample's explanation is the list of its maps' concepts, each with the
summed ``share`` of its maps. A map's ``share`` is its fraction of the
sample's *whole* positive contribution to the explained logit (all channels,
not only the top-k kept as maps), so the shares of a sample's maps add up to
less than 1 (about 0.3 for the top 5 of ConceptNet's 64 channels). Coverage
is therefore reported in one of two documented ways:

``coverage="positive"`` (default)
    the sum of the shares of the maps with a real concept: the fraction of
    the *whole* positive contribution that named maps explain;
``coverage="maps"``
    that sum divided by the sum of the shares of all significant maps: the
    fraction of what the significant maps explain that is named (1.0 when
    every map has a concept).

Maps marked :data:`~fiftyone_plugin.concepts.store.NOT_NAMEABLE` and maps the
annotator did not name count as unexplained. This module also holds
:func:`read_maps`, the one bulk read of maps, concepts and predictions that
the other evaluation modules (summaries, neurons, report) build on.
"""

from dataclasses import dataclass, field

import numpy as np

import fiftyone as fo

from ..concepts.store import NOT_NAMEABLE, concept_field, list_annotators, validate_annotator
from ..runs import register_run, save_run_results
from ..storage import check_field_name, declare_field as _declare, resolve_maps

RUN_TYPE = "explanations"
COVERAGE_MODES = ("positive", "maps")


# --------------------------------------------------------------------------
# reading


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


def prediction_field_of(samples, maps_field, prediction_field=None):
    """The prediction field that goes with ``maps_field``: the one recorded
    in its activation-maps run, else the default name."""
    if prediction_field is not None:
        return check_field_name(prediction_field, "prediction_field")
    if maps_field in samples._dataset.list_runs():
        config = samples._dataset.get_run_info(maps_field).config
        name = getattr(config, "prediction_field", None)
        if name:
            return name
    from ..maps.compute import default_field_names

    return default_field_names(maps_field)["prediction_field"]


def _check_classification_field(samples, name, what):
    field_ = samples.get_field(name)
    if field_ is None:
        raise ValueError(f"samples have no {what} {name!r}")
    if getattr(field_, "document_type", None) is not fo.Classification:
        raise ValueError(f"{what} {name!r} is not a Classification field")
    return name


def check_annotator(samples, annotator, maps_field):
    """``annotator`` must have named (or judged) maps in ``maps_field``."""
    validate_annotator(annotator)
    known = list_annotators(samples, maps_field)
    if annotator not in known:
        raise ValueError(
            f"annotator {annotator!r} has named no maps in {maps_field!r}; "
            f"annotators there: {known}"
        )
    return annotator


def read_maps(samples, annotator, maps_field="actmaps", prediction_field=None, gt_field=None):
    """Read every map of ``samples`` with ``annotator``'s concept, and every
    sample's prediction (and ground truth), in one ``values()`` call.

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
    resolve_maps(samples, maps_field, whole_images=True)
    check_annotator(samples, annotator, maps_field)
    prediction_field = prediction_field_of(samples, maps_field, prediction_field)
    _check_classification_field(samples, prediction_field, "prediction field")
    if gt_field is not None:
        _check_classification_field(samples, check_field_name(gt_field, "gt_field"), "ground-truth field")

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
    columns = samples.values(paths)
    ids, filepaths, labels, confidences, map_ids = columns[:5]
    concepts, shares, contributions, channels, layers, ranks, boxes = columns[5:12]
    gts = columns[12] if gt_field is not None else [None] * len(ids)

    keep = [i for i, m in enumerate(map_ids) if m is not None]
    per_map = {k: [] for k in ("sample", "id", "concept", "share", "contribution", "channel", "layer", "rank", "box")}

    def _column(values, n, default=None):
        return list(values) if values is not None else [default] * n

    for s, i in enumerate(keep):
        n = len(map_ids[i])
        per_map["sample"].extend([s] * n)
        per_map["id"].extend(map_ids[i])
        per_map["concept"].extend(_column(concepts[i], n))
        per_map["share"].extend(_column(shares[i], n))
        per_map["contribution"].extend(_column(contributions[i], n))
        per_map["channel"].extend(_column(channels[i], n))
        per_map["layer"].extend(_column(layers[i], n))
        per_map["rank"].extend(_column(ranks[i], n))
        per_map["box"].extend(_column(boxes[i], n))

    def _floats(values):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=float)

    def _objects(values):
        out = np.empty(len(values), dtype=object)
        out[:] = list(values)
        return out

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


# --------------------------------------------------------------------------
# explanations


@dataclass
class Explanations:
    """Per sample (in ``table`` order): ``concepts`` (``[(concept, share,
    num_maps)]``, largest share first), ``coverage``, ``named_share`` (sum of
    named shares), ``maps_share`` (sum of all maps' shares), ``fully_named``
    and ``num_maps``."""

    coverage_mode: str
    min_share: float
    concepts: list
    coverage: np.ndarray
    named_share: np.ndarray
    maps_share: np.ndarray
    fully_named: np.ndarray
    num_maps: np.ndarray


def explain(table, coverage="positive", min_share=0.0):
    """Explanations of the samples of a :class:`MapTable` (no I/O).

    Parameters
    ----------
    table : MapTable
    coverage : {"positive", "maps"}
        see the module docstring.
    min_share : float
        maps whose share is below this are not required to be named for
        ``fully_named`` (they still count towards coverage when named).

    Returns
    -------
    Explanations
    """
    if coverage not in COVERAGE_MODES:
        raise ValueError(f"coverage must be one of {COVERAGE_MODES}; got {coverage!r}")
    if not 0.0 <= float(min_share) <= 1.0:
        raise ValueError(f"min_share must be in [0, 1]; got {min_share!r}")
    n = table.num_samples
    named = table.named
    s = table.map_sample
    named_share = np.bincount(s, weights=table.shares * named, minlength=n)
    maps_share = np.bincount(s, weights=table.shares, minlength=n)
    num_maps = np.bincount(s, minlength=n)
    required = table.shares >= float(min_share)
    unexplained_required = np.bincount(s, weights=(required & ~named).astype(float), minlength=n)
    required_count = np.bincount(s, weights=required.astype(float), minlength=n)
    # a sample without (required) maps has nothing explained: not "fully named"
    fully_named = (unexplained_required == 0) & (required_count > 0)
    if coverage == "positive":
        cov = named_share
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = np.where(maps_share > 0, named_share / np.where(maps_share > 0, maps_share, 1), 0.0)
    concepts = [
        sorted(((c, v[0], v[1]) for c, v in per.items()), key=lambda t: (-t[1], t[0]))
        for per in sample_concepts(table)
    ]
    return Explanations(
        coverage_mode=coverage,
        min_share=float(min_share),
        concepts=concepts,
        coverage=cov,
        named_share=named_share,
        maps_share=maps_share,
        fully_named=fully_named,
        num_maps=num_maps,
    )


def default_run_key(prefix, annotator, maps_field):
    """``<prefix>_<annotator>`` (``_<maps_field>`` appended for other maps
    fields than ``actmaps``), so each annotator's results are their own run."""
    key = f"{prefix}_{annotator}"
    return key if maps_field == "actmaps" else f"{key}_{maps_field}"


def compute_explanations(
    samples,
    annotator,
    maps_field="actmaps",
    explanation_field=None,
    coverage_field=None,
    fully_named_field=None,
    coverage="positive",
    min_share=0.0,
    prediction_field=None,
    run_key=None,
):
    """Explain every classification in ``samples`` by ``annotator``'s
    concepts, written as FiftyOne fields.

    For each sample with maps:

    - ``explanation_field`` (default ``explanation_<annotator>``): a
      ``fo.Classifications`` with one ``fo.Classification`` per concept of
      its maps, ``confidence`` = the summed ``share`` of the concept's maps
      (their fraction of the whole positive contribution) and ``num_maps``;
      largest share first; :data:`NOT_NAMEABLE` and unnamed maps excluded;
    - ``coverage_field`` (default ``<explanation_field>_coverage``, float):
      see the module docstring (``coverage="positive"``: the fraction of the
      whole positive contribution explained by named maps);
    - ``fully_named_field`` (default ``<explanation_field>_fully_named``,
      bool): every significant map (with ``share >= min_share``) has a real
      concept.

    Samples without maps get ``None`` in all three. Values are written with
    one bulk ``set_values`` per field, and the computation is registered as
    a FiftyOne custom run of type ``"explanations"``.

    Parameters
    ----------
    samples : SampleCollection
    annotator : str
    maps_field : str
    explanation_field, coverage_field, fully_named_field : str, optional
    coverage : {"positive", "maps"}
    min_share : float
    prediction_field : str, optional
        default: the one recorded by the maps run.
    run_key : str, optional
        default ``explanation_<annotator>`` (the field name).

    Returns
    -------
    dict
        ``{"run_key", "explanation_field", "coverage_field",
        "fully_named_field", "coverage_mode", "num_samples",
        "num_with_maps", "mean_coverage" (of the written coverage),
        "mean_positive_coverage", "mean_maps_coverage",
        "fully_named", "fully_named_fraction", "concepts": {concept: number
        of samples}}``.
    """
    table = read_maps(samples, annotator, maps_field, prediction_field)
    explanation_field = check_field_name(
        explanation_field or f"explanation_{annotator}", "explanation_field"
    )
    coverage_field = check_field_name(coverage_field or f"{explanation_field}_coverage", "coverage_field")
    fully_named_field = check_field_name(
        fully_named_field or f"{explanation_field}_fully_named", "fully_named_field"
    )
    if len({explanation_field, coverage_field, fully_named_field, maps_field}) < 4:
        raise ValueError("the explanation, coverage and fully-named fields must be distinct from each other and the maps field")
    run_key = check_field_name(run_key or explanation_field, "run_key")
    result = explain(table, coverage=coverage, min_share=min_share)

    dataset = samples._dataset
    _declare(dataset, explanation_field, fo.EmbeddedDocumentField, embedded_doc_type=fo.Classifications)
    _declare(dataset, f"{explanation_field}.classifications.num_maps", fo.IntField)
    _declare(dataset, coverage_field, fo.FloatField)
    _declare(dataset, fully_named_field, fo.BooleanField)

    all_ids = samples.values("id")
    labels = dict.fromkeys(all_ids)
    cover = dict.fromkeys(all_ids)
    full = dict.fromkeys(all_ids)
    concept_samples = {}
    for i, sample_id in enumerate(table.sample_ids):
        labels[sample_id] = fo.Classifications(
            classifications=[
                fo.Classification(label=c, confidence=float(share), num_maps=int(n))
                for c, share, n in result.concepts[i]
            ]
        )
        cover[sample_id] = float(result.coverage[i])
        full[sample_id] = bool(result.fully_named[i])
        for c, _, _ in result.concepts[i]:
            concept_samples[c] = concept_samples.get(c, 0) + 1
    samples.set_values(explanation_field, labels, key_field="id", validate=False)
    samples.set_values(coverage_field, cover, key_field="id", validate=False)
    samples.set_values(fully_named_field, full, key_field="id", validate=False)

    n = table.num_samples
    with np.errstate(invalid="ignore", divide="ignore"):
        maps_cov = np.where(result.maps_share > 0, result.named_share / np.where(result.maps_share > 0, result.maps_share, 1), 0.0)
    summary = {
        "run_key": run_key,
        "explanation_field": explanation_field,
        "coverage_field": coverage_field,
        "fully_named_field": fully_named_field,
        "coverage_mode": coverage,
        "num_samples": len(all_ids),
        "num_with_maps": n,
        "mean_coverage": float(result.coverage.mean()) if n else None,
        "mean_positive_coverage": float(result.named_share.mean()) if n else None,
        "mean_maps_coverage": float(maps_cov.mean()) if n else None,
        "fully_named": int(result.fully_named.sum()),
        "fully_named_fraction": float(result.fully_named.mean()) if n else None,
        "concepts": dict(sorted(concept_samples.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
    register_run(
        samples,
        run_key,
        RUN_TYPE,
        {
            "annotator": annotator,
            "maps_field": maps_field,
            "prediction_field": table.prediction_field,
            "explanation_field": explanation_field,
            "coverage_field": coverage_field,
            "fully_named_field": fully_named_field,
            "coverage": coverage,
            "min_share": float(min_share),
        },
    )
    save_run_results(samples, run_key, summary)
    return summary
