"""Evaluation of named concepts: explanations, typical reasons per class,
untrustworthy example types and concept <-> neuron correspondence -- exact
small cases on hand-built maps, the concept world end to end, and the
operators."""

import asyncio
import base64
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import normalized_mutual_info_score

import fiftyone as fo
import fiftyone.operators as foo
from fiftyone.operators.executor import ExecutionResult, resolve_type

import fiftyone_plugin as fpl
from fiftyone_plugin.demo import CUE_CLASS, build_dataset, default_annotators, load_model
from fiftyone_plugin.demo.pipeline import simulate_annotators
from fiftyone_plugin.evaluation.explanations import ExplanationsResults, compute_explanations, explain
from fiftyone_plugin.evaluation.maptable import read_maps
from fiftyone_plugin.evaluation.neurons import NeuronResults, correspondence_from_labels, neuron_correspondence
from fiftyone_plugin.evaluation.reasons import SummaryResults, summarize_concepts
from fiftyone_plugin.evaluation.stats import (
    benjamini_hochberg,
    excess_errors,
    fisher_greater,
    newcombe_interval,
    wilson_interval,
)
from fiftyone_plugin.evaluation.untrustworthy import UntrustworthyResults, untrustworthy_concepts
from fiftyone_plugin.maps.config import ActivationMapsConfig
from fiftyone_plugin.runs import register_run

from tests.support.helpers import build, untrustworthy_specs

NN = fpl.NOT_NAMEABLE
PLUGIN = "@interactive-naming/interactive-naming"


# --------------------------------------------------------------------------
# explanations


EXPLAIN_SPECS = [
    ("a", 0.9, "a", [(1, 0.5, "head"), (2, 0.2, "head"), (3, 0.1, NN)]),
    ("a", 0.8, "a", [(1, 0.4, "head"), (4, 0.3, "sun")]),
    ("b", 0.7, "a", [(2, 0.6, None)]),
    ("b", 0.6, "b", None),
]


def test_explanations_exact(dataset):
    build(dataset, EXPLAIN_SPECS)
    summary = compute_explanations(dataset, "alice")
    assert summary.explanation_field == "explanation_alice"
    assert summary.coverage_field == "explanation_alice_coverage"
    assert summary.fully_named_field == "explanation_alice_fully_named"
    assert summary.num_samples == 4 and summary.num_with_maps == 3
    assert summary.fully_named == 1
    assert summary.mean_coverage == pytest.approx((0.7 + 0.7 + 0.0) / 3)
    assert summary.mean_maps_coverage == pytest.approx((0.7 / 0.8 + 1.0 + 0.0) / 3)
    assert summary.concepts == {"head": 2, "sun": 1}

    explanations = dataset.values("explanation_alice")
    first = explanations[0].classifications
    assert [(c.label, c.num_maps) for c in first] == [("head", 2)]
    assert first[0].confidence == pytest.approx(0.7)
    second = explanations[1].classifications
    assert [c.label for c in second] == ["head", "sun"]  # largest share first
    assert [c.confidence for c in second] == pytest.approx([0.4, 0.3])
    assert explanations[2].classifications == []  # unnamed maps explain nothing
    assert explanations[3] is None  # no maps: unknown, not "unexplained"

    coverage = dataset.values("explanation_alice_coverage")
    assert coverage[:3] == pytest.approx([0.7, 0.7, 0.0]) and coverage[3] is None
    assert dataset.values("explanation_alice_fully_named") == [False, True, False, None]

    # a custom run, with its config and results
    assert "explanation_alice" in dataset.list_runs()
    config = dataset.get_run_info("explanation_alice").config
    assert config.annotator == "alice" and config.coverage == "positive"
    assert dataset.load_run_results("explanation_alice").fully_named == 1


def test_explanations_coverage_modes_and_min_share(dataset):
    build(dataset, EXPLAIN_SPECS)
    table = read_maps(dataset, "alice")
    maps = explain(table, coverage="maps")
    assert maps.coverage == pytest.approx([0.7 / 0.8, 1.0, 0.0])
    # the not-nameable map of sample 0 has share 0.1: below min_share it is
    # not required to be named
    lenient = explain(table, min_share=0.15)
    assert list(lenient.fully_named) == [True, True, False]
    summary = compute_explanations(dataset, "alice", explanation_field="why", coverage="maps", min_share=0.15)
    assert summary.key == "why" and summary.coverage_field == "why_coverage"
    assert dataset.values("why_coverage")[:3] == pytest.approx([0.875, 1.0, 0.0])
    assert dataset.values("why_fully_named") == [True, True, False, None]


