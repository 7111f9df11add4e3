"""Every agreement statistic of an annotators x maps array of concept names
(:func:`agreement_from_labels`): the three alphas, the alignment, per-concept
matches, pairwise matrices and the consensus. No FiftyOne I/O.
"""

from collections.abc import Mapping

import numpy as np

from ..concepts.names import NOT_NAMEABLE
from .alpha import pair_counts
from .codes import (
    _annotator_names,
    _attempt,
    _concept_codes,
    _nameable_alpha,
    _nameable_codes,
    _order,
    encode_labels,
)
from .alignment import _alignment_report, _canonical_names
from .crossfit import _aligned_alpha
from .pairs import pair_alpha_from_codes
from .results import STATISTICS, AgreementResults, check_parameters


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



def agreement_from_labels(
    labels,
    annotators=None,
    *,
    map_ids=None,
    not_nameable="category",
    reference=None,
    min_votes=2,
    jaccard_threshold=0.5,
):
    """All agreement statistics of an annotators x maps array of concept
    names (``None`` missing, :data:`NOT_NAMEABLE` a judgment).

    The computation of :func:`~.compute.compute_agreement` without FiftyOne.

    Parameters
    ----------
    labels : array-like of shape (n_annotators, n_maps), or dict
        Each annotator's concept name per map (any hashable label;
        ``None``/``nan`` where the annotator did not judge the map), or
        ``{annotator: labels}``.
    annotators : list of str, optional
        Names of the rows (default ``"0"``, ``"1"``, ...; the keys of a dict).
    map_ids : list of str, optional
        One id per map, kept with the results for
        :func:`~.compute.write_consensus`.
    not_nameable : {"category", "missing"}, default "category"
        How :data:`NOT_NAMEABLE` enters the pair and aligned alphas (see
        :mod:`~.compute`); the nameable alpha always uses it.
    reference : str, optional
        The annotator aligned first, whose names the canonical concepts take
        (default: the one who judged most maps).
    min_votes : int, default 2
        Fewest agreeing annotators for a consensus label.
    jaccard_threshold : float in [0, 1], default 0.5
        A concept is "shared" with another annotator when its best match
        there has at least this Jaccard overlap.

    Returns
    -------
    AgreementResults
        Not a run (``samples``, ``config`` and ``key`` are ``None``); the
        values are those described in :func:`~.compute.compute_agreement`.

    Raises
    ------
    ValueError
        fewer than two annotators, rows of unequal length, a bad parameter,
        or no map judged by two or more annotators.

    Examples
    --------
    Two annotators who make the same partition in their own words agree
    perfectly, and "not nameable" was used by both on the same map:

    >>> r = agreement_from_labels(
    ...     {"ann": ["bird", "bird", "sky", NOT_NAMEABLE],
    ...      "bob": ["vogel", "vogel", "himmel", NOT_NAMEABLE]})
    >>> r.pair_alpha, r.nameable_alpha
    (1.0, 1.0)
    >>> r.alignment["bob"]
    {'vogel': 'bird', 'himmel': 'sky', '__not_nameable__': '__not_nameable__'}
    >>> r.consensus_labels
    ['bird', 'bird', 'sky', '__not_nameable__']
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
    check_parameters(
        annotators, not_nameable=not_nameable, reference=reference,
        min_votes=min_votes, jaccard_threshold=jaccard_threshold,
    )
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
        None, None, None,
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

