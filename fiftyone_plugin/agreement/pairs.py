"""Pair alpha: Krippendorff's alpha over pairs of maps ("same concept or
not"), invariant to the names each annotator chose, from contingency tables
(never enumerating the n^2/2 pairs).
"""

import numpy as np
from scipy import sparse

from .alpha import AlphaUndefinedError, pair_counts
from .codes import encode_labels


def _judged_groups(judged):
    """Group maps by *which* annotators judged them: ``(group, patterns)``
    with ``patterns[group[i]]`` the boolean row of map i's annotators."""
    m, n = judged.shape
    if m <= 62:
        mask = np.zeros(n, dtype=np.int64)
        for a in range(m):
            mask |= judged[a].astype(np.int64) << a
        if m <= 20:
            present = np.bincount(mask, minlength=1 << m) > 0
            ids = np.cumsum(present) - 1
            masks = np.flatnonzero(present)
            group = ids[mask]
        else:
            masks, group = np.unique(mask, return_inverse=True)
        patterns = ((masks[:, None] >> np.arange(m)[None, :]) & 1).astype(bool)
        return group.reshape(-1), patterns
    patterns, group = np.unique(judged.T, axis=0, return_inverse=True)
    return group.reshape(-1), patterns


def _dense_ids(keys, size):
    """Relabel non-negative int keys to 0..R-1 (bincount when ``size`` is
    small, a sort otherwise)."""
    if size <= max(4 * keys.size, 1 << 20):
        present = np.bincount(keys, minlength=size) > 0
        ids = np.cumsum(present) - 1
        return ids[keys], int(present.sum())
    uniq, inverse = np.unique(keys, return_inverse=True)
    return inverse.reshape(-1), len(uniq)


def _pairs_weighted(rows, groups, n_groups, weights):
    """``sum over unordered pairs {i, j} of maps with rows[i] == rows[j] of
    weights[groups[i], groups[j]]``, from the (row, group) counts ``n``:
    ``(sum_r n_r^T W n_r - diag(W) . sum_r n_r) / 2``. ``n^T n`` is a
    groups x groups sparse product, so memory stays O(maps)."""
    if rows.size == 0:
        return 0.0
    r, g, count = pair_counts(rows, groups, n_groups)
    table = sparse.csr_matrix((count.astype(np.float64), (r, g)), shape=(int(r.max()) + 1, n_groups))
    gram = (table.T @ table).toarray()
    totals = np.bincount(g, weights=count, minlength=n_groups)
    return 0.5 * (np.sum(weights * gram) - np.diag(weights) @ totals)


def pair_alpha_from_codes(codes):
    """Pair alpha of coded labels (annotators x maps, -1 missing); see
    :func:`pair_alpha`."""
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2:
        raise ValueError(f"codes must be annotators x maps; got shape {codes.shape}")
    judged = codes >= 0
    # a map judged by fewer than two annotators is in no pairable pair
    keep = judged.sum(axis=0) >= 2
    codes, judged = codes[:, keep], judged[:, keep]
    n_annotators, n_maps = codes.shape
    if n_maps < 2:
        raise AlphaUndefinedError(
            "pair alpha is undefined: fewer than two maps were judged by two or more "
            "annotators, so no pair of maps has two judgments",
            "no_pairable_units",
        )
    group, patterns = _judged_groups(judged)
    pat = patterns.astype(np.int64)
    shared = pat @ pat.T  # annotators who judged both maps, per pair of groups
    pairable = shared >= 2
    n_groups = len(patterns)

    # n = sum over pairs of m_p (pairs with m_p >= 2)
    all_rows = np.zeros(n_maps, dtype=np.int64)
    total = _pairs_weighted(all_rows, group, n_groups, np.where(pairable, shared, 0).astype(float))

    same = 0.0  # N1: "same" judgments in pairable pairs
    cross = 0.0  # sum_{a<b} sum_p [both say same] / (m_p - 1)
    sizes = codes.max(axis=1) + 1
    for a in range(n_annotators):
        for b in range(a, n_annotators):
            sel = judged[a] & judged[b]
            if not sel.any():
                continue
            local_groups = np.flatnonzero(patterns[:, a] & patterns[:, b])
            local = np.full(n_groups, -1, dtype=np.int64)
            local[local_groups] = np.arange(len(local_groups))
            g = local[group[sel]]
            sub = np.ix_(local_groups, local_groups)
            if a == b:
                rows = codes[a, sel]
                same += _pairs_weighted(rows, g, len(local_groups), pairable[sub].astype(float))
            else:
                key = codes[a, sel] * sizes[b] + codes[b, sel]
                rows, _ = _dense_ids(key, int(sizes[a]) * int(sizes[b]))
                weights = 1.0 / (shared[sub] - 1.0)  # a and b are in both: m >= 2
                cross += _pairs_weighted(rows, g, len(local_groups), weights)
    different = total - same
    if total == 0:
        raise AlphaUndefinedError(
            "pair alpha is undefined: no pair of maps was judged by two or more annotators",
            "no_pairable_units",
        )
    if same == 0 or different == 0:
        kind = "the same concept" if different == 0 else "different concepts"
        raise AlphaUndefinedError(
            f"pair alpha is undefined: every judged pair of maps was called {kind} by "
            "everyone (no variation, expected disagreement 0)",
            "no_variation",
        )
    disagreement = same - 2.0 * cross
    return float(1.0 - (total - 1.0) * disagreement / (same * different))


