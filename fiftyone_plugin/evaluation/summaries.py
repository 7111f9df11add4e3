"""Typical reasons per class, and untrustworthy example types.

Both work on *(predicted class, concept)* pairs: the samples predicted as a
class, split by whether the annotator's concept is among their maps (a
concept is *present* in a sample when at least one of its significant maps
has that name; :data:`NOT_NAMEABLE` and unnamed maps are never concepts).

:func:`summarize_concepts`
    how often each concept explains each class, with how much share, and
    the accuracy and confidence of the class's predictions with and without
    the concept.

:func:`untrustworthy_concepts`
    the pairs whose presence goes with errors (or low confidence), i.e. the
    example types the classifier should not be trusted on.

The statistic for untrustworthiness (``by="error"``)
----------------------------------------------------
For a predicted class X and concept C, among the samples predicted X with a
known ground truth, the 2 x 2 table is::

                  wrong   right
    with C          a       b        n_with    = a + b
    without C       c       d        n_without = c + d

- *effect*: the risk difference ``a / n_with - c / n_without``, with its 95%
  Newcombe (hybrid Wilson score) interval -- ``risk_difference_low`` is how
  much worse the type is at least;
- *guard*: at least ``min_support`` samples with C (and one without), and a
  one-sided Fisher exact test (errors more likely with C) whose p-value,
  corrected for the number of pairs tested by Benjamini-Hochberg
  (``fdr=True``, the default), is at most ``alpha``;
- *rank*: among the pairs that pass, by **excess errors** ``a - n_with *
  c / n_without`` -- the number of the type's errors beyond what the class's
  error rate without C predicts (the epidemiologists' *attributable number*;
  it equals ``n_with`` x risk difference). It weighs how much worse a type is
  by how many samples it covers, so a 3-for-3 curiosity does not outrank a
  type that accounts for most of a class's mistakes, and it is measured in
  errors, which is what a curator has to fix. Ties go to the smaller p-value.

With ``by="confidence"`` (no ground truth needed) the same is done with the
prediction confidence: effect = mean confidence without C minus with C,
guard = one-sided Mann-Whitney U test (lower with C), rank = **confidence
lost** ``n_with`` x that drop. ``confidence_effect`` is the rank-biserial
correlation (``P(without > with) - P(without < with)``).

Both return a :class:`pandas.DataFrame` and can save the views that show
each pair in the App (``samples predicted X whose maps include concept Y``,
with only those maps shown). Results are FiftyOne custom runs.
"""

import math
import re
import unicodedata

import numpy as np
from scipy import sparse, stats

from fiftyone import ViewField as F

from ..concepts.store import NOT_NAMEABLE, concept_attribute
from .explanations import default_run_key, read_maps
from ..runs import register_run, save_run_results
from ..storage import check_field_name

SUMMARY_RUN_TYPE = "concept_summary"
UNTRUSTWORTHY_RUN_TYPE = "untrustworthy_concepts"
RANK_BY = ("error", "confidence")
_Z95 = 1.959963984540054
_MAX_VIEW_PART = 60


# --------------------------------------------------------------------------
# statistics (pure)


