"""The assistance operators through FiftyOne's real operator machinery
(``foo.execute_operator`` builds a real ExecutionContext), on a small
concept world: each one's result must equal what the database then holds,
or what the SDK gives for the same inputs."""

import pytest

import fiftyone.operators as foo

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts.store import provenance_field
from fiftyone_plugin.demo import build_dataset, load_model
from fiftyone_plugin.demo.pipeline import simulate_annotators
from fiftyone_plugin.demo import SimulatedAnnotator

PLUGIN = "@interactive-naming/interactive-naming"
NAMES = ["suggest_concepts", "accept_suggestions", "undo_suggestions", "transfer_concepts", "concept_deletion"]


def uri(name):
    return f"{PLUGIN}/{name}"


@pytest.fixture(scope="module")
def small_world(workdir):
    dataset = build_dataset("test-assist-ops", num_train=0, num_test=24, images_dir=f"{workdir}/assist-ops", overwrite=True)
    fpl.compute_activation_maps(dataset, load_model(), top_k=5, batch_size=24)
    yield dataset
    dataset.delete()


def test_operators_are_registered():
    registry = foo.OperatorRegistry()
    assert registry.list_errors() == []
    found = {op.uri for op in foo.list_operators()}
    assert {uri(n) for n in NAMES} <= found


def test_suggest_accept_undo_through_operators(small_world):
    ann = SimulatedAnnotator("ann_erin", 0.0, 0.0, seed=3)
    simulate_annotators(small_world.limit(12), annotators=[ann])
    params = {"maps_field": "actmaps", "annotator": "ann_erin"}
    result = foo.execute_operator(uri("suggest_concepts"), dataset=small_world, params=params)
    assert result.error is None, result.error
    unnamed = sum(c is None for c in small_world.values("actmaps.detections.concept_ann_erin", unwind=True))
    assert result.result["num_suggestions"] == unnamed > 0
    stored = small_world.load_run_results("suggestions_ann_erin").suggestions
    expected = sum(r["confidence"] >= 0.8 for r in stored)

    result = foo.execute_operator(uri("accept_suggestions"), dataset=small_world,
                                  params=dict(params, min_confidence=0.8))
    assert result.error is None, result.error
    assert result.result["accepted"] == expected
    provs = small_world.values(provenance_field("ann_erin"), unwind=True)
    assert sum(p == "suggested" for p in provs) == expected

    result = foo.execute_operator(uri("undo_suggestions"), dataset=small_world, params=params)
    assert result.error is None, result.error
    assert result.result["reverted"] == expected
    names = small_world.values("actmaps.detections.concept_ann_erin", unwind=True)
    assert sum(c is None for c in names) == unnamed
    # nothing left to undo: a clear error, not a silent success
    with pytest.raises(Exception, match="nothing to undo"):
        foo.execute_operator(uri("undo_suggestions"), dataset=small_world, params=params)


def test_transfer_and_deletion_through_operators(small_world):
    ann = SimulatedAnnotator("ann_finn", 0.0, 0.0, seed=4)
    simulate_annotators(small_world.limit(12), annotators=[ann])
    params = {"maps_field": "actmaps", "annotator": "ann_finn", "min_confidence": 0.5}
    result = foo.execute_operator(uri("transfer_concepts"), dataset=small_world, params=params)
    assert result.error is None, result.error
    machine = small_world.values("actmaps.detections.concept_ann_finn__auto", unwind=True)
    assert result.result["named"] == sum(c is not None for c in machine) > 0

    params = {"model_source": "demo", "maps_field": "actmaps", "annotator": "ann_finn",
              "gt_field": "ground_truth", "fill": "mean", "seed": 0}
    result = foo.execute_operator(uri("concept_deletion"), dataset=small_world, params=params)
    assert result.error is None, result.error
    sdk = fpl.concept_deletion(small_world, "ann_finn", load_model(), gt_field="ground_truth", run_key="sdk_del")
    assert result.result["num_deletions"] == len(sdk.per_sample)
    assert result.result["sentences"] == [sdk.sentence(c) for c in sdk.fixes["concept"]]
    assert "concept_deletion_ann_finn" in small_world.list_runs()
