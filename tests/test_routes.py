"""Routes from the App to the concept store that must name exactly what was
selected (issue 9, section 1), through FiftyOne's operator machinery with a
real ExecutionContext and MongoDB: the Embeddings panel's lasso read from
the App's extended stages, the "name selected maps" operator's explicit
ids and its refusals, the naming panel's undo of an operator, evaluation
operators in a patches view, and the untrustworthy operator opening its
top view. The real-browser versions are in test_browser_routes.py."""

import asyncio
import copy
import json

import pytest

import fiftyone as fo
import fiftyone.operators as foo
from fiftyone import ViewField as F
from fiftyone.operators.executor import ExecutionResult, resolve_type

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts import naming
from fiftyone_plugin.concepts import selection as app_selection
from fiftyone_plugin.concepts.selection import check_unchanged, images_of, lassoed_map_ids, selection_key
from fiftyone_plugin.maps.config import ActivationMapsConfig
from fiftyone_plugin.runs import register_run

from tests.support.helpers import PanelDriver, build, rendered_view, untrustworthy_specs

PLUGIN = "@interactive-naming/interactive-naming"
ASSIGN = f"{PLUGIN}/assign_concept"


def app_lasso(ids, maps_field="actmaps"):
    """The extended stages FiftyOne 1.22's Embeddings panel sets after a
    lasso over a patches plot in a samples view: exactly what the App sent
    in the browser (``/embeddings/v2/lasso-stage`` answers with
    ``MatchLabels(fields=[patches_field], ids=...)`` serialized this way)."""
    return {
        "fiftyone.core.stages.MatchLabels": {
            "labels": None, "ids": list(ids), "tags": None, "filter": None, "fields": [maps_field], "bool": None,
        }
    }


def maps_by_sample(ds):
    return [ids for ids in ds.values("actmaps.detections.id") if ids]


def lasso_across_images(ds):
    """One map from each of the first four images: a lasso that touches four
    images but takes a fraction of their maps."""
    return [ids[0] for ids in maps_by_sample(ds)[:4]]


# ---- reading the lasso from the App's extended stages --------------------------


def test_lasso_ids_come_from_the_stage_not_from_the_matched_images(mapped):
    lassoed = lasso_across_images(mapped)
    assert lassoed_map_ids(mapped, app_lasso(lassoed)) == lassoed
    # the bug's kind: the view the stage gives holds every map of the 4 images
    view = fo.core.view.DatasetView._build(mapped, [])
    from fiftyone.server.view import extend_view

    matched = app_selection.map_ids_in(extend_view(view, app_lasso(lassoed)))
    assert len(matched) == sum(len(ids) for ids in maps_by_sample(mapped)[:4]) > len(lassoed)


def test_lasso_variants(mapped):
    lassoed = lasso_across_images(mapped)
    stage = app_lasso(lassoed)["fiftyone.core.stages.MatchLabels"]
    # kwargs serialized as [[name, value]] pairs; fields as a string or None
    assert lassoed_map_ids(mapped, {"fiftyone.core.stages.MatchLabels": [[k, v] for k, v in stage.items()]}) == lassoed
    assert lassoed_map_ids(mapped, {"fiftyone.core.stages.MatchLabels": dict(stage, fields="actmaps")}) == lassoed
    assert lassoed_map_ids(mapped, {"fiftyone.core.stages.MatchLabels": dict(stage, fields=None)}) == lassoed
    # a sample id and a malformed id in the stage are not maps: left out
    extra = dict(stage, ids=lassoed + [mapped.first().id, "nonsense"])
    assert lassoed_map_ids(mapped, {"fiftyone.core.stages.MatchLabels": extra}) == lassoed
    # SelectLabels by ids
    assert lassoed_map_ids(mapped, {"fiftyone.core.stages.SelectLabels": {"ids": lassoed, "fields": ["actmaps"]}}) == lassoed
    # with a sort stage next to it (the App adds SortBy to the extended stages)
    both = dict(app_lasso(lassoed), **{"fiftyone.core.stages.SortBy": {"field_or_expr": "filepath", "reverse": False}})
    assert lassoed_map_ids(mapped, both) == lassoed