def wilson_interval(k, n, z=_Z95):
    """Wilson score interval of a binomial proportion ``k / n``.

    Vectorised over ``k`` and ``n``; ``(nan, nan)`` where ``n == 0``.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = np.clip(centre - half, 0.0, 1.0)
    high = np.clip(centre + half, 0.0, 1.0)
    low = np.where(n > 0, low, np.nan)
    high = np.where(n > 0, high, np.nan)
    return low, high


def newcombe_interval(k1, n1, k2, n2, z=_Z95):
    """Newcombe's hybrid score interval (his method 10, 1998) for the
    difference of two independent proportions ``k1/n1 - k2/n2``.

    Returns ``(difference, low, high)``, vectorised; nan where a group is
    empty.
    """
    k1, n1, k2, n2 = (np.asarray(v, dtype=float) for v in (k1, n1, k2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, z)
    l2, u2 = wilson_interval(k2, n2, z)
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


def fisher_greater(a, b, c, d):
    """One-sided Fisher exact p-values that the first row of ``[[a, b], [c,
    d]]`` has the larger share of the first column (odds ratio > 1).

    Vectorised through the hypergeometric tail; equals
    ``scipy.stats.fisher_exact(table, alternative="greater")[1]``.
    """
    a, b, c, d = (np.asarray(v, dtype=np.int64) for v in (a, b, c, d))
    total = a + b + c + d
    first_column = a + c
    first_row = a + b
    return stats.hypergeom.sf(a - 1, total, first_column, first_row)


def benjamini_hochberg(p_values):
    """Benjamini-Hochberg adjusted p-values (q-values); nan stays nan and
    is not counted as a test."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    if m == 0:
        return q
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def excess_errors(errors_with, n_with, errors_without, n_without):
    """Errors among the samples with a concept beyond what the error rate
    without it predicts: ``a - n_with * c / n_without`` (nan when there is
    no sample without)."""
    a, n1, c, n0 = (np.asarray(v, dtype=float) for v in (errors_with, n_with, errors_without, n_without))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n0 > 0, a - n1 * c / n0, np.nan)


# --------------------------------------------------------------------------
# (class, concept) tables


class _Pairs:
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


def _ratio(num, den):
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


# --------------------------------------------------------------------------
# views


def concept_view(samples, annotator, predicted_class, concept, maps_field="actmaps", prediction_field="actmap_prediction"):
    """Samples predicted ``predicted_class`` whose maps include ``annotator``'s
    ``concept``, showing only those maps."""
    attribute = concept_attribute(annotator)
    return samples.match(F(f"{prediction_field}.label") == predicted_class).filter_labels(
        maps_field, F(attribute) == concept
    )


def _clean_part(text):
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in str(text))
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= _MAX_VIEW_PART else text[: _MAX_VIEW_PART - 1] + "\u2026"


def view_name(template, **parts):
    """A saved-view name from user text (class and concept names): control
    characters removed, whitespace collapsed, each part at most 60
    characters."""
    return template.format(**{k: _clean_part(v) for k, v in parts.items()})


def _slug(name):
    import fiftyone.core.utils as fou

    try:
        return fou.to_slug(name)
    except ValueError:
        return None


def _previous_views(samples, run_key):
    dataset = samples._dataset
    if run_key not in dataset.list_runs():
        return []
    try:
        results = dataset.load_run_results(run_key, cache=False)
    except Exception:  # an unreadable old result must not block a new run
        return []
    return list(getattr(results, "saved_views", None) or [])


def save_views(samples, named_views, previous=(), description=None):
    """Save ``[(name, view)]`` in the dataset; first delete ``previous``
    (names this plugin saved in an earlier run), then give each name a
    suffix ``[2]``, ``[3]``, ... where its slug is taken, so no user's view
    is ever replaced. Returns the names saved, in order."""
    dataset = samples._dataset
    existing = set(dataset.list_saved_views())
    for name in previous:
        if name in existing:
            dataset.delete_saved_view(name)
    taken = {_slug(n) for n in dataset.list_saved_views()}
    saved = []
    for name, view in named_views:
        final, i = name, 2
        while _slug(final) is None or _slug(final) in taken:
            final = f"{name} [{i}]"
            i += 1
        dataset.save_view(final, view, description=description)
        taken.add(_slug(final))
        saved.append(final)
    return saved


def to_records(df):
    """JSON-friendly rows (nan -> None, numpy -> Python)."""
    rows = []
    for row in df.to_dict("records"):
        clean = {}
        for k, v in row.items():
            if isinstance(v, (np.floating, float)):
                v = None if math.isnan(v) else float(v)
            elif isinstance(v, np.integer):
                v = int(v)
            elif isinstance(v, np.bool_):
                v = bool(v)
            clean[k] = v
        rows.append(clean)
    return rows


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


# --------------------------------------------------------------------------
# typical reasons per class

