"""Naming assistance: the tool proposes, the person decides.

:func:`suggest_concepts` learns, from the maps an annotator has named by hand,
which of **their** concepts (or :data:`~fiftyone_plugin.NOT_NAMEABLE`) each
unnamed map most likely shows, with a confidence; :func:`accept_suggestions`
writes the accepted ones in one bulk write, marking each name's provenance
(``provenance_<annotator> = "suggested"``; hand names have none), and returns
an undo record for :func:`undo_suggestions`. :func:`candidate_groups` offers
clusters of unnamed maps as ready-made selections.

The classifier is scikit-learn's multinomial ``LogisticRegression`` on
standardised map descriptors (``StandardScaler``), with its own predicted
probabilities as the confidence. Measured on the concept world (600 test
images, 3,000 maps, a random 10 % named by their true part, three seeds;
tests/test_assistance_world.py and a scratch comparison of the variants):
right on 95.4-96.8 % of its most confident 80 % of suggestions, against
95.1-95.3 % for a distance-weighted 10-nearest-neighbour vote; expected
calibration error 0.007-0.023 with its own probabilities, against
0.036-0.079 (isotonic) and 0.13-0.19 (sigmoid) for ``CalibratedClassifierCV``
with 3 folds, which has too few named maps per fold to calibrate on -- so
the plain probabilities are used.
"""

import logging
import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from bson import ObjectId
from pymongo import UpdateMany

import fiftyone as fo
import fiftyone.core.utils as fou

from ..concepts.store import (
    NOT_NAMEABLE,
    _attribute,
    _chunks,
    _current_assignments,
    declare_concept as _declare,
    declare_provenance as _declare_provenance,
    _preview,
    _to_object_ids,
    concept_field,
    provenance_attribute,
    provenance_field,
    validate_annotator,
    validate_concept_name,
)
from ..runs import register_run, save_run_results
from ..storage import check_field_name, maps_field_of

logger = logging.getLogger(__name__)

SUGGESTED = "suggested"
SUGGESTIONS_RUN_TYPE = "concept_suggestions"
SUGGESTION_COLUMNS = ["map_id", "sample_id", "concept", "confidence", "runner_up", "runner_up_confidence"]


