"""The plugin's operators, executed through FiftyOne's operator machinery
(immediate and delegated) on a real MongoDB."""

import asyncio
import base64
import doctest
import inspect
import json
import os
import sys

import pytest
import torch
import torchvision

import fiftyone as fo
import fiftyone.operators as foo
from fiftyone.operators.delegated import DelegatedOperationService
import fiftyone.operators.types as types
from fiftyone.operators.executor import ExecutionError, ExecutionResult, ExecutionRunState, resolve_type

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts.selection import selection_key
from fiftyone_plugin.maps.config import ActivationMapsConfig
from fiftyone_plugin.runs import register_run

from operators import OPERATORS
from operators import _forms as forms
from tests.support.helpers import build, untrustworthy_specs

PLUGIN = "@interactive-naming/interactive-naming"
OPERATOR_NAMES = [
    "compute_activation_maps",
    "compute_map_layout",
    "assign_concept",
    "rename_concept",
    "merge_concepts",
    "delete_concept",
    "export_concepts",
    "import_concepts",
    "compute_explanations",
    "summarize_concepts",
    "untrustworthy_concepts",
    "neuron_correspondence",
    "write_report",
    "compute_agreement",
]


def uri(name):
    return f"{PLUGIN}/{name}"


@pytest.fixture(scope="module")
def resnet_weights(workdir):
    path = os.path.join(workdir, "op_resnet18.pth")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), path)
    return path


@pytest.fixture
def images(dataset, rgb_images):
    dataset.add_samples([fo.Sample(filepath=p) for p in rgb_images[:6]])
    return dataset


def compute_params(weights):
    return {
        "model_source": "torchvision",
        "architecture": "resnet18",
        "weights": weights,
        "top_k": 3,
        "batch_size": 3,
    }


def test_plugin_registers_every_operator_without_errors():
    registry = foo.OperatorRegistry()
    assert registry.list_errors() == []
    found = {op.uri for op in foo.list_operators()}
    assert {uri(n) for n in OPERATOR_NAMES} <= found


def test_immediate_compute_starts_no_dataloader_workers():
    # the operator module as FiftyOne's plugin loader loaded it
    module = sys.modules[type(foo.get_operator(uri("compute_activation_maps"))).__module__]
    params = {"top_k": 3, "maps_field": "maps2", "layer": "", "device": ""}
    immediate = module.compute_maps_kwargs(params, delegated=False)
    delegated = module.compute_maps_kwargs(params, delegated=True)
    # inside the App server: decoding in-process; delegated: the CPU default
    assert immediate["num_workers"] == 0 and delegated["num_workers"] is None
    assert immediate["top_k"] == 3 and immediate["maps_field"] == "maps2"
    assert immediate["layer"] is None and immediate["device"] is None
    # every key is a keyword of compute_activation_maps
    inspect.signature(fpl.compute_activation_maps).bind(None, None, **immediate)


def test_compute_maps_and_layout_through_operators(images, resnet_weights):
    result = foo.execute_operator(uri("compute_activation_maps"), dataset=images, params=compute_params(resnet_weights))
    assert result.error is None, result.error
    assert result.result["processed"] == 6
    assert len(images.exists("actmaps")) == 6

    result = foo.execute_operator(
        uri("compute_map_layout"),
        dataset=images,
        params={"maps_field": "actmaps", "num_neighbors": 5},
    )
    assert result.error is None, result.error
    assert "actmaps_layout" in images.list_brain_runs()
    ids, points = fpl.map_points(images)
    assert len(ids) == result.result["num_maps"] == points.shape[0] > 0


# ---- naming through the operators, step by step -------------------------------------
# Each step checks what it did; each test replays the steps before its own, so
# that a failure names the step that broke.


@pytest.fixture
def mapped_images(images, resnet_weights):
    """The maps the compute operator makes (``compute_params``), computed
    through the SDK."""
    fpl.compute_activation_maps(images, "resnet18", weights=resnet_weights, top_k=3, batch_size=3)
    return images