SUMMARY_COLUMNS = [
    "predicted_class", "concept", "n_class", "n_with", "frequency", "mean_share",
    "num_maps", "confidence_with", "confidence_without", "n_known_with",
    "n_known_without", "accuracy_with", "accuracy_without", "view",
]


def concept_summary_table(table, min_count=1):
    """The :func:`summarize_concepts` table of a
    :class:`~fiftyone_plugin.evaluation.explanations.MapTable`, without saving
    anything."""
    import pandas as pd

    min_count = _check_positive_int(min_count, "min_count")
    pairs = _Pairs(table)
    k, j = pairs.pairs()
    n_with = pairs.n_with[k, j]
    n_class = pairs.n_class[k]
    conf_with = _ratio(pairs.conf_with[k, j], pairs.conf_count_with[k, j])
    conf_without = _ratio(
        pairs.conf_class[k] - pairs.conf_with[k, j],
        pairs.conf_count_class[k] - pairs.conf_count_with[k, j],
    )
    known_with = pairs.known_with[k, j]
    known_without = pairs.known_class[k] - known_with
    wrong_with = pairs.wrong_with[k, j]
    wrong_without = pairs.wrong_class[k] - wrong_with
    df = pd.DataFrame(
        {
            "predicted_class": [pairs.classes[i] for i in k],
            "concept": [pairs.concepts[i] for i in j],
            "n_class": n_class.astype(int),
            "n_with": n_with.astype(int),
            "frequency": _ratio(n_with, n_class),
            "mean_share": _ratio(pairs.share_sum[k, j], n_with),
            "num_maps": pairs.num_maps[k, j].astype(int),
            "confidence_with": conf_with,
            "confidence_without": conf_without,
            "n_known_with": known_with.astype(int),
            "n_known_without": known_without.astype(int),
            "accuracy_with": _ratio(known_with - wrong_with, known_with) if pairs.has_gt else np.nan,
            "accuracy_without": _ratio(known_without - wrong_without, known_without) if pairs.has_gt else np.nan,
            "view": None,
        },
        columns=SUMMARY_COLUMNS,
    )
    df = df[df["n_with"] >= max(min_count, 1)]
    df = df.sort_values(
        ["predicted_class", "n_with", "mean_share", "concept"],
        ascending=[True, False, False, True],
        kind="stable",
    ).reset_index(drop=True)
    classes = {}
    for i, name in enumerate(pairs.classes):
        classes[name] = {
            "n": int(pairs.n_class[i]),
            "mean_confidence": float(_ratio(pairs.conf_class[i], pairs.conf_count_class[i])),
            "accuracy": (
                float(_ratio(pairs.known_class[i] - pairs.wrong_class[i], pairs.known_class[i]))
                if pairs.has_gt else None
            ),
        }
    df.attrs["classes"] = classes
    return df


