"""The naming panel's callbacks through FiftyOne's operator machinery, with a
real ExecutionContext and MongoDB, plus the pure pieces it renders."""

import io
import json
import re

import pytest
from PIL import Image

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts import naming

from tests.support.helpers import PanelDriver, decode_layout, rendered_view


def selected_in_scatter(panel):
    joined = panel.data.get("scatter", {}).get("selection", "")
    return [joined[i : i + 24] for i in range(0, len(joined), 24)]


def all_map_ids(ds):
    return ds.values("actmaps.detections.id", unwind=True)


# ---- the panel's whole flow, step by step ------------------------------------------
# Each step checks what it did; each test replays the steps before its own, so
# that a failure names the step that broke (the last test is the whole flow).


def step_load(mapped):
    """The panel opens on the stored layout, every map unnamed."""
    panel = PanelDriver(mapped)
    panel.call("on_load")
    assert panel.state["maps_field"] == "actmaps"
    layout = decode_layout(panel.data["scatter"])
    assert sorted(layout["ids"]) == sorted(all_map_ids(mapped))
    stored = mapped.values(["actmaps.detections.id", "actmaps.detections.point_actmaps_layout"])
    points = {i: p for ids, pts in zip(*stored) for i, p in zip(ids, pts)}
    for map_id, (x, y) in zip(layout["ids"], layout["xy"]):
        assert (x, y) == pytest.approx(points[map_id], abs=1e-5)
    assert set(layout["names"]) == {naming.UNNAMED_LABEL}
    return panel


def step_annotator(panel):
    """An invalid annotator name is refused; a valid one is kept."""
    panel.call("set_annotator", {"value": "al.ice"})
    assert panel.state["message_is_error"] and "annotator" in panel.state["message"]
    panel.call("set_annotator", {"value": "alice"})
    assert panel.state["annotator"] == "alice"


def step_lasso(panel, mapped):
    """A lasso in the panel's scatter becomes the selection and the gallery;
    returns every map id."""
    ids = all_map_ids(mapped)
    panel.call("select_maps", {"ids": ids[:6]})
    assert panel.selection() == ids[:6]
    assert selected_in_scatter(panel) == ids[:6]
    items = panel.state["gallery_items"]
    assert [item["map_id"] for item in items] == ids[:6]
    assert items[0]["src"].startswith("/media?filepath=")
    assert items[0]["concept"] is None and items[0]["color"] == naming.UNNAMED_COLOR
    Image.open(naming.thumbnail_path(items[0]["map_id"])).verify()
    # the JS components get their items and the panel methods to call
    gallery = rendered_view(panel, "gallery")
    assert gallery["component"] == "NamingMapGallery"
    assert [item["map_id"] for item in gallery["items"]] == ids[:6]
    assert gallery["on_drop"].endswith("naming_panel#drop_map")
    assert rendered_view(panel, "scatter")["on_select"].endswith("naming_panel#select_maps")
    return ids


def step_drop_and_name(panel, mapped, ids):
    """Drop one map by clicking its thumbnail, then name the rest."""
    panel.call("drop_map", {"map_id": ids[0]})
    assert panel.selection() == ids[1:6]
    assert selected_in_scatter(panel) == ids[1:6]
    bar = rendered_view(panel, "name_bar")
    assert bar["component"] == "NamingBar" and bar["on_name"].endswith("naming_panel#name_new") and bar["selected"]
    panel.call("name_new", {"concept": "  stripes  "})
    assert fpl.list_concepts(mapped, "alice") == {"stripes": 5}
    assert rendered_view(panel, "name_bar")["namings"] == bar["namings"] + 1  # the field empties
    # naming re-sends the names, not the positions (the maps did not change)
    assert "scatter.names" in panel.data_patched and "scatter.layout" not in panel.data_patched
    assert panel.state["stats"]["named"] == 5
    layout = decode_layout(panel.data["scatter"])
    assert [(e["name"], e["count"]) for e in layout["legend"]] == [("(unnamed)", len(ids) - 5), ("stripes", 5)]
    named = {i for i, name in zip(layout["ids"], layout["names"]) if name == "stripes"}
    assert named == set(ids[1:6])
    assert panel.state["gallery_items"][0]["concept"] == "stripes"


