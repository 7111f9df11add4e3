"""Inter-annotator agreement on concept naming, invariant to the names used.

Annotators name concepts in their own namespaces ("red head" for one,
"crimson crown" for another), so nominal alpha on the raw names measures
vocabulary, not agreement. :func:`compute_agreement` reports three
label-invariant Krippendorff's alphas:

pair alpha
    The units are the *pairs of maps*; each annotator who judged both maps
    of a pair gives it the binary value "same concept" / "different". This is
    alpha on the partitions the annotators made, whatever the names. It is
    computed from contingency tables, never enumerating the n^2/2 pairs (see
    :func:`pair_alpha` for the derivation).
aligned alpha
    Each annotator's concepts are matched one-to-one to the others' by the
    Hungarian algorithm on their overlap (:func:`align_concepts`), then
    nominal alpha is computed on the aligned labels, *cross-fitted*: the
    matching is learned on one random half of the maps and scores the other
    half, then the halves swap (:func:`aligned_alpha`). Scored on the maps
    it was fitted to, the matching would flatter the alpha (independent
    random naming of 300 maps with 6 concepts got +0.07); cross-fitted, it
    is about 0 under independence and still 1 for the same partition in
    other words. The alignment reported (and used for the canonical names
    and the consensus) is the one fitted on all maps: it is the best guess
    of the correspondence, not a score.
nameable alpha
    Nominal alpha on "named" vs :data:`NOT_NAMEABLE`.

A map an annotator did not name is *missing data* (it drops out of that
annotator's pairable values), never a value. ``NOT_NAMEABLE`` is a judgment:
with ``not_nameable="category"`` (default) it is one shared class in the
pair and aligned alphas (two maps both "not nameable" are the same kind of
answer, and it is matched only to itself); with ``"missing"`` those two
alphas only look at maps both annotators named with a concept.

The array functions here need no FiftyOne; :func:`compute_agreement` and
:func:`write_consensus` read and write the concept store.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment

from .alpha import AlphaUndefinedError, alpha_from_codes, pair_counts

# Same marker as ``concepts.NOT_NAMEABLE`` (asserted by the tests); repeated
# so that the array functions import without FiftyOne.
NOT_NAMEABLE = "__not_nameable__"

RUN_TYPE = "agreement"
STATISTICS = ("pair_alpha", "aligned_alpha", "nameable_alpha")
_NOT_NAMEABLE_MODES = ("category", "missing")
_MAX_NAME_LENGTH = 100
_MAX_ALIGN_PASSES = 10


# --------------------------------------------------------------------------
# coding labels


def encode_labels(labels):
    """Per-annotator integer codes of ``labels`` (annotators x maps).

    Returns ``(codes, names)``: ``codes`` is an int64 array of the same shape
    with -1 for missing (``None`` / ``nan``) and ``names[a][codes[a, i]]`` the
    label. Codes are per annotator: the same text from two annotators is not
    assumed to mean the same thing.
    """
    import pandas as pd

    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        rows = list(labels)
    else:
        rows = [np.asarray(r, dtype=object) if not isinstance(r, np.ndarray) else r for r in labels]
    lengths = {len(r) for r in rows}
    if len(lengths) > 1:
        raise ValueError(
            f"every annotator needs one label (or None) per map; got lengths {sorted(lengths)}"
        )
    n = lengths.pop() if lengths else 0
    codes = np.empty((len(rows), n), dtype=np.int64)
    names = []
    for a, row in enumerate(rows):
        row_codes, uniques = pd.factorize(row, use_na_sentinel=True)
        codes[a] = row_codes
        names.append(list(np.asarray(uniques, dtype=object)))
    return codes, names


# --------------------------------------------------------------------------
# pair alpha


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
    """
    codes, _ = encode_labels(labels)
    return pair_alpha_from_codes(codes)


# --------------------------------------------------------------------------
# alignment


def _nominal_alpha(codes):
    """Nominal alpha of a coded annotators x units array (-1 missing)."""
    codes = np.asarray(codes, dtype=np.int64)
    present = codes >= 0
    units = np.nonzero(present)[1]
    values = codes[present]
    size = int(values.max()) + 1 if values.size else 0
    return alpha_from_codes(units, values, codes.shape[1], np.arange(size), "nominal")


