"""Concept deletion: exact small cases on a model whose answer is known by
construction (its "bright" logit is 10 x the mean brightness of the image's
top-left quadrant, its "dark" logit the constant 5), so every probability
below is derived by hand from that formula."""

import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

import fiftyone as fo

import fiftyone_plugin as fpl
from fiftyone_plugin.evaluation.deletion import DeletionResults, concept_deletion
from fiftyone_plugin.evaluation.occlusion import concept_region, control_region

SIZE = 32
VALUES = [255, 230, 205, 180, 155]  # brightness of the top-left quadrant


class QuadrantModel(torch.nn.Module):
    """logits = [10 * mean(top-left quadrant), 5] on [0, 1] pixel values."""

    classes = ["bright", "dark"]

    def __init__(self):
        super().__init__()
        self.transforms = lambda image: torch.from_numpy(
            np.asarray(image, dtype=np.float32) / 255.0
        ).permute(2, 0, 1)

    def forward(self, x):
        h, w = x.shape[-2] // 2, x.shape[-1] // 2
        bright = 10 * x[:, :, :h, :w].mean(dim=(1, 2, 3))
        return torch.stack([bright, torch.full_like(bright, 5.0)], dim=1)


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


@pytest.fixture
def quadrants(dataset, workdir):
    """One image per value in VALUES: that value in the top-left quadrant,
    black elsewhere, one map covering exactly the quadrant named "bright
    patch" by alice, ground truth "dark" (so every prediction is an error)."""
    folder = os.path.join(workdir, "quadrants")
    os.makedirs(folder, exist_ok=True)
    samples = []
    for v in VALUES:
        pixels = np.zeros((SIZE, SIZE, 3), np.uint8)
        pixels[: SIZE // 2, : SIZE // 2] = v
        path = os.path.join(folder, f"{v}.png")
        Image.fromarray(pixels).save(path)
        det = fo.Detection(
            label="ch0", bounding_box=[0, 0, 0.5, 0.5], mask=np.ones((8, 8), bool),
            layer="l", channel=0, rank=1, share=1.0, contribution=1.0, target="bright",
        )
        samples.append(fo.Sample(
            filepath=path,
            actmaps=fo.Detections(detections=[det]),
            actmap_prediction=fo.Classification(label="bright", confidence=1.0),
            ground_truth=fo.Classification(label="dark"),
        ))
    dataset.add_samples(samples)
    fpl.assign_concept(dataset, dataset.values("actmaps.detections.id", unwind=True), "bright patch", "alice")
    return dataset


def test_region_and_control_exact():
    region = concept_region([[0, 0, 0.5, 0.5]], [np.ones((4, 4), bool)], SIZE, SIZE)
    assert region.sum() == 16 * 16 and region[:16, :16].all()
    moved, overlap = control_region(region, np.random.default_rng(0))
    assert moved.sum() == region.sum() and overlap == 0 and not (moved & region).any()
    # a region too large to move off itself: the least overlap is reported, not hidden
    big = np.ones((SIZE, SIZE), bool)
    big[0, 0] = False
    moved, overlap = control_region(big, np.random.default_rng(0), tries=5)
    assert overlap > 0.9


def test_deletion_known_by_construction(quadrants):
    results = concept_deletion(quadrants, "alice", QuadrantModel(), gt_field="ground_truth", device="cpu")
    ps = results.per_sample.set_index("sample_id")
    assert len(ps) == len(VALUES)
    for sample in quadrants:
        v = int(os.path.basename(sample.filepath)[:-4])
        row = ps.loc[sample.id]
        p_before = sigmoid(10 * v / 255 - 5)
        # mean fill: the image mean (v/4, rounded to uint8) fills the quadrant
        fill = round(v / 4) / 255
        p_after = sigmoid(10 * fill - 5)
        assert row["label_before"] == "bright" and row["target"] == "bright"
        assert row["p_before"] == pytest.approx(p_before, abs=1e-5)
        assert row["p_after"] == pytest.approx(p_after, abs=1e-5)
        assert row["target_drop"] == pytest.approx(p_before - p_after, abs=1e-5)
        assert row["label_after"] == "dark"
        # the control lands on black pixels outside the quadrant: nothing changes
        assert row["control_target_drop"] == pytest.approx(0, abs=1e-6)
        assert row["control_label_after"] == "bright"
        assert row["area"] == pytest.approx(0.25)
    table = results.by_concept_class
    assert len(table) == 1
    row = table.iloc[0]
    assert row["n"] == 5 and row["flipped"] == 1.0 and row["control_flipped"] == 0.0
    # five positive, distinct paired differences: the exact one-sided
    # signed-rank p-value is 1 / 2**5
    assert row["wilcoxon_p"] == pytest.approx(1 / 32)
    assert (row["errors"], row["fixed"], row["control_fixed"]) == (5, 5, 0)
    assert results.sentence("bright patch") == "deleting bright patch fixes 5 of 5 errors (control: 0)"


class BinaryQuadrantModel(QuadrantModel):
    """The same decision as one logit ``10 * mean(quadrant) - 5`` (a sigmoid
    binary classifier, classes [dark, bright]) returned after a 3-wide
    embedding, as models with auxiliary outputs do."""

    classes = ["dark", "bright"]

    def forward(self, x):
        bright, dark = super().forward(x).unbind(1)
        embedding = torch.zeros(x.shape[0], 3)
        return embedding, (bright - dark)[:, None]


def test_deletion_reads_outputs_like_the_maps_and_leaves_the_model_as_given(quadrants):
    model = BinaryQuadrantModel().train()
    results = concept_deletion(quadrants, "alice", model, device="cpu")
    assert model.training  # given in train mode, left in train mode
    ps = results.per_sample.set_index("sample_id")
    for sample in quadrants:
        v = int(os.path.basename(sample.filepath)[:-4])
        row = ps.loc[sample.id]
        # by hand: P(bright) = sigmoid(logit), the softmax of the two-logit model
        assert row["label_before"] == "bright" and row["label_after"] == "dark"
        assert row["p_before"] == pytest.approx(sigmoid(10 * v / 255 - 5), abs=1e-5)
        assert row["p_after"] == pytest.approx(sigmoid(10 * round(v / 4) / 255 - 5), abs=1e-5)


def test_deletion_round_trips_through_load_run_results(quadrants):
    results = concept_deletion(quadrants, "alice", QuadrantModel(), gt_field="ground_truth",
                               device="cpu", run_key="del_alice")
    assert "del_alice" in quadrants.list_runs()
    loaded = quadrants.load_run_results("del_alice", cache=False)
    assert type(results) is type(loaded) is DeletionResults
    assert loaded.to_dict() == results.to_dict()
    assert len(loaded.per_sample) == 5
    assert loaded.config.model_fingerprint == results.config.model_fingerprint
    left = results.per_sample.sort_values("sample_id").reset_index(drop=True)
    right = loaded.per_sample.sort_values("sample_id").reset_index(drop=True)
    assert left["target_drop"].tolist() == pytest.approx(right["target_drop"].tolist())
    assert left["label_after"].tolist() == right["label_after"].tolist()
    assert loaded.sentence("bright patch") == results.sentence("bright patch")


def test_fill_colour_and_curves_exact(quadrants):
    # black fill: the quadrant's mean becomes 0, so p(bright) = sigmoid(-5)
    results = concept_deletion(quadrants, "alice", QuadrantModel(), fill=(0, 0, 0), curves=True, device="cpu")
    assert results.per_sample["p_after"].tolist() == pytest.approx([sigmoid(-5)] * 5, abs=1e-6)
    curves = results.curves
    assert curves["num_samples"] == 5
    # one concept: keeping only it restores the quadrant entirely, and the
    # blank (all-black) image is p = sigmoid(-5): completeness exactly 1
    assert curves["completeness_mean"] == pytest.approx(1.0)
    # deletion area: mean of (p_full + sigmoid(-5)) / 2; insertion the same two points
    expected = np.mean([(sigmoid(10 * v / 255 - 5) + sigmoid(-5)) / 2 for v in VALUES])
    assert curves["deletion_auc"] == pytest.approx(expected, abs=1e-5)
    assert curves["insertion_auc"] == pytest.approx(expected, abs=1e-5)


def test_control_is_reproducible_and_seeded(quadrants):
    a = concept_deletion(quadrants, "alice", QuadrantModel(), seed=3, device="cpu").per_sample
    b = concept_deletion(quadrants, "alice", QuadrantModel(), seed=3, device="cpu").per_sample
    assert a["control_target_drop"].tolist() == b["control_target_drop"].tolist()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"concepts": ["nothing like it"]}, "has no concept"),
        ({"fill": "paint"}, "fill must be"),
        ({"fill": (0, 0, 300)}, "fill must be"),
        ({"gt_field": "nope"}, "gt_field"),
        ({"maps_field": "nomaps"}, "no maps field"),
        ({"run_key": "bad key"}, "run_key must start"),
    ],
)
def test_bad_input_fails_before_any_run(quadrants, kwargs, message):
    with pytest.raises(ValueError, match=message):
        concept_deletion(quadrants, "alice", QuadrantModel(), device="cpu", **kwargs)
    assert quadrants.list_runs() == []


def test_unknown_annotator_fails_before_any_run(quadrants):
    with pytest.raises(ValueError):
        concept_deletion(quadrants, "bob", QuadrantModel(), device="cpu")
    assert quadrants.list_runs() == []


def test_delete_run_leaves_the_dataset_as_it_was(quadrants):
    schema = set(quadrants.get_field_schema())
    concept_deletion(quadrants, "alice", QuadrantModel(), device="cpu", run_key="del_alice")
    quadrants.delete_run("del_alice")
    assert quadrants.list_runs() == [] and set(quadrants.get_field_schema()) == schema
