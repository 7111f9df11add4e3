"""Issue 8 §3: layouts of any size, duplicates together, points owned by
their layout run, stale layouts flagged, and one rule for patches views and
grouped collections. Real mongod, real FiftyOne Brain, real umap-learn and
scikit-learn; maps are written straight into the real schema so that the
descriptors (and so the right answers) are chosen by hand."""

import logging
import warnings

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.brain as fob
from fiftyone import ViewField as F

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts import naming
from fiftyone_plugin.storage import declare_map_schema, resolve_maps
from fiftyone_plugin.maps.layout import LayoutConfig, LayoutResults
from fiftyone_plugin.runs import load_run_results
from fiftyone_plugin.maps.layouts import (
    choose_layout,
    delete_layout,
    layout_options,
    list_layouts,
    stale_layouts,
    write_points,
)

from tests.support.helpers import PanelDriver, TinyNet, decode_layout, rendered_view

FIELDS = {"prediction_field": "actmap_prediction", "heatmap_field": "actmap_heatmap", "error_field": "actmaps_error"}


def add_maps(dataset, descriptors, per_sample=2):
    """One sample per ``per_sample`` descriptors, one map per descriptor."""
    declare_map_schema(dataset, "actmaps", FIELDS)
    descriptors = [np.asarray(d, dtype=np.float32) for d in descriptors]
    samples = []
    for start in range(0, len(descriptors), per_sample):
        maps = [
            fo.Detection(bounding_box=[0.1, 0.1, 0.5, 0.5], channel=start + k, layer="features", descriptor=d)
            for k, d in enumerate(descriptors[start : start + per_sample])
        ]
        samples.append(fo.Sample(filepath=f"/tmp/layout-test/{start}.png", actmaps=fo.Detections(detections=maps)))
    dataset.add_samples(samples)
    return dataset.values("actmaps.detections.id", unwind=True)


def points_of(dataset, attribute):
    ids, points = dataset.values(["actmaps.detections.id", f"actmaps.detections.{attribute}"])
    return {i: p for per_ids, per_points in zip(ids, points) for i, p in zip(per_ids, per_points or []) if p is not None}


# ---- small layouts ------------------------------------------------------------


