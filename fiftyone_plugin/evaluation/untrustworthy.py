"""Untrustworthy example types: the *(predicted class, concept)* pairs whose
concept goes with errors (or low confidence), i.e. the example types the
classifier should not be trusted on -- the study's "untrustworthy"
examples, found by statistics instead of by eye.

(Just over 400 lines: an eighth is this docstring, which states the
statistic in full.)

The statistic (``by="error"``)
------------------------------
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

References
----------
.. [1] M. Hamidi-Haines, Z. Qi, A. Fern, F. Li and P. Tadepalli,
   "Interactive Naming for Explaining Deep Neural Networks: A Formative
   Study", arXiv:1812.07150, 2018.
.. [2] R. G. Newcombe, "Interval estimation for the difference between
   independent proportions: comparison of eleven methods", Stat. Med.
   17:873-890, 1998; E. B. Wilson, J. Am. Stat. Assoc. 22:209-212, 1927.
.. [3] R. A. Fisher, J. R. Stat. Soc. 85:87-94, 1922 (the exact test).
.. [4] Y. Benjamini and Y. Hochberg, "Controlling the false discovery rate",
   J. R. Stat. Soc. B 57:289-300, 1995.
.. [5] D. S. Kerby, "The simple difference formula: an approach to teaching
   nonparametric correlation", Comprehensive Psychology 3:11.IT.3.1, 2014
   (rank-biserial correlation).
"""

import numpy as np
import pandas as pd

from ..runs import RunConfig, RunResults, jsonable, register_run, save_run_results
from ..storage import MAPS_FIELD, check_field_name
from .maptable import default_run_key, read_maps
from .pairs import Pairs, check_count
from .stats import benjamini_hochberg, excess_errors, fisher_greater, lower_with, newcombe_interval, ratio
from .views import ViewsRun, concept_view, delete_views, previous_views, view_name
from .views import save_views as _save_views

UNTRUSTWORTHY_RUN_TYPE = "untrustworthy_concepts"
RANK_BY = ("error", "confidence")

UNTRUSTWORTHY_COLUMNS = [
    "predicted_class", "concept", "n_class", "n_with", "n_without",
    "errors_with", "errors_without", "error_rate_with", "error_rate_without",
    "risk_difference", "risk_difference_low", "risk_difference_high",
    "excess_errors", "p_value", "q_value",
    "confidence_with", "confidence_without", "confidence_drop",
    "confidence_effect", "confidence_p", "confidence_q", "confidence_lost",
    "tested", "flagged", "score", "view",
]
_NON_FLOAT = {"predicted_class", "concept", "n_class", "n_with", "n_without", "errors_with",
              "errors_without", "tested", "flagged", "view"}


def _check(table, by, min_support, alpha):
    if by not in RANK_BY:
        raise ValueError(f"by must be one of {RANK_BY}; got {by!r}")
    if by == "error" and table is not None and table.gt_field is None:
        raise ValueError(
            "ranking by errors needs a ground-truth field (gt_field); "
            "use by='confidence' without one"
        )
    check_count(min_support, "min_support")
    if not 0.0 < float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in (0, 1]; got {alpha!r}")


def _error_columns(pairs, k, j, min_support):
    """The error side of each pair: the 2 x 2 table, the risk difference
    with its Newcombe interval, excess errors and the Fisher p-value (nan
    when the pair has too little support to be tested)."""
    known_with = pairs.known_with[k, j]
    known_without = pairs.known_class[k] - known_with
    a = pairs.wrong_with[k, j]
    c = pairs.wrong_class[k] - a
    b, d = known_with - a, known_without - c
    rd, rd_low, rd_high = newcombe_interval(a, known_with, c, known_without)
    tested = (known_with >= max(min_support, 1)) & (known_without >= 1)
    p = np.where(tested, fisher_greater(a, b, c, d), np.nan) if len(k) else np.zeros(0)
    return tested, {
        "errors_with": a.astype(int),
        "errors_without": c.astype(int),
        "error_rate_with": ratio(a, known_with),
        "error_rate_without": ratio(c, known_without),
        "risk_difference": rd,
        "risk_difference_low": rd_low,
        "risk_difference_high": rd_high,
        "excess_errors": excess_errors(a, known_with, c, known_without),
        "p_value": p,
        "q_value": benjamini_hochberg(p),
    }


def _confidence_columns(pairs, k, j, min_support):
    """The confidence side of each pair: means with and without, the drop,
    and the one-sided Mann-Whitney test with its rank-biserial effect."""
    conf_with = ratio(pairs.conf_with[k, j], pairs.conf_count_with[k, j])
    conf_without = ratio(
        pairs.conf_class[k] - pairs.conf_with[k, j],
        pairs.conf_count_class[k] - pairs.conf_count_with[k, j],
    )
    drop = conf_without - conf_with
    n_with = pairs.conf_count_with[k, j]
    n_without = pairs.conf_count_class[k] - n_with
    tested = (n_with >= max(min_support, 1)) & (n_without >= 1)
    p = np.full(len(k), np.nan)
    effect = np.full(len(k), np.nan)
    for i in np.flatnonzero(tested):
        p[i], effect[i] = lower_with(*pairs.confidences(k[i], j[i]))
    return tested, {
        "confidence_with": conf_with,
        "confidence_without": conf_without,
        "confidence_drop": drop,
        "confidence_effect": effect,
        "confidence_p": p,
        "confidence_q": benjamini_hochberg(p),
        "confidence_lost": n_with * drop,
    }