def test_explanations_on_a_view_write_only_its_samples(dataset):
    build(dataset, EXPLAIN_SPECS)
    compute_explanations(dataset.skip(1).limit(1), "alice")
    assert dataset.values("explanation_alice_coverage") == [None, pytest.approx(0.7), None, None]


def test_explanations_refuse_bad_input(dataset):
    build(dataset, EXPLAIN_SPECS)
    with pytest.raises(ValueError, match="has named no maps"):
        compute_explanations(dataset, "bob")
    with pytest.raises(ValueError, match="annotator"):
        compute_explanations(dataset, "bad name")
    with pytest.raises(ValueError, match="letters"):
        compute_explanations(dataset, "alice", explanation_field="a.b")
    with pytest.raises(ValueError, match="coverage"):
        compute_explanations(dataset, "alice", coverage="all")
    dataset.add_sample_field("taken", fo.StringField)
    with pytest.raises(ValueError, match="exists with another type"):
        compute_explanations(dataset, "alice", explanation_field="taken")
    with pytest.raises(ValueError, match="no maps field"):
        compute_explanations(dataset, "alice", maps_field="nothing")


# --------------------------------------------------------------------------
# typical reasons per class

SUMMARY_SPECS = [
    ("a", 0.9, "a", [(1, 0.5, "head"), (2, 0.2, "sun")]),
    ("a", 0.8, "a", [(1, 0.4, "head")]),
    ("a", 0.5, "b", [(2, 0.3, "sun")]),
    ("a", 0.6, "a", [(1, 0.2, "head"), (3, 0.1, NN)]),
    ("b", 0.7, "b", [(5, 0.5, "tail")]),
]


def test_summarize_concepts_exact(dataset):
    build(dataset, SUMMARY_SPECS)
    summary = summarize_concepts(dataset, "alice", gt_field="ground_truth")
    df = summary.table
    assert list(zip(df["predicted_class"], df["concept"])) == [("a", "head"), ("a", "sun"), ("b", "tail")]
    head, sun, tail = (df.iloc[i] for i in range(3))
    assert (head.n_class, head.n_with, head.num_maps) == (4, 3, 3)
    assert head.frequency == pytest.approx(0.75)
    assert head.mean_share == pytest.approx((0.5 + 0.4 + 0.2) / 3)
    assert head.confidence_with == pytest.approx((0.9 + 0.8 + 0.6) / 3)
    assert head.confidence_without == pytest.approx(0.5)
    assert (head.accuracy_with, head.accuracy_without) == (1.0, 0.0)
    assert (sun.n_with, sun.frequency, sun.mean_share) == (2, 0.5, pytest.approx(0.25))
    assert sun.confidence_with == pytest.approx(0.7) and sun.confidence_without == pytest.approx(0.7)
    assert (sun.accuracy_with, sun.accuracy_without) == (0.5, 1.0)
    assert (tail.n_class, tail.n_with, tail.accuracy_with) == (1, 1, 1.0)
    assert math.isnan(tail.confidence_without) and math.isnan(tail.accuracy_without)
    assert summary.classes["a"] == {"n": 4, "mean_confidence": pytest.approx(0.7), "accuracy": 0.75}

    # saved views: samples predicted the class with the concept, only those maps shown
    assert head.view == "naming: a explained by head (alice)"
    view = dataset.load_saved_view(head.view)
    assert len(view) == 3 and view.count("actmaps.detections") == 3
    assert set(view.distinct("actmaps.detections.concept_alice")) == {"head"}
    assert len(dataset.load_saved_view(sun.view)) == 2

    # a custom run with the rows
    results = dataset.load_run_results("concept_summary_alice")
    assert len(results.rows) == 3 and results.rows[0]["concept"] == "head"
    assert results.saved_views == list(df["view"])


