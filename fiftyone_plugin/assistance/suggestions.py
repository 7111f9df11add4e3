"""Naming assistance: the tool proposes, the person decides.

:func:`suggest_concepts` learns, from the maps an annotator has named by hand,
which of **their** concepts (or :data:`~fiftyone_plugin.NOT_NAMEABLE`) each
unnamed map most likely shows, with a confidence (the model:
:mod:`.model`). The suggestions are a run of their own
(:class:`SuggestionsResults`); :func:`~.accept.accept_suggestions` writes the
accepted ones, :func:`~.groups.candidate_groups` offers clusters of unnamed
maps as ready-made selections.
"""

import logging
import math

import pandas as pd

from ..concepts.store import validate_annotator
from ..runs import RunConfig, RunResults, register_run, save_run_results
from ..storage import MAPS_FIELD, check_field_name, maps_field_of
from .model import fit_hand_named, predict_top_two, read_descriptors

logger = logging.getLogger(__name__)

SUGGESTIONS_RUN_TYPE = "concept_suggestions"
SUGGESTION_COLUMNS = ["map_id", "sample_id", "concept", "confidence", "runner_up", "runner_up_confidence"]


def suggestions_run_key(annotator):
    """The default run key of ``annotator``'s suggestions."""
    return f"suggestions_{validate_annotator(annotator)}"


def check_C(C):
    if isinstance(C, bool) or not isinstance(C, (int, float)) or not math.isfinite(C) or C <= 0:
        raise ValueError(f"C must be a positive number; got {C!r}")


class SuggestionsConfig(RunConfig):
    """Parameters of a suggestions run. It writes no sample field
    (:meth:`fields` is empty): suggestions live in the run's results until
    :func:`~.accept.accept_suggestions` writes some of them as names."""

    run_type = SUGGESTIONS_RUN_TYPE

    def __init__(self, annotator=None, maps_field=MAPS_FIELD, model="StandardScaler+LogisticRegression",
                 C=1.0, **kwargs):
        self.annotator = annotator
        self.maps_field = maps_field
        self.model = model
        self.C = C
        super().__init__(**kwargs)

    def validate(self, samples):
        validate_annotator(self.annotator)
        check_C(self.C)
        maps_field_of(samples, self.maps_field)


class SuggestionsResults(RunResults):
    """What :func:`suggest_concepts` found: one record per unnamed map with a
    descriptor, most confident first (``suggestions``, see :attr:`table`),
    ``num_taught`` (hand-named maps learnt from) and
    ``missing_descriptors`` (maps without a descriptor, given no
    suggestion)."""

    def __init__(self, samples, config, key, suggestions=None, num_taught=0, missing_descriptors=0, backend=None):
        super().__init__(samples, config, key, backend=backend)
        self.suggestions = suggestions or []
        self.num_taught = num_taught
        self.missing_descriptors = missing_descriptors

    @property
    def table(self):
        """The suggestions as a DataFrame with :data:`SUGGESTION_COLUMNS`:
        ``map_id, sample_id, concept, confidence`` (the model's probability
        of ``concept``, in [0, 1]), ``runner_up, runner_up_confidence``."""
        return pd.DataFrame(self.suggestions, columns=SUGGESTION_COLUMNS)

    def __len__(self):
        return len(self.suggestions)


def suggest_concepts(samples, annotator, *, maps_field=MAPS_FIELD, C=1.0, run_key=None):
    """For every map of ``samples`` that ``annotator`` has not named, the most
    likely of their concepts, learnt from the maps they named by hand.

    Maps named by accepted suggestions (provenance ``"suggested"``) or by
    transfer are not learnt from: the model learns from people only, so a
    wrong accepted suggestion does not teach itself. :data:`NOT_NAMEABLE`
    is a concept like the others here ("not nameable" is a possible
    suggestion).

    Parameters
    ----------
    samples : SampleCollection
        Maps in ``maps_field`` with descriptors
        (``compute_activation_maps(..., store_descriptors=True)``, the
        default).
    annotator : str
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
    C : float > 0, default 1.0
        Inverse regularisation strength of the logistic regression
        (:func:`~.model.concept_classifier`).
    run_key : str, optional
        Default ``suggestions_<annotator>``: the suggestions are stored as a
        custom run of type ``"concept_suggestions"``.

    Returns
    -------
    SuggestionsResults
        The same object ``dataset.load_run_results(run_key)`` returns;
        ``.table`` is a DataFrame, one row per unnamed map with a
        descriptor, most confident first.

    Raises
    ------
    ValueError
        bad annotator, ``C`` or maps field, fewer than two concepts named by
        hand; nothing is registered then.

    References
    ----------
    scikit-learn ``LogisticRegression`` (multinomial) and ``StandardScaler``
    (Pedregosa et al., JMLR 12, 2011); see :mod:`.model` for why its own
    probabilities are the confidence rather than ``CalibratedClassifierCV``.
    """
    run_key = check_field_name(run_key or suggestions_run_key(annotator), "run_key")
    config = SuggestionsConfig(annotator=annotator, maps_field=maps_field, C=C)
    config.validate(samples)
    table = read_descriptors(samples, annotator, maps_field=maps_field)
    # fitted before the run is registered: too few hand names leave no run
    model, taught = fit_hand_named(table, C=C)
    register_run(samples, run_key, config)
    todo = table["concept"].isna().to_numpy()
    out = table.loc[todo, ["map_id", "sample_id"]].reset_index(drop=True)
    if todo.any():
        concept, confidence, runner, runner_conf = predict_top_two(model, table.attrs["descriptors"][todo])
        out["concept"], out["confidence"] = [str(c) for c in concept], confidence
        out["runner_up"], out["runner_up_confidence"] = [str(c) for c in runner], runner_conf
    else:
        out = pd.DataFrame(columns=SUGGESTION_COLUMNS)
    out = out.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)
    missing = table.attrs["missing_descriptors"]
    if missing:
        logger.warning("%d map(s) have no descriptor and get no suggestion", missing)
    results = SuggestionsResults(
        samples, config, run_key, suggestions=out.to_dict("records"), num_taught=taught,
        missing_descriptors=missing,
    )
    save_run_results(samples, run_key, results)
    return results


def load_suggestions(samples, annotator, *, run_key=None):
    """The stored suggestions of ``annotator`` (run ``run_key``, default
    ``suggestions_<annotator>``).

    Raises
    ------
    ValueError
        no such run: run :func:`suggest_concepts` first.
    """
    run_key = run_key or suggestions_run_key(annotator)
    if run_key not in samples.list_runs():
        raise ValueError(f"no suggestions for {annotator}: run suggest_concepts first")
    return samples.load_run_results(run_key, cache=False)