def step_bad_name(panel, mapped):
    """A bad name changes nothing and says why."""
    namings = panel.state["namings"]
    panel.call("name_new", {"concept": "x" * 101})
    assert panel.state["message_is_error"] and "100" in panel.state["message"]
    assert fpl.list_concepts(mapped, "alice") == {"stripes": 5}
    assert panel.state["namings"] == namings  # the typed name stays, to be fixed


def step_grid_selection(panel, mapped):
    """Maps selected in the App's grid (labels selected in a patches view)
    are named with an existing concept, then undone; returns the selection."""
    sample = mapped.skip(4).first()
    selected = [{"label_id": m.id, "sample_id": sample.id, "field": "actmaps"} for m in sample.actmaps.detections]
    panel.call("on_change_selected_labels", selected_labels=selected)
    assert panel.selection() == [s["label_id"] for s in selected]
    panel.type_into("naming_row.existing_concept", "stripes")
    panel.call("name_existing")
    assert fpl.list_concepts(mapped, "alice") == {"stripes": 5 + len(selected)}

    panel.call("undo")
    assert fpl.list_concepts(mapped, "alice") == {"stripes": 5}
    return selected


def step_not_nameable(panel, mapped, selected):
    """The selection marked "not nameable"."""
    panel.call("mark_not_nameable")
    assert fpl.list_concepts(mapped, "alice") == {"stripes": 5, fpl.NOT_NAMEABLE: len(selected)}
    assert panel.state["stats"]["not_nameable"] == len(selected)


def step_rename(panel, mapped):
    """A rename, undone."""
    panel.type_into("manage_row.manage_concept", "stripes")
    panel.type_into("manage_row.manage_new_name", "stripy")
    panel.call("rename")
    assert fpl.list_concepts(mapped, "alice")["stripy"] == 5
    panel.call("undo")
    assert fpl.list_concepts(mapped, "alice")["stripes"] == 5


def step_rename_refused_then_merge(panel, mapped, ids, selected):
    """A rename onto an existing name is refused (that is a merge); the
    merge, undone."""
    fpl.assign_concept(mapped, ids[-2:], "dots", "alice")
    panel.type_into("manage_row.manage_concept", "stripes")
    panel.type_into("manage_row.manage_new_name", "dots")
    panel.call("rename")
    assert panel.state["message_is_error"] and "already has a concept 'dots'" in panel.state["message"]
    panel.call("merge")
    assert fpl.list_concepts(mapped, "alice") == {"dots": 7, fpl.NOT_NAMEABLE: len(selected)}
    panel.call("undo")
    assert fpl.list_concepts(mapped, "alice") == {"stripes": 5, "dots": 2, fpl.NOT_NAMEABLE: len(selected)}
    fpl.assign_concept(mapped, ids[-2:], None, "alice")


def step_delete(panel, mapped, selected):
    """A concept deleted leaves the picker."""
    panel.type_into("manage_row.manage_concept", "stripes")
    panel.call("delete")
    assert fpl.list_concepts(mapped, "alice") == {fpl.NOT_NAMEABLE: len(selected)}
    assert panel.state["manage_row"]["manage_concept"] is None  # gone from the picker


def step_show_in_app(panel):
    """The selection shown in the App's grid as patches."""
    panel.call("show_selection_in_app")
    assert any(r["operator_uri"] == "set_view" for r in panel.notifications)


def test_panel_opens_on_the_stored_layout_and_checks_the_annotator(mapped):
    panel = step_load(mapped)
    step_annotator(panel)


def test_panel_lasso_becomes_the_selection_and_gallery(mapped):
    panel = step_load(mapped)
    step_annotator(panel)
    step_lasso(panel, mapped)


def test_panel_names_a_selection_and_refuses_a_bad_name(mapped):
    panel = step_load(mapped)
    step_annotator(panel)
    ids = step_lasso(panel, mapped)
    step_drop_and_name(panel, mapped, ids)
    step_bad_name(panel, mapped)


def test_panel_names_the_grid_selection_undo_and_not_nameable(mapped):
    panel = step_load(mapped)
    step_annotator(panel)
    ids = step_lasso(panel, mapped)
    step_drop_and_name(panel, mapped, ids)
    step_bad_name(panel, mapped)
    selected = step_grid_selection(panel, mapped)
    step_not_nameable(panel, mapped, selected)


