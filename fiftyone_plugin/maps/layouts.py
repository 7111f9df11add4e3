"""The layouts of a maps field, as the panel and users read them: list
(newest first, stale ones flagged), choose one to draw, read and write its
points, delete it.

A layout is a FiftyOne Brain visualization run over the maps field (so the
App's Embeddings panel shows and lassoes maps), made by
:func:`fiftyone_plugin.maps.layout.compute_map_visualization`, with a
custom run of the same key (``run_type`` :data:`LAYOUT_RUN_TYPE`) that
records it under the package's run contract.

Points belong to their layout: each layout keeps its 2-D points in its own
map attribute, ``point_<brain_key>`` (the Brain run's ``points_field``), so
a layout of a filtered view leaves the other maps without a point in it, a
second brain key never overwrites the first's points, and deleting the
layout (:func:`delete_layout`, ``dataset.delete_run`` or
``dataset.delete_brain_run``) removes its points, never the maps. The naming
panel reads one chosen layout, by default the newest fresh one
(:func:`choose_layout`). A layout whose maps were recomputed or removed is
*stale*: :func:`list_layouts` flags it, :func:`stale_layouts` lists it, and
reading it warns. Layouts made before this scheme kept their points in the
shared ``point`` attribute; they are still read ("legacy").
"""

import warnings
from datetime import datetime

import numpy as np
from bson import ObjectId
from pymongo import UpdateOne

import fiftyone as fo
import fiftyone.brain as fob
from fiftyone import ViewField as F

from ..storage import MAPS_FIELD

#: the ``run_type`` of the custom run that records a layout (key: its brain key)
LAYOUT_RUN_TYPE = "map_layout"
POINTS_PREFIX = "point_"
LEGACY_POINTS_ATTRIBUTE = "point"
_WRITE_BATCH = 1000


def default_points_attribute(brain_key):
    """The map attribute of a layout's points: ``point_<brain_key>``.

    >>> default_points_attribute("actmaps_layout")
    'point_actmaps_layout'
    """
    return POINTS_PREFIX + brain_key


def list_layouts(samples, *, maps_field=MAPS_FIELD, check_stale=True):
    """The layouts of ``maps_field``, newest first.

    Parameters
    ----------
    samples : SampleCollection
        the dataset or any view of it (layouts are the dataset's).
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
    check_stale : bool, default True
        count each layout's live maps (one query per layout).

    Returns
    -------
    list of dict
        ``{"brain_key", "method", "points_attribute", "timestamp",
        "num_maps" (maps laid out), "live_maps" (of those, maps that still
        exist), "stale" (some laid-out maps were recomputed or removed),
        "legacy" (points in the shared ``point`` attribute)}``. Brain
        visualization runs of ``maps_field`` are listed whether computed by
        :func:`compute_map_visualization` or not, if their points are on the
        maps. With ``check_stale=False``, ``live_maps`` and ``stale`` are
        ``None`` (no counting).
    """
    dataset = samples._root_dataset
    schema = dataset.get_field_schema(flat=True)
    entries = []
    for key in dataset.list_brain_runs(type=fob.Visualization):
        info = dataset.get_brain_info(key)
        config = info.config
        if getattr(config, "patches_field", None) != maps_field:
            continue
        layout = getattr(config, "layout", None) or {}
        attribute = config.points_field
        legacy = attribute is None
        if legacy:
            if f"{maps_field}.detections.{LEGACY_POINTS_ATTRIBUTE}" not in schema:
                continue  # a Brain run without points on the maps: nothing to draw
            attribute = LEGACY_POINTS_ATTRIBUTE
        entries.append(
            {
                "brain_key": key,
                "method": layout.get("method", config.method),
                "points_attribute": attribute,
                "timestamp": info.timestamp,
                "num_maps": layout.get("num_maps"),
                "live_maps": None,
                "stale": None,
                "legacy": legacy,
            }
        )
    if check_stale:
        for entry in entries:
            _count_live(dataset, maps_field, entry)
    entries.sort(key=lambda e: e["timestamp"] or datetime.min, reverse=True)
    return entries


def _count_live(dataset, maps_field, entry):
    if entry["num_maps"] is None:  # not ours: the run's results know
        try:
            results = dataset.load_brain_results(entry["brain_key"], load_view=False)
            entry["num_maps"] = int(len(results.points))
        except Exception:  # results that cannot be loaded: unknown size
            entry["num_maps"] = None
    live = 0
    if dataset.get_field(f"{maps_field}.detections.{entry['points_attribute']}") is not None:
        # maps (not coordinates: count() of a list attribute counts its items)
        live = dataset.filter_labels(
            maps_field, F(entry["points_attribute"]).exists(), only_matches=True
        ).count(f"{maps_field}.detections")
    entry["live_maps"] = int(live)
    entry["stale"] = bool(entry["num_maps"] and live < entry["num_maps"])