def summarize_concepts(
    samples,
    annotator,
    maps_field="actmaps",
    gt_field=None,
    prediction_field=None,
    min_count=1,
    save_views=True,
    max_views_per_class=5,
    run_key=None,
):
    """Typical reasons per predicted class: which of ``annotator``'s concepts
    explain it, how often and with how much share, and how accuracy and
    confidence differ when the concept is present.

    Parameters
    ----------
    samples : SampleCollection
    annotator : str
    maps_field : str
    gt_field : str, optional
        a ``fo.Classification`` field; needed for the accuracy columns
        (nan without).
    prediction_field : str, optional
        default: the one recorded by the maps run.
    min_count : int
        keep pairs present in at least this many samples.
    save_views : bool
        save views ``"<class> explained by <concept> (<annotator>)"`` in
        the dataset (the ``max_views_per_class`` most frequent concepts per
        class); those of an earlier run with the same ``run_key`` are
        replaced.
    max_views_per_class : int
    run_key : str, optional
        default ``concept_summary_<annotator>``. (To compute the table
        without saving anything, use :func:`concept_summary_table` on
        :func:`~fiftyone_plugin.evaluation.explanations.read_maps`.)

    Returns
    -------
    pandas.DataFrame
        one row per (predicted class, concept) pair, sorted by class, then
        frequency: ``predicted_class, concept, n_class`` (samples predicted
        the class), ``n_with`` (of those, with the concept), ``frequency``
        (``n_with / n_class``), ``mean_share`` (mean summed share of the
        concept's maps in the samples with it), ``num_maps``,
        ``confidence_with/_without`` (mean prediction confidence),
        ``n_known_with/_without`` (samples with ground truth),
        ``accuracy_with/_without``, ``view`` (saved view name or None).
        ``df.attrs``: ``classes`` (per class ``n``, ``mean_confidence``,
        ``accuracy``), ``run_key``.
    """
    table = read_maps(samples, annotator, maps_field, prediction_field, gt_field)
    run_key = check_field_name(run_key or default_run_key("concept_summary", annotator, maps_field), "run_key")
    max_views_per_class = _check_positive_int(max_views_per_class, "max_views_per_class")
    df = concept_summary_table(table, min_count=min_count)

    saved = []
    if save_views:
        named = []
        rows = []
        for cls, group in df.groupby("predicted_class", sort=True):
            for index, row in group.head(max_views_per_class).iterrows():
                name = view_name(
                    "{cls} explained by {concept} ({annotator})",
                    cls=cls, concept=row["concept"], annotator=annotator,
                )
                named.append((name, concept_view(samples, annotator, cls, row["concept"], maps_field, table.prediction_field)))
                rows.append(index)
        saved = save_views_for(samples, run_key, named,
                               f"Interactive naming: predictions explained by {annotator}'s concept")
        df.loc[rows, "view"] = saved

    df.attrs["run_key"] = run_key
    register_run(
        samples,
        run_key,
        SUMMARY_RUN_TYPE,
        {
            "annotator": annotator,
            "maps_field": maps_field,
            "prediction_field": table.prediction_field,
            "gt_field": gt_field,
            "min_count": int(min_count),
            "save_views": bool(save_views),
            "max_views_per_class": max_views_per_class,
        },
    )
    save_run_results(
        samples,
        run_key,
        {"rows": to_records(df), "classes": df.attrs["classes"], "saved_views": saved},
    )
    return df


def save_views_for(samples, run_key, named_views, description):
    """Save views for a run, replacing the views the same run saved before."""
    return save_views(samples, named_views, previous=_previous_views(samples, run_key), description=description)


# --------------------------------------------------------------------------
# untrustworthy example types

UNTRUSTWORTHY_COLUMNS = [
    "predicted_class", "concept", "n_class", "n_with", "n_without",
    "errors_with", "errors_without", "error_rate_with", "error_rate_without",
    "risk_difference", "risk_difference_low", "risk_difference_high",
    "excess_errors", "p_value", "q_value",
    "confidence_with", "confidence_without", "confidence_drop",
    "confidence_effect", "confidence_p", "confidence_q", "confidence_lost",
    "tested", "flagged", "score", "view",
]