def test_summary_without_ground_truth_and_without_views(dataset):
    build(dataset, SUMMARY_SPECS)
    df = summarize_concepts(dataset, "alice", save_views=False, min_count=2).table
    assert list(df["concept"]) == ["head", "sun"]
    assert df["accuracy_with"].isna().all() and df["view"].isna().all()
    assert dataset.list_saved_views() == []


def test_summary_views_are_replaced_on_rerun_and_never_clobber_users_views(dataset):
    build(dataset, SUMMARY_SPECS)
    dataset.save_view("naming: a explained by head (alice)", dataset.limit(1))  # the user's own
    df = summarize_concepts(dataset, "alice", max_views_per_class=1).table
    assert list(df["view"].dropna()) == ["naming: a explained by head (alice) [2]", "naming: b explained by tail (alice)"]
    assert len(dataset.load_saved_view("naming: a explained by head (alice)")) == 1  # untouched

    fpl.rename_concept(dataset, "alice", "tail", "fin")
    summarize_concepts(dataset, "alice", max_views_per_class=1)
    views = dataset.list_saved_views()
    assert "naming: b explained by tail (alice)" not in views  # the stale view of the old run is gone
    assert "naming: b explained by fin (alice)" in views
    assert "naming: a explained by head (alice)" in views and "naming: a explained by head (alice) [2]" in views
    assert len(views) == 3


def test_view_names_are_sanitised(dataset):
    # class names come from models, concept names from people (at most 100 characters)
    build(dataset, [("x\u0007  y " + "z" * 200, 0.9, "a", [(1, 0.5, "c" * 100)])])
    df = summarize_concepts(dataset, "alice").table
    name = df["view"][0]
    assert "\u0007" not in name and "  " not in name and len(name) < 160
    assert len(dataset.load_saved_view(name)) == 1


# --------------------------------------------------------------------------
# statistics


def test_wilson_and_newcombe_reproduce_published_values():
    low, high = wilson_interval(0, 10)
    assert (float(low), float(high)) == (0.0, pytest.approx(0.2775, abs=1e-4))
    low, high = wilson_interval(5, 10)
    assert (float(low), float(high)) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    # Newcombe (1998), Stat. Med. 17:873, table II, method 10
    d, low, high = newcombe_interval(56, 70, 48, 80)
    assert (float(low), float(high)) == (pytest.approx(0.0524, abs=1e-4), pytest.approx(0.3339, abs=1e-4))
    d, low, high = newcombe_interval(9, 10, 3, 10)
    assert (float(low), float(high)) == (pytest.approx(0.1705, abs=1e-4), pytest.approx(0.8090, abs=1e-4))
    assert np.isnan(newcombe_interval(1, 2, 0, 0)[1])


def test_fisher_greater_equals_scipy():
    rng = np.random.default_rng(0)
    tables = rng.integers(0, 12, size=(50, 4))
    ours = fisher_greater(*tables.T)
    for (a, b, c, d), p in zip(tables, ours):
        assert p == pytest.approx(stats.fisher_exact([[a, b], [c, d]], alternative="greater")[1], rel=1e-9, abs=1e-12)


def test_benjamini_hochberg_exact():
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.005, np.nan])
    assert q[:4] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert np.isnan(q[4])
    assert benjamini_hochberg([0.9, 0.8]) == pytest.approx([0.9, 0.9])


def test_excess_errors_is_errors_beyond_the_rate_without():
    assert excess_errors(4, 6, 1, 10) == pytest.approx(4 - 6 * 0.1)
    assert np.isnan(excess_errors(1, 5, 0, 0))