def pair_alpha(labels):
    """Krippendorff's alpha over pairs of maps: "same concept or not".

    Parameters
    ----------
    labels : array-like (annotators x maps)
        Any hashable labels, ``None``/``nan`` missing. Only equality *within*
        an annotator's row matters, so renaming an annotator's labels does
        not change the result.

    Returns
    -------
    float

    Raises
    ------
    AlphaUndefinedError (a ValueError)
        no pair of maps judged by two annotators, or no variation (every
        judged pair "same", or every one "different").

    Notes
    -----
    Units are the unordered pairs ``p = {i, j}`` of maps; annotator ``a``
    gives ``p`` the value ``s_a(p) = [c_a(i) == c_a(j)]`` when it judged
    both maps. With ``m_p`` judgments of which ``k_p`` say "same", the binary
    nominal alpha is (Krippendorff 2011, coincidences ``o_01 = o_10 =
    sum_p k_p (m_p - k_p) / (m_p - 1)``)::

        alpha = 1 - (n - 1) D / (n_1 n_0),
        n   = sum_p m_p,  n_1 = sum_p k_p,  n_0 = n - n_1,
        D   = sum_p k_p (m_p - k_p) / (m_p - 1)

    over pairs with ``m_p >= 2``. Since ``k_p^2 = k_p + 2 sum_{a<b} s_a s_b``,
    ``k (m - k) / (m - 1) = k - 2 sum_{a<b} s_a s_b / (m - 1)``, so::

        D = n_1 - 2 sum_{a<b} sum_p s_a(p) s_b(p) / (m_p - 1)

    ``m_p`` depends only on the sets of annotators who judged each map. Maps
    are grouped by that set (``g``), and every sum above is a weighted count
    of pairs that share a key (``c_a``, or ``(c_a, c_b)``): with ``N[r, g]``
    the number of maps with key ``r`` in group ``g`` and a weight ``W[g, h]``
    per pair of groups, ``sum_p [same key] W = (sum_r N_r^T W N_r - diag(W)
    . sum_r N_r) / 2``. For two annotators without missing data this is the
    familiar ``sum_ij C(n_ij, 2)`` of their contingency table. Cost: one
    contingency table per annotator and per pair of annotators, memory
    O(maps).

    References
    ----------
    K. Krippendorff, "Computing Krippendorff's Alpha-Reliability", 2011,
    https://repository.upenn.edu/asc_papers/43 (binary nominal alpha from
    coincidences).

    Examples
    --------
    Three maps, two annotators. Alice puts maps 0 and 1 together, Bob maps 1
    and 2: of the pairs {0,1}, {0,2}, {1,2} Alice says same/different/
    different and Bob different/different/same, so ``n = 6`` values, ``n_1 =
    2`` "same", ``n_0 = 4`` and ``D = 1 + 0 + 1``: ``alpha = 1 - 5 * 2 / (2 *
    4) = -0.25``.

    >>> pair_alpha([["x", "x", "y"], ["p", "q", "q"]])
    -0.25

    The same partition in other words is perfect agreement:

    >>> pair_alpha([["x", "x", "y"], ["p", "p", "q"]])
    1.0
    """
    codes, _ = encode_labels(labels)
    return pair_alpha_from_codes(codes)

