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

import numpy as np
import pandas as pd
from bson import ObjectId

from ..concepts.store import (
    _attribute,
    _chunks,
    concept_field,
    provenance_attribute,
    provenance_field,
    validate_annotator,
)
from ..runs import RunConfig, RunResults, register_run, save_run_results
from ..storage import MAPS_FIELD, check_field_name, maps_field_of
from .accept import _write, check_confidence, plan_machine_names
from .model import fit_hand_named, predict_top_two, read_descriptors
from .suggestions import check_C

logger = logging.getLogger(__name__)

MACHINE_SUFFIX = "__auto"
TRANSFERRED = "transferred"
NOT_SURE = "not sure"
TRANSFER_RUN_TYPE = "concept_transfer"
TRANSFER_COLUMNS = ["map_id", "sample_id", "concept", "confidence", "outcome"]


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


class TransferConfig(RunConfig):
    """Parameters of a transfer run.

    **What the run owns.** A transfer run with ``write=True`` owns the
    machine annotator's whole namespace on ``maps_field``: its concept
    (``concept_<annotator>__auto``), provenance and confidence attributes
    (:meth:`fields`). Nothing but a transfer writes them, and a rerun
    already replaces them, so ``dataset.delete_run(run_key)`` deletes them:
    the machine's names go with the run that made them (hand names of
    ``<annotator>`` are never touched). To revert the names but keep the
    run, use :func:`~.accept.undo_suggestions` with ``results.undo``. A
    ``write=False`` run (a preview) owns nothing; rerunning a key with
    ``write=False`` after ``write=True`` therefore drops the names the key
    owned, as :func:`fiftyone_plugin.runs.register_run` drops what a key no
    longer writes.
    """

    run_type = TRANSFER_RUN_TYPE

    def __init__(self, annotator=None, machine_annotator=None, maps_field=MAPS_FIELD, source_maps_field=None,
                 min_confidence=0.8, C=1.0, write=True, **kwargs):
        self.annotator = annotator
        self.machine_annotator = machine_annotator
        self.maps_field = maps_field
        self.source_maps_field = source_maps_field
        self.min_confidence = min_confidence
        self.C = C
        self.write = write
        super().__init__(**kwargs)

    def fields(self):
        if not self.write:
            return []
        machine = self.machine_annotator
        return [
            concept_field(machine, self.maps_field),
            provenance_field(machine, self.maps_field),
            f"{self.maps_field}.detections.{confidence_attribute(machine)}",
        ]

    def validate(self, samples):
        validate_annotator(self.annotator)
        if self.machine_annotator != machine_annotator(self.annotator):
            raise ValueError(f"the machine annotator of {self.annotator!r} is {machine_annotator(self.annotator)!r}")
        check_confidence(self.min_confidence)
        check_C(self.C)
        maps_field_of(samples, self.maps_field)


class TransferResults(RunResults):
    """What :func:`transfer_concepts` did: ``maps`` (one record per map
    considered, see :attr:`table`), ``machine_annotator``, ``num_taught``
    (hand-named maps learnt from), ``named`` and ``not_sure`` (counts), and
    ``undo`` (the record for :func:`~.accept.undo_suggestions`; ``None``
    when nothing was written)."""

    def __init__(self, samples, config, key, maps=None, machine_annotator=None, num_taught=0, named=0,
                 not_sure=0, undo=None, backend=None):
        super().__init__(samples, config, key, backend=backend)
        self.maps = maps or []
        self.machine_annotator = machine_annotator
        self.num_taught = num_taught
        self.named = named
        self.not_sure = not_sure
        self.undo = undo

    @property
    def table(self):
        """``map_id, sample_id, concept`` (best guess), ``confidence``,
        ``outcome`` (``"named"`` or ``"not sure"``), one row per map."""
        return pd.DataFrame(self.maps, columns=TRANSFER_COLUMNS)


