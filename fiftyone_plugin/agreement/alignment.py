"""Hungarian alignment of every annotator's concepts to the others'
(:func:`align_concepts`), on the overlap of their maps (Kuhn 1955, with
``scipy.optimize.linear_sum_assignment``).
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..concepts.names import MAX_NAME_LENGTH, NOT_NAMEABLE
from .alpha import pair_counts
from .codes import _annotator_names, _concept_codes, _order, encode_labels

_MAX_ALIGN_PASSES = 10


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
            candidate = str(name)[: MAX_NAME_LENGTH - len(suffix)] + suffix
            k += 1
        taken.add(candidate)
        result[t] = candidate
    return result


def align_concepts(labels, annotators=None, *, reference=None, not_nameable="category"):
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
        canonical name}}}``; canonical id 0 is :data:`NOT_NAMEABLE`.

    Notes
    -----
    Each annotator in turn (the reference first) is matched to the
    canonical concepts of those before it by a maximum-weight one-to-one
    assignment on the overlap table (how many maps each pair of concepts
    share); unmatched concepts get canonical ids of their own. Passes then
    re-match every annotator against all the others until no total overlap
    improves.

    References
    ----------
    H. W. Kuhn, "The Hungarian method for the assignment problem", Naval
    Research Logistics Quarterly 2, 1955; D. F. Crouse, "On implementing 2D
    rectangular assignment algorithms", IEEE Transactions on Aerospace and
    Electronic Systems 52, 2016 (``scipy.optimize.linear_sum_assignment``).

    Examples
    --------
    Alice's "bird" and Bob's "vogel" share map 1, "bird" and "blue" map 0,
    "sky" and "blue" maps 2 and 3. The overlap table (rows bird, sky;
    columns blue, vogel) is ``[[1, 1], [2, 0]]``; the one-to-one matching
    with the largest total is bird-vogel + sky-blue (1 + 2 = 3, against 1 + 0
    for bird-blue + sky-vogel):

    >>> result = align_concepts([["bird", "bird", "sky", "sky"],
    ...                          ["blue", "vogel", "blue", "blue"]], ["alice", "bob"])
    >>> result["alignment"]["bob"]
    {'blue': 'sky', 'vogel': 'bird'}
    >>> result["aligned"].tolist()
    [[1, 1, 2, 2], [2, 1, 2, 2]]
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
