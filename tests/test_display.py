"""Maps in the App's own views (fiftyone_plugin.maps.display), on a real
dataset in the session's private MongoDB: the App config written by
compute_activation_maps, labels by concept and back, and the browsing view
without heavy attributes."""

import fiftyone as fo
import fiftyone.operators as foo
import pytest

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts.names import NOT_NAMEABLE
from fiftyone_plugin.maps import display
from tests.support.helpers import TinyNet


@pytest.fixture
def maps(dataset, rgb_images):
    dataset.add_samples([fo.Sample(filepath=p) for p in rgb_images])
    fpl.compute_activation_maps(dataset, TinyNet(), top_k=3)
    return dataset


def _labels(dataset):
    """``{map_id: label}`` read straight from the database."""
    ids, labels = dataset.values(["actmaps.detections.id", "actmaps.detections.label"])
    return {i: l for si, sl in zip(ids, labels) for i, l in zip(si or [], sl or [])}


def _channels(dataset):
    ids, channels = dataset.values(["actmaps.detections.id", "actmaps.detections.channel"])
    return {i: c for si, sc in zip(ids, channels) for i, c in zip(si or [], sc or [])}


def test_compute_sets_the_heatmap_colour_scale_and_active_fields(maps):
    config = fo.load_dataset(maps.name).app_config  # as stored, not as held
    scheme = config.color_scheme
    assert scheme.color_by == "value"  # the App uses a heatmap's scale only then
    assert [s for s in scheme.colorscales if s["path"] == "actmap_heatmap"] == [
        {"path": "actmap_heatmap", "name": display.DEFAULT_COLORSCALE, "list": None}
    ]
    assert not config.active_fields.exclude
    assert {"actmaps", "actmap_heatmap", "actmap_prediction"} <= set(config.active_fields.paths)
    heatmap = fo.load_dataset(maps.name).first().actmap_heatmap
    assert heatmap.range == [display.HEATMAP_FLOOR, 255] and heatmap.map.max() == 255


def test_configure_keeps_other_settings_and_does_not_repeat_itself(maps):
    maps.app_config.color_scheme.colorscales.append({"path": "other", "name": "hsv", "list": None})
    maps.app_config.color_scheme.opacity = 0.4
    maps.save()
    display.configure_map_display(maps, colorscale="viridis")
    display.configure_map_display(maps, colorscale="inferno")
    scheme = fo.load_dataset(maps.name).app_config.color_scheme
    assert scheme.opacity == pytest.approx(0.4)
    assert {s["path"]: s["name"] for s in scheme.colorscales} == {"other": "hsv", "actmap_heatmap": "inferno"}
    assert fo.load_dataset(maps.name).app_config.active_fields.paths.count("actmaps") == 1


def test_labels_by_concept_then_back_to_channels(maps):
    before = _labels(maps)
    channels = _channels(maps)
    assert before == {i: f"ch{c}" for i, c in channels.items()}
    ids = sorted(before)
    fpl.assign_concept(maps, ids[:3], "stripes", "alice")
    fpl.assign_concept(maps, ids[3:5], "head", "alice")
    fpl.assign_concept(maps, ids[5:6], NOT_NAMEABLE, "alice")
    fpl.assign_concept(maps, ids[6:9], "sun", "bob")  # someone else's names

    assert display.label_maps_by_concept(maps, "alice") == len(ids)
    expected = {i: "unnamed" for i in ids}
    expected.update({i: "stripes" for i in ids[:3]})
    expected.update({i: "head" for i in ids[3:5]})
    expected[ids[5]] = display.NOT_NAMEABLE_LABEL
    assert _labels(maps) == expected
    # names, channels and the other annotator are untouched
    assert fpl.list_concepts(maps)["bob"] == {"sun": 3}
    assert _channels(maps) == channels

    assert display.label_maps_by_channel(maps) == len(ids)
    assert _labels(maps) == before


def test_labels_of_a_patches_view_change_only_its_maps(maps):
    before = _labels(maps)
    patches = maps.to_patches("actmaps").limit(4)
    chosen = set(patches.values("id"))
    fpl.assign_concept(maps, sorted(before), "cell", "alice")
    assert display.label_maps_by_concept(patches, "alice") == 4
    after = _labels(maps)
    assert {i for i in after if after[i] != before[i]} == chosen
    assert {after[i] for i in chosen} == {"cell"}


def test_bad_annotator_or_field_is_refused_before_writing(maps):
    before = _labels(maps)
    with pytest.raises(ValueError, match="annotator"):
        display.label_maps_by_concept(maps, "not an id")
    with pytest.raises(ValueError, match="no maps field"):
        display.label_maps_by_channel(maps, maps_field="nothing")
    assert _labels(maps) == before


def test_browse_view_has_the_images_with_maps_without_heavy_attributes(maps):
    maps.add_sample(fo.Sample(filepath="/nonexistent/missing.png"))  # no maps
    view = display.save_browse_view(maps)
    with_maps = [i for i, n in zip(*maps.values(["id", "actmaps.detections"])) if n]
    assert sorted(view.values("id")) == sorted(with_maps) and len(with_maps) == 12
    saved = fo.load_dataset(maps.name).load_saved_view(display.BROWSE_VIEW)
    assert sorted(saved.values("id")) == sorted(with_maps)
    detection = saved.first().actmaps.detections[0]
    for attribute in display.HEAVY_ATTRIBUTES:
        assert attribute not in detection.to_dict()
        assert attribute in maps.first().actmaps.detections[0].to_dict()
    # what the App draws stays
    assert detection.mask is not None and detection.label.startswith("ch")


def test_the_label_maps_operator_labels_by_concept_and_back(maps):
    operator = "@interactive-naming/interactive-naming/label_maps"
    before = _labels(maps)
    ids = sorted(before)
    fpl.assign_concept(maps, ids[:2], "sun", "alice")
    result = foo.execute_operator(operator, dataset=maps, params={"maps_field": "actmaps", "labels": "alice"})
    assert result.result == {"maps_relabelled": len(ids), "labels": "alice"}
    assert sorted(_labels(maps).values()) == sorted(["sun"] * 2 + ["unnamed"] * (len(ids) - 2))
    foo.execute_operator(operator, dataset=maps, params={"maps_field": "actmaps", "labels": "(channel)"})
    assert _labels(maps) == before


def test_a_layout_of_the_browsing_view_still_reads_the_descriptors(maps):
    view = display.browse_view(maps.limit(5))
    assert display.with_heavy_attributes(maps) is maps
    restored = display.with_heavy_attributes(view)
    assert restored.values("id") == view.values("id")
    assert "descriptor" in restored.first().actmaps.detections[0].to_dict()
    results = fpl.compute_map_visualization(view, method="pca", brain_key="browse_layout")
    assert results.num_maps == view.count("actmaps.detections") > 0
