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

Modules: :mod:`.alpha` (Krippendorff's alpha kernel), :mod:`.codes`
(coding the labels), :mod:`.pairs` (pair alpha), :mod:`.alignment`
(Hungarian matching), :mod:`.crossfit` (cross-fitted aligned alpha),
:mod:`.statistics` (every statistic of a labels array,
:func:`~.statistics.agreement_from_labels`), :mod:`.results` (the run's config
and results). Those need no FiftyOne I/O; this module reads and writes the
concept store: :func:`read_labels`, :func:`compute_agreement` (the run) and
:func:`write_consensus`.
"""

import numpy as np

from ..concepts.names import NOT_NAMEABLE
from ..concepts.store import assign_concept, concept_field, list_annotators, validate_annotator
from ..runs import register_run, save_run_results
from ..storage import MAPS_FIELD, resolve_maps
from .results import AgreementConfig, AgreementResults, aligned_alpha_note
from .statistics import agreement_from_labels

# aligned_alpha_note is re-exported: the report shows it next to the figure
__all__ = [
    "NOT_NAMEABLE", "AgreementConfig", "AgreementResults", "agreement_from_labels",
    "aligned_alpha_note", "compute_agreement", "read_labels", "write_consensus",
]


def read_labels(samples, annotators, *, maps_field=MAPS_FIELD):
    """Every map's id and, per annotator, its concept, in sample order.

    Parameters
    ----------
    samples : SampleCollection
    annotators : list of str
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)

    Returns
    -------
    map_ids : list of str, length n_maps
    labels : list of object arrays, one of length n_maps per annotator
        The concept names, ``None`` where the annotator did not name the map.
    """
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
    *,
    annotators=None,
    maps_field=MAPS_FIELD,
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
        A dataset or view with maps in ``maps_field`` (or a patches view of
        them, which stands for its maps).
    annotators : list of str, optional
        Default: everyone who named maps in ``maps_field``, except the names
        in ``exclude``.
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
    run_key : str or None, default "agreement"
        Register the results as a FiftyOne custom run of type
        ``"agreement"`` under this key (``None``: don't). The run writes no
        sample field; ``dataset.load_run_results(run_key)`` returns the same
        :class:`~.results.AgreementResults`.
    not_nameable : {"category", "missing"}, default "category"
        How :data:`NOT_NAMEABLE` enters the pair and aligned alphas (see the
        module docstring); the nameable alpha always uses it.
    reference : str, optional
        Annotator aligned first, whose names the canonical concepts take
        (default: the one who judged most maps).
    min_votes : int, default 2
        Fewest agreeing annotators for a consensus label.
    jaccard_threshold : float in [0, 1], default 0.5
        A concept is "shared" with another annotator when its best match
        there has at least this Jaccard overlap.
    exclude : iterable of str, default ("consensus",)
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
        :func:`~.crossfit.aligned_alpha`); the ``alignment``, canonical
        concepts and the consensus use the matching fitted on all maps.
        ``per_concept`` Jaccard values are descriptive: each is the best
        match among the other annotator's concepts on the same maps, so with
        few maps per concept it is optimistic.

    Raises
    ------
    ValueError
        fewer than two annotators, unknown annotators, a bad parameter, or
        no map judged by two or more of them (nothing to compare); nothing
        is registered then.

    References
    ----------
    K. Krippendorff, "Computing Krippendorff's Alpha-Reliability", 2011,
    https://repository.upenn.edu/asc_papers/43; H. W. Kuhn, "The Hungarian
    method for the assignment problem", Naval Research Logistics Quarterly 2,
    1955 (``scipy.optimize.linear_sum_assignment``).
    """
    # a patches view of the maps field stands for its maps (one shared rule)
    samples, _ = resolve_maps(samples, maps_field=maps_field, what="compute_agreement")
    known = list_annotators(samples, maps_field=maps_field)
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
    config = AgreementConfig(
        annotators=annotators, maps_field=maps_field, not_nameable=not_nameable,
        reference=reference, min_votes=min_votes, jaccard_threshold=jaccard_threshold,
    )
    config.validate(samples)
    map_ids, labels = read_labels(samples, annotators, maps_field=maps_field)
    # the kernel runs before the run is registered: it writes no field, and
    # data it can't compare (no overlap) must leave no run behind
    values = agreement_from_labels(
        labels,
        annotators,
        map_ids=map_ids,
        not_nameable=not_nameable,
        reference=reference,
        min_votes=min_votes,
        jaccard_threshold=jaccard_threshold,
    ).values()
    if run_key is not None:
        register_run(samples, run_key, config)
    results = AgreementResults(samples, config, run_key, **values)
    if run_key is not None:
        save_run_results(samples, run_key, results)
    return results


def write_consensus(samples, results, *, annotator="consensus", maps_field=None):
    """Write the consensus naming of ``results`` as its own annotator.

    Maps with a majority get its canonical name (or :data:`NOT_NAMEABLE`);
    maps without one are cleared for ``annotator`` (so a rewrite replaces an
    old consensus).

    Parameters
    ----------
    samples : SampleCollection
    results : AgreementResults
        From :func:`compute_agreement` or ``dataset.load_run_results(key)``
        (or :func:`~.statistics.agreement_from_labels` with ``map_ids``).
    annotator : str, default "consensus"
        Must not be one of the annotators compared.
    maps_field : str, optional
        Default: the run's maps field, else ``"actmaps"``.

    Returns
    -------
    dict
        ``{"named": n, "cleared": n, "concepts": {name: count}}``.

    Raises
    ------
    ValueError
        a bad annotator id or one of the annotators compared, or results
        without per-map consensus.
    """
    validate_annotator(annotator)
    if annotator in results.annotators:
        raise ValueError(
            f"{annotator!r} is one of the annotators compared; writing the consensus "
            "there would overwrite their names"
        )
    if results.map_ids is None or results.consensus_labels is None:
        raise ValueError("these results hold no per-map consensus (compute them with compute_agreement)")
    maps_field = maps_field or results.maps_field or MAPS_FIELD
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