def test_panel_renames_merges_and_deletes_with_undo(mapped):
    panel = step_load(mapped)
    step_annotator(panel)
    ids = step_lasso(panel, mapped)
    step_drop_and_name(panel, mapped, ids)
    step_bad_name(panel, mapped)
    selected = step_grid_selection(panel, mapped)
    step_not_nameable(panel, mapped, selected)
    step_rename(panel, mapped)
    step_rename_refused_then_merge(panel, mapped, ids, selected)
    step_delete(panel, mapped, selected)
    step_show_in_app(panel)


def test_panel_counts_come_from_the_database(mapped):
    # another annotator (or tab) names maps behind the panel's back
    panel = PanelDriver(mapped)
    panel.call("on_load")
    panel.call("set_annotator", {"value": "bob"})
    assert rendered_view(panel, "annotator")["annotators"] == []
    fpl.assign_concept(mapped, all_map_ids(mapped)[:4], "elsewhere", "bob")
    panel.call("refresh")
    assert rendered_view(panel, "annotator")["annotators"] == ["bob"]  # offered to pick
    assert panel.state["stats"]["named"] == 4
    assert panel.state["concepts"] == [{"concept": "elsewhere", "maps": 4}]


def test_names_are_rendered_as_text_not_markup(mapped):
    evil = "<img src=x onerror=alert(1)>"
    fpl.assign_concept(mapped, all_map_ids(mapped)[:2], evil, "carol")
    panel = PanelDriver(mapped)
    panel.call("on_load")
    panel.call("set_annotator", {"value": "carol"})
    # names travel only as data for text components (table rows, legend,
    # dropdown labels), never inside markdown
    assert {"concept": evil, "maps": 2} in panel.state["concepts"]
    rendered = str(panel.output)
    assert "MarkdownView" not in rendered


def test_paging_large_selections(mapped):
    panel = PanelDriver(mapped)
    panel.call("on_load")
    ids = all_map_ids(mapped)
    panel.call("select_maps", {"ids": ids})
    assert panel.state["pages"] == -(-len(ids) // 24)
    panel.call("next_page")
    assert panel.state["page"] == 1
    assert [item["map_id"] for item in panel.state["gallery_items"]] == ids[24:48]


def test_thumbnail_draws_the_heatmap_over_the_region(workdir):
    path = f"{workdir}/thumb.png"
    Image.new("RGB", (100, 100), (0, 0, 255)).save(path)
    heatmap = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 255, 255], [0, 0, 255, 255]]  # hot bottom-right
    png = naming.map_thumbnail(path, [0.0, 0.0, 1.0, 1.0], heatmap, size=100, context=0.0)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (100, 100)
    r, g, b = image.getpixel((90, 90))
    assert r > 100 and b < 200  # warm overlay where the map is high
    r, g, b = image.getpixel((10, 10))
    assert b < 0.4 * 255 and r < 30  # dimmed, untinted where it is low


def test_concept_colours_are_stable_and_distinct():
    names = [f"concept {i}" for i in range(len(naming.PALETTE))]
    colors = naming.concept_colors(names)
    assert len({colors[n] for n in names}) == len(names)  # no two alike
    assert set(colors[n] for n in names) == set(naming.PALETTE)
    assert naming.concept_colors(list(reversed(names))) == colors  # order-free
    assert colors[None] == naming.UNNAMED_COLOR and colors[fpl.NOT_NAMEABLE] == naming.NOT_NAMEABLE_COLOR
    assert naming.UNNAMED_COLOR not in naming.PALETTE
    # a concept alone keeps the slot its name hashes to, in every session
    assert naming.concept_color("head") == naming.concept_colors(["head"])["head"]
    assert naming.concept_colors(["head", "zzz"])["head"] == naming.concept_color("head")
    # beyond the palette, still a colour per name
    many = naming.concept_colors([f"c{i}" for i in range(30)])
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in many.values())