def transfer_concepts(
    samples,
    annotator,
    *,
    source=None,
    maps_field=MAPS_FIELD,
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
        Where the maps to name are (maps that ``annotator`` named are left
        alone).
    annotator : str
        Whose hand-given names teach (accepted suggestions and earlier
        transfers do not).
    source : SampleCollection, optional
        Where the teaching names are read; default the whole dataset of
        ``samples``.
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
    source_maps_field : str, optional
        Maps field of ``source`` (default ``maps_field``); its descriptors
        must have the same length as those of ``maps_field``.
    min_confidence : float in [0, 1], default 0.8
        Maps whose best concept has a lower probability get the outcome
        ``"not sure"`` and no name.
    C : float > 0, default 1.0
        See :func:`~.model.concept_classifier`.
    write : bool, default True
        Write the confident names; False only returns them (a preview).
    run_key : str, optional
        Default ``transfer_<annotator>``.

    Returns
    -------
    TransferResults
        The same object ``dataset.load_run_results(run_key)`` returns;
        ``.table`` has one row per map considered. Deleting the run deletes
        the machine annotator's names (see :class:`TransferConfig`).

    Raises
    ------
    ValueError
        bad annotator, confidence, field, descriptor sizes that differ, or
        fewer than two concepts named by hand; nothing written then.

    References
    ----------
    scikit-learn ``LogisticRegression`` (Pedregosa et al., JMLR 12, 2011),
    the model of :mod:`.model`.
    """
    validate_annotator(annotator)
    run_key = check_field_name(run_key or f"transfer_{annotator}", "run_key")
    config = TransferConfig(
        annotator=annotator, machine_annotator=machine_annotator(annotator), maps_field=maps_field,
        source_maps_field=source_maps_field or maps_field, min_confidence=min_confidence, C=C, write=bool(write),
    )
    config.validate(samples)
    machine = config.machine_annotator
    source = samples._dataset if source is None else source
    maps_field_of(source, config.source_maps_field)

    # fitted and checked before the run is registered: an error leaves no run
    taught = read_descriptors(source, annotator, maps_field=config.source_maps_field)
    model, num_taught = fit_hand_named(taught, C=C)
    targets = read_descriptors(samples, annotator, maps_field=maps_field)
    todo = targets["concept"].isna().to_numpy()
    X = targets.attrs["descriptors"]
    if todo.any() and X.shape[1] != taught.attrs["descriptors"].shape[1]:
        raise ValueError(
            f"descriptors differ in length: {X.shape[1]} here, "
            f"{taught.attrs['descriptors'].shape[1]} in the source"
        )
    out = targets.loc[todo, ["map_id", "sample_id"]].reset_index(drop=True)
    if todo.any():
        concept, confidence, _, _ = predict_top_two(model, X[todo])
        out["concept"], out["confidence"] = [str(c) for c in concept], confidence
        out["outcome"] = np.where(confidence >= min_confidence, "named", NOT_SURE)
    else:
        out = pd.DataFrame(columns=TRANSFER_COLUMNS)
    named = out[out["outcome"] == "named"]
    assignments = dict(zip(named["map_id"], named["concept"]))

    register_run(samples, run_key, config)
    undo = None
    if write:
        _clear(samples, machine, maps_field, out["map_id"].tolist())
        planned, skipped = plan_machine_names(samples, machine, assignments, maps_field=maps_field)
        if planned:
            confidences = dict(zip(named["map_id"], named["confidence"]))
            _write(samples._dataset, machine, planned, TRANSFERRED, maps_field,
                   {confidence_attribute(machine): confidences})
        undo = {"annotator": machine, "maps_field": maps_field, "provenance": TRANSFERRED,
                "written": planned, "skipped": skipped}
    counts = out["outcome"].value_counts()
    results = TransferResults(
        samples, config, run_key, maps=out.to_dict("records"), machine_annotator=machine,
        num_taught=num_taught, named=int(counts.get("named", 0)), not_sure=int(counts.get(NOT_SURE, 0)),
        undo=undo,
    )
    save_run_results(samples, run_key, results)
    return results
