"""Per *(predicted class, concept)* sums over the samples of a
:class:`~fiftyone_plugin.evaluation.explanations.MapTable` (pure: numpy and
scipy.sparse, no FiftyOne), shared by the typical reasons
(:mod:`.reasons`) and the untrustworthy example types
(:mod:`.untrustworthy`).

A concept is *present* in a sample when at least one of its significant maps
has that name; :data:`~fiftyone_plugin.concepts.store.NOT_NAMEABLE` and
unnamed maps are never concepts.
"""

import numpy as np
from scipy import sparse

from ..concepts.store import NOT_NAMEABLE


def check_count(value, name):
    """``value`` as a non-negative ``int``; ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


class Pairs:
    """Per (predicted class, concept) sums over samples, from sparse
    class x sample and sample x concept indicators."""

    def __init__(self, table):
        per_sample = {}
        for s, concept, share in zip(table.map_sample, table.concepts, table.shares):
            if concept is None or concept == NOT_NAMEABLE:
                continue
            key = (int(s), concept)
            per_sample[key] = per_sample.get(key, 0.0) + float(share)
        maps_per = {}
        for s, concept in zip(table.map_sample, table.concepts):
            if concept is None or concept == NOT_NAMEABLE:
                continue
            key = (int(s), concept)
            maps_per[key] = maps_per.get(key, 0) + 1

        n = table.num_samples
        has_prediction = np.array([p is not None for p in table.predicted], dtype=bool)
        self.classes = sorted({p for p in table.predicted if p is not None}, key=str)
        class_index = {c: i for i, c in enumerate(self.classes)}
        self.concepts = sorted({c for _, c in per_sample}, key=str)
        concept_index = {c: j for j, c in enumerate(self.concepts)}

        rows = np.flatnonzero(has_prediction)
        cls = np.array([class_index[table.predicted[i]] for i in rows], dtype=np.int64)
        Y = sparse.csr_matrix(
            (np.ones(len(rows)), (cls, rows)), shape=(len(self.classes), n)
        )
        keys = list(per_sample)
        srows = np.array([k[0] for k in keys], dtype=np.int64)
        scols = np.array([concept_index[k[1]] for k in keys], dtype=np.int64)
        P = sparse.csr_matrix((np.ones(len(keys)), (srows, scols)), shape=(n, len(self.concepts)))
        S = sparse.csr_matrix(
            ([per_sample[k] for k in keys], (srows, scols)), shape=(n, len(self.concepts))
        )
        M = sparse.csr_matrix(
            ([maps_per[k] for k in keys], (srows, scols)), shape=(n, len(self.concepts))
        )
        self.P = P

        conf = np.nan_to_num(table.confidence, nan=0.0)
        has_conf = ~np.isnan(table.confidence)
        correct = table.correct
        known = np.array([c is not None for c in correct], dtype=bool)
        wrong = np.array([c is False for c in correct], dtype=bool)

        def per_class(vector):
            return np.asarray(Y @ vector).ravel()

        def per_pair(vector):
            return np.asarray((Y @ sparse.diags(vector) @ P).todense())

        self.n_class = per_class(np.ones(n))
        self.n_with = np.asarray((Y @ P).todense())
        self.share_sum = np.asarray((Y @ S).todense())
        self.num_maps = np.asarray((Y @ M).todense())
        self.conf_class = per_class(conf * has_conf)
        self.conf_count_class = per_class(has_conf.astype(float))
        self.conf_with = per_pair(conf * has_conf)
        self.conf_count_with = per_pair(has_conf.astype(float))
        self.known_class = per_class(known.astype(float))
        self.known_with = per_pair(known.astype(float))
        self.wrong_class = per_class(wrong.astype(float))
        self.wrong_with = per_pair(wrong.astype(float))
        self.has_gt = table.gt_field is not None
        self._confidence = table.confidence
        order = np.argsort(cls, kind="stable")
        bounds = np.searchsorted(cls[order], np.arange(len(self.classes) + 1))
        self._class_rows = [rows[order[bounds[i]:bounds[i + 1]]] for i in range(len(self.classes))]

    def pairs(self):
        """``(class index, concept index)`` of the pairs with ``n_with > 0``."""
        k, j = np.nonzero(self.n_with)
        order = np.lexsort((j, k))
        return k[order], j[order]

    def confidences(self, k, j):
        """Confidences of class ``k``'s samples with and without concept
        ``j`` (samples with a confidence only)."""
        rows = self._class_rows[k]
        present = np.asarray(self.P[rows][:, [j]].todense()).ravel() > 0
        conf = self._confidence[rows]
        ok = ~np.isnan(conf)
        return conf[present & ok], conf[~present & ok]
