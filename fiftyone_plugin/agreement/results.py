"""The agreement run's config and results (the run contract of
:mod:`fiftyone_plugin.runs`): what :func:`~.compute.compute_agreement`
returns is what ``dataset.load_run_results(run_key)`` gives back.
"""

import math

import numpy as np

from ..concepts.store import validate_annotator
from ..runs import RunConfig, RunResults, jsonable
from ..storage import MAPS_FIELD
from .codes import _NOT_NAMEABLE_MODES
from .crossfit import ALIGNED_REPEATS, ALIGNED_SEED

RUN_TYPE = "agreement"
STATISTICS = ("pair_alpha", "aligned_alpha", "nameable_alpha")


def check_parameters(annotators, *, not_nameable, reference, min_votes, jaccard_threshold):
    """Raise ``ValueError`` on a parameter :func:`~.statistics.agreement_from_labels`
    can't take (shared by the kernel and :class:`AgreementConfig`)."""
    if not_nameable not in _NOT_NAMEABLE_MODES:
        raise ValueError(f"not_nameable must be one of {_NOT_NAMEABLE_MODES}; got {not_nameable!r}")
    if isinstance(min_votes, bool) or not isinstance(min_votes, (int, np.integer)) or min_votes < 1:
        raise ValueError(f"min_votes must be a positive integer; got {min_votes!r}")
    if not 0.0 <= float(jaccard_threshold) <= 1.0:
        raise ValueError(f"jaccard_threshold must be in [0, 1]; got {jaccard_threshold!r}")
    if annotators is not None and reference is not None and reference not in annotators:
        raise ValueError(f"reference {reference!r} is not one of the annotators {list(annotators)}")


class AgreementConfig(RunConfig):
    """Parameters of an agreement run (see
    :func:`~.compute.compute_agreement`). The run writes no sample field
    (:meth:`fields` is empty): :func:`~.compute.write_consensus` writes a
    consensus *annotator*, which is a person-like namespace of its own and
    stays when the run is deleted."""

    run_type = RUN_TYPE

    def __init__(
        self,
        annotators=None,
        maps_field=MAPS_FIELD,
        not_nameable="category",
        reference=None,
        min_votes=2,
        jaccard_threshold=0.5,
        **kwargs,
    ):
        self.annotators = list(annotators) if annotators is not None else None
        self.maps_field = maps_field
        self.not_nameable = not_nameable
        self.reference = reference
        # numpy scalars become plain numbers (the config is stored as BSON)
        self.min_votes = jsonable(min_votes)
        self.jaccard_threshold = jsonable(jaccard_threshold)
        super().__init__(**kwargs)

    def validate(self, samples):
        if self.annotators is None or len(self.annotators) < 2:
            raise ValueError(
                f"agreement needs at least two annotators who named maps in {self.maps_field!r}; "
                f"found {self.annotators}"
            )
        for annotator in self.annotators:
            validate_annotator(annotator)
        check_parameters(
            self.annotators, not_nameable=self.not_nameable, reference=self.reference,
            min_votes=self.min_votes, jaccard_threshold=self.jaccard_threshold,
        )


def _alpha(value):
    # stored results hold NaN as None (JSON); in memory an undefined alpha is NaN
    return math.nan if value is None else float(value)


class AgreementResults(RunResults):
    """What :func:`~.compute.compute_agreement` (and
    :func:`~.statistics.agreement_from_labels`) found.

    Alphas are floats; ``nan`` where undefined, with the reason in
    ``reasons[statistic]``. ``pairwise`` holds annotators x annotators
    matrices (``None`` on the diagonal and where undefined, reasons in
    ``pairwise["undefined"]``). ``map_ids`` and ``consensus_labels`` (one per
    map, ``None`` where there is no majority) are stored with the run, so a
    loaded run can still :func:`~.compute.write_consensus`.

    Results of :func:`~.statistics.agreement_from_labels` have no samples,
    config or key (``None``): they are not a run.
    """

    def __init__(
        self,
        samples,
        config,
        key,
        annotators=None,
        not_nameable="category",
        n_maps=0,
        n_judged=0,
        n_overlap=0,
        pair_alpha=None,
        aligned_alpha=None,
        nameable_alpha=None,
        reasons=None,
        alignment=None,
        canonical_concepts=None,
        pairwise=None,
        per_concept=None,
        consensus=None,
        aligned_design=None,
        map_ids=None,
        consensus_labels=None,
        backend=None,
    ):
        super().__init__(samples, config, key, backend=backend)
        self.annotators = annotators
        self.not_nameable = not_nameable
        self.n_maps = n_maps
        self.n_judged = n_judged
        self.n_overlap = n_overlap
        self.pair_alpha = _alpha(pair_alpha)
        self.aligned_alpha = _alpha(aligned_alpha)
        self.nameable_alpha = _alpha(nameable_alpha)
        self.reasons = reasons or {}
        self.alignment = alignment
        self.canonical_concepts = canonical_concepts
        self.pairwise = pairwise
        self.per_concept = per_concept
        self.consensus = consensus
        self.aligned_design = aligned_design
        self.map_ids = map_ids
        self.consensus_labels = consensus_labels

    @property
    def maps_field(self):
        """The maps field of the run (``None`` for results of labels)."""
        return getattr(self.config, "maps_field", None)

    def values(self):
        """The result values as keyword arguments of the constructor."""
        return {k: getattr(self, k) for k in self.attributes() if k != "cls"}

    def __repr__(self):
        alphas = ", ".join(f"{s}={getattr(self, s):.4g}" for s in STATISTICS)
        return f"AgreementResults(annotators={self.annotators}, {alphas})"


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