def stale_layouts(samples, *, maps_field=MAPS_FIELD):
    """The layouts of ``maps_field`` some of whose maps were recomputed or
    removed since (``live_maps < num_maps``).

    Recompute them with
    :func:`~fiftyone_plugin.maps.layout.compute_map_visualization` or
    remove them with :func:`delete_layout`.

    Parameters
    ----------
    samples : SampleCollection
        the dataset or any view of it (layouts are the dataset's).
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)

    Returns
    -------
    list of dict
        entries as :func:`list_layouts` gives them.
    """
    return [e for e in list_layouts(samples, maps_field=maps_field) if e["stale"]]


def stale_message(entry):
    """What to tell a user about a stale layout (an entry of
    :func:`list_layouts` with ``live_maps`` counted).

    >>> stale_message({"brain_key": "k", "num_maps": 8, "live_maps": 2})[:38]
    "layout 'k' is stale: 6 of its 8 maps w"
    """
    gone = entry["num_maps"] - entry["live_maps"]
    return (
        f"layout {entry['brain_key']!r} is stale: {gone} of its {entry['num_maps']} maps were "
        "recomputed or removed since it was computed; recompute the layout "
        "(compute_map_visualization) or delete it (delete_layout)"
    )


def delete_layout(samples, brain_key):
    """Delete a layout: its Brain run, the custom run that records it, and
    its points (never the maps).

    FiftyOne Brain's own cleanup (``dataset.delete_brain_run``) deletes the
    run's ``points_field``; the layout's custom run (``dataset.delete_run``)
    deletes the points and the Brain run. This deletes both, whichever was
    renamed since. For legacy layouts (points in the shared ``point``
    attribute) it also removes ``point`` unless another legacy layout of the
    same maps field remains.

    Parameters
    ----------
    samples : SampleCollection
        the dataset or any view of it.
    brain_key : str
        the layout's Brain key.

    Raises
    ------
    ValueError
        no Brain run ``brain_key``.
    """
    dataset = samples._root_dataset
    config = dataset.get_brain_info(brain_key).config
    maps_field = getattr(config, "patches_field", None)
    points_field = getattr(config, "points_field", None)
    legacy = maps_field is not None and points_field is None
    dataset.delete_brain_run(brain_key)
    if points_field is not None:
        for key in layout_run_keys(dataset, maps_field, points_field):
            dataset.delete_run(key)
    if legacy and not any(e["legacy"] for e in list_layouts(dataset, maps_field=maps_field, check_stale=False)):
        path = f"{maps_field}.detections.{LEGACY_POINTS_ATTRIBUTE}"
        if dataset.get_field(path) is not None:
            dataset.delete_sample_field(path)


def layout_run_keys(dataset, maps_field, points_attribute):
    """The keys of the custom runs (:data:`LAYOUT_RUN_TYPE`) that record the
    layout of ``maps_field`` whose points are in ``points_attribute``."""
    return [
        key for key in dataset.list_runs(method=LAYOUT_RUN_TYPE)
        if getattr(dataset.get_run_info(key).config, "maps_field", None) == maps_field
        and getattr(dataset.get_run_info(key).config, "points_attribute", None) == points_attribute
    ]


def choose_layout(samples, *, maps_field=MAPS_FIELD, brain_key=None, warn=True):
    """The layout to draw: ``brain_key``'s, else the newest fresh layout of
    ``maps_field``, else the newest stale one; ``None`` if there is none.
    Maps carrying points in ``point`` with no run at all (older datasets)
    count as a legacy layout named ``None``. Warns (``UserWarning``) when the
    chosen layout is stale.

    Parameters
    ----------
    samples : SampleCollection
        the dataset or any view of it (layouts are the dataset's).
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
    brain_key : str, optional
        the layout to draw; default the newest fresh one.
    warn : bool, default True
        warn when the chosen layout is stale.

    Returns
    -------
    dict or None
        an entry as :func:`list_layouts` gives them.

    Raises
    ------
    ValueError
        ``brain_key`` is not a layout of ``maps_field``.
    """
    entries = list_layouts(samples, maps_field=maps_field)
    if brain_key is not None:
        chosen = next((e for e in entries if e["brain_key"] == brain_key), None)
        if chosen is None:
            raise ValueError(
                f"no layout {brain_key!r} of {maps_field!r}; layouts: {[e['brain_key'] for e in entries]}"
            )
    else:
        chosen = next((e for e in entries if not e["stale"]), entries[0] if entries else None)
    if chosen is None:
        dataset = samples._root_dataset
        if dataset.get_field(f"{maps_field}.detections.{LEGACY_POINTS_ATTRIBUTE}") is not None:
            return {
                "brain_key": None, "method": None, "points_attribute": LEGACY_POINTS_ATTRIBUTE,
                "timestamp": None, "num_maps": None, "live_maps": None, "stale": False, "legacy": True,
            }
        return None
    if chosen["stale"] and warn:
        warnings.warn(stale_message(chosen))
    return chosen


