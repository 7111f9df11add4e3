"""Writing names by machine and taking them back.

:func:`accept_suggestions` writes the accepted suggestions in one bulk
write, marking each name's provenance (``provenance_<annotator> =
"suggested"``; hand names have none), as a run (:class:`AcceptResults`) that
:func:`undo_suggestions` / :func:`undo_accepted_suggestions` revert.
:func:`write_machine_names` is the shared writer (transfer uses it too).
"""

import math
from datetime import datetime, timezone

import pandas as pd
from bson import ObjectId
from pymongo import UpdateMany

import fiftyone as fo

from ..concepts.store import (
    _attribute,
    _chunks,
    _current_assignments,
    declare_concept,
    declare_provenance,
    _preview,
    _to_object_ids,
    provenance_attribute,
    validate_annotator,
    validate_concept_name,
)
from ..runs import RunConfig, RunResults, register_run, save_run_results
from ..storage import MAPS_FIELD, check_field_name, maps_field_of
from .suggestions import SuggestionsResults, load_suggestions

SUGGESTED = "suggested"
ACCEPT_RUN_TYPE = "accepted_suggestions"


def accept_run_key(annotator):
    """The default run key of ``annotator``'s last accepted suggestions."""
    return f"accepted_suggestions_{validate_annotator(annotator)}"


def check_confidence(min_confidence):
    if (isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float))
            or math.isnan(min_confidence) or not 0 <= min_confidence <= 1):
        raise ValueError(f"min_confidence must be in [0, 1]; got {min_confidence!r}")


# --------------------------------------------------------------------------
# the shared writer

def plan_machine_names(samples, annotator, assignments, *, maps_field=MAPS_FIELD):
    """Check a machine naming without writing: ``(todo, skipped)``, the
    ``{map_id: concept}`` still unnamed by ``annotator`` and the ids of maps
    they named already.

    Raises
    ------
    ValueError
        a bad annotator, maps field or concept name, or unknown map ids.
    """
    validate_annotator(annotator)
    maps_field_of(samples, maps_field)
    concepts = {m: validate_concept_name(c) for m, c in assignments.items()}
    oids = _to_object_ids(list(concepts))
    current = _current_assignments(samples._dataset, maps_field, oids, _attribute(annotator))
    missing = [str(o) for o in oids if o not in current]
    if missing:
        raise ValueError(f"{len(missing)} map id(s) not found in {maps_field!r}: {_preview(missing)}; nothing was written")
    skipped = [str(o) for o in oids if current[o] is not None]
    todo = {m: c for m, c in concepts.items() if current[ObjectId(m)] is None}
    return todo, skipped


def write_machine_names(samples, annotator, assignments, provenance, *, maps_field=MAPS_FIELD, extra=None):
    """Name maps by machine in one ``bulk_write``: per map, ``annotator``'s
    concept and its provenance are set together (one document update, so
    never one without the other). Maps the annotator has named meanwhile
    are left alone (a person's name is never overwritten).

    Parameters
    ----------
    samples : SampleCollection
    annotator : str
    assignments : dict
        ``{map_id: concept}``.
    provenance : str
        E.g. ``"suggested"`` or ``"transferred"``.
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
    extra : dict, optional
        ``{attribute: {map_id: float}}`` also set on the same maps.

    Returns
    -------
    dict
        Undo record ``{"annotator", "maps_field", "provenance", "written":
        {map_id: concept}, "skipped": [map ids already named]}``.

    Raises
    ------
    ValueError
        as :func:`plan_machine_names`; nothing is written then.
    """
    todo, skipped = plan_machine_names(samples, annotator, assignments, maps_field=maps_field)
    record = {"annotator": annotator, "maps_field": maps_field, "provenance": provenance,
              "written": todo, "skipped": skipped}
    if todo:
        _write(samples._dataset, annotator, todo, provenance, maps_field, extra)
    return record