def concept_classifier(C=1.0):
    """The suggestion model: ``StandardScaler`` then multinomial
    ``LogisticRegression(C=C)`` (scikit-learn); see the module notes for
    why this one and why its own probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=float(C), max_iter=5000))


def read_descriptors(samples, annotator, maps_field="actmaps"):
    """Every map of ``samples`` with its descriptor, ``annotator``'s name
    and that name's provenance.

    Returns
    -------
    pandas.DataFrame
        ``map_id, sample_id, concept, provenance`` and ``descriptors``
        (``df.attrs["descriptors"]``: float array ``(n, d)``, rows aligned
        with the frame; maps without a descriptor are left out and counted
        in ``df.attrs["missing_descriptors"]``).
    """
    maps_field_of(samples, maps_field)
    validate_annotator(annotator)
    det = f"{maps_field}.detections"
    name_path = concept_field(annotator, maps_field)
    prov_path = provenance_field(annotator, maps_field)
    paths = ["id", f"{det}.id", f"{det}.descriptor"]
    paths += [p for p in (name_path, prov_path) if samples.get_field(p) is not None]
    columns = samples.values(paths)
    sample_ids, map_ids, descriptors = columns[:3]
    names = columns[3] if samples.get_field(name_path) is not None else None
    provs = columns[-1] if samples.get_field(prov_path) is not None else None
    rows, vectors, missing = [], [], 0
    for s, sid in enumerate(sample_ids):
        for k, map_id in enumerate(map_ids[s] or []):
            vector = descriptors[s][k] if descriptors[s] else None
            if vector is None:
                missing += 1
                continue
            rows.append({
                "map_id": map_id,
                "sample_id": sid,
                "concept": names[s][k] if names is not None and names[s] else None,
                "provenance": provs[s][k] if provs is not None and provs[s] else None,
            })
            if isinstance(vector, bytes):  # an undeclared array attribute
                vector = fou.deserialize_numpy_array(vector)
            vectors.append(np.asarray(vector, dtype=np.float64))
    df = pd.DataFrame(rows, columns=["map_id", "sample_id", "concept", "provenance"])
    df.attrs["descriptors"] = np.vstack(vectors) if vectors else np.zeros((0, 0))
    df.attrs["missing_descriptors"] = missing
    return df


def _fit(table, C):
    """Fit on the hand-named maps of ``table``; returns the model."""
    X = table.attrs["descriptors"]
    teach = table["concept"].notna() & (table["provenance"].isna())
    labels = table.loc[teach, "concept"]
    if labels.nunique() < 2:
        raise ValueError(
            "suggestions need maps named by hand with at least two different "
            f"concepts (NOT_NAMEABLE counts as one); found {sorted(labels.unique())}"
        )
    model = concept_classifier(C)
    model.fit(X[teach.to_numpy()], labels.to_numpy())
    return model, int(teach.sum())


def _predict(model, X):
    proba = model.predict_proba(X)
    classes = model.classes_
    order = np.argsort(-proba, axis=1)
    best, second = order[:, 0], order[:, 1]
    rows = np.arange(len(X))
    return classes[best], proba[rows, best], classes[second], proba[rows, second]


def suggest_concepts(samples, annotator, maps_field="actmaps", C=1.0, run_key=None):
    """For every map of ``samples`` that ``annotator`` has not named, the most
    likely of their concepts, learnt from the maps they named by hand.

    Maps named by accepted suggestions (provenance ``"suggested"``) or by
    transfer are not learnt from: the model learns from people only, so a
    wrong accepted suggestion does not teach itself. :data:`NOT_NAMEABLE`
    is a concept like the others here ("not nameable" is a possible
    suggestion).

    Parameters
    ----------
    samples : SampleCollection
        maps in ``maps_field`` with descriptors (``compute_activation_maps(...,
        store_descriptors=True)``, the default).
    annotator : str
    maps_field : str
    C : float
        inverse regularisation strength of the logistic regression.
    run_key : str, optional
        default ``suggestions_<annotator>``; the suggestions are stored as a
        custom run (``dataset.load_run_results``) for the panel.

    Returns
    -------
    pandas.DataFrame
        one row per unnamed map with a descriptor, most confident first:
        ``map_id, sample_id, concept, confidence`` (the model's probability
        of ``concept``, in [0, 1]), ``runner_up, runner_up_confidence``.
        ``df.attrs``: ``run_key``, ``num_taught`` (hand-named maps learnt
        from), ``missing_descriptors``.

    Raises
    ------
    ValueError
        bad annotator or maps field, fewer than two concepts named by hand;
        nothing is registered then.
    """
    validate_annotator(annotator)
    run_key = check_field_name(run_key or f"suggestions_{annotator}", "run_key")
    table = read_descriptors(samples, annotator, maps_field)
    model, taught = _fit(table, C)
    todo = table["concept"].isna().to_numpy()
    X = table.attrs["descriptors"]
    out = table.loc[todo, ["map_id", "sample_id"]].reset_index(drop=True)
    if todo.any():
        concept, confidence, runner, runner_conf = _predict(model, X[todo])
        out["concept"], out["confidence"] = concept, confidence
        out["runner_up"], out["runner_up_confidence"] = runner, runner_conf
    else:
        out = pd.DataFrame(columns=SUGGESTION_COLUMNS)
    out = out.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)
    out.attrs.update(run_key=run_key, num_taught=taught, missing_descriptors=table.attrs["missing_descriptors"])
    if table.attrs["missing_descriptors"]:
        logger.warning("%d map(s) have no descriptor and get no suggestion", table.attrs["missing_descriptors"])
    register_run(samples, run_key, SUGGESTIONS_RUN_TYPE, {
        "annotator": annotator, "maps_field": maps_field, "model": "StandardScaler+LogisticRegression",
        "C": float(C), "num_taught": taught, "missing_descriptors": table.attrs["missing_descriptors"],
    })
    save_run_results(samples, run_key, {"suggestions": [
        {"map_id": r.map_id, "concept": r.concept, "confidence": float(r.confidence)}
        for r in out.itertuples()
    ]})
    return out


# --------------------------------------------------------------------------
# accepting and undoing


def _as_rows(suggestions):
    if isinstance(suggestions, pd.DataFrame):
        rows = suggestions.to_dict("records")
    else:
        rows = [dict(r) for r in suggestions]
    for r in rows:
        if "map_id" not in r or "concept" not in r or "confidence" not in r:
            raise ValueError("each suggestion needs map_id, concept and confidence")
    return rows


def write_machine_names(samples, annotator, assignments, provenance, maps_field="actmaps", extra=None):
    """Name maps by machine in one ``bulk_write``: per map, ``annotator``'s
    concept and its provenance are set together (one document update, so
    never one without the other). Maps the annotator has named meanwhile
    are left alone (a person's name is never overwritten).

    Parameters
    ----------
    assignments : dict
        ``{map_id: concept}``.
    provenance : str
    extra : dict, optional
        ``{attribute: {map_id: value}}`` also set on the same maps.

    Returns
    -------
    dict
        undo record ``{"annotator", "maps_field", "provenance", "written":
        {map_id: concept}, "skipped": [map ids already named]}``.
    """
    validate_annotator(annotator)
    maps_field_of(samples, maps_field)
    concepts = {m: validate_concept_name(c) for m, c in assignments.items()}
    oids = _to_object_ids(list(concepts))
    dataset = samples._dataset
    attribute = _attribute(annotator)
    current = _current_assignments(dataset, maps_field, oids, attribute)
    missing = [str(o) for o in oids if o not in current]
    if missing:
        raise ValueError(f"{len(missing)} map id(s) not found in {maps_field!r}: {_preview(missing)}; nothing was written")
    skipped = [str(o) for o in oids if current[o] is not None]
    todo = {m: c for m, c in concepts.items() if current[ObjectId(m)] is None}
    if not todo:
        return {"annotator": annotator, "maps_field": maps_field, "provenance": provenance,
                "written": {}, "skipped": skipped}
    _declare(dataset, maps_field, annotator)
    _declare_provenance(dataset, maps_field, annotator)
    for name, values in (extra or {}).items():
        path = f"{maps_field}.detections.{name}"
        if dataset.get_field(path) is None:
            dataset.add_sample_field(path, fo.FloatField)
    by_concept = {}
    for m, c in todo.items():
        by_concept.setdefault(c, []).append(ObjectId(m))
    ops, now = [], datetime.now(timezone.utc)
    prov = provenance_attribute(annotator)
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
    return {"annotator": annotator, "maps_field": maps_field, "provenance": provenance,
            "written": {m: c for m, c in todo.items()}, "skipped": skipped}


def accept_suggestions(samples, annotator, suggestions, min_confidence=0.9, maps_field="actmaps"):
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
    suggestions : pandas.DataFrame or list of dict
        as returned by :func:`suggest_concepts` (``map_id, concept,
        confidence``).
    min_confidence : float
        in [0, 1].
    maps_field : str

    Returns
    -------
    dict
        the undo record for :func:`undo_suggestions`: ``written`` ``{map_id:
        concept}``, ``skipped`` (already named), ``accepted`` (count).

    Raises
    ------
    ValueError
        bad confidence, annotator, concept name or map ids; nothing is
        written then.
    """
    if not isinstance(min_confidence, (int, float)) or math.isnan(min_confidence) or not 0 <= min_confidence <= 1:
        raise ValueError(f"min_confidence must be in [0, 1]; got {min_confidence!r}")
    rows = _as_rows(suggestions)
    chosen = {str(r["map_id"]): r["concept"] for r in rows if float(r["confidence"]) >= min_confidence}
    record = write_machine_names(samples, annotator, chosen, SUGGESTED, maps_field)
    record["accepted"] = len(record["written"])
    return record


def undo_suggestions(samples, record):
    """Revert an :func:`accept_suggestions` (or transfer) record: each map
    it named goes back to unnamed -- unless a person has renamed it since
    (its name or provenance changed), which is kept. Returns the number of
    maps reverted."""
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


def _current_matching(collection, det, ids, attribute, concept, prov, provenance):
    pipeline = [
        {"$match": {f"{det}._id": {"$in": ids}}},
        {"$project": {"m": f"${det}"}},
        {"$unwind": "$m"},
        {"$match": {"m._id": {"$in": ids}, f"m.{attribute}": concept, f"m.{prov}": provenance}},
        {"$project": {"_id": "$m._id"}},
    ]
    return list(collection.aggregate(pipeline))


# --------------------------------------------------------------------------
# candidate groups


def candidate_groups(samples, annotator, maps_field="actmaps", min_cluster_size=10):
    """Clusters of the maps ``annotator`` has not named, as ready-made
    selections, largest unexplained share first.

    scikit-learn's ``HDBSCAN`` over the standardised descriptors of the
    unnamed maps (noise points belong to no group). A group's
    ``unexplained_share`` is the summed ``share`` of its maps (the part of
    the classifier's positive contribution they carry, see
    :func:`fiftyone_plugin.compute_activation_maps`), which naming them
    would explain.

    Returns
    -------
    pandas.DataFrame
        ``group, size, unexplained_share, map_ids`` (a list), ordered by
        ``unexplained_share``.
    """
    from sklearn.cluster import HDBSCAN
    from sklearn.preprocessing import StandardScaler

    table = read_descriptors(samples, annotator, maps_field)
    todo = table["concept"].isna().to_numpy()
    columns = ["group", "size", "unexplained_share", "map_ids"]
    if todo.sum() < max(2, int(min_cluster_size)):
        return pd.DataFrame(columns=columns)
    X = StandardScaler().fit_transform(table.attrs["descriptors"][todo])
    labels = HDBSCAN(min_cluster_size=int(min_cluster_size), copy=True).fit_predict(X)
    ids = table.loc[todo, "map_id"].to_numpy()
    shares = _shares(samples, maps_field, ids)
    rows = []
    for g in sorted(set(labels) - {-1}):
        members = ids[labels == g]
        rows.append({"group": int(g), "size": int(len(members)),
                     "unexplained_share": float(sum(shares.get(m, 0.0) for m in members)),
                     "map_ids": [str(m) for m in members]})
    df = pd.DataFrame(rows, columns=columns)
    return df.sort_values("unexplained_share", ascending=False, kind="stable").reset_index(drop=True)


def what_next(samples, annotator, maps_field="actmaps"):
    """The unnamed maps ordered by how much of the classifier's unexplained
    contribution naming them would explain: their ``share`` (fraction of
    their image's positive contribution), largest first.

    Returns
    -------
    pandas.DataFrame
        ``map_id, sample_id, share``.
    """
    validate_annotator(annotator)
    maps_field_of(samples, maps_field)
    det = f"{maps_field}.detections"
    name_path = concept_field(annotator, maps_field)
    declared = samples.get_field(name_path) is not None
    paths = ["id", f"{det}.id", f"{det}.share"] + ([name_path] if declared else [])
    columns = samples.values(paths)
    rows = []
    for s, sid in enumerate(columns[0]):
        for k, map_id in enumerate(columns[1][s] or []):
            name = columns[3][s][k] if declared and columns[3][s] else None
            if name is None:
                share = columns[2][s][k] if columns[2][s] else None
                rows.append({"map_id": map_id, "sample_id": sid, "share": float(share or 0.0)})
    df = pd.DataFrame(rows, columns=["map_id", "sample_id", "share"])
    return df.sort_values("share", ascending=False, kind="stable").reset_index(drop=True)


def _shares(samples, maps_field, ids):
    det = f"{maps_field}.detections"
    wanted = set(ids)
    out = {}
    for map_ids, shares in zip(*samples.values([f"{det}.id", f"{det}.share"])):
        for m, s in zip(map_ids or [], shares or []):
            if m in wanted:
                out[m] = float(s or 0.0)
    return out