def test_untrustworthy_exact(dataset):
    build(dataset, untrustworthy_specs())
    results = untrustworthy_concepts(dataset, "alice", "ground_truth")
    df = results.table
    # flagged first, then by score (nan last)
    assert list(df["concept"]) == ["cue", "rare", "body"]
    cue, rare, body = (df.iloc[i] for i in range(3))
    assert (cue.n_with, cue.n_without, cue.errors_with, cue.errors_without) == (6, 10, 4, 1)
    assert cue.error_rate_with == pytest.approx(4 / 6) and cue.error_rate_without == pytest.approx(0.1)
    assert cue.risk_difference == pytest.approx(4 / 6 - 0.1)
    _, low, high = newcombe_interval(4, 6, 1, 10)
    assert (cue.risk_difference_low, cue.risk_difference_high) == (pytest.approx(float(low)), pytest.approx(float(high)))
    assert cue.excess_errors == pytest.approx(3.4) and cue.score == pytest.approx(3.4)
    p = stats.fisher_exact([[4, 2], [1, 9]], alternative="greater")[1]
    assert cue.p_value == pytest.approx(p)
    assert cue.tested and cue.flagged and cue.q_value <= 0.05
    assert cue.confidence_with == pytest.approx(0.5) and cue.confidence_without == pytest.approx(0.9)
    assert cue.view == "naming: untrustworthy x with cue (alice)"
    assert len(dataset.load_saved_view(cue.view)) == 6

    # "body" is in every sample of x: nothing to compare against
    assert body.n_without == 0 and not body.tested and not body.flagged
    # "rare": 3 samples (one wrong) is below the minimum support
    assert rare.n_with == 3 and not rare.tested and not rare.flagged and np.isnan(rare.p_value)
    assert results.num_tested == 1 and results.num_flagged == 1

    results = dataset.load_run_results("untrustworthy_alice")
    assert results.num_flagged == 1 and results.rows[0]["concept"] == "cue"
    assert dataset.get_run_info("untrustworthy_alice").config.by == "error"


def test_untrustworthy_guard_and_options(dataset):
    build(dataset, untrustworthy_specs())
    # a stricter support guard leaves nothing tested
    results = untrustworthy_concepts(dataset, "alice", "ground_truth", min_support=7, save_views=False)
    df = results.table
    assert results.num_tested == 0 and not df["flagged"].any() and df["view"].isna().all()
    # with a very small alpha the cue is tested but not flagged
    df = untrustworthy_concepts(dataset, "alice", "ground_truth", alpha=1e-4, save_views=False).table
    assert df.iloc[0]["concept"] == "cue" and df.iloc[0]["tested"] and not df.iloc[0]["flagged"]
    with pytest.raises(ValueError, match="ground-truth"):
        untrustworthy_concepts(dataset, "alice", None, by="error")
    with pytest.raises(ValueError, match="by must be"):
        untrustworthy_concepts(dataset, "alice", "ground_truth", by="luck")
    with pytest.raises(ValueError, match="no ground-truth field"):
        untrustworthy_concepts(dataset, "alice", "truth")


def test_untrustworthy_by_confidence_exact(dataset):
    build(dataset, untrustworthy_specs())
    results = untrustworthy_concepts(dataset, "alice")  # no ground truth: by confidence
    assert results.config.by == "confidence"
    df = results.table
    cue = df.iloc[0]
    assert cue.concept == "cue" and cue.flagged
    assert cue.confidence_drop == pytest.approx(0.4)
    assert cue.confidence_lost == pytest.approx(6 * 0.4) and cue.score == pytest.approx(2.4)
    # every confidence with the cue is below every one without: rank-biserial 1
    assert cue.confidence_effect == pytest.approx(1.0)
    expected = stats.mannwhitneyu([0.5] * 6, [0.9] * 10, alternative="less").pvalue
    assert cue.confidence_p == pytest.approx(expected)
    assert np.isnan(cue.p_value)


# --------------------------------------------------------------------------
# concept <-> neuron correspondence


def test_correspondence_exact():
    result = correspondence_from_labels(["head"] * 4 + ["sun"] * 2, [1, 1, 1, 2, 3, 3])
    concepts = result.concepts.set_index("concept")
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert concepts.loc["head", "num_channels"] == 2
    assert concepts.loc["head", "top_channel"] == "1"
    assert concepts.loc["head", "top_channel_share"] == pytest.approx(0.75)
    assert concepts.loc["head", "entropy"] == pytest.approx(h)
    assert concepts.loc["head", "normalized_entropy"] == pytest.approx(h / math.log(3))
    assert concepts.loc["head", "effective_channels"] == pytest.approx(math.exp(h))
    assert (concepts.loc["sun", "num_channels"], concepts.loc["sun", "normalized_entropy"]) == (1, 0.0)
    channels = result.channels.set_index("unit")
    assert list(channels["num_concepts"]) == [1, 1, 1]
    assert channels.loc["2", "top_concept"] == "head"
    # the channel determines the concept: I = H(concept)
    h_concept = -(4 / 6 * math.log(4 / 6) + 2 / 6 * math.log(2 / 6))
    h_channel = -(3 / 6 * math.log(3 / 6) + 1 / 6 * math.log(1 / 6) + 2 / 6 * math.log(2 / 6))
    assert result.nmi == pytest.approx(2 * h_concept / (h_concept + h_channel))
    assert result.nmi == pytest.approx(normalized_mutual_info_score([0, 0, 0, 0, 1, 1], [1, 1, 1, 2, 3, 3]))
    assert (result.concept_purity, result.channel_purity) == (1.0, pytest.approx(5 / 6))
    assert result.matrix.loc["head"].tolist() == [3, 1, 0]
    assert result.to_dict()["matrix_cells"] == [["head", "1", 3], ["head", "2", 1], ["sun", "3", 2]]


