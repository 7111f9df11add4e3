"""compute_activation_maps against a real MongoDB."""

import os

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import fiftyone as fo

import fiftyone_plugin as fpl
from fiftyone_plugin.maps import compute as am
from fiftyone_plugin.maps.compute import MAPS_RUN_TYPE, ActivationMapsConfig, ActivationMapsResults
from fiftyone_plugin.runs import load_run_results

from tests.support.helpers import TinyNet


@pytest.fixture
def image_dataset(dataset, rgb_images):
    dataset.add_samples([fo.Sample(filepath=p) for p in rgb_images])
    return dataset


def test_maps_fields_and_run_are_written(image_dataset):
    summary = fpl.compute_activation_maps(image_dataset, TinyNet(), top_k=3, batch_size=5)
    assert summary.processed == 12 and summary.failed == 0
    assert summary.layer == "features"

    sample = image_dataset.first()
    maps = sample.actmaps.detections
    assert 1 <= len(maps) <= 3
    assert [m.rank for m in maps] == list(range(1, len(maps) + 1))
    contributions = [m.contribution for m in maps]
    assert contributions == sorted(contributions, reverse=True) and contributions[-1] > 0
    assert sum(m.share for m in maps) <= 1 + 1e-6
    for m in maps:
        assert m.layer == "features" and 0 <= m.channel < 16
        assert m.heatmap.shape == (16, 16) and m.heatmap.dtype == np.uint8
        assert m.heatmap.max() == 255
        assert m.descriptor.shape == (16,)
        x, y, w, h = m.bounding_box
        assert 0 <= x and 0 <= y and x + w <= 1 + 1e-9 and y + h <= 1 + 1e-9
        px, py = m.peak
        assert x <= px <= x + w and y <= py <= y + h
        assert m.mask.any()
        assert m.target == sample.actmap_prediction.label
    assert sample.actmap_prediction.label in TinyNet.classes
    assert 0 < sample.actmap_prediction.confidence <= 1
    assert sample.actmap_heatmap.map.shape == (16, 16)

    # the exact contributions of the top channel, recomputed independently
    net = TinyNet()
    x = net.transforms(Image.open(sample.filepath).convert("RGB"))[None]
    feats = net.features(x).detach()
    target = TinyNet.classes.index(maps[0].target)
    exact = net.classifier.weight[target].detach() * feats.mean(dim=(2, 3))[0]
    assert maps[0].channel == int(exact.argmax())
    assert maps[0].contribution == pytest.approx(float(exact.max()), rel=1e-4)

    assert image_dataset.list_runs() == ["actmaps"]
    config = image_dataset.get_run_info("actmaps").config
    assert config.layer == "features" and config.top_k == 3
    results = image_dataset.load_run_results("actmaps")
    assert results.processed == 12


def test_results_round_trip_and_delete_run_removes_the_run_fields(image_dataset):
    returned = fpl.compute_activation_maps(image_dataset, TinyNet(), top_k=2, batch_size=5)
    loaded = load_run_results(image_dataset, "actmaps")
    assert type(loaded) is type(returned) is ActivationMapsResults
    assert loaded.to_dict() == returned.to_dict()
    # hand count: 12 images, at most 2 maps each, all computed now
    assert returned.to_dict()["processed"] == 12 and returned.skipped == 0
    assert returned.num_maps == image_dataset.count("actmaps.detections")
    config = image_dataset.get_run_info("actmaps").config
    assert type(config) is ActivationMapsConfig and config.run_type == MAPS_RUN_TYPE
    assert config.fields() == ["actmaps", "actmap_prediction", "actmap_heatmap", "actmaps_error"]

    image_dataset.add_sample_field("kept", fo.StringField)
    image_dataset.delete_run("actmaps")
    schema = image_dataset.get_field_schema()
    assert not {"actmaps", "actmap_prediction", "actmap_heatmap", "actmaps_error"} & set(schema)
    assert "kept" in schema and image_dataset.list_runs() == []


def test_invalid_parameters_fail_before_the_model_is_read(image_dataset):
    # object() is no model: a parameter error must come first
    for kwargs, message in [
        (dict(region_threshold=1.0), "region_threshold"),
        (dict(top_k=0), "top_k"),
        (dict(batch_size=0), "batch_size"),
        (dict(maps_field="bad.name"), "maps_field"),
        (dict(target_field="nope"), "no field 'nope'"),
    ]:
        with pytest.raises(ValueError, match=message):
            fpl.compute_activation_maps(image_dataset, object(), **kwargs)
    assert image_dataset.list_runs() == [] and image_dataset.get_field("actmaps") is None