def test_embeddings_lasso_becomes_the_selection(mapped):
    panel = PanelDriver(mapped)
    panel.call("on_load")
    ids = all_map_ids(mapped)[:3]
    sample_id = mapped.first().id  # not a map: ignored
    panel.call("on_change_extended_selection", extended_selection={"selection": ids + [sample_id]})
    assert panel.selection() == ids


def test_concept_views_show_and_save(mapped):
    ids = all_map_ids(mapped)
    fpl.assign_concept(mapped, ids[:4], "stripes", "alice")
    fpl.assign_concept(mapped, ids[4:6], "stripes", "bob")  # another namespace
    panel = PanelDriver(mapped)
    panel.call("on_load")
    panel.call("set_annotator", {"value": "alice"})
    panel.call("save_concept_view")
    assert panel.state["message_is_error"] and "Pick a concept" in panel.state["message"]

    panel.type_into("manage_row.manage_concept", "stripes")
    panel.call("show_concept_in_app")
    assert any(r["operator_uri"] == "set_view" for r in panel.notifications)
    panel.call("save_concept_view")
    assert panel.state["message"] == "Saved view 'alice: stripes'"
    saved = mapped.load_saved_view("alice: stripes")
    assert sorted(saved.values("actmaps.id")) == sorted(ids[:4])
    # saving again is allowed: the older view of that name is replaced
    fpl.assign_concept(mapped, ids[6:8], "stripes", "alice")
    panel.call("save_concept_view")
    assert len(mapped.load_saved_view("alice: stripes")) == 6


def test_one_aggregation_agrees_with_the_store(mapped):
    # maps without a layout point, unnamed, named and not nameable, mixed
    # within samples: ids, points and names must stay aligned per map
    ids = all_map_ids(mapped)
    fpl.assign_concept(mapped, ids[1::3], "stripes", "alice")
    fpl.assign_concept(mapped, ids[2::7], fpl.NOT_NAMEABLE, "alice")
    first = mapped.first()
    no_point = first.actmaps.detections[0].id
    mapped._sample_collection.update_one(
        {"_id": first._id}, {"$unset": {"actmaps.detections.0.point_actmaps_layout": ""}}
    )
    points, stats = naming.layout_and_progress(mapped, "alice")
    assert stats == naming.progress(mapped, "alice")
    assert no_point not in points["ids"] and len(points["ids"]) == len(ids) - 1
    names = dict(zip(points["ids"], points["concepts"]))
    expected = {i: None for i in ids}
    expected.update({i: "stripes" for i in ids[1::3]})
    expected.update({i: fpl.NOT_NAMEABLE for i in ids[2::7]})
    del expected[no_point]
    assert names == expected
    stored = mapped.values(["actmaps.detections.id", "actmaps.detections.point_actmaps_layout"])
    where = {i: p for per_ids, per_points in zip(*stored) for i, p in zip(per_ids, per_points)}
    for map_id, x, y in zip(points["ids"], points["x"], points["y"]):
        assert [x, y] == pytest.approx(where[map_id])
    # without an annotator: no names, same maps
    plain, plain_stats = naming.layout_and_progress(mapped)
    assert plain["ids"] == points["ids"] and set(plain["concepts"]) == {None}
    assert plain_stats["total"] == len(ids) and plain_stats["named"] == 0


def test_reopening_restores_the_kept_selection(mapped):
    ids = all_map_ids(mapped)
    panel = PanelDriver(mapped)
    panel.call("on_load")
    panel.call("select_maps", {"ids": ids[:5]})
    # the App keeps panel state (not panel data) across a reload; one of the
    # maps is deleted meanwhile
    panel.data = {}
    sample = mapped.first()
    gone = sample.actmaps.detections[0].id
    assert gone in ids[:5]
    sample.actmaps.detections = sample.actmaps.detections[1:]
    sample.save()
    panel.call("on_load")
    kept = [i for i in ids[:5] if i != gone]
    assert panel.selection() == kept
    assert selected_in_scatter(panel) == kept
    assert [item["map_id"] for item in panel.state["gallery_items"]] == kept