def _write(dataset, annotator, todo, provenance, maps_field, extra):
    declare_concept(dataset, maps_field, annotator)
    declare_provenance(dataset, maps_field, annotator)
    for name in extra or {}:
        path = f"{maps_field}.detections.{name}"
        if dataset.get_field(path) is None:
            dataset.add_sample_field(path, fo.FloatField)
    by_concept = {}
    for m, c in todo.items():
        by_concept.setdefault(c, []).append(ObjectId(m))
    ops, now = [], datetime.now(timezone.utc)
    attribute, prov = _attribute(annotator), provenance_attribute(annotator)
    det = f"{maps_field}.detections"
    for concept, ids in by_concept.items():
        for chunk in _chunks(ids):
            # one op per concept; the filter on the unnamed state makes a
            # concurrent hand name win
            ops.append(UpdateMany(
                {f"{det}._id": {"$in": chunk}},
                {"$set": {f"{det}.$[d].{attribute}": concept, f"{det}.$[d].{prov}": provenance,
                          "last_modified_at": now}},
                array_filters=[{"d._id": {"$in": chunk}, f"d.{attribute}": {"$exists": False}}],
            ))
    for name, values in (extra or {}).items():
        for m, v in values.items():
            if m in todo:
                ops.append(UpdateMany(
                    {f"{det}._id": ObjectId(m)}, {"$set": {f"{det}.$[d].{name}": float(v)}},
                    array_filters=[{"d._id": ObjectId(m)}],
                ))
    dataset._sample_collection.bulk_write(ops, ordered=True)


# --------------------------------------------------------------------------
# accepting and undoing


class AcceptConfig(RunConfig):
    """Parameters of an accept-suggestions run.

    It owns no sample field (:meth:`fields` is empty): the accepted names
    join ``concept_<annotator>`` and ``provenance_<annotator>``, which hold
    the annotator's hand names too, so deleting the run keeps them (they
    are the annotator's names now). To take them back, use
    :func:`undo_accepted_suggestions`, which reverts and then deletes the run.
    """

    run_type = ACCEPT_RUN_TYPE

    def __init__(self, annotator=None, maps_field=MAPS_FIELD, min_confidence=0.9, **kwargs):
        self.annotator = annotator
        self.maps_field = maps_field
        self.min_confidence = min_confidence
        super().__init__(**kwargs)

    def validate(self, samples):
        validate_annotator(self.annotator)
        check_confidence(self.min_confidence)
        maps_field_of(samples, self.maps_field)


class AcceptResults(RunResults):
    """What :func:`accept_suggestions` wrote, and the undo record for
    :func:`undo_suggestions`: ``annotator``, ``maps_field``, ``provenance``,
    ``written`` (``{map_id: concept}``), ``skipped`` (map ids the annotator
    had named meanwhile) and ``accepted`` (``len(written)``)."""

    def __init__(self, samples, config, key, annotator=None, maps_field=MAPS_FIELD, provenance=SUGGESTED,
                 written=None, skipped=None, accepted=0, backend=None):
        super().__init__(samples, config, key, backend=backend)
        self.annotator = annotator
        self.maps_field = maps_field
        self.provenance = provenance
        self.written = written or {}
        self.skipped = skipped or []
        self.accepted = accepted


def _as_rows(suggestions):
    if isinstance(suggestions, SuggestionsResults):
        rows = [dict(r) for r in suggestions.suggestions]
    elif isinstance(suggestions, pd.DataFrame):
        rows = suggestions.to_dict("records")
    else:
        rows = [dict(r) for r in suggestions]
    for r in rows:
        if "map_id" not in r or "concept" not in r or "confidence" not in r:
            raise ValueError("each suggestion needs map_id, concept and confidence")
    return rows