def test_rerun_skips_done_samples_and_never_duplicates(image_dataset):
    net = TinyNet()
    fpl.compute_activation_maps(image_dataset, net, top_k=2)
    ids_before = image_dataset.values("actmaps.detections.id")
    again = fpl.compute_activation_maps(image_dataset, net, top_k=2)
    assert again.processed == 0 and again.skipped == 12
    assert image_dataset.values("actmaps.detections.id") == ids_before

    forced = fpl.compute_activation_maps(image_dataset, net, top_k=2, overwrite=True)
    assert forced.processed == 12
    counts = image_dataset.values(fo.ViewField("actmaps.detections").length())
    assert max(counts) <= 2

    # a changed configuration (another model) is recomputed, not skipped
    changed = fpl.compute_activation_maps(image_dataset, TinyNet(seed=1), top_k=2)
    assert changed.processed == 12


def test_interrupted_run_resumes_where_it_stopped(image_dataset, monkeypatch):
    net = TinyNet()
    calls = {"n": 0}
    real_run = am.LayerGradientEngine.run

    def dying_run(self, batch, targets=None):
        calls["n"] += 1
        if calls["n"] == 3:  # the probe is call 1, batches are 2, 3, ...
            raise KeyboardInterrupt
        return real_run(self, batch, targets)

    monkeypatch.setattr(am.LayerGradientEngine, "run", dying_run)
    with pytest.raises(KeyboardInterrupt):
        fpl.compute_activation_maps(image_dataset, net, batch_size=4, num_workers=0)
    monkeypatch.setattr(am.LayerGradientEngine, "run", real_run)

    done = image_dataset.exists("actmaps")
    assert len(done) == 4  # the first batch was written before the interruption
    resumed = fpl.compute_activation_maps(image_dataset, net, batch_size=4)
    assert resumed.skipped == 4 and resumed.processed == 8
    assert len(image_dataset.exists("actmaps")) == 12


def _write_bad_images(folder):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(3)
    files = {}
    files["gray"] = os.path.join(folder, "gray.png")
    Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(files["gray"])
    files["rgba"] = os.path.join(folder, "rgba.png")
    Image.fromarray(rng.integers(0, 255, (40, 40, 4), dtype=np.uint8), "RGBA").save(files["rgba"])
    files["sixteen"] = os.path.join(folder, "sixteen.png")
    Image.fromarray(rng.integers(0, 65535, (40, 40), dtype=np.uint16)).save(files["sixteen"])
    files["huge"] = os.path.join(folder, "huge.jpg")
    Image.fromarray(rng.integers(0, 255, (3000, 4000, 3), dtype=np.uint8)).save(files["huge"], quality=50)
    files["tiny"] = os.path.join(folder, "tiny.png")
    Image.fromarray(rng.integers(0, 255, (3, 3, 3), dtype=np.uint8)).save(files["tiny"])
    files["corrupt"] = os.path.join(folder, "corrupt.jpg")
    with open(files["huge"], "rb") as f:
        head = f.read(2000)
    with open(files["corrupt"], "wb") as f:
        f.write(head)  # a truncated JPEG
    files["text"] = os.path.join(folder, "text.png")
    with open(files["text"], "w") as f:
        f.write("not an image")
    files["missing"] = os.path.join(folder, "missing.png")
    return files


def test_bad_inputs_are_recorded_and_skipped(dataset, workdir):
    files = _write_bad_images(os.path.join(workdir, "bad"))
    dataset.add_samples([fo.Sample(filepath=p, kind=k) for k, p in files.items()])
    summary = fpl.compute_activation_maps(dataset, TinyNet(), batch_size=3)
    assert summary.processed == 4 and summary.failed == 4

    by_kind = {s.kind: s for s in dataset}
    for kind in ("gray", "rgba", "sixteen", "huge"):
        assert by_kind[kind].actmaps_error is None
        assert len(by_kind[kind].actmaps.detections) >= 1
    assert "not found" in by_kind["missing"].actmaps_error
    assert "at least 8 px" in by_kind["tiny"].actmaps_error
    assert "cannot read image" in by_kind["text"].actmaps_error
    assert "cannot read image" in by_kind["corrupt"].actmaps_error
    for kind in ("missing", "tiny", "text", "corrupt"):
        assert by_kind[kind].actmaps is None


def test_sixteen_bit_images_are_scaled_not_clipped(workdir):
    from fiftyone_plugin.maps.images import load_rgb_image

    path = os.path.join(workdir, "ramp16.png")
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    Image.fromarray(ramp).save(path)
    rgb = np.asarray(load_rgb_image(path))
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255
    assert len(np.unique(rgb[..., 0])) > 50


