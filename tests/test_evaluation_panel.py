"""The evaluation panel, called like the App calls it (the real operator
machinery, no browser): what it shows comes from the stored runs, missing
runs offer their operator, a type's Show opens its images, and the tables
hold no internal token. The real App and browser: test_browser_evaluation.py."""

import json

import pytest

import fiftyone_plugin as fpl
from fiftyone_plugin.maps.config import ActivationMapsConfig
from fiftyone_plugin.runs import register_run

from tests.support.helpers import PLUGIN, PanelDriver, build, rendered_view, untrustworthy_specs

PANEL = f"{PLUGIN}/evaluation_panel"
NN = fpl.NOT_NAMEABLE


@pytest.fixture
def small(dataset):
    specs = untrustworthy_specs() + [("z", 0.7, "z", [(4, 0.5, NN)])]
    build(dataset, specs)
    # a maps run: how the panel finds the maps field
    register_run(dataset, "actmaps", ActivationMapsConfig(maps_field="actmaps"))
    return dataset


def _requests(driver, operator_uri):
    return [r["params"] for r in driver.notifications if r["operator_uri"] == operator_uri]


def test_missing_runs_offer_their_operator(small):
    panel = PanelDriver(small, panel=PANEL)
    panel.call("on_load")
    assert panel.state["annotator"] == "alice" and panel.state["annotators"] == ["alice"]
    assert all(s["run_key"] is None for s in panel.state["sections"].values())
    text = json.dumps(panel.output)
    assert "Not computed yet" in text and "untrustworthy_table" not in text
    button = rendered_view(panel, "untrustworthy_missing")
    assert button  # the row with its Compute button
    panel.call("compute_untrustworthy")
    (prompt,) = _requests(panel, "prompt_user_for_operation")
    assert prompt["operator_uri"] == f"{PLUGIN}/untrustworthy_concepts"
    assert prompt["params"] == {"maps_field": "actmaps", "annotator": "alice"}
    assert prompt["on_success"]  # the panel reads the runs again after it


def test_findings_from_runs_and_show_opens_a_type(small):
    fpl.compute_explanations(small, "alice")
    fpl.summarize_concepts(small, "alice", gt_field="ground_truth")
    results = fpl.untrustworthy_concepts(small, "alice", "ground_truth")
    fpl.neuron_correspondence(small, "alice")
    panel = PanelDriver(small, panel=PANEL)
    panel.call("on_load")
    sections = panel.state["sections"]
    assert sections["untrustworthy"]["run_key"] == results.key
    assert sections["agreement"]["run_key"] is None  # one annotator
    (top,) = panel.data["untrustworthy_table"]  # the one flagged type
    assert top == {"class": "x", "concept": "cue", "samples": "6", "error_rate": "67% vs 10%",
                   "score": "3.4", "q": top["q"]}
    assert [r["class"] for r in panel.data["coverage_table"]] == ["x", "z"]
    assert panel.data["coverage_table"][1]["coverage"] == "0%"  # z's only map is not nameable
    table = rendered_view(panel, "untrustworthy_table")
    assert [a["name"] for a in table["row_actions"]] == ["show"]
    assert table["componentsProps"]["table"]["sx"]["minWidth"] == 0
    assert NN not in json.dumps([panel.data, panel.state, panel.output])

    panel.call("open_type", {"row": 0, "event": "show", "path": "untrustworthy_table"})
    (set_view,) = _requests(panel, "set_view")
    assert "cue" in json.dumps(set_view["view"])
    assert panel.state["message"] == "Showing x with cue: 6 images"

    # a row that is no longer there reads the runs again
    small.delete_run(results.key)
    panel.call("open_type", {"row": 0})
    assert panel.state["sections"]["untrustworthy"]["run_key"] is None
    assert "changed" in panel.state["message"]
