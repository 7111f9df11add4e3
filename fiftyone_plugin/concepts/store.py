# (over 400 lines: the one door to how names are stored; its writes, reads and repair share private helpers)
"""The concept store: per map, per annotator, at most one concept name.

An annotator's concept for a map lives in the map's attribute
``concept_<annotator>`` (``actmaps.detections.concept_alice``), so the App can
filter, colour and lasso by it natively. Every write is a single MongoDB
``update_many`` with array filters that touches only that attribute of the
chosen maps: no sample is read, modified and saved back, so two annotators
(or two tabs) writing at once lose nothing, and 10,000 maps are named in one
round trip.

The schema declaration of ``concept_<annotator>`` is the one non-atomic
part: FiftyOne saves a dataset's field list whole, so two processes
declaring two annotators at once can lose one declaration. The data is never
lost, and the readers here repair such a declaration from the data
(:func:`repair_declarations`).

This module is the one door to that storage scheme: the attribute names
(:data:`CONCEPT_PREFIX`, :func:`concept_attribute`, :func:`provenance_attribute`
and their paths), their declaration (:func:`declare_concept`,
:func:`declare_provenance`, both through :func:`fiftyone_plugin.storage.declare_field`)
and their repair. Other modules build no ``concept_`` name themselves.
"""

import re
import unicodedata
from datetime import datetime, timezone

from bson import ObjectId
from bson.errors import InvalidId

import fiftyone as fo

from ..storage import MAPS_FIELD, declare_field, maps_field_of, resolve_maps
from .names import MAX_NAME_LENGTH, NOT_NAMEABLE  # noqa: F401 (defined in names.py, re-exported here)

_ANNOTATOR = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
#: an annotator's names live in the map attribute ``concept_<annotator>``
CONCEPT_PREFIX = "concept_"
# MongoDB limits the size of one command; large id lists are sent in chunks
_CHUNK = 50_000


def _maps(samples, maps_field):
    # a patches view of the maps field stands for its maps (storage.resolve_maps)
    return resolve_maps(samples, maps_field=maps_field)[0]


def validate_annotator(annotator):
    """Annotator ids become part of a field name, so they are identifiers."""
    if not isinstance(annotator, str) or not _ANNOTATOR.match(annotator):
        raise ValueError(
            "annotator must start with a letter and contain only letters, "
            f"digits and underscores (at most 64); got {annotator!r}"
        )
    return annotator


def validate_concept_name(name):
    """Return the trimmed name, or raise ``ValueError`` saying what is wrong.

    Names are free Unicode text, trimmed, non-empty, at most 100 characters
    and without control characters. :data:`NOT_NAMEABLE` is accepted; other
    names starting with ``__`` are reserved.
    """
    if not isinstance(name, str):
        raise ValueError(f"a concept name must be text; got {type(name).__name__}")
    trimmed = unicodedata.normalize("NFC", name).strip()
    if not trimmed:
        raise ValueError("a concept name cannot be empty")
    if len(trimmed) > MAX_NAME_LENGTH:
        raise ValueError(
            f"a concept name can have at most {MAX_NAME_LENGTH} characters; "
            f"this one has {len(trimmed)}"
        )
    if any(unicodedata.category(ch) == "Cc" for ch in trimmed):
        raise ValueError("a concept name cannot contain control characters")
    if trimmed.startswith("__") and trimmed != NOT_NAMEABLE:
        raise ValueError("concept names starting with '__' are reserved")
    return trimmed


def concept_attribute(annotator):
    """The map attribute holding ``annotator``'s names (``concept_alice``).

    Examples
    --------
    >>> concept_attribute("alice")
    'concept_alice'
    """
    return CONCEPT_PREFIX + validate_annotator(annotator)


def annotator_of(attribute):
    """The annotator whose names a map attribute holds, or ``None`` when
    ``attribute`` is not a concept attribute.

    Examples
    --------
    >>> annotator_of("concept_alice"), annotator_of("heatmap")
    ('alice', None)
    """
    if not attribute.startswith(CONCEPT_PREFIX):
        return None
    annotator = attribute[len(CONCEPT_PREFIX) :]
    return annotator if _ANNOTATOR.match(annotator) else None


def concept_field(annotator, maps_field=MAPS_FIELD):
    """The path of ``annotator``'s concept attribute on the maps
    (``actmaps.detections.concept_alice``)."""
    return f"{maps_field}.detections.{concept_attribute(annotator)}"