def test_correspondence_one_neuron_per_concept_and_degenerate_cases():
    perfect = correspondence_from_labels(["a", "a", "b", "c"], [7, 7, 8, 9])
    assert perfect.nmi == pytest.approx(1.0) and perfect.concept_purity == perfect.channel_purity == 1.0
    assert (perfect.concepts["top_channel_share"] == 1.0).all()
    single = correspondence_from_labels(["a", "a"], [1, 1])
    assert single.nmi == 1.0 and single.concepts["normalized_entropy"].tolist() == [0.0]
    layers = correspondence_from_labels(["a", "b"], [1, 1], layers=["l1", "l2"])
    assert list(layers.matrix.columns) == ["l1:1", "l2:1"]
    with pytest.raises(ValueError, match="no named maps"):
        correspondence_from_labels([], [])


def test_neuron_correspondence_on_a_dataset(dataset):
    build(dataset, [
        ("a", 0.9, "a", [(1, 0.5, "head"), (2, 0.2, "sun"), (3, 0.1, NN)]),
        ("a", 0.8, "a", [(1, 0.4, "head"), (4, 0.1, None)]),
        ("b", 0.7, "b", [(2, 0.3, "sun")]),
    ])
    result = neuron_correspondence(dataset, "alice")
    assert (result.num_maps, result.num_concepts, result.num_channels) == (4, 2, 2)  # NN and unnamed left out
    assert result.nmi == pytest.approx(1.0)
    assert result.run_key == "neuron_correspondence_alice"
    stored = dataset.load_run_results("neuron_correspondence_alice")
    assert stored.nmi == pytest.approx(1.0) and len(stored.concepts) == 2
    fpl.assign_concept(dataset, dataset.values("actmaps.detections.id", unwind=True), NN, "bob")
    with pytest.raises(ValueError, match="no map"):
        neuron_correspondence(dataset, "bob")


# --------------------------------------------------------------------------
# the run contract: what each run returns is what load_run_results returns,
# and delete_run removes what the run wrote (fields or saved views)


def _round_trip(dataset, returned, cls):
    loaded = dataset.load_run_results(returned.key, cache=False)
    assert type(returned) is cls and type(loaded) is cls
    assert loaded.to_dict() == returned.to_dict()
    return loaded


def test_explanations_round_trip_and_delete_run_removes_their_fields(dataset):
    build(dataset, EXPLAIN_SPECS)
    returned = compute_explanations(dataset, "alice", explanation_field="why")
    loaded = _round_trip(dataset, returned, ExplanationsResults)
    assert loaded.mean_coverage == pytest.approx((0.7 + 0.7 + 0.0) / 3)
    assert dataset.get_run_info("why").config.fields() == ["why", "why_coverage", "why_fully_named"]
    dataset.add_sample_field("kept", fo.FloatField)
    dataset.delete_run("why")
    schema = set(dataset.get_field_schema())
    assert not {"why", "why_coverage", "why_fully_named"} & schema
    assert {"actmaps", "kept", "actmap_prediction"} <= schema
    assert "why" not in dataset.list_runs()


