"""A self-contained HTML report of an annotator's concepts, for people who
don't run FiftyOne.

One file, no external resources: plots are PNGs drawn with matplotlib's Agg
canvas (pyplot and the user's backend are never touched) and embedded as
base64 ``data:`` URLs, thumbnails likewise, styles inline, no scripts. Every
piece of user text (concept, class, annotator, dataset names) is HTML-escaped.

Sections: overview; coverage per predicted class; concept frequency per
class; untrustworthy example types with example thumbnails (the concept's
map regions drawn on the image); the channel x concept matrix; the
inter-annotator agreement matrix (when at least two annotators named maps);
and how each number is defined. The pieces live in :mod:`.sections` and
:mod:`.html`; this module assembles them and records the report as a run.

References
----------
.. [1] M. Hamidi-Haines, Z. Qi, A. Fern, F. Li and P. Tadepalli,
   "Interactive Naming for Explaining Deep Neural Networks: A Formative
   Study", arXiv:1812.07150, 2018.
"""

import os
from datetime import datetime, timezone

import numpy as np

from ..runs import RunConfig, RunResults, register_run, save_run_results
from ..storage import MAPS_FIELD, check_field_name
from .explanations import explain
from .html import CSS, esc, fmt
from .maptable import check_annotator, check_classification_field, default_run_key, read_maps
from .reasons import class_summary, concept_summary_table
from .sections import (
    METHOD,
    agreement_section,
    coverage_section,
    frequency_section,
    neurons_section,
    untrustworthy_section,
)
from .untrustworthy import untrustworthy_table

RUN_TYPE = "report"