def step_name_grid_selection(images):
    """Name the maps selected in the grid/modal (selected labels); returns
    the selection."""
    sample = images.first()
    selected = [
        {"label_id": m.id, "sample_id": sample.id, "field": "actmaps"} for m in sample.actmaps.detections
    ]
    result = foo.execute_operator(
        uri("assign_concept"),
        dataset=images,
        selected_labels=selected,
        # the form's option: which maps it showed (see test_routes.py)
        params={"maps_field": "actmaps", "annotator": "alice", "scope": selection_key("labels", [m["label_id"] for m in selected]),
                "action": "name", "concept": "stripes"},
    )
    assert result.error is None, result.error
    assert fpl.list_concepts(images, "alice") == {"stripes": len(selected)}
    return selected


def step_name_patches_selection(images, selected):
    """Name patches selected in a patches view of the maps (e.g. after a
    lasso)."""
    patches = images.to_patches("actmaps")
    picked = patches.skip(len(selected)).limit(4).values("id")
    result = foo.execute_operator(
        uri("assign_concept"),
        dataset=images,
        view=patches,
        selected=picked,
        params={"maps_field": "actmaps", "annotator": "alice", "scope": selection_key("patches", picked), "action": "name", "concept": "dots"},
    )
    assert result.error is None, result.error
    assert fpl.list_concepts(images, "alice") == {"stripes": len(selected), "dots": 4}


def step_view_not_nameable(images):
    """Everything in the current view as "not nameable" for bob."""
    patches = images.to_patches("actmaps")
    result = foo.execute_operator(
        uri("assign_concept"),
        dataset=images,
        view=patches.limit(2),
        params={"maps_field": "actmaps", "annotator": "bob", "scope": selection_key("view", patches.limit(2).values("actmaps.id")),
                "action": "not_nameable"},
    )
    assert result.error is None, result.error
    assert fpl.list_concepts(images, "bob") == {fpl.NOT_NAMEABLE: 2}


def step_bad_name(images, selected):
    """A bad name is refused and changes nothing."""
    patches = images.to_patches("actmaps")
    with pytest.raises(Exception, match="empty"):
        foo.execute_operator(
            uri("assign_concept"),
            dataset=images,
            view=patches,
            params={"maps_field": "actmaps", "annotator": "alice", "scope": selection_key("view", patches.values("actmaps.id")),
                    "action": "name", "concept": " "},
        )
    assert fpl.list_concepts(images, "alice") == {"stripes": len(selected), "dots": 4}


def step_rename_merge(images, selected):
    """Rename a concept, then merge two."""
    params = {"maps_field": "actmaps", "annotator": "alice"}
    foo.execute_operator(uri("rename_concept"), dataset=images, params=dict(params, concept="dots", new_name="spots"))
    assert fpl.list_concepts(images, "alice") == {"stripes": len(selected), "spots": 4}
    foo.execute_operator(uri("merge_concepts"), dataset=images, params=dict(params, concepts=["spots", "stripes"], into="pattern"))
    assert fpl.list_concepts(images, "alice") == {"pattern": len(selected) + 4}


def step_export_delete_import(images, selected, path):
    """Export every name to ``path``, delete alice's concept, import the
    file back."""
    params = {"maps_field": "actmaps", "annotator": "alice"}
    result = foo.execute_operator(uri("export_concepts"), dataset=images, params={"maps_field": "actmaps", "path": path})
    assert result.result["assignments"] == len(selected) + 4 + 2
    foo.execute_operator(uri("delete_concept"), dataset=images, params=dict(params, concept="pattern"))
    assert fpl.list_concepts(images, "alice") == {}

    with open(path, "rb") as f:
        content = base64.b64encode(f.read()).decode()
    result = foo.execute_operator(
        uri("import_concepts"),
        dataset=images,
        params={"maps_field": "actmaps", "mode": "UPLOAD", "file": {"name": "c.json", "content": content}},
    )
    assert result.result == {"assigned": len(selected) + 6, "unplaced": 0, "invalid": 0}
    assert fpl.list_concepts(images, "alice") == {"pattern": len(selected) + 4}


def test_name_the_grid_selection_through_the_operator(mapped_images):
    step_name_grid_selection(mapped_images)


def test_name_a_patches_selection_through_the_operator(mapped_images):
    selected = step_name_grid_selection(mapped_images)
    step_name_patches_selection(mapped_images, selected)