def test_bad_layer_or_model_fails_before_anything_is_written(image_dataset):
    with pytest.raises(ValueError, match="no layer named"):
        fpl.compute_activation_maps(image_dataset, TinyNet(), layer="featurez")
    with pytest.raises(ValueError, match="not convolutional"):
        fpl.compute_activation_maps(image_dataset, TinyNet(), layer="classifier")
    with pytest.raises(TypeError):
        fpl.compute_activation_maps(image_dataset, object())
    with pytest.raises(ValueError, match="needs `weights`"):
        fpl.compute_activation_maps(image_dataset, "resnet18")
    assert image_dataset.get_field("actmaps") is None
    assert image_dataset.list_runs() == []


def test_torchvision_name_with_local_weights(image_dataset, workdir):
    path = os.path.join(workdir, "resnet18.pth")
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=1000)
    torch.save(net.state_dict(), path)
    summary = fpl.compute_activation_maps(
        image_dataset.limit(3), "resnet18", weights=path, top_k=2, batch_size=3
    )
    assert summary.processed == 3 and summary.layer == "layer4"
    maps = image_dataset.first().actmaps.detections
    # the 7x7 map covers the default Resize(256) + CenterCrop(224) window of
    # an 80x60 image: 224/341.33 of its width, 224/256 of its height; stored
    # over the whole image with the same cell size: ceil(7 / 0.65625) = 11
    # columns, ceil(7 / 0.875) = 8 rows
    assert maps[0].heatmap.shape == (8, 11) and maps[0].descriptor.shape == (512,)
    config = image_dataset.get_run_info("actmaps").config
    assert config.model == "resnet18:resnet18.pth"


def test_fiftyone_torch_image_model(image_dataset):
    import fiftyone.utils.torch as fout

    config = fout.TorchImageModelConfig(
        {
            "entrypoint_fcn": "torchvision.models.resnet18",
            "entrypoint_args": {"weights": None, "num_classes": 4},
            "output_processor_cls": "fiftyone.utils.torch.ClassifierOutputProcessor",
            "classes": ["w", "x", "y", "z"],
            "image_size": [64, 64],
            "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.25, 0.25, 0.25],
            "device": "cpu",
        }
    )
    zoo_like = fout.TorchImageModel(config)
    summary = fpl.compute_activation_maps(image_dataset.limit(4), zoo_like, batch_size=2)
    assert summary.processed == 4
    assert image_dataset.first().actmap_prediction.label in {"w", "x", "y", "z"}
    assert image_dataset.first().actmaps.detections[0].heatmap.shape == (2, 2)


def test_target_field_explains_the_ground_truth_class(image_dataset):
    for i, sample in enumerate(image_dataset):
        sample["gt"] = fo.Classification(label=TinyNet.classes[i % 3])
        sample.save()
    fpl.compute_activation_maps(image_dataset, TinyNet(), target_field="gt")
    for sample in image_dataset:
        assert {m.target for m in sample.actmaps.detections} <= {sample.gt.label}


def test_patches_views_and_videos_are_refused(image_dataset):
    fpl.compute_activation_maps(image_dataset, TinyNet(), top_k=1)
    with pytest.raises(ValueError, match="patches"):
        fpl.compute_activation_maps(image_dataset.to_patches("actmaps"), TinyNet())


def test_recomputing_keeps_names_of_the_same_maps_and_refuses_to_lose_others(dataset, rgb_images):
    import fiftyone_plugin as fpl

    dataset.add_samples([fo.Sample(filepath=p) for p in rgb_images])
    fpl.compute_activation_maps(dataset, TinyNet(), top_k=3)
    before = {
        (s.id, m.channel, m.target): m.id for s in dataset for m in s.actmaps.detections
    }
    named = list(before.items())[::2]
    fpl.assign_concept(dataset, [map_id for _, map_id in named], "wheel", "alice")

    # fewer maps per image, same model and layer: the maps still there keep their names
    summary = fpl.compute_activation_maps(dataset, TinyNet(), top_k=2, overwrite=True)
    after = {(s.id, m.channel, m.target): m for s in dataset for m in s.actmaps.detections}
    assert not set(m.id for m in after.values()) & set(before.values())  # new maps
    kept = [key for key, _ in named if key in after]
    assert kept and summary.names_kept == len(kept)
    assert all(after[key]["concept_alice"] == "wheel" for key in kept)
    assert fpl.list_concepts(dataset, "alice") == {"wheel": len(kept)}

    # another model: its channel 3 is not this one's; nothing is written
    with pytest.raises(ValueError, match=r"named by alice.*discard_names=True"):
        fpl.compute_activation_maps(dataset, TinyNet(seed=1), top_k=2, overwrite=True)
    assert fpl.list_concepts(dataset, "alice") == {"wheel": len(kept)}
    assert {m.id for s in dataset for m in s.actmaps.detections} == {m.id for m in after.values()}

    # asked for: the names go with the old maps
    fpl.compute_activation_maps(dataset, TinyNet(seed=1), top_k=2, overwrite=True, discard_names=True)
    assert fpl.list_concepts(dataset, "alice") == {}