def test_summary_round_trip_and_delete_run_removes_its_views(dataset):
    build(dataset, SUMMARY_SPECS)
    dataset.save_view("mine", dataset.limit(1))
    returned = summarize_concepts(dataset, "alice", gt_field="ground_truth")
    loaded = _round_trip(dataset, returned, SummaryResults)
    pd.testing.assert_frame_equal(loaded.table, returned.table)
    assert loaded.classes == returned.classes and len(loaded.saved_views) == 3
    schema = set(dataset.get_field_schema())
    dataset.delete_run("concept_summary_alice")
    assert dataset.list_saved_views() == ["mine"]
    assert set(dataset.get_field_schema()) == schema
    # a rerun without views removes the views of the run it replaces
    summarize_concepts(dataset, "alice")
    assert len(dataset.list_saved_views()) == 4
    summarize_concepts(dataset, "alice", save_views=False)
    assert dataset.list_saved_views() == ["mine"]


def test_untrustworthy_round_trip_and_delete_run_removes_its_views(dataset):
    build(dataset, untrustworthy_specs())
    returned = untrustworthy_concepts(dataset, "alice", "ground_truth")
    loaded = _round_trip(dataset, returned, UntrustworthyResults)
    pd.testing.assert_frame_equal(loaded.table, returned.table)
    assert loaded.top_view == returned.top_view == "naming: untrustworthy x with cue (alice)"
    assert dataset.get_run_info("untrustworthy_alice").config.by == "error"
    dataset.delete_run("untrustworthy_alice")
    assert dataset.list_saved_views() == [] and dataset.list_runs() == []


def test_neuron_results_round_trip_and_delete_run(dataset):
    build(dataset, [
        ("a", 0.9, "a", [(1, 0.5, "head"), (2, 0.2, "sun")]),
        ("a", 0.8, "a", [(1, 0.4, "head"), (3, 0.1, "sun")]),
    ])
    returned = neuron_correspondence(dataset, "alice")
    loaded = _round_trip(dataset, returned, NeuronResults)
    for name in ("concepts", "channels", "matrix"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(returned, name))
    assert loaded.matrix.loc["sun"].tolist() == [0, 1, 1]
    schema = set(dataset.get_field_schema())
    dataset.delete_run("neuron_correspondence_alice")
    assert dataset.list_runs() == [] and set(dataset.get_field_schema()) == schema


# --------------------------------------------------------------------------
# the concept world: the spurious cue tops the untrustworthy list


@pytest.fixture(scope="module")
def world(workdir):
    # 600 test images: enough errors for the cue to pass the FDR guard
    dataset = build_dataset(
        "test-evaluation-world", num_train=0, num_test=600, images_dir=f"{workdir}/eval-world", overwrite=True
    )
    fpl.compute_activation_maps(dataset, load_model(), top_k=5, batch_size=64)
    simulate_annotators(dataset)
    yield dataset
    dataset.delete()


def test_the_spurious_cue_tops_the_untrustworthy_list(world):
    for annotator in default_annotators():
        sun = annotator.word("sun")
        df = untrustworthy_concepts(world, annotator.name, "ground_truth").table
        top = df.iloc[0]
        print(annotator.name, df.head(3)[["predicted_class", "concept", "n_with", "errors_with", "excess_errors", "q_value"]])
        assert (top.predicted_class, top.concept) == (CUE_CLASS, sun)
        assert top.flagged and top.q_value < 1e-3
        cue_rows = df[df["predicted_class"] == CUE_CLASS]
        assert cue_rows.iloc[0]["concept"] == sun
        # the saved view shows exactly that type
        view = world.load_saved_view(top.view)
        assert set(view.distinct("actmap_prediction.label")) == {CUE_CLASS}
        assert set(view.distinct(f"actmaps.detections.concept_{annotator.name}")) == {sun}
        assert len(view) == top.n_with


def test_concept_world_explanations_summary_and_neurons(world):
    summary = compute_explanations(world, "ann_alice")
    assert summary.num_with_maps == len(world)
    assert 0.2 < summary.mean_coverage < 1.0 and summary.mean_maps_coverage > 0.8
    df = summarize_concepts(world, "ann_alice", gt_field="ground_truth", save_views=False).table
    cue = df[(df["predicted_class"] == CUE_CLASS) & (df["concept"] == "sun")].iloc[0]
    # the sun explains many of the cue class's predictions, and they are less accurate
    assert cue.frequency > 0.2 and cue.accuracy_with < cue.accuracy_without
    # heads explain their own classes
    round_head = df[(df["predicted_class"] == "round_dotted") & (df["concept"] == "round head")].iloc[0]
    assert round_head.frequency > 0.8
    result = neuron_correspondence(world, "ann_alice")
    assert result.num_concepts == 6 and 0.0 < result.nmi < 1.0


