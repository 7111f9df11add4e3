"""What the stored evaluation runs found, as small JSON tables: the
evaluation panel's reading of a dataset (no run is computed or changed).

For one annotator and maps field, each *section* comes from the newest run
of its type (found by the run's config, so runs under custom keys count):

=================  ===========================  ==========================================
section            run (``run_type``)           rows
=================  ===========================  ==========================================
``untrustworthy``  ``untrustworthy_concepts``   (class, concept) types, flagged first
``reasons``        ``concept_summary``          per class, its most frequent concepts
``coverage``       ``explanations``             per predicted class, mean coverage
``correspondence`` ``neuron_correspondence``    per concept, its top channel
``agreement``      ``agreement``                annotators x annotators alphas
=================  ===========================  ==========================================

Each section is ``{"run_key": key or None, "rows": [...], ...}``; a missing
run gives ``run_key`` None and no rows. Numbers are rounded to
:data:`DIGITS` decimals, and :data:`~fiftyone_plugin.concepts.store.NOT_NAMEABLE`
is shown as ``"not nameable"``, so tables can be shown as they are.
"""

import math

import gridfs
import numpy as np
from bson import json_util

import fiftyone.core.odm as foo
import fiftyone.core.runs as focr

from ..concepts.store import NOT_NAMEABLE, list_annotators
from ..runs import jsonable
from ..storage import MAPS_FIELD
from .views import concept_view

#: decimals kept in every number of a finding
DIGITS = 3

#: section -> the run type it reads
SECTION_RUN_TYPES = {
    "untrustworthy": "untrustworthy_concepts",
    "reasons": "concept_summary",
    "coverage": "explanations",
    "correspondence": "neuron_correspondence",
    "agreement": "agreement",
}
SECTIONS = tuple(SECTION_RUN_TYPES)

#: what the ``by`` of an untrustworthy run ranks by, and its evidence
_STATISTICS = {
    "error": ("excess errors", "excess_errors", "q_value"),
    "confidence": ("confidence lost", "confidence_lost", "confidence_q"),
}


def display_concept(concept):
    """A concept as people read it: the internal :data:`NOT_NAMEABLE`
    token becomes ``"not nameable"``.

    Examples
    --------
    >>> display_concept("__not_nameable__"), display_concept("sun")
    ('not nameable', 'sun')
    """
    return "not nameable" if concept == NOT_NAMEABLE else concept