def test_no_lasso_is_none(mapped):
    lassoed = lasso_across_images(mapped)
    assert lassoed_map_ids(mapped, None) is None
    assert lassoed_map_ids(mapped, {}) is None
    assert lassoed_map_ids(mapped, {"fiftyone.core.stages.SortBy": {"field_or_expr": "filepath"}}) is None
    # on another field, excluding, or a samples plot's Select in a samples view: not a lasso of maps
    assert lassoed_map_ids(mapped, app_lasso(lassoed, maps_field="other")) is None
    stage = app_lasso(lassoed)["fiftyone.core.stages.MatchLabels"]
    assert lassoed_map_ids(mapped, {"fiftyone.core.stages.MatchLabels": dict(stage, bool=False)}) is None
    sample_ids = mapped.limit(3).values("id")
    assert lassoed_map_ids(mapped, {"fiftyone.core.stages.Select": {"sample_ids": sample_ids}}) is None


def test_lasso_in_a_patches_view_of_the_maps(mapped):
    patches = mapped.to_patches("actmaps")
    picked = patches.skip(2).limit(5).values("id")  # patch ids are map ids
    extended = {"fiftyone.core.stages.Select": {"sample_ids": picked, "ordered": False}}
    assert sorted(lassoed_map_ids(patches, extended)) == sorted(picked)
    # the $geoWithin stage a run with a spatial index gets: the maps whose
    # layout point lies in the polygon, counted here from the points
    ids, points = fpl.map_points(mapped)
    x0, x1 = float(points[:, 0].min()) - 1, float(points[:, 0].mean())
    y0, y1 = float(points[:, 1].min()) - 1, float(points[:, 1].max()) + 1
    inside = {i for i, (x, y) in zip(ids, points) if x0 < x < x1}
    polygon = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    # each layout keeps its points in its own attribute (the Brain run's points_field)
    attribute = fpl.choose_layout(mapped)["points_attribute"]
    geo = {"fiftyone.core.stages.Mongo": {"pipeline": [{"$match": {f"actmaps.{attribute}": {"$geoWithin": {"$polygon": polygon}}}}]}}
    assert 0 < len(inside) < len(ids)
    assert set(lassoed_map_ids(patches, geo)) == inside


def test_filter_labels_on_the_maps_selects_the_maps_it_keeps(mapped):
    channel = mapped.values("actmaps.detections.channel", unwind=True)[0]
    expected = {
        i for i, c in zip(*mapped.values(["actmaps.detections.id", "actmaps.detections.channel"], unwind=True)) if c == channel
    }
    stage = mapped.filter_labels("actmaps", F("channel") == channel)._stages[-1]._serialize(include_uuid=False)
    extended = {stage["_cls"]: dict(stage["kwargs"])}
    assert set(lassoed_map_ids(mapped, extended)) == expected


def test_app_selections_list_every_source(mapped):
    maps = maps_by_sample(mapped)
    grid = [{"label_id": maps[0][0], "sample_id": mapped.first().id, "field": "actmaps"}]
    lassoed = lasso_across_images(mapped)
    found = app_selection.app_selections(mapped, "actmaps", extended=app_lasso(lassoed), selected_labels=grid)
    assert [(s["source"], s["ids"]) for s in found] == [("labels", [maps[0][0]]), ("lasso", lassoed)]
    assert "Embeddings" in found[1]["label"] and "actmaps_layout" in found[1]["label"]
    # the legacy extended selection, and nothing at all
    found = app_selection.app_selections(mapped, "actmaps", extended_selection={"selection": lassoed[:2]})
    assert [(s["source"], s["ids"]) for s in found] == [("extended", lassoed[:2])]
    assert app_selection.app_selections(mapped, "actmaps") == []