def _overview(samples, table, explanations, annotator, maps_field):
    named = table.named
    num_maps = len(table.concepts)
    judged = np.array([c is not None for c in table.concepts], dtype=bool)
    known = [c for c in table.correct if c is not None]
    return {
        "dataset": samples._dataset.name,
        "annotator": annotator,
        "maps field": maps_field,
        "samples with maps": table.num_samples,
        "maps": num_maps,
        "maps with a concept": f"{int(named.sum())} ({fmt(named.mean() * 100 if num_maps else 0, digits=1)}%)",
        "maps not nameable": int((judged & ~named).sum()),
        "maps not named": int((~judged).sum()),
        "concepts": len({c for c in table.concepts[named]}),
        "mean coverage": fmt(float(explanations.named_share.mean()) if table.num_samples else None),
        "fully named samples": fmt(float(explanations.fully_named.mean()) if table.num_samples else None),
        "accuracy": fmt(float(np.mean(known)) if known else None) + (f" on {len(known)} samples" if known else ""),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _document(title, body):
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def render_report(
    samples,
    annotator,
    *,
    gt_field=None,
    maps_field=MAPS_FIELD,
    prediction_field=None,
    title=None,
    by=None,
    min_support=5,
    alpha=0.05,
    max_types=5,
    examples_per_type=6,
    thumbnail_size=160,
    agreement=True,
    agreement_annotators=None,
):
    """The HTML of the report, without writing or recording anything.

    Parameters are those of :func:`write_report` (without ``path`` and
    ``run_key``).

    Returns
    -------
    document : str
        the HTML document.
    sections : dict
        ``{section: "ok" or why it was skipped}``.
    """
    table = read_maps(samples, annotator, maps_field=maps_field, prediction_field=prediction_field,
                      gt_field=gt_field)
    if by is None:
        by = "error" if gt_field is not None else "confidence"
    explanations = explain(table)
    summary = concept_summary_table(table)
    sections = {}
    title = title or f"Interactive naming report: {samples._dataset.name} \u2013 {annotator}"
    overview = _overview(samples, table, explanations, annotator, maps_field)
    body = [f"<h1>{esc(title)}</h1>"]
    body.append("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in overview.items()) + "</dl>")

    body.append("<h2>Coverage per predicted class</h2>")
    body.append(coverage_section(table, explanations, class_summary(table)))
    sections["coverage"] = "ok"

    body.append("<h2>Concepts per predicted class</h2>")
    body.append(frequency_section(summary))
    sections["concepts"] = "ok" if not summary.empty else "no concepts"

    body.append("<h2>Untrustworthy example types</h2>")
    try:
        untrustworthy = untrustworthy_table(table, by=by, min_support=min_support, alpha=alpha)
        sections["untrustworthy"] = "ok"
    except ValueError as e:
        untrustworthy = None
        sections["untrustworthy"] = str(e)
    guard = {"by": by, "min_support": min_support, "alpha": float(alpha), "fdr": True}
    body.append(untrustworthy_section(table, untrustworthy, guard, max_types=max_types,
                                      per_type=examples_per_type, size=thumbnail_size))

    body.append("<h2>Concepts and channels</h2>")
    neurons_html, neurons = neurons_section(table)
    body.append(neurons_html)
    sections["neurons"] = "ok" if neurons is not None else "no named maps"

    body.append("<h2>Inter-annotator agreement</h2>")
    if agreement:
        agreement_html, sections["agreement"] = agreement_section(samples, maps_field, agreement_annotators)
    else:
        agreement_html, sections["agreement"] = "<p class='note'>Not requested.</p>", "not requested"
    body.append(agreement_html)

    body.append("<h2>How the numbers are defined</h2>" + METHOD)
    body.append(
        "<p class='note'>Maps marked not nameable were judged by the annotator to show no recognisable "
        "concept: they count as seen, but explain nothing. Generated by the Interactive Naming FiftyOne plugin.</p>"
    )
    return _document(title, body), sections


class ReportConfig(RunConfig):
    """Parameters of :func:`write_report` (see there). The run writes no
    field; the HTML file is the user's and is kept when the run is
    deleted."""

    run_type = RUN_TYPE

    def __init__(self, annotator=None, maps_field=MAPS_FIELD, gt_field=None, prediction_field=None,
                 path=None, title=None, by=None, min_support=5, alpha=0.05, max_types=5,
                 examples_per_type=6, thumbnail_size=160, agreement=True, agreement_annotators=None,
                 **kwargs):
        self.annotator = annotator
        self.maps_field = maps_field
        self.gt_field = gt_field
        self.prediction_field = prediction_field
        self.path = path
        self.title = title
        self.by = by
        self.min_support = min_support
        self.alpha = alpha
        self.max_types = max_types
        self.examples_per_type = examples_per_type
        self.thumbnail_size = thumbnail_size
        self.agreement = bool(agreement)
        self.agreement_annotators = agreement_annotators
        super().__init__(**kwargs)

    def validate(self, samples):
        check_annotator(samples, self.annotator, maps_field=self.maps_field)
        if self.gt_field is not None:
            check_classification_field(samples, check_field_name(self.gt_field, "gt_field"), "ground-truth field")

    def render_kwargs(self):
        """The keyword arguments of :func:`render_report`."""
        names = ("gt_field", "maps_field", "prediction_field", "title", "by", "min_support", "alpha",
                 "max_types", "examples_per_type", "thumbnail_size", "agreement", "agreement_annotators")
        return {name: getattr(self, name) for name in names}


class ReportResults(RunResults):
    """What :func:`write_report` wrote.

    Attributes
    ----------
    path : str
        the absolute path of the HTML file.
    bytes : int
        its size.
    sections : dict
        ``{section: "ok" or why it was skipped}``.
    """

    def __init__(self, samples, config, key, backend=None, path=None, bytes=0, sections=None):
        super().__init__(samples, config, key, backend=backend)
        self.path = path
        self.bytes = bytes
        self.sections = dict(sections or {})


def write_report(
    samples,
    annotator,
    path,
    *,
    gt_field=None,
    maps_field=MAPS_FIELD,
    prediction_field=None,
    title=None,
    by=None,
    min_support=5,
    alpha=0.05,
    max_types=5,
    examples_per_type=6,
    thumbnail_size=160,
    agreement=True,
    agreement_annotators=None,
    run_key=None,
):
    """Write a self-contained HTML report of ``annotator``'s concepts to
    ``path``: coverage per predicted class, concept frequency per class,
    untrustworthy example types with example thumbnails, the channel x
    concept matrix and the inter-annotator agreement matrix.

    Parameters
    ----------
    samples : SampleCollection
        whole images with maps.
    annotator : str
    path : str or os.PathLike
        the ``.html`` file to write (its folder is created).
    gt_field : str, optional
        ground truth; without it, untrustworthy types are ranked by
        confidence (``by="confidence"``) and accuracies are omitted.
    maps_field : str, default ``"actmaps"``
    prediction_field : str, optional
        default: the one recorded by the maps run.
    title : str, optional
        default ``"Interactive naming report: <dataset> - <annotator>"``.
    by : {"error", "confidence"}, optional
    min_support : int, default 5
    alpha : float, default 0.05
        see :func:`fiftyone_plugin.evaluation.untrustworthy.untrustworthy_concepts`.
    max_types : int, default 5
        untrustworthy types shown.
    examples_per_type : int, default 6
        thumbnails per type (errors first).
    thumbnail_size : int, default 160
        longest side of a thumbnail, in pixels.
    agreement : bool, default True
        include the agreement section (needs two annotators or more).
    agreement_annotators : list of str, optional
        the annotators the agreement section compares; default
        (:func:`~fiftyone_plugin.evaluation.sections.default_agreement_annotators`):
        those who judged at least half as many maps as the annotator who
        judged most, never the consensus.
    run_key : str, optional
        default ``report_<annotator>``: a FiftyOne custom run recording the
        parameters, the path and the sections.

    Returns
    -------
    ReportResults
        the same as ``samples.load_run_results(run_key)``.

    Raises
    ------
    ValueError
        a bad path or run key, unknown annotator, missing fields.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"path must be a file path; got {path!r}")
    run_key = check_field_name(run_key or default_run_key("report", annotator, maps_field), "run_key")
    config = ReportConfig(
        annotator=annotator, maps_field=maps_field, gt_field=gt_field, prediction_field=prediction_field,
        path=os.path.abspath(os.fspath(path)), title=title, by=by, min_support=min_support, alpha=alpha,
        max_types=max_types, examples_per_type=examples_per_type, thumbnail_size=thumbnail_size,
        agreement=agreement, agreement_annotators=agreement_annotators,
    )
    register_run(samples, run_key, config)
    document, sections = render_report(samples, annotator, **config.render_kwargs())
    os.makedirs(os.path.dirname(config.path), exist_ok=True)
    data = document.encode("utf-8")
    with open(config.path, "wb") as f:
        f.write(data)
    results = ReportResults(samples, config, run_key, path=config.path, bytes=len(data), sections=sections)
    save_run_results(samples, run_key, results)
    return results
