"""The evaluation panel's reader of stored runs
(``fiftyone_plugin.evaluation.findings``): on a hand-built dataset, each
section equals what its run's results hold (rounded), coverage per class is
derived by hand, and missing runs are reported as missing."""

import pytest

import fiftyone_plugin as fpl
from fiftyone_plugin.evaluation.findings import (
    SECTIONS,
    evaluation_annotators,
    find_run,
    read_findings,
    read_results,
    rounded,
    type_view,
)

from tests.support.helpers import build, untrustworthy_specs

NN = fpl.NOT_NAMEABLE

# class x: the cue goes with errors (see untrustworthy_specs); class z: one
# half-named sample and one not-nameable one
SPECS = untrustworthy_specs() + [
    ("z", 0.7, "z", [(4, 0.5, "stripes"), (5, 0.2, None)]),
    ("z", 0.6, "x", [(4, 0.4, NN)]),
]


def _name_as_bob(dataset):
    # bob names the same maps in his own words (and leaves "rare" alone)
    words = {"cue": "sun", "body": "torso", "stripes": "lines"}
    ids = dataset.values("actmaps.detections.id")
    groups = {}
    for map_ids, (_, _, _, maps) in zip(ids, SPECS):
        for map_id, (_, _, concept) in zip(map_ids or [], maps or []):
            if concept in words:
                groups.setdefault(words[concept], []).append(map_id)
    for concept, group in groups.items():
        fpl.assign_concept(dataset, group, concept, "bob")


@pytest.fixture
def small(dataset):
    build(dataset, SPECS)
    _name_as_bob(dataset)
    return dataset


def test_missing_runs_are_reported_missing(small):
    found = read_findings(small, "alice")
    assert list(found) == list(SECTIONS)
    assert all(section == {"run_key": None, "rows": []} for section in found.values())
    # nobody has runs: the first annotator is the default
    assert evaluation_annotators(small) == (["alice", "bob"], "alice")
    assert read_findings(small, None)["untrustworthy"]["run_key"] is None