def test_check_unchanged_refuses_empty_and_changed_sets():
    with pytest.raises(ValueError, match="no maps to name"):
        check_unchanged(selection_key("lasso", []), [], "x")
    with pytest.raises(ValueError, match="changed since the form was shown: it showed 2 map.*now there are 0"):
        check_unchanged(selection_key("lasso", ["a", "b"]), None, "lassoed")
    with pytest.raises(ValueError, match="changed"):
        check_unchanged(selection_key("lasso", ["a", "b"]), ["a", "b", "c"], "x")
    with pytest.raises(ValueError, match="not a selection resolved by the form"):
        check_unchanged("lasso", ["a"], "x")
    assert check_unchanged(selection_key("lasso", ["b", "a"]), ["a", "b"], "x") == ["a", "b"]


def test_images_of_a_patches_view_are_whole_images(mapped):
    maps = maps_by_sample(mapped)
    patches = mapped.select_labels(ids=[maps[0][0], maps[2][1]], fields="actmaps").to_patches("actmaps")
    images = images_of(patches)
    assert sorted(images.values("id")) == sorted(mapped.skip(0).values("id")[k] for k in (0, 2))
    # with all their maps, not only the two patches
    assert images.count("actmaps.detections") == len(maps[0]) + len(maps[2])
    assert images_of(mapped) is mapped


# ---- the "name selected maps" operator ----------------------------------------


def form(ds, **request):
    """The operator's form as the App resolves it: ``(property json,
    params)``, params holding each input's default as the App's form does."""
    registry = foo.OperatorRegistry()
    params = dict(request.pop("params", {}))
    view = request.pop("view", None)
    req = {"dataset_name": ds.name, "params": params, **request}
    if view is not None:
        req["view"] = view._serialize()
    prop = asyncio.run(resolve_type(registry, ASSIGN, req))
    assert not isinstance(prop, ExecutionResult), prop.error
    schema = prop.to_json()
    defaults = {
        name: p["default"] for name, p in schema["type"]["properties"].items() if p.get("default") is not None
    }
    return schema, {**defaults, **params}


def choices(schema, name="scope"):
    """``{source: (value, label)}`` of the scope choices."""
    view = schema["type"]["properties"][name]["view"]
    return {c["value"].split(":")[0]: (c["value"], c["label"]) for c in view["choices"]}


def named(ds, annotator):
    ids, names = fo.load_dataset(ds.name).values(["actmaps.detections.id", f"actmaps.detections.concept_{annotator}"], unwind=True)
    return {i for i, n in zip(ids, names) if n is not None}


def test_operator_names_exactly_the_lassoed_maps(mapped):
    lassoed = lasso_across_images(mapped)
    request = {"extended": app_lasso(lassoed)}
    schema, params = form(mapped, params={"maps_field": "actmaps", "annotator": "alice"}, **request)
    offered = choices(schema)
    total = mapped.count("actmaps.detections")
    touched = sum(len(ids) for ids in maps_by_sample(mapped)[:4])
    assert offered["lasso"][1].startswith(f"The {len(lassoed)} map(s) lassoed in the Embeddings panel")
    # the whole view (the 4 matched images) only as a choice, with its count
    assert offered["view"][1] == f"All {touched} map(s) in the current view" and touched < total
    # the set shown travels as the chosen value (the App sends choices)
    assert params["scope"] == offered["lasso"][0] == selection_key("lasso", lassoed)

    result = foo.execute_operator(ASSIGN, dataset=mapped, params=dict(params, concept="heads"), **request)
    assert result.error is None, result.error
    assert named(mapped, "alice") == set(lassoed)
    assert result.result["assigned"] == len(lassoed)
    assert "lassoed in the Embeddings panel" in result.result["maps"]


