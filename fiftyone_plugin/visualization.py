"""``compute_map_visualization``: lay all maps out in 2-D so that maps showing
the same kind of thing land near each other.

The layout is a FiftyOne Brain visualization run over the maps field (so the
App's Embeddings panel shows and lassoes maps), computed from the map
descriptors stored by :func:`compute_activation_maps`; each map also keeps its
2-D ``point`` for the naming panel.
"""

import numpy as np
from bson import ObjectId
from pymongo import UpdateOne
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

import fiftyone.brain as fob

from .storage import check_field_name, maps_field_of

# PCA before UMAP: wide layers (2048 channels) make UMAP's neighbour search
# slow, and 50 components keep the structure that matters.
_PCA_DIMS = 50
_WRITE_BATCH = 1000


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
                rows.append(np.asarray(descriptor, dtype=np.float32))
    if not rows:
        return [], [], np.zeros((0, 0), dtype=np.float32)
    return flat_sids, flat_ids, np.stack(rows)


def prepare_descriptors(descriptors, seed=0):
    """Cosine geometry (unit rows) and at most 50 PCA components."""
    x = np.asarray(descriptors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if x.shape[1] > _PCA_DIMS and x.shape[0] > _PCA_DIMS:
        x = PCA(n_components=_PCA_DIMS, random_state=seed).fit_transform(x)
    return x.astype(np.float32)


def compute_map_visualization(
    samples,
    maps_field="actmaps",
    brain_key=None,
    method="umap",
    num_neighbors=15,
    min_dist=0.1,
    seed=51,
    points_attribute="point",
    progress=None,
    **kwargs,
):
    """Lay out the maps of ``samples`` in 2-D.

    Parameters
    ----------
    samples : SampleCollection
    maps_field : str
    brain_key : str, optional
        default ``"{maps_field}_layout"``; replaced if it exists.
    method : str
        a FiftyOne Brain visualization method (``"umap"``, ``"tsne"``,
        ``"pca"``, ``"manual"``).
    num_neighbors, min_dist : UMAP parameters.
    seed : int
        makes the layout reproducible.
    points_attribute : str
        the map attribute that keeps each map's 2-D point.
    **kwargs
        passed to ``fiftyone.brain.compute_visualization``.

    Returns
    -------
    fiftyone.brain.visualization.VisualizationResults
    """
    maps_field_of(samples, maps_field)
    brain_key = brain_key or f"{maps_field}_layout"
    check_field_name(brain_key, "brain_key")
    check_field_name(points_attribute, "points_attribute")

    sample_ids, map_ids, descriptors = map_descriptor_matrix(samples, maps_field)
    if len(map_ids) < 3:
        raise ValueError(
            f"{len(map_ids)} map(s) with descriptors in {maps_field!r}; a layout "
            "needs at least 3 (run compute_activation_maps with store_descriptors=True)"
        )
    embeddings = prepare_descriptors(descriptors, seed=seed)

    options = dict(kwargs)
    if method == "umap":
        options.setdefault("n_neighbors", min(num_neighbors, len(map_ids) - 1))
        options.setdefault("min_dist", min_dist)
        options.setdefault("seed", seed)
        options.setdefault("verbose", False)
    elif method in ("tsne", "pca"):
        options.setdefault("seed", seed)

    if brain_key in samples.list_brain_runs():
        samples.delete_brain_run(brain_key)
    # only maps with descriptors take part, so restrict the view to them;
    # the Brain takes patch embeddings as {sample id: (num maps, dims)}
    view = samples.select_labels(ids=map_ids, fields=maps_field)
    per_sample = {}
    for sample_id, row in zip(sample_ids, embeddings):
        per_sample.setdefault(sample_id, []).append(row)
    results = fob.compute_visualization(
        view,
        patches_field=maps_field,
        embeddings={k: np.stack(v) for k, v in per_sample.items()},
        brain_key=brain_key,
        method=method,
        num_dims=2,
        progress=progress,
        **options,
    )

    points = dict(zip(results.current_label_ids, np.asarray(results.current_points)))
    write_points(samples, maps_field, points, points_attribute)
    return results


def write_points(samples, maps_field, points, attribute="point"):
    """Store ``{map_id: (x, y)}`` on the maps: one update per sample, each
    map addressed by its id through its own array filter."""
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


def map_points(samples, maps_field="actmaps", points_attribute="point"):
    """``(map_ids, points (N, 2))`` of the maps that have a layout point."""
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


def layout_purity(samples, map_labels, k=10, maps_field="actmaps", points_attribute="point"):
    """:func:`knn_purity` of the stored layout, for the maps that have a
    label in ``map_labels`` (``{map_id: label}``, e.g. the ground-truth part
    under each map's peak)."""
    ids, points = map_points(samples, maps_field, points_attribute)
    keep = [i for i, map_id in enumerate(ids) if map_labels.get(map_id) is not None]
    return knn_purity(points[keep], [map_labels[ids[i]] for i in keep], k=k)