# --------------------------------------------------------------------------
# operators (registered in fiftyone.yml and operators/__init__.py)


def uri(name):
    return f"{PLUGIN}/{name}"


@pytest.fixture
def small(dataset):
    build(dataset, untrustworthy_specs())
    # a maps run, so that the operators' maps-field dropdown finds the field
    register_run(dataset, "actmaps", ActivationMapsConfig(maps_field="actmaps"))
    return dataset


def test_evaluation_operators_are_registered():
    names = {op.uri for op in foo.list_operators()}
    for name in ("compute_explanations", "summarize_concepts", "untrustworthy_concepts",
                 "neuron_correspondence", "write_report"):
        assert uri(name) in names


def test_explanation_and_summary_operators(small):
    params = {"maps_field": "actmaps", "annotator": "alice"}
    result = foo.execute_operator(uri("compute_explanations"), dataset=small, params=params)
    assert result.error is None, result.error
    assert result.result["num_with_maps"] == len(small)
    assert small.get_field("explanation_alice") is not None

    result = foo.execute_operator(
        uri("summarize_concepts"), dataset=small, params=dict(params, gt_field="ground_truth")
    )
    assert result.error is None, result.error
    rows = result.result["rows"]
    assert result.result["num_pairs"] == len(rows) == 3
    assert rows[0]["concept"] == "body" and rows[0]["view"] == "naming: x explained by body (alice)"
    assert "naming: x explained by cue (alice)" in small.list_saved_views()


def test_untrustworthy_and_neuron_operators(small):
    params = {"maps_field": "actmaps", "annotator": "alice", "gt_field": "ground_truth", "by": "error"}
    result = foo.execute_operator(uri("untrustworthy_concepts"), dataset=small, params=params)
    assert result.error is None, result.error
    assert result.result["num_flagged"] == 1 and result.result["rows"][0]["concept"] == "cue"
    assert result.result["top_view"] == "naming: untrustworthy x with cue (alice)"
    requests = json.dumps(result.executor.to_json())
    assert "set_view" in requests  # the top type opens in the App

    result = foo.execute_operator(
        uri("neuron_correspondence"), dataset=small, params={"maps_field": "actmaps", "annotator": "alice"}
    )
    assert result.error is None, result.error
    # shown to 4 significant digits
    assert result.result["num_concepts"] == 3
    assert result.result["nmi"] == float(f"{neuron_correspondence(small, 'alice').nmi:.4g}")


def test_report_operator_writes_a_file_or_downloads(small, workdir):
    path = f"{workdir}/op-report.html"
    params = {"maps_field": "actmaps", "annotator": "alice", "gt_field": "ground_truth"}
    result = foo.execute_operator(uri("write_report"), dataset=small, params=dict(params, path=path))
    assert result.error is None, result.error
    assert result.result["path"] == path
    with open(path, encoding="utf-8") as f:
        assert f.read().startswith("<!DOCTYPE html>")

    result = foo.execute_operator(uri("write_report"), dataset=small, params=params)
    assert result.error is None, result.error
    requests = json.dumps(result.executor.to_json())
    assert "browser_download" in requests
    payload = requests.split("data:text/html;base64,", 1)[1].split('"', 1)[0]
    assert base64.b64decode(payload).decode("utf-8").startswith("<!DOCTYPE html>")


def test_evaluation_operator_forms_resolve(small):
    registry = foo.OperatorRegistry()
    params = {"maps_field": "actmaps", "annotator": "alice", "gt_field": "ground_truth"}
    for name in ("compute_explanations", "summarize_concepts", "untrustworthy_concepts",
                 "neuron_correspondence", "write_report"):
        for target in ("inputs", "outputs"):
            request = {"dataset_name": small.name, "params": params, "target": target}
            if target == "outputs":
                request["results"] = foo.execute_operator(uri(name), dataset=small, params=dict(params, path="")).result
            prop = asyncio.run(resolve_type(registry, uri(name), request))
            assert not isinstance(prop, ExecutionResult), prop.error
            assert prop is not None and prop.to_json()
