"""``compute_map_visualization``: lay all maps out in 2-D so that maps showing
the same kind of thing land near each other.

The layout is a FiftyOne Brain visualization run over the maps field (so the
App's Embeddings panel shows and lassoes maps), computed from the map
descriptors stored by :func:`compute_activation_maps`.

Points belong to their layout run: each run keeps its 2-D points in its own
map attribute, ``point_<brain_key>`` (the Brain run's ``points_field``), so a
layout of a filtered view leaves the other maps without a point in it, a
second brain key never overwrites the first's points, and deleting the run
(``dataset.delete_brain_run`` or :func:`delete_layout`) removes its points
(the Brain's own cleanup deletes a run's ``points_field``). The naming panel
reads one chosen layout, by default the newest fresh one
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
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

import fiftyone.brain as fob
from fiftyone import ViewField as F

from ..concepts.store import CONCEPT_PREFIX
from ..storage import MAP_ATTRIBUTES, check_field_name, resolve_maps

# PCA before UMAP: wide layers (2048 channels) make UMAP's neighbour search
# slow, and 50 components keep the structure that matters.
_PCA_DIMS = 50
_WRITE_BATCH = 1000
# descriptors are compared as unit vectors; rows equal to this many decimals
# are one descriptor (float32 noise between batches is ~1e-7)
_UNIQUE_DECIMALS = 5
# umap-learn's spectral initialisation needs more points than dimensions + 2
# (scipy's eigh: "k >= N"); below this, random initialisation
_UMAP_SPECTRAL_MIN = 5
POINTS_PREFIX = "point_"
LEGACY_POINTS_ATTRIBUTE = "point"
METHODS = ("umap", "tsne", "pca")


def map_descriptor_matrix(samples, maps_field="actmaps"):
    """``(sample_ids, map_ids, descriptors)`` of every map in ``samples``
    that has a descriptor, in sample order and map order within a sample."""
    sids, ids, descriptors = samples.values(
        ["id", f"{maps_field}.detections.id", f"{maps_field}.detections.descriptor"]
    )
    flat_sids, flat_ids, rows = [], [], []
    for sample_id, sample_maps, sample_descriptors in zip(sids, ids, descriptors):
        for map_id, descriptor in zip(sample_maps or [], sample_descriptors or []):
            if descriptor is not None:
                flat_sids.append(sample_id)
                flat_ids.append(map_id)
                rows.append(np.asarray(descriptor, dtype=np.float32).ravel())
    if not rows:
        return [], [], np.zeros((0, 0), dtype=np.float32)
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise ValueError(
            f"the descriptors in {maps_field!r} have different lengths {sorted(widths)} "
            "(maps of several layers?); lay out one layer at a time, e.g. "
            "samples.filter_labels(maps_field, F('layer') == name)"
        )
    return flat_sids, flat_ids, np.stack(rows)


def prepare_descriptors(descriptors, seed=0):
    """Cosine geometry (unit rows) and at most 50 PCA components (only where
    there are more than 50 rows and more than 50 columns; fewer need none)."""
    x = np.asarray(descriptors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if x.shape[1] > _PCA_DIMS and x.shape[0] > _PCA_DIMS:
        x = PCA(n_components=_PCA_DIMS, random_state=seed).fit_transform(x)
    return x.astype(np.float32)


def unique_descriptors(descriptors):
    """``(unique_rows, inverse)``: identical descriptors (e.g. of duplicated
    images) collapsed to one row, compared as unit vectors to
    ``_UNIQUE_DECIMALS`` decimals; ``unique_rows[inverse]`` gives every row
    back. This is what umap-learn's ``UMAP(unique=True)`` does, applied to
    every method, so duplicates share one point instead of being spread
    apart by the reducer."""
    x = np.asarray(descriptors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    _, first, inverse = np.unique(
        np.round(x, _UNIQUE_DECIMALS), axis=0, return_index=True, return_inverse=True
    )
    return x[first], np.asarray(inverse).ravel()


def layout_points(descriptors, method="umap", num_neighbors=15, min_dist=0.1, seed=51, **kwargs):
    """2-D points for ``descriptors`` ``(N, D)``, for any ``N >= 1``.

    Methods (the libraries FiftyOne Brain uses): ``"umap"`` (umap-learn,
    McInnes et al. 2018), ``"tsne"`` (scikit-learn's ``TSNE``, van der Maaten
    & Hinton 2008), ``"pca"`` (scikit-learn). Rows are compared as unit
    vectors (cosine geometry); identical rows get one point
    (:func:`unique_descriptors`); more than 50 dimensions are reduced by PCA
    to 50 first where there are more than 50 distinct rows.

    Small inputs work, with the parameters adapted (and recorded in the
    returned ``info``) where the library cannot take them as given, with
    ``m`` the number of distinct descriptors:

    - ``m == 1``: every map at ``(0, 0)``;
    - ``"pca"``: ``min(2, m, D)`` components, the missing axis 0;
    - ``"umap"``: ``n_neighbors = clip(num_neighbors, 2, m - 1)``; random
      initialisation for ``m < 5`` (spectral initialisation fails there:
      scipy's "Cannot use scipy.linalg.eigh for sparse A with k >= N");
      ``m == 2``, which umap-learn cannot embed, falls back to PCA;
    - ``"tsne"``: ``perplexity = min(perplexity (default 30), max(1,
      (m - 1) / 3))`` since scikit-learn requires it below ``m``; PCA
      initialisation where ``m > 2`` and ``D >= 2``, else random.

    Parameters
    ----------
    descriptors : array (N, D)
    method : {"umap", "tsne", "pca"}
    num_neighbors, min_dist : UMAP parameters (default 15, 0.1).
    seed : int
    **kwargs
        passed to ``umap.UMAP`` / ``sklearn.manifold.TSNE`` /
        ``sklearn.decomposition.PCA`` (e.g. ``perplexity``, ``metric``).

    Returns
    -------
    (points, info)
        ``points`` float64 ``(N, 2)``; ``info`` the parameters actually used
        (``method_used``, ``distinct_descriptors``, ``fallback`` and the
        method's parameters).
    """
    if method not in METHODS:
        raise ValueError(f"unknown layout method {method!r}; use one of {list(METHODS)}")
    x = np.asarray(descriptors, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError("need a non-empty (N, D) descriptor matrix")
    unique, inverse = unique_descriptors(x)
    m, d = unique.shape
    info = {"method": method, "method_used": method, "distinct_descriptors": int(m), "num_maps": int(len(x)), "fallback": None}
    if m == 1:
        info.update(method_used=None, fallback="one distinct descriptor: every map at (0, 0)")
        return np.zeros((len(x), 2)), info
    if method == "umap" and m == 2:
        method = "pca"
        info.update(method_used="pca", fallback="2 distinct descriptors: UMAP cannot embed 2 points; PCA used")
    if d > _PCA_DIMS and m > _PCA_DIMS:
        unique = PCA(n_components=_PCA_DIMS, random_state=seed).fit_transform(unique).astype(np.float32)
        info["pca_dims"] = _PCA_DIMS
    d = unique.shape[1]

    if method == "pca":
        components = min(2, m, d)
        reduced = PCA(n_components=components, random_state=seed, **kwargs).fit_transform(unique)
        distinct = np.zeros((m, 2))
        distinct[:, :components] = reduced
        info["components"] = components
    elif method == "umap":
        import umap

        n_neighbors = int(min(max(num_neighbors, 2), m - 1))
        init = "spectral" if m >= _UMAP_SPECTRAL_MIN else "random"
        info.update(num_neighbors=n_neighbors, min_dist=min_dist, init=init, seed=seed)
        with warnings.catch_warnings():
            # "n_jobs value 1 overridden by setting random_state": expected
            warnings.filterwarnings("ignore", message=".*n_jobs.*")
            reducer = umap.UMAP(
                n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, init=init,
                random_state=seed, verbose=False, **kwargs,
            )
            distinct = reducer.fit_transform(unique)
    else:
        from sklearn.manifold import TSNE

        perplexity = float(kwargs.pop("perplexity", 30.0))
        perplexity = min(perplexity, max(1.0, (m - 1) / 3.0))
        init = "pca" if m > 2 and d >= 2 else "random"
        info.update(perplexity=perplexity, init=init, seed=seed)
        distinct = TSNE(n_components=2, perplexity=perplexity, init=init, random_state=seed, **kwargs).fit_transform(unique)
    return np.asarray(distinct, dtype=np.float64)[inverse], info


def default_points_attribute(brain_key):
    """The map attribute of a layout's points: ``point_<brain_key>``."""
    return POINTS_PREFIX + brain_key


def compute_map_visualization(
    samples,
    maps_field="actmaps",
    brain_key=None,
    method="umap",
    num_neighbors=15,
    min_dist=0.1,
    seed=51,
    points_attribute=None,
    progress=None,
    **kwargs,
):
    """Lay out the maps of ``samples`` in 2-D.

    The points are computed here (:func:`layout_points`: umap-learn, t-SNE
    or PCA on the map descriptors, duplicates merged, small inputs handled)
    and registered as a FiftyOne Brain visualization run over the maps field
    (``patches_field=maps_field``, the points given, so the Brain records
    ``method="manual"``; the method and the parameters actually used are in
    the run config's ``layout`` entry). Each map of the layout gets its point
    in the attribute ``points_attribute``, which the run owns: maps outside
    the layout have none, and deleting the run removes them.

    Parameters
    ----------
    samples : SampleCollection
        a dataset, a view of its samples, or a patches view of the maps field
        (its maps are laid out). Grouped collections are refused (pass
        ``select_group_slices(...)``).
    maps_field : str
    brain_key : str, optional
        default ``"{maps_field}_layout"``; replaced if it exists (with its
        points).
    method : {"umap", "tsne", "pca"}
    num_neighbors, min_dist : UMAP parameters (default 15, 0.1).
    seed : int
        makes the layout reproducible.
    points_attribute : str, optional
        the map attribute that keeps this layout's points; default
        ``point_<brain_key>``. Must not be another map attribute.
    **kwargs
        passed to the reducer (``umap.UMAP``, ``sklearn.manifold.TSNE``,
        ``sklearn.decomposition.PCA``), e.g. ``perplexity``.

    Returns
    -------
    fiftyone.brain.visualization.VisualizationResults

    Raises
    ------
    ValueError
        no maps field (or a collection that cannot stand for maps), no map
        with a descriptor, an unknown method, a bad key or attribute; raised
        before anything is written.
    """
    samples, _ = resolve_maps(samples, maps_field, what="compute_map_visualization")
    if method not in METHODS:
        raise ValueError(f"unknown layout method {method!r}; use one of {list(METHODS)}")
    brain_key = brain_key or f"{maps_field}_layout"
    check_field_name(brain_key, "brain_key")
    points_attribute = points_attribute or default_points_attribute(brain_key)
    check_field_name(points_attribute, "points_attribute")
    _check_points_attribute(samples, maps_field, brain_key, points_attribute)

    sample_ids, map_ids, descriptors = map_descriptor_matrix(samples, maps_field)
    if not map_ids:
        raise ValueError(
            f"no map with a descriptor in {maps_field!r}; a layout needs at least "
            "one (run compute_activation_maps with store_descriptors=True)"
        )
    points, info = layout_points(
        descriptors, method=method, num_neighbors=num_neighbors, min_dist=min_dist, seed=seed, **kwargs
    )
    if info["fallback"]:
        warnings.warn(f"layout {brain_key!r}: {info['fallback']}")
    info.update(maps_field=maps_field, points_attribute=points_attribute)

    dataset = samples._root_dataset
    if brain_key in dataset.list_brain_runs():
        delete_layout(dataset, brain_key)
    # only maps with descriptors take part, so restrict the view to them
    # (when some lack one); the points are given in the view's label order
    # (sample order, then map order), as map_descriptor_matrix reads them
    view = samples
    if samples.count(f"{maps_field}.detections") != len(map_ids):
        view = samples.select_labels(ids=map_ids, fields=maps_field)
    results = fob.compute_visualization(
        view,
        patches_field=maps_field,
        points=points,
        brain_key=brain_key,
        num_dims=2,
        progress=progress,
        layout=_jsonable(info),
    )
    # the points on the maps: written here in bulk (FiftyOne's
    # set_label_values, which the Brain's points_field uses, took 19 s for
    # 20,000 maps against 2 s), then declared as the run's points_field so
    # that the Brain's own cleanup and listing know them
    write_points(dataset, maps_field, dict(zip(map_ids, points)), points_attribute)
    results.config.points_field = points_attribute
    results.save_config()
    return results


def _jsonable(info):
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in info.items()}


def _check_points_attribute(samples, maps_field, brain_key, attribute):
    # a layout's points must never land on another map attribute (a concept,
    # the heatmap, another layout's points)
    if attribute in MAP_ATTRIBUTES or attribute.startswith(CONCEPT_PREFIX) or attribute in (
        "id", "_id", "label", "bounding_box", "mask", "confidence", "index", "tags", "attributes",
    ):
        raise ValueError(f"points_attribute {attribute!r} is a map attribute of its own; choose another")
    owners = {
        entry["points_attribute"]: entry["brain_key"]
        for entry in list_layouts(samples, maps_field, check_stale=False)
    }
    if attribute in owners and owners[attribute] != brain_key:
        raise ValueError(
            f"points_attribute {attribute!r} holds the points of layout {owners[attribute]!r}; "
            "choose another (or delete that layout)"
        )
    declared = samples._root_dataset.get_field(f"{maps_field}.detections.{attribute}")
    if declared is not None and attribute not in owners:
        raise ValueError(f"{maps_field}.detections.{attribute} exists and is not a layout's points; choose another")


def list_layouts(samples, maps_field="actmaps", check_stale=True):
    """The layouts of ``maps_field``, newest first.

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


def stale_layouts(samples, maps_field="actmaps"):
    """The layouts of ``maps_field`` some of whose maps were recomputed or
    removed since (``live_maps < num_maps``): ``[entry]`` as
    :func:`list_layouts` gives them. Recompute them with
    :func:`compute_map_visualization` or remove them with
    :func:`delete_layout`."""
    return [e for e in list_layouts(samples, maps_field) if e["stale"]]


def stale_message(entry):
    """What to tell a user about a stale layout."""
    gone = entry["num_maps"] - entry["live_maps"]
    return (
        f"layout {entry['brain_key']!r} is stale: {gone} of its {entry['num_maps']} maps were "
        "recomputed or removed since it was computed; recompute the layout "
        "(compute_map_visualization) or delete it (delete_layout)"
    )


def delete_layout(samples, brain_key):
    """Delete a layout run and its points.

    FiftyOne Brain's own cleanup (``dataset.delete_brain_run``) deletes the
    run's ``points_field``, so this equals ``delete_brain_run`` for layouts
    made by :func:`compute_map_visualization`; for legacy layouts (points in
    the shared ``point`` attribute) it also removes ``point`` unless another
    legacy layout of the same maps field remains.
    """
    dataset = samples._root_dataset
    config = dataset.get_brain_info(brain_key).config
    maps_field = getattr(config, "patches_field", None)
    legacy = maps_field is not None and getattr(config, "points_field", None) is None
    dataset.delete_brain_run(brain_key)
    if legacy and not any(e["legacy"] for e in list_layouts(dataset, maps_field, check_stale=False)):
        path = f"{maps_field}.detections.{LEGACY_POINTS_ATTRIBUTE}"
        if dataset.get_field(path) is not None:
            dataset.delete_sample_field(path)


def choose_layout(samples, maps_field="actmaps", brain_key=None, warn=True):
    """The layout to draw: ``brain_key``'s, else the newest fresh layout of
    ``maps_field``, else the newest stale one; ``None`` if there is none.
    Maps carrying points in ``point`` with no run at all (older datasets)
    count as a legacy layout named ``None``. Warns (``UserWarning``) when the
    chosen layout is stale.

    Raises
    ------
    ValueError
        ``brain_key`` is not a layout of ``maps_field``.
    """
    entries = list_layouts(samples, maps_field)
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
    chosen = choose_layout(samples, maps_field)
    if chosen is None:
        raise ValueError(f"no layout of {maps_field!r}; run compute_map_visualization first")
    return chosen["points_attribute"]


def write_points(samples, maps_field, points, attribute="point"):
    """Store ``{map_id: (x, y)}`` on the maps: one update per sample, each
    map addressed by its id through its own array filter. (The default
    ``"point"`` is the legacy attribute; layouts write ``point_<brain_key>``.)"""
    dataset = samples._dataset
    path = f"{maps_field}.detections"
    if dataset.get_field(f"{path}.{attribute}") is None:
        import fiftyone as fo

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


def map_points(samples, maps_field="actmaps", points_attribute=None):
    """``(map_ids, points (N, 2))`` of the maps that have a point in a
    layout: ``points_attribute``, default the layout :func:`choose_layout`
    picks (the newest fresh one)."""
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


def knn_purity(points, labels, k=10):
    """Mean fraction of each point's ``k`` nearest neighbours (itself
    excluded) that share its label: how well a layout groups by ``labels``."""
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    if len(points) != len(labels):
        raise ValueError("points and labels must have the same length")
    if len(points) <= k:
        raise ValueError(f"need more than k={k} points; got {len(points)}")
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    same = labels[neighbours[:, 1:]] == labels[:, None]
    return float(same.mean())


def layout_purity(samples, map_labels, k=10, maps_field="actmaps", points_attribute=None):
    """:func:`knn_purity` of the stored layout, for the maps that have a
    label in ``map_labels`` (``{map_id: label}``, e.g. the ground-truth part
    under each map's peak); ``points_attribute`` as in :func:`map_points`."""
    ids, points = map_points(samples, maps_field, points_attribute)
    keep = [i for i, map_id in enumerate(ids) if map_labels.get(map_id) is not None]
    return knn_purity(points[keep], [map_labels[ids[i]] for i in keep], k=k)


def layout_options(samples, maps_field="actmaps", brain_key=None):
    """For a layout picker: ``(entries, chosen, message)`` with ``entries``
    as :func:`list_layouts` gives them, ``chosen`` the entry to draw
    (``brain_key``'s if it still exists, else as :func:`choose_layout`
    picks) or ``None``, and ``message`` a warning to show (the chosen layout
    is stale, or the picked one is gone) or ``None``. Never raises for a
    vanished ``brain_key``: a panel falls back to the default."""
    message = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported through ``message``
        try:
            chosen = choose_layout(samples, maps_field, brain_key, warn=False)
        except ValueError:
            chosen = choose_layout(samples, maps_field, warn=False)
            message = f"layout {brain_key!r} no longer exists; showing the default"
    if chosen is not None and chosen["stale"]:
        message = stale_message(chosen)
    entries = list_layouts(samples, maps_field)
    return entries, chosen, message