def rounded(value, digits=DIGITS):
    """``value`` rounded to ``digits`` decimals; NaN, infinities and None
    as None; other values unchanged.

    Examples
    --------
    >>> rounded(0.123456), rounded(float("nan")), rounded(3), rounded("x")
    (0.123, None, 3, 'x')
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def read_results(samples, run_key):
    """``samples.load_run_results(run_key)``, read from GridFS with a file
    handle of its own.

    FiftyOne reads results through the GridFS file handle cached on the
    dataset's run document, which a dataset is shared through in the App
    server: while another request reloads that dataset (every operator
    request does), the read fails and FiftyOne gets an empty string ("'str'
    object has no attribute 'decode'"). The results are the same object.
    """
    dataset = samples._root_dataset
    run_doc = focr.Run._get_run_doc(dataset, run_key)
    stored = run_doc.results
    files = gridfs.GridFS(foo.get_db_conn(), collection=stored.collection_name)
    d = json_util.loads(files.get(stored.grid_id).read().decode())
    config = dataset.get_run_info(run_key).config
    return focr.BaseRunResults.from_dict(d, dataset, config, run_key)


def _runs(dataset, run_type):
    """``[(key, config, timestamp)]`` of the runs of ``run_type``."""
    found = []
    for key in dataset.list_runs():
        info = dataset.get_run_info(key)
        if getattr(info.config, "run_type", None) == run_type:
            found.append((key, info.config, info.timestamp))
    return found


def find_run(samples, run_type, annotator=None, *, maps_field=MAPS_FIELD):
    """The key of the newest run of ``run_type`` on ``maps_field`` for
    ``annotator`` (an agreement run: one whose annotators include them;
    ``annotator=None``: any), or None.

    Parameters
    ----------
    samples : SampleCollection
        its dataset's runs are searched.
    run_type : str
        a config's ``run_type`` (the values of :data:`SECTION_RUN_TYPES`).
    annotator : str, optional
    maps_field : str, default ``"actmaps"``

    Returns
    -------
    str or None
    """
    matches = []
    for key, config, timestamp in _runs(samples._dataset, run_type):
        if getattr(config, "maps_field", MAPS_FIELD) != maps_field:
            continue
        if annotator is not None:
            annotators = getattr(config, "annotators", None) or [getattr(config, "annotator", None)]
            if annotator not in annotators:
                continue
        matches.append((timestamp, key))
    # newest first; runs registered in the same instant by key
    return max(matches, key=lambda t: (t[0] is not None, t[0] or 0, t[1]))[1] if matches else None


def evaluation_annotators(samples, *, maps_field=MAPS_FIELD):
    """The annotators to choose from, and the default one.

    Returns
    -------
    annotators : list of str
        everyone who named maps in ``maps_field``, then anyone else an
        evaluation run on it was computed for, sorted.
    default : str or None
        the first annotator with an evaluation run of their own, else the
        first annotator, else None.
    """
    dataset = samples._dataset
    try:
        named = list_annotators(dataset, maps_field=maps_field)
    except ValueError:  # no maps field (yet)
        named = []
    with_runs = set()
    for run_type in SECTION_RUN_TYPES.values():
        if run_type == "agreement":
            continue
        for _, config, _ in _runs(dataset, run_type):
            if getattr(config, "maps_field", MAPS_FIELD) == maps_field and getattr(config, "annotator", None):
                with_runs.add(config.annotator)
    annotators = sorted(set(named) | with_runs)
    default = next((a for a in annotators if a in with_runs), annotators[0] if annotators else None)
    return annotators, default


def _reasons(results, max_concepts):
    rows, per_class = [], {}
    for row in results.rows:
        cls = row["predicted_class"]
        if per_class.get(cls, 0) >= max_concepts:
            continue
        per_class[cls] = per_class.get(cls, 0) + 1
        rows.append({
            "class": cls,
            "concept": display_concept(row["concept"]),
            "samples": int(row["n_with"]),
            "class_samples": int(row["n_class"]),
            "frequency": rounded(row["frequency"]),
            "share": rounded(row["mean_share"]),
        })
    return {"rows": rows}


def coverage_by_class(samples, results):
    """Per predicted class, the mean of what an explanations run wrote:
    ``[{"class", "samples", "coverage", "fully_named"}]`` (samples with
    maps only; classes sorted), rounded.

    Parameters
    ----------
    samples : SampleCollection
        the run's samples (its dataset is read).
    results : ExplanationsResults
        a loaded ``compute_explanations`` run.
    """
    config = results.config
    labels, coverage, full = samples._dataset.values(
        [f"{config.prediction_field}.label", results.coverage_field, results.fully_named_field]
    )
    groups = {}
    for label, cov, fully in zip(labels, coverage, full):
        if cov is None:  # no maps, or not in the run
            continue
        groups.setdefault(label, []).append((cov, bool(fully)))
    rows = []
    for label in sorted(groups, key=str):
        values = np.array(groups[label], dtype=float)
        rows.append({
            "class": label,
            "samples": len(values),
            "coverage": rounded(values[:, 0].mean()),
            "fully_named": rounded(values[:, 1].mean()),
        })
    return rows


def _coverage(samples, results):
    return {
        "rows": coverage_by_class(samples, results),
        "mode": results.coverage_mode,
        "samples": results.num_with_maps,
        "mean_coverage": rounded(results.mean_coverage),
        "fully_named": rounded(results.fully_named_fraction),
    }


def _untrustworthy(results, max_rows):
    by = results.config.by
    statistic, score_column, q_column = _STATISTICS[by]
    rows = []
    for rank, row in enumerate(results.rows[:max_rows], start=1):
        rows.append({
            "rank": rank,
            "class": row["predicted_class"],
            "concept": display_concept(row["concept"]),
            # the raw name, for the view of the type
            "concept_id": row["concept"],
            "samples": int(row["n_with"]),
            "errors": None if row["errors_with"] is None else int(row["errors_with"]),
            "error_rate_with": rounded(row["error_rate_with"]),
            "error_rate_without": rounded(row["error_rate_without"]),
            "score": rounded(row[score_column]),
            "q": rounded(row[q_column]),
            "flagged": bool(row["flagged"]),
            "view": row["view"],
        })
    return {
        "rows": rows,
        "by": by,
        "statistic": statistic,
        "tested": results.num_tested,
        "flagged": results.num_flagged,
        "total": len(results.rows),
    }


def _correspondence(results, max_rows):
    rows = [
        {
            "concept": display_concept(row["concept"]),
            "maps": int(row["num_maps"]),
            "channels": int(row["num_channels"]),
            "top_channel": row["top_channel"],
            "top_share": rounded(row["top_channel_share"]),
            "effective_channels": rounded(row["effective_channels"]),
        }
        for row in results.concept_rows[:max_rows]
    ]
    return {
        "rows": rows,
        "total": len(results.concept_rows),
        "nmi": rounded(results.nmi),
        "ami": rounded(results.ami),
        "concept_purity": rounded(results.concept_purity),
        "channel_purity": rounded(results.channel_purity),
    }


def _agreement(results, statistic):
    pairwise = results.pairwise or {}
    annotators = list(pairwise.get("annotators") or results.annotators or [])
    matrix = pairwise.get(statistic) or [[None] * len(annotators) for _ in annotators]
    overlap = pairwise.get("overlap") or [[None] * len(annotators) for _ in annotators]
    rows = [
        {"annotator": a, "values": [rounded(v) for v in matrix[i]], "maps": overlap[i][i]}
        for i, a in enumerate(annotators)
    ]
    return {
        "rows": rows,
        "annotators": annotators,
        "statistic": statistic,
        "pair_alpha": rounded(results.pair_alpha),
        "aligned_alpha": rounded(results.aligned_alpha),
        "nameable_alpha": rounded(results.nameable_alpha),
        "maps": results.n_overlap,
    }


def read_findings(samples, annotator, *, maps_field=MAPS_FIELD, max_concepts_per_class=3, max_rows=10,
                  agreement_statistic="aligned_alpha"):
    """Every section of ``annotator``'s findings on ``maps_field`` from the
    stored runs (see the module docstring).

    Parameters
    ----------
    samples : SampleCollection
        its dataset's runs are read.
    annotator : str or None
        None: every per-annotator section is missing.
    maps_field : str, default ``"actmaps"``
    max_concepts_per_class : int, default 3
        ``reasons``: the most frequent concepts kept per class.
    max_rows : int, default 10
        ``untrustworthy`` and ``correspondence``: rows kept (the first, in
        the run's order: flagged types by rank; concepts by maps).
    agreement_statistic : {"aligned_alpha", "pair_alpha", "nameable_alpha"}, default "aligned_alpha"
        the matrix shown for ``agreement``.

    Returns
    -------
    dict
        ``{section: {"run_key", "rows", ...}}`` in :data:`SECTIONS` order,
        plain JSON. Numbers are rounded to :data:`DIGITS` decimals.

        - ``reasons`` rows: ``class, concept, samples`` (predicted the class
          with the concept), ``class_samples, frequency`` (samples /
          class_samples), ``share`` (mean summed share of its maps);
        - ``coverage`` rows: :func:`coverage_by_class`; with ``mode``,
          ``samples``, ``mean_coverage``, ``fully_named`` overall;
        - ``untrustworthy`` rows: ``rank, class, concept, concept_id`` (the
          stored name), ``samples, errors, error_rate_with/_without, score``
          (the ranking statistic, named in ``statistic``), ``q, flagged,
          view`` (saved view or None); with ``by, tested, flagged, total``;
        - ``correspondence`` rows: ``concept, maps, channels, top_channel,
          top_share, effective_channels``; with ``nmi, ami,
          concept_purity, channel_purity, total``;
        - ``agreement`` rows: ``annotator, values`` (that row of the
          matrix, None on the diagonal and where undefined), ``maps``
          (maps they judged); with ``annotators``, ``statistic`` and the
          overall alphas.
    """
    found = {}
    for section, run_type in SECTION_RUN_TYPES.items():
        key = None
        if annotator is not None:
            key = find_run(samples, run_type, annotator, maps_field=maps_field)
        if key is None:
            found[section] = {"run_key": None, "rows": []}
            continue
        results = read_results(samples, key)
        if section == "reasons":
            values = _reasons(results, max_concepts_per_class)
        elif section == "coverage":
            values = _coverage(samples, results)
        elif section == "untrustworthy":
            values = _untrustworthy(results, max_rows)
        elif section == "correspondence":
            values = _correspondence(results, max_rows)
        else:
            values = _agreement(results, agreement_statistic)
        found[section] = jsonable({"run_key": key, **values})
    return found


def type_view(samples, annotator, row, *, run_key, maps_field=MAPS_FIELD):
    """The samples of an untrustworthy type (a ``read_findings`` row): its
    saved view when it still exists, else the same view built again
    (:func:`~fiftyone_plugin.evaluation.views.concept_view`).

    Parameters
    ----------
    samples : SampleCollection
    annotator : str
    row : dict
        a row of ``read_findings(...)["untrustworthy"]["rows"]``.
    run_key : str
        the untrustworthy run it comes from (for its prediction field).
    maps_field : str, default ``"actmaps"``

    Returns
    -------
    DatasetView
    """
    dataset = samples._dataset
    if row.get("view") and row["view"] in dataset.list_saved_views():
        return dataset.load_saved_view(row["view"])
    config = dataset.get_run_info(run_key).config
    return concept_view(dataset, annotator, row["class"], row["concept_id"], maps_field=maps_field,
                        prediction_field=config.prediction_field)