def test_mark_the_view_not_nameable_and_refuse_a_bad_name(mapped_images):
    selected = step_name_grid_selection(mapped_images)
    step_name_patches_selection(mapped_images, selected)
    step_view_not_nameable(mapped_images)
    step_bad_name(mapped_images, selected)


def test_rename_merge_export_delete_import_through_operators(mapped_images, workdir):
    selected = step_name_grid_selection(mapped_images)
    step_name_patches_selection(mapped_images, selected)
    step_view_not_nameable(mapped_images)
    step_bad_name(mapped_images, selected)
    step_rename_merge(mapped_images, selected)
    step_export_delete_import(mapped_images, selected, os.path.join(workdir, "op_export.json"))


def test_export_without_path_triggers_a_browser_download(images, resnet_weights):
    fpl.compute_activation_maps(images, "resnet18", weights=resnet_weights, top_k=1)
    first = images.first().actmaps.detections[0].id
    fpl.assign_concept(images, [first], "x", "alice")
    result = foo.execute_operator(uri("export_concepts"), dataset=images, params={"maps_field": "actmaps"})
    requests = json.dumps(result.executor.to_json())
    assert "browser_download" in requests and "data:application/json;base64," in requests


def test_delegated_compute_is_queued_then_drained_with_progress(images, resnet_weights):
    result = foo.execute_operator(
        uri("compute_activation_maps"),
        dataset=images,
        params=compute_params(resnet_weights),
        request_delegation=True,
    )
    assert result.delegated
    assert images.get_field("actmaps") is None  # nothing ran yet

    service = DelegatedOperationService()
    queued = service.list_operations(dataset_name=images.name, run_state=ExecutionRunState.QUEUED)
    assert len(queued) == 1
    service.execute_queued_operations(dataset_name=images.name)

    (done,) = service.list_operations(dataset_name=images.name)
    assert done.run_state == ExecutionRunState.COMPLETED, done.result
    assert done.result.result["processed"] == 6
    assert done.status.progress == pytest.approx(1.0)
    assert len(images.exists("actmaps")) == 6
    service.delete_for_dataset(images._doc.id)


def test_agreement_operator_reports_alphas_and_writes_a_consensus(images, resnet_weights):
    fpl.compute_activation_maps(images, "resnet18", weights=resnet_weights, top_k=3)
    ids = images.values("actmaps.detections.id", unwind=True)
    half = len(ids) // 2
    for annotator, (a, b) in {"alice": ("x", "y"), "bob": ("p", "q")}.items():
        fpl.assign_concept(images, ids[:half], a, annotator)
        fpl.assign_concept(images, ids[half:], b, annotator)
    result = foo.execute_operator(
        uri("compute_agreement"),
        dataset=images,
        params={"maps_field": "actmaps", "consensus": "consensus"},
    )
    assert result.error is None, result.error
    # the same grouping under different names is perfect agreement
    assert result.result["pair_alpha"] == pytest.approx(1.0)
    assert result.result["aligned_alpha"] == pytest.approx(1.0)
    assert result.result["aligned_alpha_design"].startswith("cross-fitted")
    assert result.result["consensus_maps"] == len(ids)
    assert sum(fpl.list_concepts(images, "consensus").values()) == len(ids)


# ---- forms, outputs, saved views and search (issue 9, section 4) -------------------


@pytest.fixture
def small(dataset):
    """The untrustworthy world of test_evaluation (alice named every map),
    with a maps run so the forms' maps-field dropdown finds the field."""
    build(dataset, untrustworthy_specs())
    register_run(dataset, "actmaps", ActivationMapsConfig(maps_field="actmaps"))
    return dataset


def resolve(dataset, name, params, target="inputs", results=None):
    request = {"dataset_name": dataset.name, "params": params, "target": target}
    if results is not None:
        request["results"] = results
    prop = asyncio.run(resolve_type(foo.OperatorRegistry(), uri(name), request))
    assert not isinstance(prop, ExecutionResult), prop.error
    return prop


