"""Concepts beyond the named set: name the maps nobody named, by machine,
in a distinct and clearly labelled namespace.

:func:`transfer_concepts` learns an annotator's concepts from the maps they
named by hand (the same model as the suggestions,
:func:`fiftyone_plugin.assistance.suggestions.concept_classifier`) and names the other
maps -- a new batch of images, the rest of the dataset, or another model's
maps with descriptors of the same size -- as the machine annotator
``"<annotator>__auto"`` (:func:`machine_annotator`). Every name it writes
carries provenance ``"transferred"`` and its confidence
(``confidence_<annotator>__auto``); maps below ``min_confidence`` get the
outcome "not sure" and no name. Explanations, summaries, untrustworthy types
and agreement then work on the machine annotator like on any other (its
agreement with people where both named a map is
``compute_agreement(..., annotators=[..., "alice__auto"])``).
"""

import logging
import math

import numpy as np
import pandas as pd
from bson import ObjectId

from ..concepts.store import (
    _attribute,
    _chunks,
    provenance_attribute,
    validate_annotator,
)
from ..runs import register_run, save_run_results
from ..storage import check_field_name, maps_field_of
from .suggestions import _fit, _predict, read_descriptors, write_machine_names

logger = logging.getLogger(__name__)

MACHINE_SUFFIX = "__auto"
TRANSFERRED = "transferred"
NOT_SURE = "not sure"
TRANSFER_RUN_TYPE = "concept_transfer"


def machine_annotator(annotator):
    """The name under which :func:`transfer_concepts` writes ``annotator``'s
    transferred concepts: ``"<annotator>__auto"`` (a valid annotator id, so
    every reader handles it; the suffix marks it as a machine)."""
    validate_annotator(annotator)
    if annotator.endswith(MACHINE_SUFFIX):
        raise ValueError(f"{annotator!r} is already a machine annotator")
    return validate_annotator(annotator + MACHINE_SUFFIX)


def is_machine_annotator(annotator):
    return isinstance(annotator, str) and annotator.endswith(MACHINE_SUFFIX)


def confidence_attribute(annotator):
    """Map attribute with the confidence of a machine annotator's name."""
    return f"confidence_{validate_annotator(annotator)}"


def _clear(samples, machine, maps_field, map_ids):
    """Unset the machine annotator's earlier names on ``map_ids`` (a rerun
    replaces them)."""
    det = f"{maps_field}.detections"
    attrs = [_attribute(machine), provenance_attribute(machine), confidence_attribute(machine)]
    oids = [ObjectId(m) for m in map_ids]
    collection = samples._dataset._sample_collection
    for chunk in _chunks(oids):
        collection.update_many(
            {f"{det}._id": {"$in": chunk}},
            {"$unset": {f"{det}.$[d].{a}": "" for a in attrs}},
            array_filters=[{"d._id": {"$in": chunk}}],
        )


def transfer_concepts(
    samples,
    annotator,
    source=None,
    maps_field="actmaps",
    source_maps_field=None,
    min_confidence=0.8,
    C=1.0,
    write=True,
    run_key=None,
):
    """Name the maps of ``samples`` that ``annotator`` has not named, by
    ``annotator``'s concepts, as the machine annotator
    ``"<annotator>__auto"``.

    Parameters
    ----------
    samples : SampleCollection
        where the maps to name are (maps that ``annotator`` named are left
        alone).
    annotator : str
        whose hand-given names teach (accepted suggestions and earlier
        transfers do not).
    source : SampleCollection, optional
        where the teaching names are read; default the whole dataset of
        ``samples``.
    maps_field : str
    source_maps_field : str, optional
        maps field of ``source`` (default ``maps_field``); its descriptors
        must have the same length as those of ``maps_field``.
    min_confidence : float
        in [0, 1]; maps whose best concept has a lower probability get the
        outcome ``"not sure"`` and no name.
    C : float
        see :func:`~fiftyone_plugin.assistance.suggestions.concept_classifier`.
    write : bool
        write the confident names (default); False only returns them.
    run_key : str, optional
        default ``transfer_<annotator>``.

    Returns
    -------
    pandas.DataFrame
        one row per map considered: ``map_id, sample_id, concept`` (best
        guess), ``confidence``, ``outcome`` (``"named"`` or ``"not sure"``).
        ``df.attrs``: ``machine_annotator``, ``num_taught``, ``named``,
        ``not_sure``, ``run_key``, ``undo`` (the record for
        :func:`fiftyone_plugin.assistance.suggestions.undo_suggestions`).

    Raises
    ------
    ValueError
        bad annotator, confidence, field, descriptor sizes that differ, or
        fewer than two concepts named by hand; nothing written then.
    """
    validate_annotator(annotator)
    machine = machine_annotator(annotator)
    if not isinstance(min_confidence, (int, float)) or math.isnan(min_confidence) or not 0 <= min_confidence <= 1:
        raise ValueError(f"min_confidence must be in [0, 1]; got {min_confidence!r}")
    run_key = check_field_name(run_key or f"transfer_{annotator}", "run_key")
    source = samples._dataset if source is None else source
    source_maps_field = source_maps_field or maps_field
    maps_field_of(samples, maps_field)
    maps_field_of(source, source_maps_field)

    taught = read_descriptors(source, annotator, source_maps_field)
    model, num_taught = _fit(taught, C)
    targets = read_descriptors(samples, annotator, maps_field)
    todo = targets["concept"].isna().to_numpy()
    X = targets.attrs["descriptors"]
    if todo.any() and X.shape[1] != taught.attrs["descriptors"].shape[1]:
        raise ValueError(
            f"descriptors differ in length: {X.shape[1]} here, "
            f"{taught.attrs['descriptors'].shape[1]} in the source"
        )
    out = targets.loc[todo, ["map_id", "sample_id"]].reset_index(drop=True)
    if todo.any():
        concept, confidence, _, _ = _predict(model, X[todo])
        out["concept"], out["confidence"] = concept, confidence
        out["outcome"] = np.where(confidence >= min_confidence, "named", NOT_SURE)
    else:
        out = pd.DataFrame(columns=["map_id", "sample_id", "concept", "confidence", "outcome"])

    undo = None
    if write:
        _clear(samples, machine, maps_field, out["map_id"].tolist())
        named = out[out["outcome"] == "named"]
        undo = write_machine_names(
            samples, machine, dict(zip(named["map_id"], named["concept"])), TRANSFERRED, maps_field,
            extra={confidence_attribute(machine): dict(zip(named["map_id"], named["confidence"]))},
        )
    counts = out["outcome"].value_counts()
    out.attrs.update(
        machine_annotator=machine, num_taught=num_taught, run_key=run_key, undo=undo,
        named=int(counts.get("named", 0)), not_sure=int(counts.get(NOT_SURE, 0)),
    )
    register_run(samples, run_key, TRANSFER_RUN_TYPE, {
        "annotator": annotator, "machine_annotator": machine, "maps_field": maps_field,
        "source_maps_field": source_maps_field, "min_confidence": float(min_confidence), "C": float(C),
        "num_taught": num_taught, "write": bool(write),
    })
    save_run_results(samples, run_key, {
        "named": out.attrs["named"], "not_sure": out.attrs["not_sure"],
        "maps": [{"map_id": r.map_id, "concept": r.concept, "confidence": float(r.confidence),
                  "outcome": r.outcome} for r in out.itertuples()],
    })
    return out
