"""The plugin's operators, executed through FiftyOne's operator machinery
(immediate and delegated) on a real MongoDB."""

import base64
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
from fiftyone.operators.executor import ExecutionRunState

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts.selection import selection_key

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
