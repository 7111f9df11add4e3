"""Exchanging concept names as JSON: every assignment of the concept store
written out (:func:`export_concepts`) and applied again
(:func:`import_concepts`), onto the same maps or, by sample and position,
onto recomputed maps or a rebuilt dataset."""

import json
from datetime import datetime, timezone

from ..storage import MAPS_FIELD, resolve_maps
from .store import assign_concept, concept_attribute, list_annotators, validate_annotator, validate_concept_name

EXPORT_FORMAT = "interactive-naming/concepts"
EXPORT_VERSION = 1


def _all_maps(dataset, maps_field, annotators):
    """Every map with its sample, file, layer, channel and names."""
    path = f"{maps_field}.detections"
    project = {
        "_id": 0,
        "map_id": "$m._id",
        "sample_id": "$_id",
        "filepath": "$filepath",
        "layer": "$m.layer",
        "channel": "$m.channel",
    }
    for a in annotators:
        project[a] = f"$m.{concept_attribute(a)}"
    pipeline = [
        {"$match": {path: {"$exists": True}}},
        {"$project": {"filepath": 1, "m": f"${path}"}},
        {"$unwind": "$m"},
        {"$project": project},
    ]
    return dataset._sample_collection.aggregate(pipeline, allowDiskUse=True)


def export_concepts(samples, path=None, *, maps_field=MAPS_FIELD, annotators=None):
    """Write every concept assignment to JSON (and return the document).

    Format (``"format": "interactive-naming/concepts"``, ``"version": 1``)::

        {"format": ..., "version": 1, "dataset": name, "maps_field": ...,
         "exported_at": ISO time, "annotators": [...],
         "assignments": [{"annotator", "concept", "map_id", "sample_id",
                          "filepath", "layer", "channel"}, ...]}

    ``layer``/``channel`` and ``filepath`` let :func:`import_concepts` place
    names on maps that were recomputed (new ids) or on a rebuilt dataset.
    """
    samples, only = resolve_maps(samples, maps_field=maps_field)
    only = set(only) if only is not None else None
    annotators = annotators or list_annotators(samples, maps_field=maps_field)
    for a in annotators:
        validate_annotator(a)
    sample_ids = set(samples.values("_id"))
    assignments = []
    for row in _all_maps(samples._dataset, maps_field, annotators):
        if row["sample_id"] not in sample_ids:
            continue
        if only is not None and str(row["map_id"]) not in only:
            continue  # a patches view: only its maps
        for a in annotators:
            if row.get(a) is not None:
                assignments.append(
                    {
                        "annotator": a,
                        "concept": row[a],
                        "map_id": str(row["map_id"]),
                        "sample_id": str(row["sample_id"]),
                        "filepath": row["filepath"],
                        "layer": row.get("layer"),
                        "channel": row.get("channel"),
                    }
                )
    document = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "dataset": samples._dataset.name,
        "maps_field": maps_field,
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "annotators": list(annotators),
        "assignments": assignments,
    }
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(document, f, ensure_ascii=False, indent=1)
    return document


def import_concepts(samples, path_or_document, *, maps_field=MAPS_FIELD, annotators=None):
    """Apply assignments exported by :func:`export_concepts`.

    Each assignment is placed on the map with the same id; failing that, on
    the map of the same sample (by id, then by filepath) with the same
    ``layer`` and ``channel`` -- which is how names survive recomputed maps or
    a rebuilt dataset. Existing names for the same annotator and map are
    replaced.

    Returns
    -------
    dict
        ``{"assigned": n, "by_id": n, "by_position": n, "unplaced": [...],
        "invalid": [...]}``; ``unplaced`` lists assignments whose map could
        not be found, ``invalid`` those with a bad annotator or name.
    """
    document = path_or_document
    if not isinstance(document, dict):
        with open(path_or_document, encoding="utf-8") as f:
            try:
                document = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"not a JSON file: {e}") from None
    if document.get("format") != EXPORT_FORMAT:
        raise ValueError(f"not an {EXPORT_FORMAT!r} document")
    if document.get("version") != EXPORT_VERSION:
        raise ValueError(f"unsupported version {document.get('version')!r}")
    rows = document.get("assignments")
    if not isinstance(rows, list):
        raise ValueError("document has no 'assignments' list")
    samples, only = resolve_maps(samples, maps_field=maps_field)
    only = set(only) if only is not None else None

    invalid, valid = [], []
    for row in rows:
        try:
            annotator = validate_annotator(row["annotator"])
            concept = validate_concept_name(row["concept"])
        except (ValueError, KeyError, TypeError) as e:
            invalid.append({"assignment": row, "error": str(e)})
            continue
        if annotators and annotator not in annotators:
            continue
        valid.append((row, annotator, concept))

    by_id, by_sample, by_path = {}, {}, {}
    sample_ids = set(str(i) for i in samples.values("_id"))
    for m in _all_maps(samples._dataset, maps_field, []):
        sid = str(m["sample_id"])
        if sid not in sample_ids:
            continue
        map_id = str(m["map_id"])
        if only is not None and map_id not in only:
            continue  # a patches view: only its maps
        by_id[map_id] = map_id
        key = (m.get("layer"), m.get("channel"))
        by_sample[(sid,) + key] = map_id
        by_path[(m["filepath"],) + key] = map_id

    groups, unplaced = {}, []
    placed_by_id = placed_by_position = 0
    for row, annotator, concept in valid:
        key = (row.get("layer"), row.get("channel"))
        target = by_id.get(str(row.get("map_id")))
        if target is not None:
            placed_by_id += 1
        else:
            target = by_sample.get((str(row.get("sample_id")),) + key) or by_path.get(
                (row.get("filepath"),) + key
            )
            if target is None:
                unplaced.append(row)
                continue
            placed_by_position += 1
        groups.setdefault((annotator, concept), []).append(target)

    for (annotator, concept), ids in groups.items():
        assign_concept(samples, ids, concept, annotator, maps_field=maps_field)

    return {
        "assigned": placed_by_id + placed_by_position,
        "by_id": placed_by_id,
        "by_position": placed_by_position,
        "unplaced": unplaced,
        "invalid": invalid,
    }