def test_operator_refuses_a_lasso_dropped_before_execution(mapped):
    lassoed = lasso_across_images(mapped)
    _, params = form(mapped, params={"maps_field": "actmaps", "annotator": "alice"}, extended=app_lasso(lassoed))
    # the App re-synced (e.g. after a panel update) and sends no lasso now
    with pytest.raises(Exception, match="changed since the form was shown"):
        foo.execute_operator(ASSIGN, dataset=mapped, params=dict(params, concept="heads"))
    # or another lasso
    with pytest.raises(Exception, match="changed since the form was shown"):
        foo.execute_operator(ASSIGN, dataset=mapped, params=dict(params, concept="heads"), extended=app_lasso(lassoed[:2]))
    assert named(mapped, "alice") == set()


def test_operator_refuses_empty_and_unresolved_selections(mapped):
    schema, params = form(mapped, params={"maps_field": "actmaps", "annotator": "alice"})
    # nothing selected: no default, the whole view offered with its count
    assert "scope" not in params
    total = mapped.count("actmaps.detections")
    assert [label for _, label in choices(schema).values()] == [f"All {total} map(s) in the current view"]
    base = {"maps_field": "actmaps", "annotator": "alice", "concept": "x"}
    # a scope that no form resolved: refused by the form's validation
    with pytest.raises(Exception, match="Invalid enum value"):
        foo.execute_operator(ASSIGN, dataset=mapped, params=dict(base, scope="lasso"))
    with pytest.raises(Exception, match="no maps to name"):
        foo.execute_operator(ASSIGN, dataset=mapped, params=dict(base, scope=selection_key("lasso", [])))
    # the view's maps as shown, but the view grew since
    small_view = mapped.limit(2)
    schema, _ = form(mapped, params={"maps_field": "actmaps", "annotator": "alice"}, view=small_view)
    shown = choices(schema)["view"][0]
    assert shown == selection_key("view", small_view.values("actmaps.detections.id", unwind=True))
    with pytest.raises(Exception, match="changed since the form was shown"):
        foo.execute_operator(ASSIGN, dataset=mapped, params=dict(base, scope=shown))
    assert named(mapped, "alice") == set()
    # the same view: named, exactly those
    result = foo.execute_operator(ASSIGN, view=small_view, params=dict(base, scope=shown))
    assert result.error is None
    assert named(mapped, "alice") == set(small_view.values("actmaps.detections.id", unwind=True))


def test_operator_form_warns_when_the_selection_changed(mapped):
    lassoed = lasso_across_images(mapped)
    params = {"maps_field": "actmaps", "annotator": "alice", "scope": selection_key("lasso", lassoed)}
    schema, _ = form(mapped, params=params, extended=app_lasso(lassoed[:3]))
    assert "4 map(s) then, 3 now" in schema["type"]["properties"]["selection_changed"]["view"]["label"]
    schema, _ = form(mapped, params=params, extended=app_lasso(lassoed))
    assert "selection_changed" not in schema["type"]["properties"]


def test_operator_with_explicit_ids(mapped):
    ids = mapped.values("actmaps.detections.id", unwind=True)[3:6]
    result = foo.execute_operator(
        ASSIGN, dataset=mapped, params={"maps_field": "actmaps", "annotator": "bob", "scope": "ids", "map_ids": ids, "action": "not_nameable"}
    )
    assert result.error is None
    assert fpl.list_concepts(mapped, "bob") == {fpl.NOT_NAMEABLE: 3}
    with pytest.raises(Exception, match="existing maps"):
        foo.execute_operator(
            ASSIGN, dataset=mapped,
            params={"maps_field": "actmaps", "annotator": "bob", "scope": "ids", "map_ids": ids + [mapped.first().id], "concept": "y"},
        )
    assert fpl.list_concepts(mapped, "bob") == {fpl.NOT_NAMEABLE: 3}


# ---- the naming panel ------------------------------------------------------------


