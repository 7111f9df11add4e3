"""Where to look next: clusters of the maps an annotator has not named, as
ready-made selections (:func:`candidate_groups`), and the unnamed maps by how
much of the classifier's contribution naming them would explain
(:func:`what_next`).
"""

import pandas as pd
from sklearn.cluster import HDBSCAN
from sklearn.preprocessing import StandardScaler

from ..concepts.store import concept_field, validate_annotator
from ..storage import MAPS_FIELD, maps_field_of
from .model import read_descriptors


def candidate_groups(samples, annotator, *, maps_field=MAPS_FIELD, min_cluster_size=10):
    """Clusters of the maps ``annotator`` has not named, as ready-made
    selections, largest unexplained share first.

    scikit-learn's ``HDBSCAN`` over the standardised descriptors of the
    unnamed maps (noise points belong to no group). A group's
    ``unexplained_share`` is the summed ``share`` of its maps (the part of
    the classifier's positive contribution they carry, see
    :func:`fiftyone_plugin.compute_activation_maps`), which naming them
    would explain.

    Parameters
    ----------
    samples : SampleCollection
    annotator : str
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
    min_cluster_size : int, default 10
        HDBSCAN's smallest group; with fewer unnamed maps there is none.

    Returns
    -------
    pandas.DataFrame
        ``group, size, unexplained_share, map_ids`` (a list), ordered by
        ``unexplained_share``.

    References
    ----------
    R. J. G. B. Campello, D. Moulavi and J. Sander, "Density-Based
    Clustering Based on Hierarchical Density Estimates", PAKDD 2013
    (``sklearn.cluster.HDBSCAN``).
    """
    table = read_descriptors(samples, annotator, maps_field=maps_field)
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


def what_next(samples, annotator, *, maps_field=MAPS_FIELD):
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