def _ranked(df, by):
    # flagged first (by score, then evidence), then the other tested pairs,
    # then pairs with too little support
    df["_tier"] = np.where(df["flagged"], 0, np.where(df["tested"], 1, 2))
    df["_score"] = df["score"].fillna(-np.inf)
    df["_p"] = (df["p_value"] if by == "error" else df["confidence_p"]).fillna(np.inf)
    return df.sort_values(
        ["_tier", "_score", "_p", "predicted_class", "concept"],
        ascending=[True, False, True, True, True],
        kind="stable",
    ).drop(columns=["_tier", "_score", "_p"]).reset_index(drop=True)


def untrustworthy_table(table, *, by="error", min_support=5, alpha=0.05, fdr=True):
    """The :func:`untrustworthy_concepts` table of a
    :class:`~fiftyone_plugin.evaluation.maptable.MapTable`, without saving
    anything (pure). See the module docstring for the statistic.

    Parameters
    ----------
    table : MapTable
    by : {"error", "confidence"}, default "error"
        ``"error"`` needs the table's ground truth.
    min_support : int, default 5
    alpha : float in (0, 1], default 0.05
    fdr : bool, default True

    Returns
    -------
    pandas.DataFrame
        :data:`UNTRUSTWORTHY_COLUMNS` (see :class:`UntrustworthyResults`),
        flagged first in rank order, ``view`` all None.

    Raises
    ------
    ValueError
        bad ``by``, ``min_support`` or ``alpha``; ``by="error"`` without
        ground truth.
    """
    _check(table, by, min_support, alpha)
    pairs = Pairs(table)
    k, j = pairs.pairs()
    n_class = pairs.n_class[k]
    n_with = pairs.n_with[k, j]
    err_tested, errors = _error_columns(pairs, k, j, min_support)
    conf_tested, confidence = _confidence_columns(pairs, k, j, min_support)
    if by == "error":
        tested, score = err_tested, errors["excess_errors"]
        guard = errors["q_value"] if fdr else errors["p_value"]
        effect_positive = errors["risk_difference"] > 0
    else:
        tested, score = conf_tested, confidence["confidence_lost"]
        guard = confidence["confidence_q"] if fdr else confidence["confidence_p"]
        effect_positive = confidence["confidence_drop"] > 0
    flagged = tested & (np.nan_to_num(guard, nan=1.0) <= alpha) & effect_positive
    df = pd.DataFrame(
        {
            "predicted_class": [pairs.classes[i] for i in k],
            "concept": [pairs.concepts[i] for i in j],
            "n_class": n_class.astype(int),
            "n_with": n_with.astype(int),
            "n_without": (n_class - n_with).astype(int),
            **errors,
            **confidence,
            "tested": tested,
            "flagged": flagged,
            "score": score,
            "view": None,
        },
        columns=UNTRUSTWORTHY_COLUMNS,
    )
    return _ranked(df, by)


class UntrustworthyConfig(RunConfig):
    """Parameters of :func:`untrustworthy_concepts` (see there). The run
    writes no field; its cleanup deletes the views it saved."""

    run_type = UNTRUSTWORTHY_RUN_TYPE

    def __init__(self, annotator=None, maps_field=MAPS_FIELD, prediction_field=None, gt_field=None,
                 by="error", min_support=5, alpha=0.05, fdr=True, save_views=True, max_views=10, **kwargs):
        self.annotator = annotator
        self.maps_field = maps_field
        self.prediction_field = prediction_field
        self.gt_field = gt_field
        self.by = by
        self.min_support = min_support
        self.alpha = alpha
        self.fdr = bool(fdr)
        self.save_views = bool(save_views)
        self.max_views = max_views
        super().__init__(**kwargs)

    @property
    def run_cls(self):
        return ViewsRun

    def validate(self, samples):
        _check(None, self.by, self.min_support, self.alpha)
        if self.by == "error" and self.gt_field is None:
            raise ValueError(
                "ranking by errors needs a ground-truth field (gt_field); "
                "use by='confidence' without one"
            )
        check_count(self.max_views, "max_views")