@pytest.mark.parametrize("method", ["umap", "tsne", "pca"])
@pytest.mark.parametrize("n", [1, 2, 3, 10, 49])
def test_small_layouts_work(dataset, method, n):
    # 8-dimensional descriptors: fewer maps and fewer dimensions than the
    # 50 PCA components FiftyOne Brain's t-SNE asks for
    rng = np.random.default_rng(n)
    ids = add_maps(dataset, rng.normal(size=(n, 8)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fpl.compute_map_visualization(dataset, method=method, brain_key="small")
    points = points_of(dataset, "point_small")
    assert sorted(points) == sorted(ids)
    xy = np.array([points[i] for i in ids])
    assert xy.shape == (n, 2) and np.isfinite(xy).all()
    layout = dataset.get_brain_info("small").config.layout
    assert layout["num_maps"] == n and layout["distinct_descriptors"] == n
    if n == 1:
        # hand-derived: one map, nothing to lay out
        assert xy.tolist() == [[0.0, 0.0]] and layout["fallback"]
    else:
        # distinct descriptors never all collapse onto one point
        assert np.ptp(xy, axis=0).max() > 1e-6


def test_two_maps_pca_is_their_difference(dataset):
    # hand-derived: PCA of two points puts them at +-|a - b| / 2 on the first
    # axis (the second carries no variance), with a, b the unit descriptors
    a, b = np.array([3.0, 4.0, 0.0]), np.array([0.0, 1.0, 1.0])
    ids = add_maps(dataset, [a, b])
    fpl.compute_map_visualization(dataset, method="pca", brain_key="two")
    p = points_of(dataset, "point_two")
    pa, pb = np.array(p[ids[0]]), np.array(p[ids[1]])
    expected = np.linalg.norm(a / np.linalg.norm(a) - b / np.linalg.norm(b))
    assert np.linalg.norm(pa - pb) == pytest.approx(expected, rel=1e-5)
    assert pa[1] == pytest.approx(0, abs=1e-6) and pb[1] == pytest.approx(0, abs=1e-6)


def test_two_maps_umap_falls_back_with_a_warning(dataset):
    add_maps(dataset, [[1, 0, 0], [0, 1, 0]])
    with pytest.warns(UserWarning, match="UMAP cannot embed 2 points"):
        fpl.compute_map_visualization(dataset, method="umap", brain_key="two")
    layout = dataset.get_brain_info("two").config.layout
    assert layout["method"] == "umap" and layout["method_used"] == "pca"


def test_wide_descriptors_with_few_maps(dataset):
    # 60 dimensions, 10 maps (PCA to 50 impossible) and 60 maps of 3 dimensions
    rng = np.random.default_rng(1)
    add_maps(dataset, rng.normal(size=(10, 60)))
    for method in ("umap", "tsne", "pca"):
        fpl.compute_map_visualization(dataset, method=method, brain_key=f"wide_{method}")
        assert len(points_of(dataset, f"point_wide_{method}")) == 10


def test_unknown_method_and_no_descriptors_fail_before_any_write(dataset):
    add_maps(dataset, [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="unknown layout method"):
        fpl.compute_map_visualization(dataset, method="isomap")
    other = fo.Dataset()
    try:
        declare_map_schema(other, "actmaps", FIELDS)
        other.add_sample(fo.Sample(filepath="/tmp/x.png", actmaps=fo.Detections(detections=[fo.Detection(bounding_box=[0, 0, 1, 1])])))
        schema = set(other.get_field_schema(flat=True))
        with pytest.raises(ValueError, match="no map with a descriptor"):
            fpl.compute_map_visualization(other)
        assert other.list_brain_runs() == [] and set(other.get_field_schema(flat=True)) == schema
    finally:
        other.delete()
    assert dataset.list_brain_runs() == []


# ---- duplicates -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["umap", "tsne", "pca"])
def test_identical_descriptors_share_a_point(dataset, method):
    # three descriptors each repeated 5 times (duplicated images), plus 15
    # distinct ones; duplicates differ only by float32-level noise and scale
    rng = np.random.default_rng(7)
    bases = rng.normal(size=(3, 16))
    rows = [bases[k] * (1 + 1e-7 * rng.normal()) * (1 if r % 2 else 2.0) for k in range(3) for r in range(5)]
    rows += list(rng.normal(size=(15, 16)))
    ids = add_maps(dataset, rows, per_sample=3)
    fpl.compute_map_visualization(dataset, method=method, brain_key="dups")
    p = points_of(dataset, "point_dups")
    xy = np.array([p[i] for i in ids])
    for k in range(3):
        group = xy[5 * k : 5 * k + 5]
        assert np.abs(group - group[0]).max() < 1e-9
    # different descriptors do not coincide (hand-derived: all 18 differ)
    distinct = np.vstack([xy[0], xy[5], xy[10], xy[15:]])
    gaps = np.linalg.norm(distinct[:, None] - distinct[None], axis=-1)[np.triu_indices(len(distinct), 1)]
    assert gaps.min() > 1e-6
    assert dataset.get_brain_info("dups").config.layout["distinct_descriptors"] == 18


def test_duplicated_images_maps_coincide(dataset, rgb_images):
    # real maps: the same 4 images twice; the maps of an image and of its copy
    # have equal descriptors, so they must share their points
    dataset.add_samples([fo.Sample(filepath=p) for p in rgb_images[:4] * 2])
    fpl.compute_activation_maps(dataset, TinyNet(), top_k=3)
    fpl.compute_map_visualization(dataset, num_neighbors=5, brain_key="real")
    paths, channels, points = dataset.values(
        ["filepath", "actmaps.detections.channel", "actmaps.detections.point_real"]
    )
    where = {}
    for path, chans, pts in zip(paths, channels, points):
        for c, pt in zip(chans, pts):
            where.setdefault((path, c), []).append(pt)
    pairs = [v for v in where.values() if len(v) == 2]
    assert len(pairs) == 12
    for a, b in pairs:
        assert np.linalg.norm(np.subtract(a, b)) < 1e-9


# ---- points belong to their layout ----------------------------------------------


@pytest.fixture
def laid_out(dataset):
    rng = np.random.default_rng(3)
    add_maps(dataset, rng.normal(size=(24, 8)), per_sample=3)
    fpl.compute_map_visualization(dataset, method="pca", brain_key="full")
    return dataset


def test_layout_of_a_view_leaves_other_maps_alone(laid_out):
    ds = laid_out
    before = points_of(ds, "point_full")
    view = ds.limit(3)
    in_view = view.values("actmaps.detections.id", unwind=True)
    fpl.compute_map_visualization(view, method="pca", brain_key="part")
    # the first layout's points are untouched, the second's only on its maps
    assert points_of(ds, "point_full") == before
    assert sorted(points_of(ds, "point_part")) == sorted(in_view)
    # the panel's reader draws one coordinate system: the chosen layout's
    newest, _ = naming.layout_and_progress(ds)
    assert sorted(newest["ids"]) == sorted(in_view)  # default: the newest
    full, stats = naming.layout_and_progress(ds, brain_key="full")
    assert sorted(full["ids"]) == sorted(before) and stats["total"] == 24
    assert [e["brain_key"] for e in list_layouts(ds)] == ["part", "full"]


def test_replacing_a_key_replaces_its_points(laid_out):
    ds = laid_out
    view = ds.limit(2)
    fpl.compute_map_visualization(view, method="pca", brain_key="full")
    assert sorted(points_of(ds, "point_full")) == sorted(view.values("actmaps.detections.id", unwind=True))


def test_deleting_a_run_removes_its_points(laid_out):
    ds = laid_out
    fpl.compute_map_visualization(ds.limit(2), method="pca", brain_key="part")
    ds.delete_brain_run("part")  # FiftyOne Brain's own cleanup
    assert ds.get_field("actmaps.detections.point_part") is None
    assert len(points_of(ds, "point_full")) == 24
    delete_layout(ds, "full")
    assert ds.get_field("actmaps.detections.point_full") is None and ds.list_brain_runs() == []
    assert naming.layout_and_progress(ds)[0]["ids"] == []


def test_layout_results_round_trip_and_delete_run_keeps_the_maps(dataset):
    rng = np.random.default_rng(5)
    ids = add_maps(dataset, rng.normal(size=(12, 8)), per_sample=3)
    returned = fpl.compute_map_visualization(dataset, method="pca", brain_key="rt")
    loaded = load_run_results(dataset, "rt")
    assert type(loaded) is type(returned) is LayoutResults
    assert loaded.to_dict() == returned.to_dict()
    assert returned.num_maps == 12 and returned.layout["method_used"] == "pca"
    config = dataset.get_run_info("rt").config
    assert type(config) is LayoutConfig and config.fields() == ["actmaps.detections.point_rt"]
    # the points the results read back are those on the maps
    map_ids, points = returned.points()
    assert sorted(map_ids) == sorted(ids) and points.shape == (12, 2)
    assert dict(zip(map_ids, points.tolist())) == points_of(dataset, "point_rt")
    assert returned.visualization().points.shape == (12, 2)

    dataset.delete_run("rt")
    # the points and the Brain run go; the maps and their descriptors stay
    assert dataset.get_field("actmaps.detections.point_rt") is None
    assert dataset.list_brain_runs() == [] and dataset.list_runs() == []
    assert sorted(dataset.values("actmaps.detections.id", unwind=True)) == sorted(ids)
    assert dataset.count("actmaps.detections.descriptor") == 12


def test_delete_layout_removes_both_runs_even_after_a_rename(laid_out):
    ds = laid_out
    assert ds.list_runs() == ["full"] and ds.list_brain_runs() == ["full"]
    ds.rename_brain_run("full", "renamed")
    delete_layout(ds, "renamed")
    assert ds.list_runs() == [] and ds.list_brain_runs() == []
    assert ds.count("actmaps.detections") == 24


def test_a_layout_key_cannot_replace_another_run(dataset, rgb_images):
    dataset.add_samples([fo.Sample(filepath=p) for p in rgb_images[:2]])
    fpl.compute_activation_maps(dataset, TinyNet(), top_k=2)
    with pytest.raises(ValueError, match="another run"):
        fpl.compute_map_visualization(dataset, method="pca", brain_key="actmaps")
    assert dataset.list_runs() == ["actmaps"] and dataset.count("actmaps.detections") > 0


def test_recomputed_maps_make_a_layout_stale(laid_out):
    ds = laid_out
    assert stale_layouts(ds) == []
    # recompute the maps of 2 samples (new ids, as compute_activation_maps does)
    for sample in ds.limit(2):
        sample["actmaps"] = fo.Detections(
            detections=[fo.Detection(bounding_box=d.bounding_box, descriptor=d.descriptor) for d in sample.actmaps.detections]
        )
        sample.save()
    (entry,) = stale_layouts(ds)
    # hand-derived: 2 samples x 3 maps are gone of 24
    assert (entry["brain_key"], entry["num_maps"], entry["live_maps"]) == ("full", 24, 18)
    with pytest.warns(UserWarning, match="6 of its 24 maps"):
        naming.layout_and_progress(ds)
    _, chosen, message = layout_options(ds)
    assert chosen["brain_key"] == "full" and "stale" in message
    # a fresh layout becomes the default, without warning
    fpl.compute_map_visualization(ds, method="pca", brain_key="fresh")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert choose_layout(ds)["brain_key"] == "fresh"


def test_points_attribute_cannot_take_another_attribute(laid_out):
    ds = laid_out
    schema = set(ds.get_field_schema(flat=True))
    for attribute in ("descriptor", "concept_alice", "point_full"):
        with pytest.raises(ValueError, match="points_attribute"):
            fpl.compute_map_visualization(ds, brain_key="other", points_attribute=attribute)
    assert set(ds.get_field_schema(flat=True)) == schema and ds.list_brain_runs() == ["full"]


def test_legacy_layouts_are_still_read(dataset):
    # before per-key points, a layout run kept its points in `point`
    ids = add_maps(dataset, np.eye(4))
    points = {i: np.array([float(k), -float(k)]) for k, i in enumerate(ids)}
    fob.compute_visualization(dataset, patches_field="actmaps", points=np.array(list(points.values())), brain_key="old")
    write_points(dataset, points)
    (entry,) = list_layouts(dataset)
    assert entry["legacy"] and entry["points_attribute"] == "point" and not entry["stale"]
    drawn, _ = naming.layout_and_progress(dataset)
    assert dict(zip(drawn["ids"], zip(drawn["x"], drawn["y"]))) == {i: tuple(p) for i, p in points.items()}
    delete_layout(dataset, "old")
    assert dataset.get_field("actmaps.detections.point") is None


# ---- patches views and grouped collections --------------------------------------


@pytest.fixture
def named(dataset):
    rng = np.random.default_rng(5)
    ids = add_maps(dataset, rng.normal(size=(12, 8)), per_sample=3)
    # alice: {0-2} stripes, {3-11} dots; bob: {0-2, 6-8} x, {3-5, 9-11} y
    fpl.assign_concept(dataset, ids[:3], "stripes", "alice")
    fpl.assign_concept(dataset, ids[3:], "dots", "alice")
    fpl.assign_concept(dataset, ids[:3] + ids[6:9], "x", "bob")
    fpl.assign_concept(dataset, ids[3:6] + ids[9:], "y", "bob")
    return dataset, ids


def test_patches_view_stands_for_its_maps(named):
    ds, ids = named
    patches = ds.limit(2).to_patches("actmaps")  # the first 6 maps
    assert resolve_maps(patches, maps_field="actmaps")[1] == ids[:6]
    assert fpl.list_concepts(patches, "alice") == {"dots": 3, "stripes": 3}
    assert fpl.list_concepts(patches)["bob"] == {"x": 3, "y": 3}
    result = fpl.assign_concept(patches, ids[:2], "head", "carol")
    assert result["assigned"] == 2 and fpl.list_concepts(ds, "carol") == {"head": 2}
    exported = fpl.export_concepts(patches, annotators=["alice"])
    assert sorted(a["map_id"] for a in exported["assignments"]) == sorted(ids[:6])


def test_layout_of_a_patches_view(named):
    ds, ids = named
    patches = ds.filter_labels("actmaps", F("concept_alice") == "dots").to_patches("actmaps")
    fpl.compute_map_visualization(patches, method="pca", brain_key="dots")
    assert sorted(points_of(ds, "point_dots")) == sorted(ids[3:])


def test_agreement_on_a_patches_view(named):
    ds, ids = named
    # hand-derived: on the first 6 maps alice and bob make the same partition
    # ({0-2}, {3-5}; names differ), so the label-invariant alpha is 1; over
    # all 12 maps bob splits alice's "dots" across his "x" and "y"
    patches = ds.limit(2).to_patches("actmaps")
    on_patches = fpl.compute_agreement(patches, run_key=None)
    assert sorted(on_patches.map_ids) == sorted(ids[:6])
    assert on_patches.pair_alpha == pytest.approx(1.0)
    assert fpl.compute_agreement(ds, run_key=None).pair_alpha < 1.0


def test_whole_image_functions_and_other_patches_say_why(named):
    ds, _ = named
    with pytest.raises(ValueError, match="whole images"):
        fpl.compute_explanations(ds.to_patches("actmaps"), "alice")
    ds.add_sample_field("boxes", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    ds.set_values("boxes", [fo.Detections(detections=[fo.Detection(bounding_box=[0, 0, 1, 1])]) for _ in range(len(ds))])
    other = ds.to_patches("boxes")
    for call in (
        lambda: fpl.list_concepts(other, "alice"),
        lambda: fpl.assign_concept(other, [], "x", "alice"),
        lambda: fpl.compute_map_visualization(other),
        lambda: fpl.compute_agreement(other, run_key=None),
    ):
        with pytest.raises(ValueError, match="not of the maps field 'actmaps'"):
            call()


@pytest.fixture
def grouped():
    ds = fo.Dataset()
    ds.add_group_field("group", default="left")
    declare_map_schema(ds, "actmaps", FIELDS)
    rng = np.random.default_rng(9)
    samples = []
    for k in range(4):
        group = fo.Group()
        for side in ("left", "right"):
            maps = [fo.Detection(bounding_box=[0, 0, 1, 1], descriptor=rng.normal(size=6)) for _ in range(2)]
            samples.append(
                fo.Sample(filepath=f"/tmp/g{k}{side}.png", group=group.element(side), actmaps=fo.Detections(detections=maps))
            )
    ds.add_samples(samples)
    yield ds
    ds.delete()


def test_grouped_collections_are_refused_everywhere_naming_select_group_slices(grouped):
    ds = grouped
    schema = set(ds.get_field_schema(flat=True))
    calls = {
        "list_concepts": lambda: fpl.list_concepts(ds, "alice"),
        "assign_concept": lambda: fpl.assign_concept(ds, [], "x", "alice"),
        "compute_map_visualization": lambda: fpl.compute_map_visualization(ds),
        "compute_agreement": lambda: fpl.compute_agreement(ds, run_key=None),
        "compute_explanations": lambda: fpl.compute_explanations(ds, "alice"),
        "neuron_correspondence": lambda: fpl.neuron_correspondence(ds, "alice"),
        "export_concepts": lambda: fpl.export_concepts(ds),
        "compute_activation_maps": lambda: fpl.compute_activation_maps(ds, object()),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match="select_group_slices"):
            call()
    assert set(ds.get_field_schema(flat=True)) == schema and ds.list_brain_runs() == []
    # the named flat view works: the left slice's 8 maps (hand count: 4 x 2)
    left = ds.select_group_slices("left")
    fpl.compute_map_visualization(left, method="pca", brain_key="left")
    ids = left.values("actmaps.detections.id", unwind=True)
    assert len(ids) == 8
    fpl.assign_concept(left, ids[:3], "x", "alice")
    assert fpl.list_concepts(left, "alice") == {"x": 3}
    assert fpl.list_concepts(ds.select_group_slices("right"), "alice") == {}


# ---- the panel draws the chosen layout --------------------------------------------


def test_panel_layout_picker_and_stale_warning(dataset, rgb_images):
    ds = dataset
    ds.add_samples([fo.Sample(filepath=p) for p in rgb_images])
    fpl.compute_activation_maps(ds, TinyNet(), top_k=2)  # 12 x 2 maps
    fpl.compute_map_visualization(ds, method="pca", brain_key="full")
    part = ds.limit(3)
    part_ids = part.values("actmaps.detections.id", unwind=True)
    fpl.compute_map_visualization(part, method="pca", brain_key="part")
    panel = PanelDriver(ds)
    panel.call("on_load")
    # the newest layout by default, alone in the scatter (one coordinate system)
    assert panel.state["layout_key"] == "part"
    assert [e["key"] for e in panel.state["layouts"]] == ["part", "full"]
    assert sorted(decode_layout(panel.data["scatter"])["ids"]) == sorted(part_ids)
    assert rendered_view(panel, "layout_key")  # the picker is shown
    panel.call("set_layout", {"value": "full"})
    layout = decode_layout(panel.data["scatter"])
    stored = points_of(ds, "point_full")
    assert sorted(layout["ids"]) == sorted(stored)
    for map_id, xy in zip(layout["ids"], layout["xy"]):
        assert list(xy) == pytest.approx(stored[map_id], abs=1e-5)
    assert not panel.state.get("layout_warning")
    # the maps of one sample recomputed: the picked layout is flagged stale
    sample = ds.last()
    sample["actmaps"] = fo.Detections(detections=[fo.Detection(bounding_box=[0, 0, 1, 1])])
    sample.save()
    panel.call("refresh")
    assert panel.state["layout_key"] == "full"
    assert "2 of its 24 maps" in panel.state["layout_warning"]
    assert rendered_view(panel, "layout_warning")


def test_recomputing_all_maps_leaves_a_fully_stale_layout(dataset, rgb_images, caplog):
    dataset.add_samples([fo.Sample(filepath=p) for p in rgb_images[:4]])
    fpl.compute_activation_maps(dataset, TinyNet(), top_k=2)
    fpl.compute_map_visualization(dataset, method="pca", brain_key="before")
    # the recompute itself says the layout went stale (not only a later read)
    with caplog.at_level(logging.WARNING, logger="fiftyone_plugin.maps.compute"):
        summary = fpl.compute_activation_maps(dataset, TinyNet(), top_k=2, skip_existing=False, overwrite=True)
    assert summary.stale_layouts == ["before"]
    assert "'before' is stale: 8 of its 8 maps" in caplog.text
    (entry,) = stale_layouts(dataset)
    # hand count: all 4 x 2 maps have new ids, none carries the old points
    assert (entry["brain_key"], entry["num_maps"], entry["live_maps"]) == ("before", 8, 0)
    with pytest.warns(UserWarning, match="8 of its 8 maps"):
        points, _ = naming.layout_and_progress(dataset)
    assert points["ids"] == []


def test_renamed_layout_keeps_its_points(laid_out):
    ds = laid_out
    before = points_of(ds, "point_full")
    ds.rename_brain_run("full", "renamed")  # FiftyOne Brain's rename
    (entry,) = list_layouts(ds)
    assert entry["brain_key"] == "renamed" and not entry["stale"]
    drawn, _ = naming.layout_and_progress(ds, brain_key="renamed")
    assert sorted(drawn["ids"]) == sorted(before)
    for i, x, y in zip(drawn["ids"], drawn["x"], drawn["y"]):
        assert [x, y] == pytest.approx(before[i])
    delete_layout(ds, "renamed")
    assert ds.get_field(f"actmaps.detections.{entry['points_attribute']}") is None


def test_descriptors_of_different_lengths_are_refused_before_any_write(dataset):
    # maps of two layers (8 and 16 channels) cannot share one layout
    add_maps(dataset, [np.ones(8), np.ones(16)])
    schema = set(dataset.get_field_schema(flat=True))
    with pytest.raises(ValueError, match="different lengths"):
        fpl.compute_map_visualization(dataset)
    assert dataset.list_brain_runs() == [] and set(dataset.get_field_schema(flat=True)) == schema