def empty_entries(value, path="result"):
    """Where ``value`` (an operator's result) holds None, NaN or an empty
    string, list or mapping."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None or (isinstance(item, (str, list, dict)) and not item):
                found.append(f"{path}.{key}")
            found += empty_entries(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += empty_entries(item, f"{path}[{i}]")
    elif isinstance(value, float) and value != value:
        found.append(path)
    return found


def test_the_annotator_dropdown_lists_exactly_the_datasets_annotators(small):
    ids = small.values("actmaps.detections.id", unwind=True)
    fpl.assign_concept(small, ids[:3], "head", "bob")
    for name in ("summarize_concepts", "untrustworthy_concepts", "neuron_correspondence", "compute_explanations",
                 "write_report", "suggest_concepts", "transfer_concepts"):
        prop = resolve(small, name, {"maps_field": "actmaps"})
        annotator = prop.type.properties["annotator"]
        assert isinstance(annotator.type, types.Enum), name
        assert annotator.type.values == fpl.list_annotators(small) == ["alice", "bob"]
        assert annotator.default == "alice"  # nothing remembered: the first
    # the annotator last worked as is the next default
    result = foo.execute_operator(uri("neuron_correspondence"), dataset=small,
                                  params={"maps_field": "actmaps", "annotator": "bob"})
    assert result.error is None, result.error
    prop = resolve(small, "summarize_concepts", {"maps_field": "actmaps"})
    assert prop.type.properties["annotator"].default == "bob"


def test_agreement_with_one_annotator_is_a_form_error_and_writes_nothing(small):
    params = {"maps_field": "actmaps", "consensus": "consensus"}
    prop = resolve(small, "compute_agreement", params)
    assert prop.invalid and "at least 2 annotators" in prop.error_message
    with pytest.raises(ExecutionError, match="Validation error.*at least 2 annotators"):
        foo.execute_operator(uri("compute_agreement"), dataset=small, params=params)
    assert fpl.list_annotators(small) == ["alice"] and small.list_runs() == ["actmaps"]

    # with two annotators, choosing one is refused the same way
    ids = small.values("actmaps.detections.id", unwind=True)
    fpl.assign_concept(small, ids, "thing", "bob")
    prop = resolve(small, "compute_agreement", dict(params, annotators=["bob"]))
    assert prop.invalid and "1 chosen" in prop.error_message
    assert not resolve(small, "compute_agreement", dict(params, annotators=["alice", "bob"])).invalid


def test_outputs_have_no_empty_entries_and_numbers_are_rounded(small):
    ids = small.values("actmaps.detections.id", unwind=True)
    fpl.assign_concept(small, ids, "thing", "bob")
    base = {"maps_field": "actmaps", "annotator": "alice"}
    runs = {
        "compute_explanations": base,
        "summarize_concepts": base,  # no ground truth: accuracy columns are empty
        "untrustworthy_concepts": dict(base, gt_field="ground_truth", by="error"),
        "neuron_correspondence": base,
        "write_report": base,  # a download: no path
        "compute_agreement": {"maps_field": "actmaps"},  # no consensus
    }
    for name, params in runs.items():
        result = foo.execute_operator(uri(name), dataset=small, params=params)
        assert result.error is None, (name, result.error)
        assert empty_entries(result.result) == [], name
        numbers = [v for v in json.loads(json.dumps(result.result)).values() if isinstance(v, float)]
        assert all(v == float(f"{v:.4g}") for v in numbers), name
        # every line of the output has a value; tables show only filled columns
        outputs = resolve(small, name, params, target="outputs", results=result.result).type.properties
        for key, prop in outputs.items():
            if isinstance(prop.view, types.TableView):
                rows = result.result[key]
                for column in prop.view.columns:
                    assert any(row.get(column.key) not in (None, "") for row in rows), (name, column.key)
            elif not isinstance(prop.view, types.Button):
                assert key in result.result, (name, key)
    summary = foo.execute_operator(uri("summarize_concepts"), dataset=small, params=base).result
    table = resolve(small, "summarize_concepts", base, target="outputs", results=summary).type.properties["rows"]
    assert "accuracy_with" not in [c.key for c in table.view.columns]
    # an agreement's undefined statistics are left out, not shown as blank lines
    agreement = foo.execute_operator(uri("compute_agreement"), dataset=small, params={"maps_field": "actmaps"}).result
    assert "undefined" not in agreement or agreement["undefined"]


def test_saved_views_are_a_click_away(small):
    params = {"maps_field": "actmaps", "annotator": "alice", "gt_field": "ground_truth", "by": "error"}
    result = foo.execute_operator(uri("untrustworthy_concepts"), dataset=small, params=params)
    outputs = resolve(small, "untrustworthy_concepts", params, target="outputs", results=result.result)
    buttons = [p.view for p in outputs.type.properties.values() if isinstance(p.view, types.Button)]
    assert [b.params["name"] for b in buttons] == result.result["saved_views"] == ["naming: untrustworthy x with cue (alice)"]
    assert buttons[0].operator == uri("open_saved_view")
    opened = foo.execute_operator(uri("open_saved_view"), dataset=small, params={"name": buttons[0].params["name"]})
    assert opened.error is None, opened.error
    assert "set_view" in json.dumps(opened.executor.to_json())
    # a view deleted since: a form message, not a traceback
    small.delete_saved_view(buttons[0].params["name"])
    with pytest.raises(ExecutionError, match="Validation error.*No saved view"):
        foo.execute_operator(uri("open_saved_view"), dataset=small, params={"name": buttons[0].params["name"]})


def test_reruns_replace_their_views_and_clear_removes_exactly_ours(small):
    small.save_view("mine", small.limit(1))
    small.save_view("naming: mine too", small.limit(2))  # a user's view with our prefix
    params = {"maps_field": "actmaps", "annotator": "alice", "gt_field": "ground_truth"}
    for name in ("summarize_concepts", "untrustworthy_concepts"):
        assert foo.execute_operator(uri(name), dataset=small, params=params).error is None
    once = sorted(small.list_saved_views())
    for name in ("summarize_concepts", "untrustworthy_concepts"):
        assert foo.execute_operator(uri(name), dataset=small, params=params).error is None
    assert sorted(small.list_saved_views()) == once and len(once) > 3
    assert all(v.startswith("naming: ") for v in once if v != "mine")

    result = foo.execute_operator(uri("clear_saved_views"), dataset=small, params={})
    assert result.error is None, result.error
    assert result.result["num_deleted"] == len(once) - 2
    assert sorted(small.list_saved_views()) == ["mine", "naming: mine too"]
    # nothing left to clear: a form message
    with pytest.raises(ExecutionError, match="no saved views"):
        foo.execute_operator(uri("clear_saved_views"), dataset=small, params={})


SEARCH_WORDS = {"untrustworthy": "untrustworthy_concepts", "agreement": "compute_agreement",
                "neuron": "neuron_correspondence"}


def test_operator_search_finds_the_operator_of_each_capability():
    configs = [cls().config for cls in OPERATORS]
    for word, intended in SEARCH_WORDS.items():
        assert [c.name for c in configs if word in c.label.lower()] == [intended], word
        # no other operator's description draws the search to it
        assert [c.name for c in configs if word in (c.description or "").lower() and c.name != intended] == [], word
    # every label starts with its capability, not with the plugin's name
    assert not [c.name for c in configs if c.label.lower().startswith("interactive naming")]


def test_the_report_form_chooses_the_annotators_it_compares(small, workdir):
    ids = small.values("actmaps.detections.id", unwind=True)
    fpl.assign_concept(small, ids, "thing", "bob")
    fpl.assign_concept(small, ids[:2], "x", "carol")  # half-done: not compared by default
    params = {"maps_field": "actmaps", "annotator": "alice"}
    field = resolve(small, "write_report", params).type.properties["agreement_annotators"]
    assert field.default == ["alice", "bob"]
    path = os.path.join(workdir, "op-agreement.html")
    result = foo.execute_operator(uri("write_report"), dataset=small,
                                  params=dict(params, path=path, agreement_annotators=["bob", "carol"]))
    assert result.error is None, result.error
    with open(path, encoding="utf-8") as f:
        assert "Krippendorff's alpha over bob, carol, invariant" in f.read()


def test_the_examples_of_the_operators_skeleton_run():
    # tests/test_doctests.py covers fiftyone_plugin; operators/_forms.py's
    # examples (rounding, tidying) run here
    found = doctest.testmod(forms)
    assert found.attempted >= 3 and found.failed == 0