def test_panel_takes_the_embeddings_lasso_from_the_view(mapped):
    panel = PanelDriver(mapped)
    panel.call("on_load")
    lassoed = lasso_across_images(mapped)
    panel.call("on_change_view", extended=app_lasso(lassoed))
    assert panel.selection() == lassoed
    # the user changes the selection in the panel; a re-sync with the same
    # lasso leaves it alone, a new lasso replaces it
    panel.call("drop_map", {"map_id": lassoed[0]})
    panel.call("on_change_view", extended=app_lasso(lassoed))
    assert panel.selection() == lassoed[1:]
    panel.call("on_change_view")  # the lasso dropped: nothing changes
    assert panel.selection() == lassoed[1:]
    panel.call("on_change_view", extended=app_lasso(lassoed[:2]))
    assert panel.selection() == lassoed[:2]
    # "Use App selection" finds the lasso too
    panel.call("clear_selection")
    panel.call("use_app_selection", extended=app_lasso(lassoed))
    assert panel.selection() == lassoed
    panel.call("clear_selection")
    panel.call("use_app_selection")
    assert panel.selection() == [] and "Embeddings panel" in panel.state["message"]


def test_app_resyncs_in_a_patches_view_leave_the_panels_own_selection(mapped):
    # "Show in App" leaves a patches view of the selection in the App's grid,
    # where two patches are ticked; an older panel's extended selection stands,
    # which the App also sends as an extended Select stage on the patches
    ids = mapped.values("actmaps.detections.id", unwind=True)
    patches = naming.selection_view(mapped, ids[:6], "actmaps")
    ticked, legacy = ids[:2], ids[2:5]
    app = {"view": patches, "selected": ticked, "extended_selection": {"selection": legacy},
           "extended": {"fiftyone.core.stages.Select": {"sample_ids": legacy, "ordered": False}}}
    # ticked patches are a selection of their own, not a lasso
    found = app_selection.app_selections(mapped, "actmaps", view=patches, selected=ticked)
    assert [(s["source"], s["ids"]) for s in found] == [("patches", ticked)]
    assert lassoed_map_ids(patches, {}, "actmaps") is None
    panel = PanelDriver(mapped)
    panel.call("on_load")
    before = copy.deepcopy(panel.state)  # the App's events carry the state of when they were sent
    panel.call("on_change_selected", **app)
    assert panel.selection() == ticked
    panel.call("on_change_view", **app)
    panel.call("on_change_extended_selection", **app)
    assert panel.selection() == legacy
    # the user's own lasso in the panel, then the App re-syncs its view with
    # events sent before: each App selection was taken once, and an event that
    # changes nothing draws nothing over the newer output
    panel.call("select_maps", {"ids": ids[6:15]})
    for state in (before, copy.deepcopy(panel.state)):
        for method in ("on_change_view", "on_change_selected", "on_change_extended_selection", "on_change_selected_labels"):
            result = panel.call(method, state=state, **app)
            sent = [r["operator_uri"] for r in result.executor.to_json()["requests"]]
            assert "show_panel_output" not in sent, method
            assert panel.selection() == ids[6:15], method
    assert rendered_view(panel, "selection_count")["label"] == "9 map(s) selected"
    # a new App selection is still taken
    panel.call("on_change_selected", **dict(app, selected=ids[3:5]))
    assert panel.selection() == ids[3:5]


def test_panel_undoes_the_operators_naming(mapped):
    panel = PanelDriver(mapped)
    panel.call("on_load")
    panel.call("set_annotator", {"value": "alice"})
    ids = mapped.values("actmaps.detections.id", unwind=True)
    fpl.assign_concept(mapped, ids[:2], "old", "alice")
    lassoed = ids[:5]
    _, params = form(mapped, params={"maps_field": "actmaps", "annotator": "alice"}, extended=app_lasso(lassoed))
    foo.execute_operator(ASSIGN, dataset=mapped, params=dict(params, concept="heads"), extended=app_lasso(lassoed))
    assert fpl.list_concepts(mapped, "alice") == {"heads": 5}
    # a map renamed since is left as it is
    fpl.assign_concept(mapped, [ids[4]], "later", "alice")
    panel.call("refresh")
    assert rendered_view(panel, "undo").get("disabled") is False  # offered
    panel.call("undo")
    assert "Undid the operator's naming (4 map(s), 1 renamed since" in panel.state["message"]
    assert fpl.list_concepts(mapped, "alice") == {"old": 2, "later": 1}
    # taken once
    panel.call("undo")
    assert panel.state["message"] == "Nothing to undo"
    assert rendered_view(panel, "undo").get("disabled") is True


