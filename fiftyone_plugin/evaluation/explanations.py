"""Explanations: each classification explained by the concepts an annotator
gave to its significant maps.

A sample's explanation is the list of its maps' concepts, each with the
summed ``share`` of its maps. A map's ``share`` is its fraction of the
sample's *whole* positive contribution to the explained logit (all channels,
not only the top-k kept as maps), so the shares of a sample's maps add up to
less than 1 (about 0.3 for the top 5 of ConceptNet's 64 channels). Coverage
is therefore reported in one of two documented ways:

``coverage="positive"`` (default)
    the sum of the shares of the maps with a real concept: the fraction of
    the *whole* positive contribution that named maps explain;
``coverage="maps"``
    that sum divided by the sum of the shares of all significant maps: the
    fraction of what the significant maps explain that is named (1.0 when
    every map has a concept).

Maps marked :data:`~fiftyone_plugin.concepts.store.NOT_NAMEABLE` and maps the
annotator did not name count as unexplained. An explanation is the study's
answer to "why this class?" in the annotator's own words.

References
----------
.. [1] M. Hamidi-Haines, Z. Qi, A. Fern, F. Li and P. Tadepalli,
   "Interactive Naming for Explaining Deep Neural Networks: A Formative
   Study", arXiv:1812.07150, 2018.
"""

from dataclasses import dataclass

import numpy as np

import fiftyone as fo

from ..runs import RunConfig, RunResults, register_run, save_run_results
from ..storage import MAPS_FIELD, check_field_name, check_field_type, declare_field
from .maptable import read_maps, sample_concepts

RUN_TYPE = "explanations"
COVERAGE_MODES = ("positive", "maps")


def _check_coverage(coverage, min_share):
    if coverage not in COVERAGE_MODES:
        raise ValueError(f"coverage must be one of {COVERAGE_MODES}; got {coverage!r}")
    if not 0.0 <= float(min_share) <= 1.0:
        raise ValueError(f"min_share must be in [0, 1]; got {min_share!r}")


@dataclass
class Explanations:
    """Per sample (in ``table`` order): ``concepts`` (``[(concept, share,
    num_maps)]``, largest share first), ``coverage``, ``named_share`` (sum of
    named shares), ``maps_share`` (sum of all maps' shares), ``fully_named``
    and ``num_maps``."""

    coverage_mode: str
    min_share: float
    concepts: list
    coverage: np.ndarray
    named_share: np.ndarray
    maps_share: np.ndarray
    fully_named: np.ndarray
    num_maps: np.ndarray


def explain(table, *, coverage="positive", min_share=0.0):
    """Explanations of the samples of a :class:`~fiftyone_plugin.evaluation.maptable.MapTable` (no I/O).

    Parameters
    ----------
    table : MapTable
        from :func:`~fiftyone_plugin.evaluation.maptable.read_maps`.
    coverage : {"positive", "maps"}, default "positive"
        see the module docstring.
    min_share : float in [0, 1], default 0.0
        maps whose share is below this are not required to be named for
        ``fully_named`` (they still count towards coverage when named).

    Returns
    -------
    Explanations
    """
    _check_coverage(coverage, min_share)
    n = table.num_samples
    named = table.named
    s = table.map_sample
    named_share = np.bincount(s, weights=table.shares * named, minlength=n)
    maps_share = np.bincount(s, weights=table.shares, minlength=n)
    num_maps = np.bincount(s, minlength=n)
    required = table.shares >= float(min_share)
    unexplained_required = np.bincount(s, weights=(required & ~named).astype(float), minlength=n)
    required_count = np.bincount(s, weights=required.astype(float), minlength=n)
    # a sample without (required) maps has nothing explained: not "fully named"
    fully_named = (unexplained_required == 0) & (required_count > 0)
    if coverage == "positive":
        cov = named_share
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = np.where(maps_share > 0, named_share / np.where(maps_share > 0, maps_share, 1), 0.0)
    concepts = [
        sorted(((c, v[0], v[1]) for c, v in per.items()), key=lambda t: (-t[1], t[0]))
        for per in sample_concepts(table)
    ]
    return Explanations(
        coverage_mode=coverage,
        min_share=float(min_share),
        concepts=concepts,
        coverage=cov,
        named_share=named_share,
        maps_share=maps_share,
        fully_named=fully_named,
        num_maps=num_maps,
    )