def accept_suggestions(samples, annotator, suggestions=None, *, min_confidence=0.9, maps_field=MAPS_FIELD,
                       run_key=None):
    """Accept every suggestion with ``confidence >= min_confidence``.

    Each accepted name is written to ``annotator``'s namespace with
    provenance ``"suggested"`` (attribute ``provenance_<annotator>``), in one
    bulk write (:func:`write_machine_names`); a map the annotator named in
    the meantime keeps its name. A later hand name of the same map clears
    the provenance (:func:`fiftyone_plugin.assign_concept`). To exclude
    accepted suggestions from an agreement or evaluation, filter
    ``F("provenance_<annotator>") != "suggested"`` on the maps.

    Parameters
    ----------
    samples : SampleCollection
    annotator : str
    suggestions : SuggestionsResults, pandas.DataFrame or list of dict, optional
        As returned by :func:`~.suggestions.suggest_concepts` (records with
        ``map_id, concept, confidence``). Default: the stored suggestions of
        ``annotator`` (:func:`~.suggestions.load_suggestions`).
    min_confidence : float in [0, 1], default 0.9
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
    run_key : str, optional
        Default ``accepted_suggestions_<annotator>`` (one per annotator: the
        last acceptance is the one to undo).

    Returns
    -------
    AcceptResults
        The same object ``dataset.load_run_results(run_key)`` returns, and
        the undo record for :func:`undo_suggestions`.

    Raises
    ------
    ValueError
        bad confidence, annotator, concept name or map ids, or no stored
        suggestions; nothing is written or registered then.
    """
    run_key = check_field_name(run_key or accept_run_key(annotator), "run_key")
    config = AcceptConfig(annotator=annotator, maps_field=maps_field, min_confidence=min_confidence)
    config.validate(samples)
    if suggestions is None:
        suggestions = load_suggestions(samples, annotator)
    rows = _as_rows(suggestions)
    chosen = {str(r["map_id"]): r["concept"] for r in rows if float(r["confidence"]) >= min_confidence}
    todo, skipped = plan_machine_names(samples, annotator, chosen, maps_field=maps_field)
    register_run(samples, run_key, config)
    if todo:
        _write(samples._dataset, annotator, todo, SUGGESTED, maps_field, None)
    results = AcceptResults(samples, config, run_key, annotator=annotator, maps_field=maps_field,
                            provenance=SUGGESTED, written=todo, skipped=skipped, accepted=len(todo))
    save_run_results(samples, run_key, results)
    return results


def _record(record):
    if isinstance(record, dict):
        return record
    return {k: getattr(record, k) for k in ("annotator", "maps_field", "provenance", "written")}


def undo_suggestions(samples, record):
    """Revert an :func:`accept_suggestions` (or transfer) record: each map
    it named goes back to unnamed -- unless a person has renamed it since
    (its name or provenance changed), which is kept.

    Parameters
    ----------
    samples : SampleCollection
    record : AcceptResults or dict
        An :class:`AcceptResults`, or a record of
        :func:`write_machine_names` (``TransferResults.undo``).

    Returns
    -------
    int
        The number of maps reverted.
    """
    record = _record(record)
    annotator, maps_field = record["annotator"], record["maps_field"]
    validate_annotator(annotator)
    maps_field_of(samples, maps_field)
    attribute, prov = _attribute(annotator), provenance_attribute(annotator)
    det = f"{maps_field}.detections"
    by_concept = {}
    for m, c in record["written"].items():
        by_concept.setdefault(c, []).append(ObjectId(m))
    collection = samples._dataset._sample_collection
    reverted = 0
    for concept, ids in by_concept.items():
        for chunk in _chunks(ids):
            reverted += len(_current_matching(collection, det, chunk, attribute, concept, prov, record["provenance"]))
            collection.update_many(
                {f"{det}._id": {"$in": chunk}},
                {"$unset": {f"{det}.$[d].{attribute}": "", f"{det}.$[d].{prov}": ""},
                 "$set": {"last_modified_at": datetime.now(timezone.utc)}},
                array_filters=[{"d._id": {"$in": chunk}, f"d.{attribute}": concept, f"d.{prov}": record["provenance"]}],
            )
    return reverted


def undo_accepted_suggestions(samples, annotator, *, run_key=None):
    """Undo ``annotator``'s last accepted suggestions (the run ``run_key``,
    default ``accepted_suggestions_<annotator>``) with
    :func:`undo_suggestions`, then delete that run.

    Returns
    -------
    int
        The number of maps reverted.

    Raises
    ------
    ValueError
        no such run (nothing to undo).
    """
    run_key = run_key or accept_run_key(annotator)
    if run_key not in samples.list_runs():
        raise ValueError(f"nothing to undo for {annotator}")
    reverted = undo_suggestions(samples, samples.load_run_results(run_key, cache=False))
    samples.delete_run(run_key)
    return reverted


def _current_matching(collection, det, ids, attribute, concept, prov, provenance):
    pipeline = [
        {"$match": {f"{det}._id": {"$in": ids}}},
        {"$project": {"m": f"${det}"}},
        {"$unwind": "$m"},
        {"$match": {"m._id": {"$in": ids}, f"m.{attribute}": concept, f"m.{prov}": provenance}},
        {"$project": {"_id": "$m._id"}},
    ]
    return list(collection.aggregate(pipeline))
