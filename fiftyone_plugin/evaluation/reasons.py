"""Typical reasons per predicted class: which of an annotator's concepts
explain each class, how often and with how much share, and the accuracy and
confidence of the class's predictions with and without the concept -- the
study's "typical reasons" for a class, counted.

A concept is *present* in a sample when at least one of its significant maps
has that name (:mod:`.pairs`). The result is a FiftyOne custom run that can
save one view per *(class, concept)* pair (:mod:`.views`), deleted with the
run.

References
----------
.. [1] M. Hamidi-Haines, Z. Qi, A. Fern, F. Li and P. Tadepalli,
   "Interactive Naming for Explaining Deep Neural Networks: A Formative
   Study", arXiv:1812.07150, 2018.
.. [2] E. B. Wilson, "Probable inference, the law of succession, and
   statistical inference", J. Am. Stat. Assoc. 22:209-212, 1927 (the
   proportions' intervals used by :mod:`.untrustworthy`).
"""

import numpy as np
import pandas as pd

from ..runs import RunConfig, RunResults, jsonable, register_run, save_run_results
from ..storage import MAPS_FIELD, check_field_name
from .maptable import default_run_key, read_maps
from .pairs import Pairs, check_count
from .stats import ratio
from .views import ViewsRun, concept_view, delete_views, previous_views, view_name
from .views import save_views as _save_views

SUMMARY_RUN_TYPE = "concept_summary"

SUMMARY_COLUMNS = [
    "predicted_class", "concept", "n_class", "n_with", "frequency", "mean_share",
    "num_maps", "confidence_with", "confidence_without", "n_known_with",
    "n_known_without", "accuracy_with", "accuracy_without", "view",
]
_FLOAT_COLUMNS = ["frequency", "mean_share", "confidence_with", "confidence_without",
                  "accuracy_with", "accuracy_without"]


def _summary_frame(pairs, min_count):
    k, j = pairs.pairs()
    n_with = pairs.n_with[k, j]
    n_class = pairs.n_class[k]
    conf_with = ratio(pairs.conf_with[k, j], pairs.conf_count_with[k, j])
    conf_without = ratio(
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
            "frequency": ratio(n_with, n_class),
            "mean_share": ratio(pairs.share_sum[k, j], n_with),
            "num_maps": pairs.num_maps[k, j].astype(int),
            "confidence_with": conf_with,
            "confidence_without": conf_without,
            "n_known_with": known_with.astype(int),
            "n_known_without": known_without.astype(int),
            "accuracy_with": ratio(known_with - wrong_with, known_with) if pairs.has_gt else np.nan,
            "accuracy_without": ratio(known_without - wrong_without, known_without) if pairs.has_gt else np.nan,
            "view": None,
        },
        columns=SUMMARY_COLUMNS,
    )
    df = df[df["n_with"] >= max(min_count, 1)]
    return df.sort_values(
        ["predicted_class", "n_with", "mean_share", "concept"],
        ascending=[True, False, False, True],
        kind="stable",
    ).reset_index(drop=True)


def _class_summary(pairs):
    classes = {}
    for i, name in enumerate(pairs.classes):
        classes[name] = {
            "n": int(pairs.n_class[i]),
            "mean_confidence": float(ratio(pairs.conf_class[i], pairs.conf_count_class[i])),
            "accuracy": (
                float(ratio(pairs.known_class[i] - pairs.wrong_class[i], pairs.known_class[i]))
                if pairs.has_gt else None
            ),
        }
    return classes


def concept_summary_table(table, *, min_count=1):
    """The :func:`summarize_concepts` table of a
    :class:`~fiftyone_plugin.evaluation.maptable.MapTable`, without saving
    anything (pure).

    Parameters
    ----------
    table : MapTable
    min_count : int, default 1
        keep pairs present in at least this many samples.

    Returns
    -------
    pandas.DataFrame
        :data:`SUMMARY_COLUMNS` (see :class:`SummaryResults`), ``view``
        all None.
    """
    return _summary_frame(Pairs(table), check_count(min_count, "min_count"))


def class_summary(table):
    """Per predicted class of a
    :class:`~fiftyone_plugin.evaluation.maptable.MapTable`: ``{class: {"n",
    "mean_confidence", "accuracy"}}`` (accuracy None without ground truth)."""
    return _class_summary(Pairs(table))


class SummaryConfig(RunConfig):
    """Parameters of :func:`summarize_concepts` (see there). The run writes
    no field; its cleanup deletes the views it saved."""

    run_type = SUMMARY_RUN_TYPE

    def __init__(self, annotator=None, maps_field=MAPS_FIELD, prediction_field=None, gt_field=None,
                 min_count=1, save_views=True, max_views_per_class=5, **kwargs):
        self.annotator = annotator
        self.maps_field = maps_field
        self.prediction_field = prediction_field
        self.gt_field = gt_field
        self.min_count = min_count
        self.save_views = bool(save_views)
        self.max_views_per_class = max_views_per_class
        super().__init__(**kwargs)

    @property
    def run_cls(self):
        return ViewsRun

    def validate(self, samples):
        check_count(self.min_count, "min_count")
        check_count(self.max_views_per_class, "max_views_per_class")