def _points_attribute(samples, maps_field, points_attribute):
    if points_attribute is not None:
        return points_attribute
    chosen = choose_layout(samples, maps_field=maps_field)
    if chosen is None:
        raise ValueError(f"no layout of {maps_field!r}; run compute_map_visualization first")
    return chosen["points_attribute"]


def write_points(samples, points, *, maps_field=MAPS_FIELD, attribute=LEGACY_POINTS_ATTRIBUTE):
    """Store 2-D points on the maps: one update per sample, each map
    addressed by its id through its own array filter.

    Parameters
    ----------
    samples : SampleCollection
        the dataset or any view of it.
    points : dict
        ``{map_id: (x, y)}``; maps not listed keep what they have.
    maps_field : str, default ``"actmaps"``
    attribute : str, default ``"point"``
        the map attribute (declared as a list of floats if new); ``"point"``
        is the legacy attribute, layouts write ``point_<brain_key>``.
    """
    dataset = samples._dataset
    path = f"{maps_field}.detections"
    if dataset.get_field(f"{path}.{attribute}") is None:
        dataset.add_sample_field(f"{path}.{attribute}", fo.ListField, subfield=fo.FloatField)

    by_sample = {}
    wanted = [ObjectId(i) for i in points]
    for start in range(0, len(wanted), 50_000):
        chunk = wanted[start : start + 50_000]
        cursor = dataset._sample_collection.aggregate(
            [
                {"$match": {f"{path}._id": {"$in": chunk}}},
                {"$project": {"m": f"${path}._id"}},
            ]
        )
        for row in cursor:
            by_sample[row["_id"]] = [m for m in row["m"] if str(m) in points]

    ops = []
    for sample_id, oids in by_sample.items():
        update, filters = {}, []
        for n, oid in enumerate(oids):
            update[f"{path}.$[m{n}].{attribute}"] = [float(v) for v in points[str(oid)]]
            filters.append({f"m{n}._id": oid})
        ops.append(UpdateOne({"_id": sample_id}, {"$set": update}, array_filters=filters))
        if len(ops) >= _WRITE_BATCH:
            dataset._sample_collection.bulk_write(ops, ordered=False)
            ops = []
    if ops:
        dataset._sample_collection.bulk_write(ops, ordered=False)


def map_points(samples, *, maps_field=MAPS_FIELD, points_attribute=None):
    """The maps that have a point in a layout, and their points.

    Parameters
    ----------
    samples : SampleCollection
        the dataset or any view of it (layouts are the dataset's).
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
    points_attribute : str, optional
        the layout's points attribute; default the one of the layout
        :func:`choose_layout` picks (the newest fresh one).

    Returns
    -------
    map_ids : list of str
    points : ndarray, shape (N, 2), float64

    Raises
    ------
    ValueError
        no ``points_attribute`` given and no layout of ``maps_field``.
    """
    points_attribute = _points_attribute(samples, maps_field, points_attribute)
    ids, points = samples.values(
        [f"{maps_field}.detections.id", f"{maps_field}.detections.{points_attribute}"]
    )
    flat_ids, rows = [], []
    for sample_ids, sample_points in zip(ids, points):
        for map_id, point in zip(sample_ids or [], sample_points or []):
            if point is not None:
                flat_ids.append(map_id)
                rows.append(point)
    return flat_ids, np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def layout_options(samples, *, maps_field=MAPS_FIELD, brain_key=None):
    """For a layout picker: ``(entries, chosen, message)`` with ``entries``
    as :func:`list_layouts` gives them, ``chosen`` the entry to draw
    (``brain_key``'s if it still exists, else as :func:`choose_layout`
    picks) or ``None``, and ``message`` a warning to show (the chosen layout
    is stale, or the picked one is gone) or ``None``. Never raises for a
    vanished ``brain_key``: a panel falls back to the default.

    Parameters
    ----------
    samples : SampleCollection
        the dataset or any view of it (layouts are the dataset's).
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
    brain_key : str, optional
        the layout the picker last showed.
    """
    message = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported through ``message``
        try:
            chosen = choose_layout(samples, maps_field=maps_field, brain_key=brain_key, warn=False)
        except ValueError:
            chosen = choose_layout(samples, maps_field=maps_field, warn=False)
            message = f"layout {brain_key!r} no longer exists; showing the default"
    if chosen is not None and chosen["stale"]:
        message = stale_message(chosen)
    entries = list_layouts(samples, maps_field=maps_field)
    return entries, chosen, message