class UntrustworthyResults(RunResults):
    """What :func:`untrustworthy_concepts` found.

    Attributes
    ----------
    rows : list of dict
        one record per pair, flagged first in rank order (the columns of
        :attr:`table`; NaN stored as None).
    num_tested, num_flagged : int
        pairs tested by the guard, and flagged.
    saved_views : list of str
        the names of the views saved, in rank order (deleted with the run).
    """

    def __init__(self, samples, config, key, backend=None, rows=None, num_tested=0, num_flagged=0,
                 saved_views=None):
        super().__init__(samples, config, key, backend=backend)
        self.rows = list(rows or [])
        self.num_tested = int(num_tested)
        self.num_flagged = int(num_flagged)
        self.saved_views = list(saved_views or [])

    @property
    def top_view(self):
        """The saved view of the top flagged pair, or None."""
        return self.saved_views[0] if self.saved_views else None

    @property
    def table(self):
        """:attr:`rows` as a DataFrame: ``predicted_class, concept, n_class,
        n_with, n_without, errors_with, errors_without`` (among samples with
        ground truth), ``error_rate_with/_without, risk_difference`` and its
        95% Newcombe interval ``risk_difference_low/_high``,
        ``excess_errors, p_value`` (one-sided Fisher), ``q_value`` (BH),
        ``confidence_with/_without, confidence_drop, confidence_effect``
        (rank-biserial), ``confidence_p/_q`` (one-sided Mann-Whitney),
        ``confidence_lost``, ``tested, flagged, score`` (the ranking value),
        ``view``."""
        df = pd.DataFrame(self.rows, columns=UNTRUSTWORTHY_COLUMNS)
        floats = [c for c in UNTRUSTWORTHY_COLUMNS if c not in _NON_FLOAT]
        df[floats] = df[floats].astype(float)
        return df


def _save_top_views(samples, config, df, previous):
    """Save the views of the ``max_views`` top flagged pairs; returns the
    view column of ``df`` and the names saved."""
    top = df[df["flagged"]].head(config.max_views)
    named = [
        (
            view_name("untrustworthy {cls} with {concept} ({annotator})",
                      cls=row["predicted_class"], concept=row["concept"], annotator=config.annotator),
            concept_view(samples, config.annotator, row["predicted_class"], row["concept"],
                         maps_field=config.maps_field, prediction_field=config.prediction_field),
        )
        for _, row in top.iterrows()
    ]
    saved = _save_views(samples, named, previous=previous,
                        description=f"Interactive naming: an untrustworthy example type ({config.annotator}'s concepts)")
    column = [None] * len(df)
    for index, name in zip(top.index, saved):
        column[index] = name
    return column, saved


def untrustworthy_concepts(
    samples,
    annotator,
    gt_field=None,
    *,
    maps_field=MAPS_FIELD,
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
        whole images with maps.
    annotator : str
    gt_field : str, optional
        a ``fo.Classification`` ground-truth field; needed for
        ``by="error"``.
    maps_field : str, default ``"actmaps"``
    by : {"error", "confidence"}, optional
        default ``"error"`` with a ``gt_field``, else ``"confidence"``.
    min_support : int, default 5
        fewest samples with the concept (with ground truth, for errors) for
        a pair to be tested.
    alpha : float in (0, 1], default 0.05
        the false discovery rate (or the per-test level without ``fdr``).
    fdr : bool, default True
        Benjamini-Hochberg correction over all tested pairs.
    prediction_field : str, optional
        default: the one recorded by the maps run.
    save_views : bool, default True
        save ``"untrustworthy: <class> with <concept> (<annotator>)"`` for
        the ``max_views`` top flagged pairs (replacing those of an earlier
        run with the same ``run_key``; deleted with the run).
    max_views : int, default 10
    run_key : str, optional
        default ``untrustworthy_<annotator>``.

    Returns
    -------
    UntrustworthyResults
        the same as ``samples.load_run_results(run_key)``; its ``table`` is
        the DataFrame of pairs, flagged first.

    Raises
    ------
    ValueError
        unknown annotator, missing fields, ``by="error"`` without ground
        truth, bad ``by``, ``min_support``, ``alpha`` or run key; raised
        before anything is saved.
    """
    if by is None:
        by = "error" if gt_field is not None else "confidence"
    config = UntrustworthyConfig(
        annotator=annotator, maps_field=maps_field, gt_field=gt_field, by=by, min_support=min_support,
        alpha=alpha, fdr=fdr, save_views=save_views, max_views=max_views,
    )
    table = read_maps(samples, annotator, maps_field=maps_field, prediction_field=prediction_field,
                      gt_field=gt_field)
    config.prediction_field = table.prediction_field
    run_key = check_field_name(run_key or default_run_key("untrustworthy", annotator, maps_field), "run_key")
    # the views of an earlier run under this key, replaced by this run's
    previous = previous_views(samples, run_key)
    register_run(samples, run_key, config)

    df = untrustworthy_table(table, by=by, min_support=min_support, alpha=alpha, fdr=fdr)
    saved = []
    if save_views:
        df["view"], saved = _save_top_views(samples, config, df, previous)
    else:
        delete_views(samples, previous)
    results = UntrustworthyResults(
        samples, config, run_key, rows=jsonable(df),
        num_tested=int(df["tested"].sum()), num_flagged=int(df["flagged"].sum()), saved_views=saved,
    )
    save_run_results(samples, run_key, results)
    return results