class SummaryResults(RunResults):
    """What :func:`summarize_concepts` found.

    Attributes
    ----------
    rows : list of dict
        one record per (predicted class, concept) pair, sorted by class,
        then frequency (the columns of :attr:`table`; NaN stored as None).
    classes : dict
        per predicted class ``{"n", "mean_confidence", "accuracy"}``
        (accuracy None without ground truth).
    saved_views : list of str
        the names of the views saved (deleted with the run).
    """

    def __init__(self, samples, config, key, backend=None, rows=None, classes=None, saved_views=None):
        super().__init__(samples, config, key, backend=backend)
        self.rows = list(rows or [])
        self.classes = dict(classes or {})
        self.saved_views = list(saved_views or [])

    @property
    def table(self):
        """:attr:`rows` as a DataFrame: ``predicted_class, concept,
        n_class`` (samples predicted the class), ``n_with`` (of those, with
        the concept), ``frequency`` (``n_with / n_class``), ``mean_share``
        (mean summed share of the concept's maps in the samples with it),
        ``num_maps``, ``confidence_with/_without`` (mean prediction
        confidence), ``n_known_with/_without`` (samples with ground truth),
        ``accuracy_with/_without`` (nan without ground truth), ``view``
        (saved view name or None)."""
        df = pd.DataFrame(self.rows, columns=SUMMARY_COLUMNS)
        df[_FLOAT_COLUMNS] = df[_FLOAT_COLUMNS].astype(float)
        return df


def _save_class_views(samples, config, df, previous):
    """Save the ``max_views_per_class`` most frequent concepts' views per
    class; returns the names in the order of ``df`` (None for the rest)."""
    names = [None] * len(df)
    named, rows = [], []
    for cls, group in df.groupby("predicted_class", sort=True):
        for index, row in group.head(config.max_views_per_class).iterrows():
            name = view_name("{cls} explained by {concept} ({annotator})",
                             cls=cls, concept=row["concept"], annotator=config.annotator)
            view = concept_view(samples, config.annotator, cls, row["concept"],
                                maps_field=config.maps_field, prediction_field=config.prediction_field)
            named.append((name, view))
            rows.append(index)
    saved = _save_views(samples, named, previous=previous,
                        description=f"Interactive naming: predictions explained by {config.annotator}'s concept")
    for index, name in zip(rows, saved):
        names[index] = name
    return names, saved


def summarize_concepts(
    samples,
    annotator,
    *,
    maps_field=MAPS_FIELD,
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
        whole images with maps.
    annotator : str
    maps_field : str, default ``"actmaps"``
    gt_field : str, optional
        a ``fo.Classification`` field; needed for the accuracy columns
        (nan without).
    prediction_field : str, optional
        default: the one recorded by the maps run.
    min_count : int, default 1
        keep pairs present in at least this many samples.
    save_views : bool, default True
        save views ``"<class> explained by <concept> (<annotator>)"`` in
        the dataset (the ``max_views_per_class`` most frequent concepts per
        class); those of an earlier run with the same ``run_key`` are
        replaced, and ``dataset.delete_run(run_key)`` deletes them.
    max_views_per_class : int, default 5
    run_key : str, optional
        default ``concept_summary_<annotator>``. (To compute the table
        without saving anything, use :func:`concept_summary_table` on
        :func:`~fiftyone_plugin.evaluation.maptable.read_maps`.)

    Returns
    -------
    SummaryResults
        the same as ``samples.load_run_results(run_key)``; its ``table`` is
        the DataFrame of pairs.

    Raises
    ------
    ValueError
        unknown annotator, missing maps, prediction or ground-truth field,
        bad counts or run key; raised before anything is saved.
    """
    config = SummaryConfig(
        annotator=annotator, maps_field=maps_field, gt_field=gt_field, min_count=min_count,
        save_views=save_views, max_views_per_class=max_views_per_class,
    )
    table = read_maps(samples, annotator, maps_field=maps_field, prediction_field=prediction_field,
                      gt_field=gt_field)
    config.prediction_field = table.prediction_field
    run_key = check_field_name(run_key or default_run_key("concept_summary", annotator, maps_field), "run_key")
    # the views of an earlier run under this key, replaced by this run's
    previous = previous_views(samples, run_key)
    register_run(samples, run_key, config)

    pairs = Pairs(table)
    df = _summary_frame(pairs, config.min_count)
    saved = []
    if save_views:
        df["view"], saved = _save_class_views(samples, config, df, previous)
    else:
        delete_views(samples, previous)
    results = SummaryResults(samples, config, run_key, rows=jsonable(df),
                             classes=jsonable(_class_summary(pairs)), saved_views=saved)
    save_run_results(samples, run_key, results)
    return results