def untrustworthy_table(table, by="error", min_support=5, alpha=0.05, fdr=True):
    """The :func:`untrustworthy_concepts` table of a
    :class:`~fiftyone_plugin.evaluation.explanations.MapTable`, without saving
    anything. See the module docstring for the statistic."""
    import pandas as pd

    if by not in RANK_BY:
        raise ValueError(f"by must be one of {RANK_BY}; got {by!r}")
    if by == "error" and table.gt_field is None:
        raise ValueError(
            "ranking by errors needs a ground-truth field (gt_field); "
            "use by='confidence' without one"
        )
    min_support = _check_positive_int(min_support, "min_support")
    if not 0.0 < float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in (0, 1]; got {alpha!r}")

    pairs = _Pairs(table)
    k, j = pairs.pairs()
    n_class = pairs.n_class[k]
    n_with = pairs.n_with[k, j]

    # errors: among samples with a known ground truth
    known_with = pairs.known_with[k, j]
    known_without = pairs.known_class[k] - known_with
    a = pairs.wrong_with[k, j]
    c = pairs.wrong_class[k] - a
    b, d = known_with - a, known_without - c
    rd, rd_low, rd_high = newcombe_interval(a, known_with, c, known_without)
    excess = excess_errors(a, known_with, c, known_without)
    err_tested = (known_with >= max(min_support, 1)) & (known_without >= 1)
    p = np.where(err_tested, fisher_greater(a, b, c, d), np.nan) if len(k) else np.zeros(0)

    # confidence
    conf_with = _ratio(pairs.conf_with[k, j], pairs.conf_count_with[k, j])
    conf_without = _ratio(
        pairs.conf_class[k] - pairs.conf_with[k, j],
        pairs.conf_count_class[k] - pairs.conf_count_with[k, j],
    )
    drop = conf_without - conf_with
    conf_n_with = pairs.conf_count_with[k, j]
    conf_n_without = pairs.conf_count_class[k] - conf_n_with
    conf_tested = (conf_n_with >= max(min_support, 1)) & (conf_n_without >= 1)
    conf_p = np.full(len(k), np.nan)
    conf_effect = np.full(len(k), np.nan)
    for i in np.flatnonzero(conf_tested):
        with_, without = pairs.confidences(k[i], j[i])
        test = stats.mannwhitneyu(with_, without, alternative="less")
        conf_p[i] = test.pvalue
        conf_effect[i] = 1.0 - 2.0 * test.statistic / (len(with_) * len(without))

    q = benjamini_hochberg(p)
    conf_q = benjamini_hochberg(conf_p)
    if by == "error":
        tested, guard, score = err_tested, (q if fdr else p), excess
        effect_positive = rd > 0
    else:
        tested, guard, score = conf_tested, (conf_q if fdr else conf_p), conf_n_with * drop
        effect_positive = drop > 0
    flagged = tested & (np.nan_to_num(guard, nan=1.0) <= alpha) & effect_positive

    df = pd.DataFrame(
        {
            "predicted_class": [pairs.classes[i] for i in k],
            "concept": [pairs.concepts[i] for i in j],
            "n_class": n_class.astype(int),
            "n_with": n_with.astype(int),
            "n_without": (n_class - n_with).astype(int),
            "errors_with": a.astype(int),
            "errors_without": c.astype(int),
            "error_rate_with": _ratio(a, known_with),
            "error_rate_without": _ratio(c, known_without),
            "risk_difference": rd,
            "risk_difference_low": rd_low,
            "risk_difference_high": rd_high,
            "excess_errors": excess,
            "p_value": p,
            "q_value": q,
            "confidence_with": conf_with,
            "confidence_without": conf_without,
            "confidence_drop": drop,
            "confidence_effect": conf_effect,
            "confidence_p": conf_p,
            "confidence_q": conf_q,
            "confidence_lost": conf_n_with * drop,
            "tested": tested,
            "flagged": flagged,
            "score": score,
            "view": None,
        },
        columns=UNTRUSTWORTHY_COLUMNS,
    )
    # flagged first (by score, then evidence), then the other tested pairs,
    # then pairs with too little support
    df["_tier"] = np.where(df["flagged"], 0, np.where(df["tested"], 1, 2))
    df["_score"] = df["score"].fillna(-np.inf)
    df["_p"] = (df["p_value"] if by == "error" else df["confidence_p"]).fillna(np.inf)
    df = df.sort_values(
        ["_tier", "_score", "_p", "predicted_class", "concept"],
        ascending=[True, False, True, True, True],
        kind="stable",
    ).drop(columns=["_tier", "_score", "_p"]).reset_index(drop=True)
    df.attrs.update(
        {
            "by": by,
            "min_support": min_support,
            "alpha": float(alpha),
            "fdr": bool(fdr),
            "num_tested": int(tested.sum()),
            "num_flagged": int(flagged.sum()),
        }
    )
    return df