def test_each_section_equals_its_run(small):
    explanations = fpl.compute_explanations(small, "alice")
    summary = fpl.summarize_concepts(small, "alice", gt_field="ground_truth")
    untrustworthy = fpl.untrustworthy_concepts(small, "alice", "ground_truth")
    neurons = fpl.neuron_correspondence(small, "alice")
    agreement = fpl.compute_agreement(small)
    found = read_findings(small, "alice", max_concepts_per_class=2)

    reasons = found["reasons"]
    assert reasons["run_key"] == summary.key == "concept_summary_alice"
    expected = summary.table.groupby("predicted_class", sort=False).head(2)
    assert [(r["class"], r["concept"], r["samples"], r["class_samples"]) for r in reasons["rows"]] == [
        (r.predicted_class, r.concept, r.n_with, r.n_class) for r in expected.itertuples()
    ]
    assert [r["frequency"] for r in reasons["rows"]] == [round(v, 3) for v in expected["frequency"]]
    assert [r["share"] for r in reasons["rows"]] == [round(v, 3) for v in expected["mean_share"]]
    # x: body in all 16, then the cue in 6 (the third concept is cut)
    assert [r["concept"] for r in reasons["rows"] if r["class"] == "x"] == ["body", "cue"]

    coverage = found["coverage"]
    assert coverage["run_key"] == explanations.key
    # by hand: x has 6 samples at 0.3 + 0.2, 3 at 0.3 + 0.1, 7 at 0.3, all
    # fully named; z has 0.5 (one unnamed map) and 0 (not nameable)
    assert coverage["rows"] == [
        {"class": "x", "samples": 16, "coverage": round(6.3 / 16, 3), "fully_named": 1.0},
        {"class": "z", "samples": 2, "coverage": 0.25, "fully_named": 0.0},
    ]
    assert coverage["mean_coverage"] == rounded(explanations.mean_coverage) == round(6.8 / 18, 3)
    assert coverage["samples"] == explanations.num_with_maps == 18

    types = found["untrustworthy"]
    assert types["run_key"] == untrustworthy.key
    assert (types["by"], types["statistic"]) == ("error", "excess errors")
    assert (types["tested"], types["flagged"], types["total"]) == (1, 1, len(untrustworthy.rows))
    top, row = types["rows"][0], untrustworthy.rows[0]
    assert (top["rank"], top["class"], top["concept"], top["samples"], top["errors"]) == (1, "x", "cue", 6, 4)
    assert top["score"] == round(row["excess_errors"], 3) == 3.4
    assert top["q"] == round(row["q_value"], 3) and top["flagged"] and top["view"] == untrustworthy.top_view
    assert [r["flagged"] for r in types["rows"]] == [r["flagged"] for r in untrustworthy.rows]
    # the type's samples: its saved view, or the same view built again once deleted
    assert len(type_view(small, "alice", top, run_key=types["run_key"])) == 6
    small.delete_saved_view(top["view"])
    view = type_view(small, "alice", top, run_key=types["run_key"])
    assert len(view) == 6 and set(view.distinct("actmaps.detections.concept_alice")) == {"cue"}

    channels = found["correspondence"]
    assert channels["run_key"] == neurons.key
    assert channels["nmi"] == round(neurons.nmi, 3) and channels["total"] == neurons.num_concepts
    assert [(r["concept"], r["maps"], r["top_channel"], r["top_share"]) for r in channels["rows"]] == [
        (r["concept"], r["num_maps"], r["top_channel"], round(r["top_channel_share"], 3))
        for r in neurons.concept_rows
    ]

    agree = found["agreement"]
    assert agree["run_key"] == agreement.key == "agreement"
    assert agree["annotators"] == ["alice", "bob"] and agree["statistic"] == "aligned_alpha"
    matrix = agreement.pairwise["aligned_alpha"]
    assert [r["values"] for r in agree["rows"]] == [[rounded(v) for v in row] for row in matrix]
    assert agree["rows"][0]["values"][0] is None  # the diagonal
    assert agree["aligned_alpha"] == rounded(agreement.aligned_alpha)
    assert [r["maps"] for r in agree["rows"]] == agreement.pairwise["overlap"][0][:1] + [agreement.pairwise["overlap"][1][1]]

    # bob has only the agreement run; alice is the default annotator
    assert evaluation_annotators(small) == (["alice", "bob"], "alice")
    bob = read_findings(small, "bob")
    assert bob["agreement"]["run_key"] == "agreement"
    assert all(bob[s]["run_key"] is None for s in SECTIONS if s != "agreement")


def test_the_newest_run_of_a_type_is_read_and_not_nameable_is_shown_in_words(small):
    fpl.untrustworthy_concepts(small, "alice", "ground_truth", run_key="first", save_views=False)
    fpl.untrustworthy_concepts(small, "alice", "ground_truth", by="confidence", run_key="second",
                               save_views=False)
    assert find_run(small, "untrustworthy_concepts", "alice") == "second"
    assert find_run(small, "untrustworthy_concepts", "bob") is None
    found = read_findings(small, "alice")["untrustworthy"]
    assert (found["run_key"], found["by"], found["statistic"]) == ("second", "confidence", "confidence lost")
    # another maps field has no runs
    assert find_run(small, "untrustworthy_concepts", "alice", maps_field="other") is None

    # a concept stored as the internal token reads as words
    small.delete_run("first")
    small.delete_run("second")
    ids = small.values("actmaps.detections.id")
    cue_maps = [map_ids[0] for map_ids, spec in zip(ids, SPECS) if spec[3] and spec[3][0][2] == "cue"]
    fpl.assign_concept(small, cue_maps, NN, "bob")
    fpl.neuron_correspondence(small, "bob")
    fpl.summarize_concepts(small, "bob", gt_field="ground_truth")
    text = repr(read_findings(small, "bob"))
    assert NN not in text


def test_read_results_is_load_run_results(small):
    for results in (fpl.untrustworthy_concepts(small, "alice", "ground_truth"), fpl.compute_agreement(small)):
        read = read_results(small, results.key)
        assert type(read) is type(results) and read.to_dict() == results.to_dict()