def test_positions_are_sent_when_the_app_may_lack_them_or_the_maps_changed(mapped):
    panel = PanelDriver(mapped)
    panel.call("on_load")
    assert "scatter.layout" in panel.data_patched  # panel data is not kept over a reload
    panel.call("set_annotator", {"value": "alice"})
    assert panel.data_patched == ["scatter.names"]
    panel.call("refresh")  # the button: everything
    assert {"scatter.layout", "scatter.names"} <= set(panel.data_patched)
    # maps removed behind the panel's back: back in the tab, new positions
    sample = mapped.first()
    sample.actmaps.detections = sample.actmaps.detections[1:]
    sample.save()
    panel.call("resync")
    assert "scatter.layout" in panel.data_patched
    assert sorted(decode_layout(panel.data["scatter"])["ids"]) == sorted(all_map_ids(mapped))


def test_undo_skips_maps_deleted_since_and_needs_a_concept_picked(mapped):
    ids = all_map_ids(mapped)
    panel = PanelDriver(mapped)
    panel.call("on_load")
    panel.call("set_annotator", {"value": "alice"})
    panel.call("select_maps", {"ids": ids[:4]})
    panel.call("name_new", {"concept": "wheel"})
    assert fpl.list_concepts(mapped, "alice") == {"wheel": 4}
    # one of the named maps is deleted (another tab, a rerun) before the undo
    sample = mapped.first()
    gone = sample.actmaps.detections[0].id
    assert gone in ids[:4]
    sample.actmaps.detections = sample.actmaps.detections[1:]
    sample.save()
    panel.call("undo")
    assert not panel.state["message_is_error"], panel.state["message"]
    assert fpl.list_concepts(mapped, "alice") == {}
    # rename, delete, merge without a concept picked: a message, nothing else
    for method in ("rename", "delete", "merge"):
        panel.call(method)
        assert panel.state["message_is_error"] and "Pick a concept" in panel.state["message"]


def test_quick_drops_in_a_row_all_count(mapped):
    ids = all_map_ids(mapped)
    panel = PanelDriver(mapped)
    panel.call("on_load")
    panel.call("select_maps", {"ids": ids[:6]})
    # the second drop was sent before the first was answered: it carries both
    panel.call("drop_map", {"map_ids": [ids[0], ids[1]]})
    assert panel.selection() == ids[2:6]


def test_panel_state_holds_no_selection_and_each_event_sends_one_patch(mapped):
    # the App sends the panel's state with every event: the selection and
    # the undo record (an id per map) live in the execution store instead
    ids = all_map_ids(mapped)
    assert len(ids) > 24  # more than one page of thumbnails
    panel = PanelDriver(mapped)
    panel.call("on_load")
    panel.call("set_annotator", {"value": "alice"})
    result = panel.call("select_maps", {"ids": ids})
    requests = [r["operator_uri"] for r in result.executor.to_json()["requests"]]
    # one state patch and one data patch, before the output they lead to
    assert requests.count("patch_panel_state") == 1 and requests.count("patch_panel_data") == 1
    assert requests.index("patch_panel_data") < requests.index("show_panel_output")
    panel.call("name_new", {"concept": "everything"})
    assert fpl.list_concepts(mapped, "alice") == {"everything": len(ids)}
    shown = {item["map_id"] for item in panel.state["gallery_items"]}
    assert len(shown) == 24
    in_state = set(re.findall(r"[0-9a-f]{24}", json.dumps(panel.state)))
    assert in_state & set(ids) == shown  # only the page of thumbnails
    assert panel.state["selection_count"] == len(ids) and panel.selection() == ids
    # the undo step, from the panel's memory
    panel.call("undo")
    assert panel.state["message"] == f"Undid the last assign ({len(ids)} map(s))"
    assert fpl.list_concepts(mapped, "alice") == {}


def test_a_panel_saved_with_its_selection_in_state_keeps_it(mapped):
    # a workspace saved before the selection moved to the execution store
    ids = all_map_ids(mapped)
    panel = PanelDriver(mapped)
    panel.state = {"maps_field": "actmaps", "annotator": "alice", "selection": ids[:4],
                   "undo": {"kind": "assign", "annotator": "alice", "previous": {ids[0]: None}, "concept": "x"}}
    panel.call("on_load")
    assert panel.selection() == ids[:4]
    assert panel.state["selection"] is None and panel.state["undo"] is None
    assert rendered_view(panel, "undo").get("disabled") is False