class _Aligner:
    """Hungarian alignment of every annotator's concepts to the others'.

    Canonical ids: 0 is :data:`NOT_NAMEABLE` (when it is a category), then
    one id per aligned concept. First each annotator in ``order`` is matched
    to those before it (overlap summed over them), its unmatched concepts
    getting new ids; then passes re-match each annotator to all others until
    nothing improves. Each accepted change strictly raises the total number
    of agreeing judgments, so the passes end.
    """

    def __init__(self, codes, not_nameable_codes, order, sizes=None):
        self.codes = codes
        self.nn = not_nameable_codes
        self.order = list(order)
        # ``sizes``: the annotators' code counts on all maps, when ``codes``
        # hides some maps (the scored half in cross-fitting)
        if sizes is None:
            sizes = [int(codes[a].max()) + 1 if codes.shape[1] else 0 for a in range(len(codes))]
        self.sizes = [int(s) for s in sizes]
        # the concepts to align: codes in use, NOT_NAMEABLE aside
        self.real = []
        for a in range(len(codes)):
            used = np.bincount(codes[a][codes[a] >= 0], minlength=self.sizes[a]) > 0
            if not_nameable_codes[a] >= 0 and not_nameable_codes[a] < self.sizes[a]:
                used[not_nameable_codes[a]] = False
            self.real.append(np.flatnonzero(used))
        self.mapping = [None] * len(codes)
        self.next_id = 1  # 0 is reserved for NOT_NAMEABLE

    def aligned(self, a):
        out = np.full(self.codes.shape[1], -1, dtype=np.int64)
        sel = self.codes[a] >= 0
        out[sel] = self.mapping[a][self.codes[a, sel]]
        return out

    def overlap(self, a, others):
        table = np.zeros((self.sizes[a], self.next_id))
        for b in others:
            lb = self.aligned(b)
            sel = (self.codes[a] >= 0) & (lb >= 0)
            ca, cb, count = pair_counts(self.codes[a, sel], lb[sel], self.next_id, self.sizes[a])
            table[ca, cb] += count
        return table

    def match(self, a, table):
        new = np.full(self.sizes[a], -1, dtype=np.int64)
        if self.nn[a] >= 0:
            new[self.nn[a]] = 0
        rows = self.real[a]
        gain = 0.0
        if rows.size and self.next_id > 1:
            sub = table[rows][:, 1:]
            r, c = linear_sum_assignment(sub, maximize=True)
            good = sub[r, c] > 0
            new[rows[r[good]]] = c[good] + 1
            gain = float(sub[r[good], c[good]].sum())
        for row in rows:  # unmatched concepts: this annotator's own ids
            if new[row] < 0:
                new[row] = self.next_id
                self.next_id += 1
        return new, gain

    def compact(self):
        held = [m[m >= 0] for m in self.mapping if m is not None]
        used = np.unique(np.concatenate(held + [np.zeros(1, np.int64)]))
        remap = np.full(self.next_id, -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        remap[0] = 0
        for a, m in enumerate(self.mapping):
            if m is not None:
                self.mapping[a] = np.where(m >= 0, remap[np.maximum(m, 0)], -1)
        self.next_id = len(used)

    def run(self):
        done = []
        for a in self.order:
            self.mapping[a], _ = self.match(a, self.overlap(a, done))
            done.append(a)
        for _ in range(_MAX_ALIGN_PASSES):
            changed = False
            for a in self.order:
                table = self.overlap(a, [b for b in self.order if b != a])
                current = self.mapping[a]
                real = self.real[a]
                old_gain = float(table[real, current[real]].sum()) if real.size else 0.0
                new, gain = self.match(a, table)
                if gain > old_gain + 1e-9:
                    self.mapping[a] = new
                    changed = True
                self.compact()
            if not changed:
                break
        self.compact()
        return self


def _canonical_names(aligner, names, annotators):
    """Name each canonical id after its first holder in ``order`` (most used
    concept first); names taken twice get the annotator as a suffix."""
    first = {}
    for a in aligner.order:
        counts = np.bincount(aligner.codes[a][aligner.codes[a] >= 0], minlength=aligner.sizes[a])
        for code in np.argsort(-counts, kind="stable"):
            t = int(aligner.mapping[a][code])
            if t > 0 and t not in first:
                first[t] = (a, names[a][code])
    taken = {NOT_NAMEABLE}
    result = {0: NOT_NAMEABLE}
    for t in sorted(first, key=lambda t: (aligner.order.index(first[t][0]), t)):
        a, name = first[t]
        candidate, k = str(name), 1
        while candidate in taken:
            suffix = f" ({annotators[a]})" if k == 1 else f" ({annotators[a]} {k})"
            candidate = str(name)[: _MAX_NAME_LENGTH - len(suffix)] + suffix
            k += 1
        taken.add(candidate)
        result[t] = candidate
    return result


def align_concepts(labels, annotators=None, reference=None, not_nameable="category"):
    """Match every annotator's concepts to the others' (Hungarian on overlap).

    Parameters
    ----------
    labels : array-like (annotators x maps), ``None`` missing
    annotators : list of str, optional
        Names of the rows (default ``"0"``, ``"1"``, ...).
    reference : str, optional
        The annotator aligned first, whose names the canonical concepts take
        (default: the one who judged most maps).
    not_nameable : {"category", "missing"}

    Returns
    -------
    dict
        ``{"aligned": int array (annotators x maps, -1 missing),
        "names": {canonical id: name}, "alignment": {annotator: {concept:
        canonical name}}}``
    """
    codes, names = encode_labels(labels)
    annotators = _annotator_names(annotators, len(codes))
    concept_codes, nn = _concept_codes(codes, names, not_nameable)
    order = _order(concept_codes, annotators, reference)
    aligner = _Aligner(concept_codes, nn, order).run()
    canon = _canonical_names(aligner, names, annotators)
    aligned = np.stack([aligner.aligned(a) for a in range(len(codes))]) if len(codes) else codes
    return {
        "aligned": aligned,
        "names": canon,
        "alignment": _alignment_report(aligner, names, annotators, canon),
    }


def _alignment_report(aligner, names, annotators, canon):
    report = {}
    for a in aligner.order:
        report[annotators[a]] = {
            str(names[a][code]): canon[int(aligner.mapping[a][code])]
            for code in range(aligner.sizes[a])
            if aligner.mapping[a][code] >= 0
        }
    return report


# --------------------------------------------------------------------------
# helpers shared by the statistics


def _annotator_names(annotators, count):
    if annotators is None:
        return [str(i) for i in range(count)]
    annotators = [str(a) for a in annotators]
    if len(annotators) != count:
        raise ValueError(f"{len(annotators)} annotator names for {count} rows of labels")
    if len(set(annotators)) != len(annotators):
        raise ValueError(f"annotator names must be distinct; got {annotators}")
    return annotators


def _not_nameable_codes(names):
    return np.array(
        [row.index(NOT_NAMEABLE) if NOT_NAMEABLE in row else -1 for row in names], dtype=np.int64
    )


def _concept_codes(codes, names, not_nameable):
    """Codes for the pair and aligned alphas: ``NOT_NAMEABLE`` kept as a
    category or made missing."""
    if not_nameable not in _NOT_NAMEABLE_MODES:
        raise ValueError(f"not_nameable must be one of {_NOT_NAMEABLE_MODES}; got {not_nameable!r}")
    nn = _not_nameable_codes(names)
    if not_nameable == "category":
        return codes, nn
    out = codes.copy()
    for a, code in enumerate(nn):
        if code >= 0:
            out[a][out[a] == code] = -1
    return out, np.full(len(codes), -1, dtype=np.int64)


def _nameable_codes(codes, names):
    nn = _not_nameable_codes(names)
    out = np.where(codes >= 0, 1, -1)
    for a, code in enumerate(nn):
        if code >= 0:
            out[a][codes[a] == code] = 0
    return out


def _order(codes, annotators, reference):
    judged = (codes >= 0).sum(axis=1)
    order = sorted(range(len(codes)), key=lambda a: -judged[a])
    if reference is not None:
        if reference not in annotators:
            raise ValueError(f"reference {reference!r} is not one of the annotators {annotators}")
        ref = annotators.index(reference)
        order.remove(ref)
        order.insert(0, ref)
    return order


def _attempt(fn, *args):
    """``(value, None)``, or ``(nan, reason)`` when alpha is undefined."""
    try:
        return fn(*args), None
    except AlphaUndefinedError as err:
        return math.nan, str(err)


def _aligned_alpha(concept_codes, nn, order, repeats=None, seed=None, folds=None):
    """Cross-fitted aligned alpha and the in-sample alignment (for the
    report, canonical names and consensus): ``(value, reason, aligner,
    aligned, design)``."""
    aligner = _Aligner(concept_codes, nn, order).run()
    aligned = np.stack([aligner.aligned(a) for a in range(len(concept_codes))])
    value, reason, design = _attempt_cross_fit(concept_codes, nn, order, repeats, seed, folds)
    return value, reason, aligner, aligned, design


# --------------------------------------------------------------------------
# cross-fitted aligned alpha

ALIGNED_REPEATS = 5
ALIGNED_SEED = 0
# keys of the scored values: 0 NOT_NAMEABLE, 1 "not alignable from the other
# half", then one key per (annotator, concept)
_UNSEEN = 1


def cross_fit_folds(n_maps, pairable, repeats=ALIGNED_REPEATS, seed=ALIGNED_SEED):
    """Random halves of the pairable maps for cross-fitting.

    Parameters
    ----------
    n_maps : int
    pairable : array of int
        Indices of the maps judged by two or more annotators (the only maps
        that enter the alignment or the alpha).
    repeats : int, default :data:`ALIGNED_REPEATS`
        Number of independent random splits.
    seed : int, default :data:`ALIGNED_SEED`
        Seed of ``numpy.random.default_rng``: the same data give the same
        alpha.

    Returns
    -------
    int array (repeats x n_maps)
        0 or 1, the half of each pairable map in each split (sizes differ by
        at most one); -1 for the other maps.
    """
    if not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer; got {repeats!r}")
    pairable = np.asarray(pairable, dtype=np.int64)
    rng = np.random.default_rng(seed)
    folds = np.full((int(repeats), int(n_maps)), -1, dtype=np.int64)
    for r in range(int(repeats)):
        order = rng.permutation(pairable)
        folds[r, order[: len(order) // 2]] = 0
        folds[r, order[len(order) // 2:]] = 1
    return folds


def _fold_keys(aligner, sizes, offsets):
    """Per annotator, the key of each of its concept codes under an alignment
    fitted on the training half: NOT_NAMEABLE -> 0; a concept the annotator
    never used there -> :data:`_UNSEEN`; any other -> the key of the first
    holder (in ``aligner.order``) of its canonical concept, so that keys mean
    the same in every fold and split."""
    holder = {}
    for a in aligner.order:
        mapping = aligner.mapping[a]
        for code in np.flatnonzero(mapping > 0):
            holder.setdefault(int(mapping[code]), int(offsets[a] + code))
    keys = []
    for a, size in enumerate(sizes):
        k = np.full(size, _UNSEEN, dtype=np.int64)
        mapping = aligner.mapping[a]
        for code in np.flatnonzero(mapping > 0):
            k[code] = holder[int(mapping[code])]
        if aligner.nn[a] >= 0:
            k[aligner.nn[a]] = 0  # matched only to itself, whatever the training half holds
        keys.append(k)
    return keys


def _nominal_sums(values):
    """Observed and expected disagreement sums of nominal alpha
    (``alpha = 1 - observed / expected``, Krippendorff 2011) of an annotators
    x units array of keys (-1 missing), units with two or more values only;
    and the number of pairable values."""
    present = values >= 0
    units = np.nonzero(present)[1]
    keys = values[present]
    m = np.bincount(units, minlength=values.shape[1])
    keep = m[units] >= 2
    units, keys = units[keep], keys[keep]
    if keys.size == 0:
        return 0.0, 0.0, 0
    size = int(keys.max()) + 1
    n_c = np.bincount(keys, minlength=size).astype(np.float64)
    n = n_c.sum()
    u, _, count = pair_counts(units, keys, size, values.shape[1])
    trace = np.sum(count * (count - 1.0) / (m[u] - 1.0))
    return float(n - trace), float((n * n - np.sum(n_c * n_c)) / (n - 1.0)), int(n)


_DESIGN = "cross-fitted: concepts matched on one half of the maps, alpha on the other, halves swapped"


def _cross_fitted_sums(codes, nn, order, folds):
    """Summed observed and expected disagreements of the scored halves over
    the splits ``folds`` (see :func:`aligned_alpha`), the number of scored
    "not alignable" values and of scored values."""
    codes = np.asarray(codes, dtype=np.int64)
    n_annotators = len(codes)
    sizes = [int(row.max()) + 1 if row.size else 0 for row in codes]
    offsets = 2 + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    observed = expected = 0.0
    unseen = scored_values = 0
    for split in folds:
        scored = np.full(codes.shape, -1, dtype=np.int64)
        for half in (0, 1):
            train, test = split == 1 - half, split == half
            # the alignment sees the other half only: under independence the
            # scored labels are a fixed recoding of independent labels
            aligner = _Aligner(np.where(train[None, :], codes, -1), nn, order, sizes).run()
            keys = _fold_keys(aligner, sizes, offsets)
            for a in range(n_annotators):
                sel = test & (codes[a] >= 0)
                scored[a, sel] = keys[a][codes[a, sel]]
        o, e, n = _nominal_sums(scored)
        observed, expected, scored_values = observed + o, expected + e, scored_values + n
        unseen += int((scored[:, (scored >= 0).sum(axis=0) >= 2] == _UNSEEN).sum())
    return observed, expected, unseen, scored_values


def _cross_fitted_alpha(codes, nn, order, folds):
    """``(alpha, unalignable share)``; raises :class:`AlphaUndefinedError`."""
    observed, expected, unseen, n = _cross_fitted_sums(codes, nn, order, folds)
    if n == 0:
        raise AlphaUndefinedError(
            "aligned alpha is undefined: no map was judged by two or more annotators",
            "no_pairable_units",
        )
    if not expected > 0:
        if unseen == n:
            message = (
                "aligned alpha is undefined: no concept could be matched from the other half "
                "of the maps (too few maps per concept to cross-fit the alignment)"
            )
        else:
            message = (
                "aligned alpha is undefined: every pairable judgment is the same aligned "
                "concept (no variation, expected disagreement 0)"
            )
        raise AlphaUndefinedError(message, "no_variation")
    return float(1.0 - observed / expected), unseen / n


def _attempt_cross_fit(codes, nn, order, repeats, seed, folds):
    """``(value, reason, design)``: the cross-fitted alpha, ``nan`` with the
    reason when undefined, and how it was computed."""
    repeats = ALIGNED_REPEATS if repeats is None else repeats
    seed = ALIGNED_SEED if seed is None else seed
    if folds is None:
        pairable = np.flatnonzero((np.asarray(codes) >= 0).sum(axis=0) >= 2)
        folds = cross_fit_folds(np.asarray(codes).shape[1], pairable, repeats, seed)
    design = {"method": _DESIGN, "splits": int(len(folds)), "seed": int(seed), "unalignable_share": None}
    try:
        value, design["unalignable_share"] = _cross_fitted_alpha(codes, nn, order, folds)
        return value, None, design
    except AlphaUndefinedError as err:
        return math.nan, str(err), design


def aligned_alpha(
    labels,
    annotators=None,
    reference=None,
    not_nameable="category",
    repeats=ALIGNED_REPEATS,
    seed=ALIGNED_SEED,
    folds=None,
):
    """Krippendorff's nominal alpha after matching concepts across
    annotators, cross-fitted so that the matching cannot flatter it.

    Parameters
    ----------
    labels : array-like (annotators x maps)
        Any hashable labels, ``None``/``nan`` missing, :data:`NOT_NAMEABLE`
        a judgment.
    annotators : list of str, optional
        Names of the rows (only to choose ``reference``).
    reference : str, optional
        The annotator aligned first (default: the one who judged most maps).
    not_nameable : {"category", "missing"}
        As in :func:`compute_agreement`.
    repeats : int, default 5 (:data:`ALIGNED_REPEATS`)
        Random splits in halves, pooled (see Notes).
    seed : int, default 0 (:data:`ALIGNED_SEED`)
        Seed of the splits: the same data always give the same alpha.
    folds : int array (splits x maps), optional
        Explicit halves (0/1 per map judged by two or more annotators, -1
        elsewhere), instead of ``repeats`` random ones.

    Returns
    -------
    float
        1 when the annotators made the same partition of the maps in any
        words, about 0 (no systematic sign) when they named independently,
        negative for systematic disagreement.

    Raises
    ------
    AlphaUndefinedError (a ValueError)
        no map judged by two annotators, or no variation among the scored
        values (including: no concept could be matched from the other half).

    Notes
    -----
    *Why.* The Hungarian matching of :func:`align_concepts` picks, among all
    correspondences, the one with the most agreeing judgments. Scored on the
    maps it was chosen on, that maximum is biased upwards: annotators naming
    independently at random (300 maps, 6 concepts) get an alpha of about
    +0.07 (up to +0.12) instead of 0. This is the selection bias of
    evaluating a choice on the data that made it.

    *Cross-fitting* (sample splitting, Cox 1975; cross-fitting in
    Chernozhukov et al. 2018) removes it. The maps judged by two or more
    annotators are split at random in two halves; the concepts are matched
    on one half only, and that matching recodes the other half; then the
    halves swap roles, so every map is scored exactly once, by a matching
    that never saw it. Maps are exchangeable, so under independent naming
    the scored labels are a fixed recoding of independent labels, whose
    alpha has expectation about 0 (exactly 0 up to Krippendorff's
    small-sample terms). Agreement that is real is still found: when the
    halves recover the true correspondence the recoding is a relabelling
    and the alpha equals the alpha with the true names (nominal alpha does
    not depend on names).

    *Pooling.* Scored values are keyed by concept, not by fold: a concept
    matched to another annotator's takes the key of the first annotator (in
    the alignment order) holding it, the same key in every half and split,
    so both halves' coincidences form one coincidence matrix and one alpha
    (Krippendorff 2011, ``alpha = 1 - D_o / D_e``; for one split the result
    equals nominal alpha of the scored labels). ``repeats`` splits (fixed
    ``seed``) reduce the dependence on one split: their observed and
    expected disagreements are summed, ``alpha = 1 - sum_r D_o,r / sum_r
    D_e,r``. Where the halves recover the correspondence the split does not
    matter at all; under independent naming (300 maps, 2 annotators, 6
    concepts) the spread over split seeds is 0.027 with one split, 0.013
    with 5 and 0.008 with 10, against a sampling spread of the data
    themselves of about 0.02, hence 5 by default.

    *Concepts the other half never saw.* A concept an annotator used only
    on the scored half cannot be matched without looking at the scores. All
    such judgments share one value, "not alignable" (a fixed recoding,
    still unbiased under independence): two annotators who both use rare
    concepts of their own on a map agree there, one who uses a rare concept
    where the other uses a common one disagrees. The share of such
    judgments is reported (``unalignable_share``); a large share means too
    few maps per concept for the aligned alpha (use the pair alpha).
    ``NOT_NAMEABLE`` (as a category) is always matched only to itself.

    *What it costs.* A matching learned on half the maps is sometimes wrong
    where concepts are weakly told apart; a wrong match only adds
    disagreement, so the errors go downwards: with unequal concept
    frequencies (.4/.2/.15/.1/.1/.05, 300 maps, independent naming) the
    mean is -0.009 rather than 0 (alpha penalises unequal marginals), and
    on one data set of two annotators who each follow a hidden truth on
    60% of 300 maps the alpha is 0.284 against 0.300 with the true names. Where the design
    is biased at all, it is biased downwards.

    References: K. Krippendorff, "Computing Krippendorff's Alpha-
    Reliability", 2011; D. R. Cox, "A note on data-splitting for the
    evaluation of significance levels", Biometrika 62, 1975; V.
    Chernozhukov et al., "Double/debiased machine learning for treatment and
    structural parameters", Econometrics Journal 21, 2018.
    """
    codes, names = encode_labels(labels)
    annotators = _annotator_names(annotators, len(codes))
    concept_codes, nn = _concept_codes(codes, names, not_nameable)
    order = _order(concept_codes, annotators, reference)
    if folds is None:
        pairable = np.flatnonzero((concept_codes >= 0).sum(axis=0) >= 2)
        folds = cross_fit_folds(codes.shape[1], pairable, repeats, seed)
    else:
        folds = np.atleast_2d(np.asarray(folds, dtype=np.int64))
        if folds.shape[1] != codes.shape[1] or not np.isin(folds, (-1, 0, 1)).all():
            raise ValueError(
                f"folds must be splits x {codes.shape[1]} maps of 0, 1 (the halves) or -1; "
                f"got shape {folds.shape}"
            )
    value, _ = _cross_fitted_alpha(concept_codes, nn, order, folds)
    return value


def _nameable_alpha(nameable):
    value, reason = _attempt(_nominal_alpha, nameable)
    if reason is not None and "same value" in reason:
        answer = "named with a concept" if (nameable == 1).any() else f"marked {NOT_NAMEABLE}"
        reason = (
            f"nameable alpha is undefined: every pairable map was {answer} by everyone "
            "who judged it (no variation, expected disagreement 0)"
        )
    return value, reason


# --------------------------------------------------------------------------
# per concept and consensus


def _per_concept(codes, names, annotators, canon_of, jaccard_threshold):
    """For each annotator's concept, its best match (Jaccard over the maps
    both annotators judged) in every other annotator's namespace.

    Descriptive, not cross-fitted: the best match is chosen on the same maps
    its Jaccard is measured on, so a concept used on very few maps can look
    "shared" by chance (the aligned alpha does not have this bias)."""
    m = len(codes)
    entries = []
    for a in range(m):
        counts = np.bincount(codes[a][codes[a] >= 0], minlength=len(names[a]))
        best = {}
        for b in range(m):
            if b == a:
                continue
            sel = (codes[a] >= 0) & (codes[b] >= 0)
            row_total = np.bincount(codes[a, sel], minlength=len(names[a]))
            col_total = np.bincount(codes[b, sel], minlength=len(names[b]))
            ca, cb, inter = pair_counts(codes[a, sel], codes[b, sel], len(names[b]), len(names[a]))
            jac = inter / (row_total[ca] + col_total[cb] - inter)
            top = np.lexsort((cb, -jac, ca))  # by concept, best Jaccard, then code
            first = np.ones(len(top), dtype=bool)
            first[1:] = ca[top][1:] != ca[top][:-1]
            hits = {int(ca[i]): (int(cb[i]), float(jac[i]), int(inter[i])) for i in top[first]}
            best[b] = (hits, row_total)
        for code in np.argsort(-counts, kind="stable"):
            name = names[a][code]
            if name == NOT_NAMEABLE or counts[code] == 0:
                continue
            matches, shared_with = {}, []
            for b in range(m):
                if b == a:
                    continue
                hits, row_total = best[b]
                judged_both = int(row_total[code])
                hit = hits.get(int(code))
                if hit is None:
                    matches[annotators[b]] = {
                        "concept": None, "jaccard": 0.0, "overlap": 0, "judged_by_both": judged_both,
                    }
                    continue
                other, jac, inter = hit
                other_name = names[b][other]
                matches[annotators[b]] = {
                    "concept": str(other_name),
                    "jaccard": jac,
                    "overlap": inter,
                    "judged_by_both": judged_both,
                }
                if other_name != NOT_NAMEABLE and jac >= jaccard_threshold:
                    shared_with.append(annotators[b])
            entries.append(
                {
                    "annotator": annotators[a],
                    "concept": str(name),
                    "count": int(counts[code]),
                    "canonical": canon_of(a, int(code)),
                    "shared": bool(shared_with),
                    "shared_with": shared_with,
                    "matches": matches,
                }
            )
    return entries


def _consensus(aligned, min_votes):
    """Per map, the aligned label given by a strict majority of the
    annotators who judged it (and by at least ``min_votes``), else -1."""
    n = aligned.shape[1]
    present = aligned >= 0
    maps = np.nonzero(present)[1]
    labels = aligned[present]
    result = np.full(n, -1, dtype=np.int64)
    if labels.size == 0:
        return result
    judged = np.bincount(maps, minlength=n)
    mi, li, count = pair_counts(maps, labels, int(labels.max()) + 1, n)
    top = np.lexsort((-count, mi))
    mi, li, count = mi[top], li[top], count[top]
    first = np.ones(len(mi), dtype=bool)
    first[1:] = mi[1:] != mi[:-1]
    mi, li, count = mi[first], li[first], count[first]
    win = (count >= min_votes) & (2 * count > judged[mi])
    result[mi[win]] = li[win]
    return result


# --------------------------------------------------------------------------
# results


def _clean(value):
    """JSON-friendly: nan -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


@dataclass
class AgreementResults:
    """What :func:`compute_agreement` found.

    Alphas are floats; ``nan`` where undefined, with the reason in
    ``reasons[statistic]``. ``pairwise`` holds annotators x annotators
    matrices (``None`` on the diagonal and where undefined, reasons in
    ``pairwise["undefined"]``). ``map_ids`` and ``consensus_labels`` (one per
    map, ``None`` where there is no majority) are kept in memory only; the
    run results store the rest (:meth:`to_dict`).
    """

    annotators: list
    not_nameable: str
    n_maps: int
    n_judged: int
    n_overlap: int
    pair_alpha: float
    aligned_alpha: float
    nameable_alpha: float
    reasons: dict
    alignment: dict
    canonical_concepts: list
    pairwise: dict
    per_concept: list
    consensus: dict
    maps_field: str = None
    run_key: str = None
    aligned_design: dict = None
    map_ids: list = field(default=None, repr=False)
    consensus_labels: list = field(default=None, repr=False)

    def to_dict(self):
        """JSON-serialisable summary (no per-map lists; ``nan`` -> ``None``)."""
        keys = [
            "annotators", "maps_field", "not_nameable", "n_maps", "n_judged", "n_overlap",
            *STATISTICS, "reasons", "alignment", "canonical_concepts", "pairwise",
            "per_concept", "consensus", "aligned_design",
        ]
        return _clean({k: getattr(self, k) for k in keys})


def aligned_alpha_note(results):
    """One line saying how ``results.aligned_alpha`` was computed, for the
    operator and the report: the cross-fitted design and, when some scored
    judgments used a concept the other half never saw, their share."""
    design = getattr(results, "aligned_design", None) or {}
    note = (
        f"cross-fitted: concepts matched on one half of the maps, alpha scored on the other, "
        f"halves swapped; {design.get('splits', ALIGNED_REPEATS)} random splits (seed "
        f"{design.get('seed', ALIGNED_SEED)})"
    )
    share = design.get("unalignable_share")
    if share:
        note += (
            f"; {share:.1%} of the scored judgments used a concept the other half never saw "
            "(one shared 'not alignable' value)"
        )
    return note


def agreement_from_labels(
    labels,
    annotators=None,
    map_ids=None,
    not_nameable="category",
    reference=None,
    min_votes=2,
    jaccard_threshold=0.5,
):
    """All agreement statistics of an annotators x maps array of concept
    names (``None`` missing, :data:`NOT_NAMEABLE` a judgment).

    See :func:`compute_agreement` for the parameters and the result; this is
    the same computation without FiftyOne. ``labels`` may also be a dict
    ``{annotator: labels}``.
    """
    if isinstance(labels, Mapping):
        if annotators is None:
            annotators = list(labels)
        labels = [labels[a] for a in annotators]
    codes, names = encode_labels(labels)
    annotators = _annotator_names(annotators, len(codes))
    if len(codes) < 2:
        raise ValueError(
            f"agreement needs at least two annotators; got {annotators}"
        )
    if not isinstance(min_votes, (int, np.integer)) or min_votes < 1:
        raise ValueError(f"min_votes must be a positive integer; got {min_votes!r}")
    if not 0.0 <= float(jaccard_threshold) <= 1.0:
        raise ValueError(f"jaccard_threshold must be in [0, 1]; got {jaccard_threshold!r}")
    n_maps = codes.shape[1]
    judged_count = (codes >= 0).sum(axis=0)
    n_overlap = int((judged_count >= 2).sum())
    if n_overlap == 0:
        raise ValueError(
            f"no map was judged by two or more of the annotators {annotators}: agreement "
            "needs maps that several annotators named (or marked not nameable)"
        )
    if map_ids is not None and len(map_ids) != n_maps:
        raise ValueError(f"{len(map_ids)} map ids for {n_maps} maps")

    concept_codes, nn = _concept_codes(codes, names, not_nameable)
    nameable = _nameable_codes(codes, names)
    order = _order(concept_codes, annotators, reference)

    reasons = {}
    pair_value, reasons["pair_alpha"] = _attempt(pair_alpha_from_codes, concept_codes)
    aligned_value, reasons["aligned_alpha"], aligner, aligned, aligned_design = _aligned_alpha(
        concept_codes, nn, order
    )
    nameable_value, reasons["nameable_alpha"] = _nameable_alpha(nameable)
    reasons = {k: v for k, v in reasons.items() if v is not None}

    canon = _canonical_names(aligner, names, annotators)
    alignment = _alignment_report(aligner, names, annotators, canon)
    canonical = _canonical_report(aligner, names, annotators, canon, aligned)

    consensus_ids = _consensus(aligned, min_votes)
    consensus_labels = [canon[int(t)] if t >= 0 else None for t in consensus_ids]
    consensus_counts = {}
    for label in consensus_labels:
        if label is not None:
            consensus_counts[label] = consensus_counts.get(label, 0) + 1
    consensus = {
        "rule": f"strict majority of the annotators who judged the map, at least {min_votes}",
        "named": int(sum(v for k, v in consensus_counts.items() if k != NOT_NAMEABLE)),
        "not_nameable": int(consensus_counts.get(NOT_NAMEABLE, 0)),
        "no_consensus": int(((aligned >= 0).any(axis=0) & (consensus_ids < 0)).sum()),
        "concepts": dict(sorted(consensus_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
    }

    return AgreementResults(
        annotators=annotators,
        not_nameable=not_nameable,
        n_maps=int(n_maps),
        n_judged=int((judged_count >= 1).sum()),
        n_overlap=n_overlap,
        pair_alpha=pair_value,
        aligned_alpha=aligned_value,
        nameable_alpha=nameable_value,
        reasons=reasons,
        alignment=alignment,
        canonical_concepts=canonical,
        pairwise=_pairwise(codes, concept_codes, nn, nameable, annotators),
        per_concept=_per_concept(
            concept_codes, names, annotators,
            lambda a, code: (
                canon[int(aligner.mapping[a][code])]
                if code < aligner.sizes[a] and aligner.mapping[a][code] >= 0
                else None
            ),
            jaccard_threshold,
        ),
        consensus=consensus,
        aligned_design=aligned_design,
        map_ids=list(map_ids) if map_ids is not None else None,
        consensus_labels=consensus_labels,
    )


def _canonical_report(aligner, names, annotators, canon, aligned):
    counts = np.bincount(aligned[aligned >= 0], minlength=len(canon))
    members = {t: {} for t in canon}
    for a in aligner.order:
        for code in range(aligner.sizes[a]):
            t = int(aligner.mapping[a][code])
            if t >= 0:
                members[t][annotators[a]] = str(names[a][code])
    report = []
    for t in sorted(canon, key=lambda t: (-counts[t], canon[t])):
        if not members[t]:
            continue
        report.append(
            {
                "name": canon[t],
                "judgments": int(counts[t]),
                "annotators": len(members[t]),
                "members": members[t],
            }
        )
    return report


def _pairwise(codes, concept_codes, nn, nameable, annotators):
    m = len(annotators)
    overlap = [[None] * m for _ in range(m)]
    matrices = {s: [[None] * m for _ in range(m)] for s in STATISTICS}
    undefined = []
    judged = codes >= 0
    for a in range(m):
        overlap[a][a] = int(judged[a].sum())
        for b in range(a + 1, m):
            both = int((judged[a] & judged[b]).sum())
            overlap[a][b] = overlap[b][a] = both
            rows = [a, b]
            sub = concept_codes[rows]
            order = sorted(range(2), key=lambda i: -(sub[i] >= 0).sum())
            values = {
                "pair_alpha": _attempt(pair_alpha_from_codes, sub),
                "aligned_alpha": _aligned_alpha(sub, nn[rows], order)[:2],
                "nameable_alpha": _nameable_alpha(nameable[rows]),
            }
            for stat, (value, reason) in values.items():
                if reason is not None:
                    undefined.append(
                        {"annotators": [annotators[a], annotators[b]], "statistic": stat, "reason": reason}
                    )
                    continue
                matrices[stat][a][b] = matrices[stat][b][a] = value
    return {"annotators": list(annotators), "overlap": overlap, **matrices, "undefined": undefined}


# --------------------------------------------------------------------------
# FiftyOne


def read_labels(samples, annotators, maps_field="actmaps"):
    """``(map_ids, labels)``: every map's id and, per annotator, its concept
    (``None`` where not named), in sample order."""
    from ..concepts.store import concept_field

    paths = [f"{maps_field}.detections.id"] + [concept_field(a, maps_field) for a in annotators]
    columns = samples.values(paths)
    per_sample_ids = columns[0]
    map_ids = [i for ids in per_sample_ids if ids for i in ids]
    labels = []
    for column in columns[1:]:
        flat = []
        for ids, values in zip(per_sample_ids, column):
            if not ids:
                continue
            flat.extend(values if values is not None else [None] * len(ids))
        labels.append(np.asarray(flat, dtype=object))
    return map_ids, labels


def compute_agreement(
    samples,
    annotators=None,
    maps_field="actmaps",
    run_key="agreement",
    not_nameable="category",
    reference=None,
    min_votes=2,
    jaccard_threshold=0.5,
    exclude=("consensus",),
):
    """Inter-annotator agreement on the concepts of ``samples``' maps,
    invariant to the names each annotator chose.

    Parameters
    ----------
    samples : SampleCollection
    annotators : list of str, optional
        Default: everyone who named maps in ``maps_field``, except the names
        in ``exclude``.
    maps_field : str
    run_key : str or None
        Register the results as a FiftyOne custom run of type
        ``"agreement"`` under this key (``None``: don't).
    not_nameable : {"category", "missing"}
        How :data:`NOT_NAMEABLE` enters the pair and aligned alphas (see the
        module docstring); the nameable alpha always uses it.
    reference : str, optional
        Annotator aligned first, whose names the canonical concepts take
        (default: the one who judged most maps).
    min_votes : int
        Fewest agreeing annotators for a consensus label.
    jaccard_threshold : float
        A concept is "shared" with another annotator when its best match
        there has at least this Jaccard overlap.
    exclude : iterable of str
        Annotators left out when ``annotators`` is None, so that a written
        consensus (:func:`write_consensus`) does not vote on itself.

    Returns
    -------
    AgreementResults
        - ``pair_alpha``, ``aligned_alpha``, ``nameable_alpha`` (``nan``
          with ``reasons[name]`` when undefined, e.g. nobody used
          NOT_NAMEABLE, so nameability has no variation);
        - ``alignment``: ``{annotator: {concept: canonical name}}`` and
          ``canonical_concepts``: ``[{"name", "judgments", "annotators",
          "members": {annotator: concept}}]``;
        - ``pairwise``: ``{"annotators", "overlap", "pair_alpha",
          "aligned_alpha", "nameable_alpha", "undefined"}``, matrices over
          annotator pairs;
        - ``per_concept``: ``[{"annotator", "concept", "count", "canonical",
          "shared", "shared_with", "matches": {other: {"concept",
          "jaccard", "overlap", "judged_by_both"}}}]``;
        - ``consensus``: counts; ``consensus_labels`` / ``map_ids`` per map
          for :func:`write_consensus`;
        - ``aligned_design``: how the aligned alpha was cross-fitted
          (``{"method", "splits", "seed", "unalignable_share"}``, the last the
          share of scored judgments whose concept the other half never saw).

        The aligned alphas (overall and pairwise) are cross-fitted (see
        :func:`aligned_alpha`); the ``alignment``, canonical concepts and the
        consensus use the matching fitted on all maps. ``per_concept``
        Jaccard values are descriptive: each is the best match among the
        other annotator's concepts on the same maps, so with few maps per
        concept it is optimistic.

    Raises
    ------
    ValueError
        fewer than two annotators, unknown annotators, or no map judged by
        two or more of them (nothing to compare).
    """
    from ..concepts.store import list_annotators, validate_annotator
    from ..runs import register_run, save_run_results
    from ..storage import resolve_maps

    # a patches view of the maps field stands for its maps (one shared rule)
    samples, _ = resolve_maps(samples, maps_field, what="compute_agreement")
    known = list_annotators(samples, maps_field)
    if annotators is None:
        excluded = set(exclude or ())
        annotators = [a for a in known if a not in excluded]
    else:
        annotators = [validate_annotator(a) for a in annotators]
        unknown = [a for a in annotators if a not in known]
        if unknown:
            raise ValueError(
                f"no concepts from annotator(s) {unknown} in {maps_field!r}; known: {known}"
            )
    if len(annotators) < 2:
        raise ValueError(
            f"agreement needs at least two annotators who named maps in {maps_field!r}; "
            f"found {annotators}"
        )
    map_ids, labels = read_labels(samples, annotators, maps_field)
    results = agreement_from_labels(
        labels,
        annotators=annotators,
        map_ids=map_ids,
        not_nameable=not_nameable,
        reference=reference,
        min_votes=min_votes,
        jaccard_threshold=jaccard_threshold,
    )
    results.maps_field = maps_field
    if run_key is not None:
        config = {
            "annotators": list(annotators),
            "maps_field": maps_field,
            "not_nameable": not_nameable,
            "reference": reference,
            "min_votes": int(min_votes),
            "jaccard_threshold": float(jaccard_threshold),
        }
        register_run(samples, run_key, RUN_TYPE, config)
        save_run_results(samples, run_key, results.to_dict())
        results.run_key = run_key
    return results


def write_consensus(samples, results, annotator="consensus", maps_field=None):
    """Write the consensus naming of ``results`` as its own annotator.

    Maps with a majority get its canonical name (or NOT_NAMEABLE); maps
    without one are cleared for ``annotator`` (so a rewrite replaces an old
    consensus). Returns ``{"named": n, "cleared": n, "concepts": {name:
    count}}``.
    """
    from ..concepts.store import assign_concept, validate_annotator

    validate_annotator(annotator)
    if annotator in results.annotators:
        raise ValueError(
            f"{annotator!r} is one of the annotators compared; writing the consensus "
            "there would overwrite their names"
        )
    if results.map_ids is None or results.consensus_labels is None:
        raise ValueError("these results hold no per-map consensus (compute them with compute_agreement)")
    maps_field = maps_field or results.maps_field or "actmaps"
    groups = {}
    for map_id, label in zip(results.map_ids, results.consensus_labels):
        groups.setdefault(label, []).append(map_id)
    for label, ids in groups.items():
        assign_concept(samples, ids, label, annotator, maps_field=maps_field)
    concepts = {k: len(v) for k, v in groups.items() if k is not None}
    return {
        "named": sum(concepts.values()),
        "cleared": len(groups.get(None, [])),
        "concepts": dict(sorted(concepts.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