def test_panel_action_after_the_operator_supersedes_its_undo(mapped):
    panel = PanelDriver(mapped)
    panel.call("on_load")
    panel.call("set_annotator", {"value": "alice"})
    ids = mapped.values("actmaps.detections.id", unwind=True)
    foo.execute_operator(
        ASSIGN, dataset=mapped, params={"maps_field": "actmaps", "annotator": "alice", "scope": "ids", "map_ids": ids[:3], "concept": "a"}
    )
    panel.call("select_maps", {"ids": ids[5:7]})
    panel.call("name_new", {"concept": "b"})
    panel.call("undo")  # the panel's own, the last action
    assert fpl.list_concepts(mapped, "alice") == {"a": 3}
    panel.call("undo")  # the operator's is older than the panel's last action: not offered
    assert panel.state["message"] == "Nothing to undo"
    assert fpl.list_concepts(mapped, "alice") == {"a": 3}


# ---- evaluation operators in a patches view, the untrustworthy top view -----------------


@pytest.fixture
def small(dataset):
    build(dataset, untrustworthy_specs())
    register_run(dataset, "actmaps", ActivationMapsConfig(maps_field="actmaps"))
    return dataset


def test_evaluation_operators_run_on_the_images_under_a_patches_view(small):
    # the "cue" maps as patches, as the naming panel's "Show in App" leaves the grid
    patches = small.filter_labels("actmaps", F("concept_alice") == "cue").to_patches("actmaps")
    assert len(patches) == 6  # hand-built: "cue" is in 6 samples
    params = {"maps_field": "actmaps", "annotator": "alice"}
    schema = asyncio.run(
        resolve_type(foo.OperatorRegistry(), f"{PLUGIN}/compute_explanations",
                     {"dataset_name": small.name, "view": patches._serialize(), "params": params})
    ).to_json()
    assert "the 6 image(s) under the current patches view" in schema["type"]["properties"]["target_images"]["view"]["label"]
    result = foo.execute_operator(f"{PLUGIN}/compute_explanations", view=patches, params=params)
    assert result.error is None, result.error
    assert result.result["num_samples"] == 6
    # each explained by all its maps (cue and body), not only the cue patch
    explained = [e for e in small.values("explanation_alice") if e is not None]
    assert len(explained) == 6 and all({c.label for c in e.classifications} == {"cue", "body"} for e in explained)
    for name, extra in (("summarize_concepts", {}), ("untrustworthy_concepts", {"gt_field": "ground_truth", "min_support": 1}),
                        ("neuron_correspondence", {})):
        result = foo.execute_operator(f"{PLUGIN}/{name}", view=patches, params=dict(params, **extra))
        assert result.error is None, (name, result.error)


def test_untrustworthy_operator_opens_the_top_view_itself(small):
    params = {"maps_field": "actmaps", "annotator": "alice", "gt_field": "ground_truth", "by": "error"}
    result = foo.execute_operator(f"{PLUGIN}/untrustworthy_concepts", dataset=small, params=params)
    assert result.error is None, result.error
    top = result.result["top_view"]
    set_view = [r for r in result.executor.to_json()["requests"] if r["operator_uri"] == "set_view"]
    assert len(set_view) == 1
    # the saved view's stages, not its name (the App's list of saved views lags)
    assert set_view[0]["params"].get("name") is None
    sent = [{k: v for k, v in stage.items() if k != "_uuid"} for stage in set_view[0]["params"]["view"]]
    saved = [{k: v for k, v in stage.items() if k != "_uuid"} for stage in small.load_saved_view(top)._serialize()]
    assert sent == json.loads(json.dumps(saved))
