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

from .maptable import sample_concepts


def check_count(value, name):
    """``value`` as a non-negative ``int``; ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


class Pairs:
    """Per (predicted class, concept) sums over samples, from sparse
    class x sample (``Y``) and sample x concept (``P``: present, ``S``:
    summed share, ``M``: number of maps) indicators.

    Attributes (classes ``K`` x concepts ``C``): ``n_with``, ``share_sum``,
    ``num_maps``, ``conf_with``, ``conf_count_with``, ``known_with``,
    ``wrong_with``; per class ``n_class``, ``conf_class``,
    ``conf_count_class``, ``known_class``, ``wrong_class``.
    """

    def __init__(self, table):
        per_sample = sample_concepts(table)
        n = table.num_samples
        self.classes = sorted({p for p in table.predicted if p is not None}, key=str)
        self.concepts = sorted({c for concepts in per_sample for c in concepts}, key=str)
        Y, rows, cls = self._class_indicator(table)
        P, S, M = self._concept_indicators(per_sample, n)
        self.P = P
        self.has_gt = table.gt_field is not None
        self._confidence = table.confidence
        order = np.argsort(cls, kind="stable")
        bounds = np.searchsorted(cls[order], np.arange(len(self.classes) + 1))
        self._class_rows = [rows[order[bounds[i]:bounds[i + 1]]] for i in range(len(self.classes))]
        self.n_with = np.asarray((Y @ P).todense())
        self.share_sum = np.asarray((Y @ S).todense())
        self.num_maps = np.asarray((Y @ M).todense())
        self._sum_outcomes(table, Y, P)

    def _class_indicator(self, table):
        class_index = {c: i for i, c in enumerate(self.classes)}
        rows = np.flatnonzero(np.array([p is not None for p in table.predicted], dtype=bool))
        cls = np.array([class_index[table.predicted[i]] for i in rows], dtype=np.int64)
        Y = sparse.csr_matrix((np.ones(len(rows)), (cls, rows)), shape=(len(self.classes), table.num_samples))
        return Y, rows, cls

    def _concept_indicators(self, per_sample, n):
        concept_index = {c: j for j, c in enumerate(self.concepts)}
        srows, scols, shares, counts = [], [], [], []
        for s, concepts in enumerate(per_sample):
            for concept, (share, count) in concepts.items():
                srows.append(s)
                scols.append(concept_index[concept])
                shares.append(share)
                counts.append(count)
        shape = (n, len(self.concepts))
        index = (np.array(srows, dtype=np.int64), np.array(scols, dtype=np.int64))
        return (
            sparse.csr_matrix((np.ones(len(srows)), index), shape=shape),
            sparse.csr_matrix((np.array(shares, dtype=float), index), shape=shape),
            sparse.csr_matrix((np.array(counts, dtype=float), index), shape=shape),
        )

    def _sum_outcomes(self, table, Y, P):
        """Confidence, ground-truth and error sums per class and per pair."""
        conf = np.nan_to_num(table.confidence, nan=0.0)
        has_conf = ~np.isnan(table.confidence)
        correct = table.correct
        known = np.array([c is not None for c in correct], dtype=bool)
        wrong = np.array([c is False for c in correct], dtype=bool)

        def per_class(vector):
            return np.asarray(Y @ vector).ravel()

        def per_pair(vector):
            return np.asarray((Y @ sparse.diags(vector) @ P).todense())

        self.n_class = per_class(np.ones(table.num_samples))
        self.conf_class = per_class(conf * has_conf)
        self.conf_count_class = per_class(has_conf.astype(float))
        self.conf_with = per_pair(conf * has_conf)
        self.conf_count_with = per_pair(has_conf.astype(float))
        self.known_class = per_class(known.astype(float))
        self.known_with = per_pair(known.astype(float))
        self.wrong_class = per_class(wrong.astype(float))
        self.wrong_with = per_pair(wrong.astype(float))

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