class ExplanationsConfig(RunConfig):
    """Parameters of :func:`compute_explanations` (see there); the run owns
    the three fields it writes."""

    run_type = RUN_TYPE

    def __init__(self, annotator=None, maps_field=MAPS_FIELD, prediction_field=None,
                 explanation_field=None, coverage_field=None, fully_named_field=None,
                 coverage="positive", min_share=0.0, **kwargs):
        self.annotator = annotator
        self.maps_field = maps_field
        self.prediction_field = prediction_field
        self.explanation_field = explanation_field or f"explanation_{annotator}"
        self.coverage_field = coverage_field or f"{self.explanation_field}_coverage"
        self.fully_named_field = fully_named_field or f"{self.explanation_field}_fully_named"
        self.coverage = coverage
        self.min_share = float(min_share)
        super().__init__(**kwargs)

    def fields(self):
        return [self.explanation_field, self.coverage_field, self.fully_named_field]

    def validate(self, samples):
        check_field_name(self.explanation_field, "explanation_field")
        check_field_name(self.coverage_field, "coverage_field")
        check_field_name(self.fully_named_field, "fully_named_field")
        if len({*self.fields(), self.maps_field}) < 4:
            raise ValueError(
                "the explanation, coverage and fully-named fields must be distinct from each other and the maps field"
            )
        _check_coverage(self.coverage, self.min_share)
        dataset = samples._dataset
        check_field_type(dataset, self.explanation_field, fo.EmbeddedDocumentField, embedded_doc_type=fo.Classifications)
        check_field_type(dataset, self.coverage_field, fo.FloatField)
        check_field_type(dataset, self.fully_named_field, fo.BooleanField)


class ExplanationsResults(RunResults):
    """What :func:`compute_explanations` wrote, in numbers.

    Attributes
    ----------
    explanation_field, coverage_field, fully_named_field : str
        the fields written.
    coverage_mode : {"positive", "maps"}
    num_samples : int
        samples in the collection.
    num_with_maps : int
        of those, samples with maps (the others got None).
    mean_coverage : float or None
        mean of the written coverage (None without samples with maps).
    mean_positive_coverage, mean_maps_coverage : float or None
        the mean coverage in either mode.
    fully_named : int
        samples whose significant maps all have a concept.
    fully_named_fraction : float or None
    concepts : dict
        ``{concept: number of samples it explains}``, most frequent first.
    """

    def __init__(self, samples, config, key, backend=None, explanation_field=None, coverage_field=None,
                 fully_named_field=None, coverage_mode=None, num_samples=0, num_with_maps=0,
                 mean_coverage=None, mean_positive_coverage=None, mean_maps_coverage=None,
                 fully_named=0, fully_named_fraction=None, concepts=None):
        super().__init__(samples, config, key, backend=backend)
        self.explanation_field = explanation_field
        self.coverage_field = coverage_field
        self.fully_named_field = fully_named_field
        self.coverage_mode = coverage_mode
        self.num_samples = num_samples
        self.num_with_maps = num_with_maps
        self.mean_coverage = mean_coverage
        self.mean_positive_coverage = mean_positive_coverage
        self.mean_maps_coverage = mean_maps_coverage
        self.fully_named = fully_named
        self.fully_named_fraction = fully_named_fraction
        self.concepts = dict(concepts or {})


def _write_explanations(samples, config, table, result):
    """Write the three fields of ``result`` (one bulk ``set_values`` each;
    samples without maps get None); returns ``(number of samples, {concept:
    samples})``."""
    dataset = samples._dataset
    declare_field(dataset, config.explanation_field, fo.EmbeddedDocumentField, embedded_doc_type=fo.Classifications)
    declare_field(dataset, f"{config.explanation_field}.classifications.num_maps", fo.IntField)
    declare_field(dataset, config.coverage_field, fo.FloatField)
    declare_field(dataset, config.fully_named_field, fo.BooleanField)

    all_ids = samples.values("id")
    labels = dict.fromkeys(all_ids)
    cover = dict.fromkeys(all_ids)
    full = dict.fromkeys(all_ids)
    concept_samples = {}
    for i, sample_id in enumerate(table.sample_ids):
        labels[sample_id] = fo.Classifications(
            classifications=[
                fo.Classification(label=c, confidence=float(share), num_maps=int(n))
                for c, share, n in result.concepts[i]
            ]
        )
        cover[sample_id] = float(result.coverage[i])
        full[sample_id] = bool(result.fully_named[i])
        for c, _, _ in result.concepts[i]:
            concept_samples[c] = concept_samples.get(c, 0) + 1
    samples.set_values(config.explanation_field, labels, key_field="id", validate=False)
    samples.set_values(config.coverage_field, cover, key_field="id", validate=False)
    samples.set_values(config.fully_named_field, full, key_field="id", validate=False)
    return len(all_ids), concept_samples