def _attribute(annotator):
    # (validated by the callers)
    return CONCEPT_PREFIX + annotator


# Where a name came from when a machine proposed it: ``"suggested"`` (a
# suggestion the annotator accepted, see fiftyone_plugin.assistance.suggestions) or
# ``"transferred"`` (fiftyone_plugin.assistance.transfer); absent for names given by
# hand. The prefix is not ``concept_``, so it is never read as an annotator.
PROVENANCE_PREFIX = "provenance_"


def provenance_attribute(annotator):
    """The map attribute holding the provenance of ``annotator``'s names."""
    return PROVENANCE_PREFIX + validate_annotator(annotator)


def provenance_field(annotator, maps_field=MAPS_FIELD):
    """The path of ``annotator``'s provenance attribute on the maps
    (``actmaps.detections.provenance_alice``)."""
    return f"{maps_field}.detections.{provenance_attribute(annotator)}"


def _to_object_ids(map_ids):
    if isinstance(map_ids, str):
        map_ids = [map_ids]
    oids, bad = [], []
    for map_id in dict.fromkeys(map_ids):  # dedupe, keep order
        try:
            oids.append(ObjectId(map_id))
        except (InvalidId, TypeError):
            bad.append(map_id)
    if bad:
        raise ValueError(f"malformed map ids: {_preview(bad)}")
    return oids