def untrustworthy_concepts(
    samples,
    annotator,
    gt_field=None,
    maps_field="actmaps",
    by=None,
    min_support=5,
    alpha=0.05,
    fdr=True,
    prediction_field=None,
    save_views=True,
    max_views=10,
    run_key=None,
):
    """Example types the classifier should not be trusted on: (predicted
    class, concept) pairs whose concept goes with errors (or low confidence).

    See the module docstring for the statistic: pairs with at least
    ``min_support`` samples with the concept are tested (one-sided Fisher
    exact test, Benjamini-Hochberg corrected when ``fdr``); those with
    ``q <= alpha`` and a positive effect are *flagged* and ranked by excess
    errors (``by="error"``) or confidence lost (``by="confidence"``).

    Parameters
    ----------
    samples : SampleCollection
    annotator : str
    gt_field : str, optional
        a ``fo.Classification`` ground-truth field; needed for
        ``by="error"``.
    maps_field : str
    by : {"error", "confidence"}, optional
        default ``"error"`` with a ``gt_field``, else ``"confidence"``.
    min_support : int
        fewest samples with the concept (with ground truth, for errors) for
        a pair to be tested.
    alpha : float
    fdr : bool
        Benjamini-Hochberg correction over all tested pairs.
    prediction_field : str, optional
    save_views : bool
        save ``"untrustworthy: <class> with <concept> (<annotator>)"`` for
        the ``max_views`` top flagged pairs (replacing those of an earlier
        run with the same ``run_key``).
    max_views : int
    run_key : str, optional
        default ``untrustworthy_<annotator>``.

    Returns
    -------
    pandas.DataFrame
        one row per pair, flagged first in rank order: ``predicted_class,
        concept, n_class, n_with, n_without, errors_with, errors_without``
        (among samples with ground truth), ``error_rate_with/_without,
        risk_difference`` and its 95% Newcombe interval
        ``risk_difference_low/_high``, ``excess_errors, p_value`` (one-sided
        Fisher), ``q_value`` (BH), ``confidence_with/_without,
        confidence_drop, confidence_effect`` (rank-biserial),
        ``confidence_p/_q`` (one-sided Mann-Whitney), ``confidence_lost``,
        ``tested, flagged, score`` (the ranking value), ``view``.
        ``df.attrs``: ``by, min_support, alpha, fdr, num_tested,
        num_flagged, run_key``.
    """
    if by is None:
        by = "error" if gt_field is not None else "confidence"
    table = read_maps(samples, annotator, maps_field, prediction_field, gt_field)
    run_key = check_field_name(run_key or default_run_key("untrustworthy", annotator, maps_field), "run_key")
    max_views = _check_positive_int(max_views, "max_views")
    df = untrustworthy_table(table, by=by, min_support=min_support, alpha=alpha, fdr=fdr)

    saved = []
    if save_views:
        top = df[df["flagged"]].head(max_views)
        named = [
            (
                view_name("untrustworthy: {cls} with {concept} ({annotator})",
                          cls=row["predicted_class"], concept=row["concept"], annotator=annotator),
                concept_view(samples, annotator, row["predicted_class"], row["concept"], maps_field, table.prediction_field),
            )
            for _, row in top.iterrows()
        ]
        saved = save_views_for(samples, run_key, named,
                               f"Interactive naming: an untrustworthy example type ({annotator}'s concepts)")
        df.loc[top.index, "view"] = saved

    df.attrs["run_key"] = run_key
    register_run(
        samples,
        run_key,
        UNTRUSTWORTHY_RUN_TYPE,
        {
            "annotator": annotator,
            "maps_field": maps_field,
            "prediction_field": table.prediction_field,
            "gt_field": gt_field,
            "by": by,
            "min_support": int(min_support),
            "alpha": float(alpha),
            "fdr": bool(fdr),
            "save_views": bool(save_views),
            "max_views": max_views,
        },
    )
    save_run_results(
        samples,
        run_key,
        {
            "rows": to_records(df),
            "num_tested": df.attrs["num_tested"],
            "num_flagged": df.attrs["num_flagged"],
            "saved_views": saved,
        },
    )
    return df