def _mean(values):
    return float(np.mean(values)) if len(values) else None


def compute_explanations(
    samples,
    annotator,
    *,
    maps_field=MAPS_FIELD,
    explanation_field=None,
    coverage_field=None,
    fully_named_field=None,
    coverage="positive",
    min_share=0.0,
    prediction_field=None,
    run_key=None,
):
    """Explain every classification in ``samples`` by ``annotator``'s
    concepts, written as FiftyOne fields.

    For each sample with maps:

    - ``explanation_field``: a ``fo.Classifications`` with one
      ``fo.Classification`` per concept of its maps, ``confidence`` = the
      summed ``share`` of the concept's maps (their fraction of the whole
      positive contribution) and ``num_maps``; largest share first;
      :data:`~fiftyone_plugin.concepts.store.NOT_NAMEABLE` and unnamed maps
      excluded;
    - ``coverage_field`` (float): see the module docstring
      (``coverage="positive"``: the fraction of the whole positive
      contribution explained by named maps);
    - ``fully_named_field`` (bool): every significant map (with ``share >=
      min_share``) has a real concept.

    Samples without maps get ``None`` in all three. Values are written with
    one bulk ``set_values`` per field. The computation is the FiftyOne
    custom run ``run_key`` (type ``"explanations"``), which owns the three
    fields: ``dataset.delete_run(run_key)`` deletes them.

    Parameters
    ----------
    samples : SampleCollection
        whole images with maps; on a view only its samples are written.
    annotator : str
        whose concepts explain the predictions.
    maps_field : str, default ``"actmaps"``
    explanation_field : str, optional
        default ``explanation_<annotator>``.
    coverage_field : str, optional
        default ``<explanation_field>_coverage``.
    fully_named_field : str, optional
        default ``<explanation_field>_fully_named``.
    coverage : {"positive", "maps"}, default "positive"
    min_share : float in [0, 1], default 0.0
        a fraction of the positive contribution.
    prediction_field : str, optional
        default: the one recorded by the maps run.
    run_key : str, optional
        default: the explanation field's name.

    Returns
    -------
    ExplanationsResults
        the same as ``samples.load_run_results(run_key)``.

    Raises
    ------
    ValueError
        unknown annotator, no maps field, bad or clashing field names, a
        field that exists with another type, bad ``coverage`` or
        ``min_share``; raised before anything is written.

    References
    ----------
    .. [1] Hamidi-Haines et al., "Interactive Naming for Explaining Deep
       Neural Networks: A Formative Study", arXiv:1812.07150, 2018.
    """
    config = ExplanationsConfig(
        annotator=annotator, maps_field=maps_field, explanation_field=explanation_field,
        coverage_field=coverage_field, fully_named_field=fully_named_field,
        coverage=coverage, min_share=min_share,
    )
    table = read_maps(samples, annotator, maps_field=maps_field, prediction_field=prediction_field)
    config.prediction_field = table.prediction_field
    run_key = check_field_name(run_key or config.explanation_field, "run_key")
    register_run(samples, run_key, config)

    result = explain(table, coverage=coverage, min_share=min_share)
    num_samples, concept_samples = _write_explanations(samples, config, table, result)
    with np.errstate(invalid="ignore", divide="ignore"):
        maps_cov = np.where(result.maps_share > 0,
                            result.named_share / np.where(result.maps_share > 0, result.maps_share, 1), 0.0)
    results = ExplanationsResults(
        samples, config, run_key,
        explanation_field=config.explanation_field,
        coverage_field=config.coverage_field,
        fully_named_field=config.fully_named_field,
        coverage_mode=coverage,
        num_samples=num_samples,
        num_with_maps=table.num_samples,
        mean_coverage=_mean(result.coverage),
        mean_positive_coverage=_mean(result.named_share),
        mean_maps_coverage=_mean(maps_cov),
        fully_named=int(result.fully_named.sum()),
        fully_named_fraction=_mean(result.fully_named),
        concepts=dict(sorted(concept_samples.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
    save_run_results(samples, run_key, results)
    return results