def _preview(items, limit=10):
    items = [str(i) for i in items]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _chunks(items, size=_CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def existing_map_ids(samples, ids, maps_field=MAPS_FIELD):
    """The ids among ``ids`` that are maps in ``maps_field``, in their given
    order without repeats (others, e.g. sample ids from another selection,
    or maps deleted since, are left out)."""
    valid = []
    for i in dict.fromkeys(ids):
        try:
            valid.append(ObjectId(i))
        except (InvalidId, TypeError):
            continue
    path = f"{maps_field}.detections._id"
    found = set(samples._dataset._sample_collection.distinct(path, {path: {"$in": valid}}))
    return [str(o) for o in valid if o in found]


def _current_assignments(dataset, maps_field, oids, attribute):
    """``{map_id: concept or None}`` for the given maps that exist."""
    found = {}
    collection = dataset._sample_collection
    path = f"{maps_field}.detections"
    for chunk in _chunks(oids):
        pipeline = [
            {"$match": {f"{path}._id": {"$in": chunk}}},
            {"$project": {"m": f"${path}"}},
            {"$unwind": "$m"},
            {"$match": {"m._id": {"$in": chunk}}},
            {"$project": {"_id": "$m._id", "c": f"$m.{attribute}"}},
        ]
        for row in collection.aggregate(pipeline):
            found[row["_id"]] = row.get("c")
    return found


def declare_concept(dataset, maps_field, annotator):
    """Declare ``annotator``'s concept attribute (a string) on the maps of
    ``dataset``, if it is not declared yet (safe against another process
    declaring at the same time: see :func:`fiftyone_plugin.storage.declare_field`)."""
    declare_field(dataset, concept_field(annotator, maps_field), fo.StringField)


def declare_provenance(dataset, maps_field, annotator):
    """Declare ``annotator``'s provenance attribute (a string) on the maps."""
    declare_field(dataset, provenance_field(annotator, maps_field), fo.StringField)


def _annotators_in_data(dataset, maps_field):
    """Annotators with a concept attribute on any map, read from the data
    itself (independent of the declared schema)."""
    pipeline = [
        {"$match": {f"{maps_field}.detections.0": {"$exists": True}}},
        {"$unwind": f"${maps_field}.detections"},
        {"$project": {"k": {"$objectToArray": f"${maps_field}.detections"}}},
        {"$unwind": "$k"},
        {"$match": {"k.k": {"$regex": f"^{CONCEPT_PREFIX}"}}},
        {"$group": {"_id": "$k.k"}},
    ]
    found = (annotator_of(row["_id"]) for row in dataset._sample_collection.aggregate(pipeline))
    return {a for a in found if a is not None}


def _has_data(dataset, maps_field, annotator):
    path = f"{maps_field}.detections.{_attribute(annotator)}"
    return dataset._sample_collection.find_one({path: {"$exists": True}}, {"_id": 1}) is not None


def _write(dataset, maps_field, attribute, match, array_filter, concept, clear=()):
    """One ``update_many``: set (or unset) ``attribute`` on the maps selected
    by ``array_filter`` in the samples selected by ``match`` (and unset the
    attributes in ``clear`` in the same update)."""
    target = f"{maps_field}.detections.$[d].{attribute}"
    now = datetime.now(timezone.utc)
    if concept is None:
        update = {"$unset": {target: ""}, "$set": {"last_modified_at": now}}
    else:
        update = {"$set": {target: concept, "last_modified_at": now}}
    if clear:
        update.setdefault("$unset", {}).update(
            {f"{maps_field}.detections.$[d].{a}": "" for a in clear}
        )
    dataset._sample_collection.update_many(
        match, update, array_filters=[{f"d.{k}": v for k, v in array_filter.items()}]
    )


def assign_concept(samples, map_ids, concept, annotator, *, maps_field=MAPS_FIELD):
    """Name maps: give every map in ``map_ids`` the concept ``concept`` in
    ``annotator``'s namespace (``None`` clears their names).

    Parameters
    ----------
    samples : SampleCollection
        the dataset (or any view of it) holding the maps.
    map_ids : str or iterable of str
        label ids of maps in ``maps_field``.
    concept : str or None
        validated by :func:`validate_concept_name`;
        :data:`NOT_NAMEABLE` records "no recognisable concept".
    annotator : str
    maps_field : str

    Returns
    -------
    dict
        ``{"assigned": n, "previous": {map_id: old concept or None}}``; the
        previous names are what an undo needs.

    Raises
    ------
    ValueError
        for a bad name or annotator, or map ids that do not exist (listed);
        nothing is written then.
    """
    validate_annotator(annotator)
    if concept is not None:
        concept = validate_concept_name(concept)
    samples = _maps(samples, maps_field)
    dataset = samples._dataset
    oids = _to_object_ids(map_ids)
    attribute = _attribute(annotator)

    previous = _current_assignments(dataset, maps_field, oids, attribute)
    missing = [str(o) for o in oids if o not in previous]
    if missing:
        raise ValueError(
            f"{len(missing)} map id(s) not found in {maps_field!r}: "
            f"{_preview(missing)}; nothing was assigned"
        )

    if concept is not None:
        declare_concept(dataset, maps_field, annotator)
    for chunk in _chunks(oids):
        _write(
            dataset,
            maps_field,
            attribute,
            {f"{maps_field}.detections._id": {"$in": chunk}},
            {"_id": {"$in": chunk}},
            concept,
            # a name given by hand is no longer a machine suggestion
            clear=(provenance_attribute(annotator),),
        )
    return {
        "assigned": len(oids),
        "previous": {str(k): v for k, v in previous.items()},
    }


def restore_assignments(samples, previous, annotator, *, maps_field=MAPS_FIELD):
    """Undo: put back the names in ``previous`` (as returned by
    :func:`assign_concept`), one write per distinct old name."""
    by_name = {}
    for map_id, name in previous.items():
        by_name.setdefault(name, []).append(map_id)
    for name, ids in by_name.items():
        assign_concept(samples, ids, name, annotator, maps_field=maps_field)
    return sum(len(ids) for ids in by_name.values())


def _declared_annotators(samples, maps_field):
    # another process (the App, another annotator) may have added one since
    # this dataset object was loaded
    samples._dataset.reload()
    maps_field_of(samples, maps_field)
    prefix = f"{maps_field}.detections.{CONCEPT_PREFIX}"
    schema = samples._dataset.get_field_schema(flat=True)
    return {path[len(prefix) :] for path in schema if path.startswith(prefix)}


def _repair(samples, maps_field):
    # the declared annotators, after declaring those found only in the data
    declared = _declared_annotators(samples, maps_field)
    lost = _annotators_in_data(samples._dataset, maps_field) - declared
    for annotator in sorted(lost):
        declare_concept(samples._dataset, maps_field, annotator)
    return declared | lost, sorted(lost)


def repair_declarations(samples, maps_field=MAPS_FIELD):
    """Declare the concept attribute of every annotator whose names are in
    the data but whose declaration was lost (two processes declaring at
    once: see the module's notes). Returns the annotators repaired."""
    return _repair(_maps(samples, maps_field), maps_field)[1]


def list_annotators(samples, *, maps_field=MAPS_FIELD):
    """Annotators who have named maps in ``maps_field`` (declared in the
    schema, or found in the data, whose declaration is then repaired)."""
    return sorted(_repair(_maps(samples, maps_field), maps_field)[0])


def list_concepts(samples, annotator=None, *, maps_field=MAPS_FIELD):
    """Concept -> number of maps, most frequent first.

    With ``annotator``, returns ``{concept: count}`` for that annotator (an
    empty dict if they named nothing); without, ``{annotator: {concept:
    count}}`` for all. :data:`NOT_NAMEABLE` is counted like a concept.
    ``samples`` may be a patches view of the maps field: its maps are counted.
    """
    samples = _maps(samples, maps_field)
    if annotator is not None:
        validate_annotator(annotator)
        annotators = [annotator]
        known = _declared_annotators(samples, maps_field)
        if annotator not in known and _has_data(samples._dataset, maps_field, annotator):
            declare_concept(samples._dataset, maps_field, annotator)  # a lost declaration
            known.add(annotator)
    else:
        annotators = known = list_annotators(samples, maps_field=maps_field)
    queried = [a for a in annotators if a in known]
    results = samples.aggregate(
        [fo.CountValues(concept_field(a, maps_field)) for a in queried]
    ) if queried else []
    counts = {a: {} for a in annotators}
    for a, values in zip(queried, results):
        pairs = [(k, v) for k, v in values.items() if k is not None]
        counts[a] = dict(sorted(pairs, key=lambda kv: (-kv[1], kv[0])))
    return counts[annotator] if annotator is not None else counts


def _existing_names(samples, annotator, maps_field):
    return list_concepts(samples._dataset, annotator, maps_field=maps_field)


def rename_concept(samples, annotator, old, new, *, maps_field=MAPS_FIELD):
    """Rename ``annotator``'s concept ``old`` to ``new`` (which must not
    exist yet; use :func:`merge_concepts` to join two). Returns the number of
    maps renamed."""
    samples = _maps(samples, maps_field)
    validate_annotator(annotator)
    old, new = validate_concept_name(old), validate_concept_name(new)
    names = _existing_names(samples, annotator, maps_field)
    if old not in names:
        raise ValueError(f"{annotator} has no concept {old!r}")
    if new == old:
        return 0
    if new in names:
        raise ValueError(
            f"{annotator} already has a concept {new!r}; merge the two instead of renaming"
        )
    _rewrite(samples._dataset, maps_field, annotator, [old], new)
    return names[old]


def merge_concepts(samples, annotator, concepts, into, *, maps_field=MAPS_FIELD):
    """Give all maps of ``concepts`` the name ``into`` (new or existing).
    Returns the number of maps whose name changed."""
    samples = _maps(samples, maps_field)
    validate_annotator(annotator)
    if isinstance(concepts, str):
        concepts = [concepts]
    concepts = [validate_concept_name(c) for c in concepts]
    into = validate_concept_name(into)
    names = _existing_names(samples, annotator, maps_field)
    unknown = [c for c in concepts if c not in names]
    if unknown:
        raise ValueError(f"{annotator} has no concept(s) {unknown}")
    sources = [c for c in dict.fromkeys(concepts) if c != into]
    if not sources:
        return 0
    _rewrite(samples._dataset, maps_field, annotator, sources, into)
    return sum(names[c] for c in sources)


def delete_concept(samples, annotator, concept, *, maps_field=MAPS_FIELD):
    """Remove ``annotator``'s concept: its maps become unnamed. Returns the
    number of maps affected."""
    samples = _maps(samples, maps_field)
    validate_annotator(annotator)
    concept = validate_concept_name(concept)
    names = _existing_names(samples, annotator, maps_field)
    if concept not in names:
        raise ValueError(f"{annotator} has no concept {concept!r}")
    _rewrite(samples._dataset, maps_field, annotator, [concept], None)
    return names[concept]


def _rewrite(dataset, maps_field, annotator, sources, target):
    attribute = _attribute(annotator)
    if target is not None:
        declare_concept(dataset, maps_field, annotator)
    _write(
        dataset,
        maps_field,
        attribute,
        {f"{maps_field}.detections.{attribute}": {"$in": sources}},
        {attribute: {"$in": sources}},
        target,
    )
