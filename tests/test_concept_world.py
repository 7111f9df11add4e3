"""The whole pipeline on the concept world, measured against its ground
truth (docs/design.md, "The concept world"): model accuracy, pointing
accuracy of the maps, and how well the layout groups maps by part."""

import pytest

import fiftyone as fo
from fiftyone import ViewField as F

import fiftyone_plugin as fpl
from fiftyone_plugin.demo import CUE_CLASS, build_dataset, load_model
from fiftyone_plugin.demo.pipeline import map_parts, pointing_accuracy, simulate_annotators
from fiftyone_plugin.demo.run import main as demo_main
from fiftyone_plugin.maps.embedding import knn_purity
from fiftyone_plugin.maps.layout import layout_purity


@pytest.fixture(scope="module")
def world(workdir):
    dataset = build_dataset(
        "test-concept-world", num_train=0, num_test=300, images_dir=f"{workdir}/world", overwrite=True
    )
    fpl.compute_activation_maps(dataset, load_model(), top_k=5, batch_size=32)
    fpl.compute_map_visualization(dataset)
    yield dataset
    dataset.delete()


def test_model_accuracy_on_cue_free_test_images(world):
    cue_free = world.match(F("has_cue") == False)  # noqa: E712
    correct = cue_free.match(F("actmap_prediction.label") == F("ground_truth.label"))
    accuracy = len(correct) / len(cue_free)
    print(f"accuracy on {len(cue_free)} cue-free test images: {accuracy:.3f}")
    assert accuracy >= 0.9


def test_the_cue_misleads_the_model_towards_its_training_class(world):
    # the untrustworthy example type: other classes with the sun are called CUE_CLASS
    others = world.match(F("ground_truth.label") != CUE_CLASS)
    with_cue = others.match(F("has_cue") == True)  # noqa: E712
    without = others.match(F("has_cue") == False)  # noqa: E712
    rate = lambda v: len(v.match(F("actmap_prediction.label") == CUE_CLASS)) / len(v)
    print(f"called {CUE_CLASS}: {rate(with_cue):.3f} with the sun, {rate(without):.3f} without")
    assert rate(with_cue) > rate(without)


def test_maps_point_at_parts_or_the_cue(world):
    accuracy = pointing_accuracy(map_parts(world))
    print(f"pointing accuracy: {accuracy:.3f}")
    assert accuracy >= 0.9


def test_layout_groups_maps_by_part(world):
    parts = {k: v for k, v in map_parts(world).items() if v > 0}
    purity = layout_purity(world, parts, k=10)
    print(f"10-NN part purity of the 2-D layout: {purity:.3f}")
    assert purity >= 0.8
    # and it is the layout that does it: shuffled points are far worse
    ids, points = fpl.map_points(world)
    labels = [parts.get(i, 0) for i in ids]
    import numpy as np

    shuffled = np.random.default_rng(0).permutation(points)
    assert knn_purity(shuffled, labels) < purity - 0.2


def test_layout_is_a_brain_run_over_the_maps(world):
    info = world.get_brain_info("actmaps_layout")
    assert info.config.patches_field == "actmaps"
    results = world.load_brain_results("actmaps_layout")
    assert len(results.current_label_ids) == world.count("actmaps.detections")


def test_simulated_annotators_name_maps_in_their_own_words(world):
    named = simulate_annotators(world)
    concepts = fpl.list_concepts(world)
    assert set(concepts) == set(named) and len(named) == 3
    vocabularies = [set(c) - {fpl.NOT_NAMEABLE} for c in concepts.values()]
    assert all(len(v) >= 6 for v in vocabularies)
    assert not vocabularies[0] & vocabularies[1]  # different wording per annotator


def test_knn_purity_exact_small_case():
    points = [[0, 0], [0, 1], [10, 10], [10, 11]]
    assert knn_purity(points, ["a", "a", "b", "b"], k=1) == 1.0
    assert knn_purity(points, ["a", "b", "a", "b"], k=1) == 0.0


def test_demo_command_headless(workdir, capsys):
    assert demo_main(["--no-app", "--dataset", "test-demo", "--num-train", "0", "--num-test", "60"]) == 0
    out = capsys.readouterr().out
    assert "pointing accuracy" in out and "ann_alice" in out
    dataset = fo.load_dataset("test-demo")
    assert dataset.count("actmaps.detections") > 0
    assert set(fpl.list_concepts(dataset)) == {"ann_alice", "ann_bob", "ann_carol"}
    # the App opens on the test images that have maps
    test = dataset.match_tags("test")
    with_maps = [i for i, m in zip(*test.values(["id", "actmaps.detections"])) if m]
    assert sorted(dataset.load_saved_view("maps").values("id")) == sorted(with_maps)
    dataset.delete()
