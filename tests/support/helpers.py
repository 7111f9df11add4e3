"""Builders and drivers shared by several test modules (imported by them, and
by ``conftest.py`` for the shared ``mapped`` fixture). Imports FiftyOne: only
import this after ``conftest.py`` has set the private database.

- :class:`TinyNet`: a small seeded GAP + linear classifier
- :func:`build`, :func:`untrustworthy_specs`: a dataset of hand-written maps
  and names, and the specs whose untrustworthy concepts are derived by hand
- :class:`PanelDriver`, :func:`decode_layout`, :func:`rendered_view`: drive
  the naming panel like the App does and read what it sent
"""

import base64
import json

import numpy as np
import pydash
import torch
import torchvision

import fiftyone as fo
import fiftyone.operators as foo

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts.records import PanelMemory
from fiftyone_plugin.maps.compute import default_field_names
from fiftyone_plugin.storage import declare_map_schema

PLUGIN = "@interactive-naming/interactive-naming"
PANEL = f"{PLUGIN}/naming_panel"


class TinyNet(torch.nn.Module):
    """A small GAP + linear classifier with its own preprocessing."""

    classes = ["a", "b", "c"]

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, padding=1),
            torch.nn.ReLU(),
        )
        self.classifier = torch.nn.Linear(16, 3)
        self.transforms = torchvision.transforms.Compose(
            [torchvision.transforms.Resize((32, 32)), torchvision.transforms.ToTensor()]
        )

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


# ---- hand-written maps and names -------------------------------------------------


def build(dataset, specs, annotator="alice", layer="l"):
    """Samples from ``(predicted, confidence, truth, maps)`` with maps
    ``[(channel, share, concept)]`` (``maps=None``: no maps field), named
    through ``fpl.assign_concept``."""
    samples = []
    for i, (predicted, confidence, truth, maps) in enumerate(specs):
        fields = {
            "actmap_prediction": fo.Classification(label=predicted, confidence=confidence),
        }
        if truth is not None:
            fields["ground_truth"] = fo.Classification(label=truth)
        if maps is not None:
            fields["actmaps"] = fo.Detections(
                detections=[
                    fo.Detection(
                        label=f"ch{channel}",
                        bounding_box=[0.1 * rank, 0.1, 0.2, 0.2],
                        layer=layer,
                        channel=channel,
                        share=share,
                        contribution=share * 10,
                        rank=rank + 1,
                    )
                    for rank, (channel, share, _) in enumerate(maps)
                ]
            )
        samples.append(fo.Sample(filepath=f"/x/{i}.png", **fields))
    dataset.add_samples(samples)
    declare_map_schema(dataset, "actmaps", default_field_names("actmaps"))
    groups = {}
    for map_ids, (_, _, _, maps) in zip(dataset.values("actmaps.detections.id"), specs):
        for map_id, m in zip(map_ids or [], maps or []):
            if m[2] is not None:
                groups.setdefault(m[2], []).append(map_id)
    for concept, ids in groups.items():
        fpl.assign_concept(dataset, ids, concept, annotator)
    return dataset


def untrustworthy_specs():
    specs = []
    # class x: "cue" in 6 samples, 4 of them wrong; without it 10 samples, 1 wrong
    for i in range(6):
        specs.append(("x", 0.5, "y" if i < 4 else "x", [(1, 0.3, "cue"), (2, 0.2, "body")]))
    for i in range(10):
        specs.append(("x", 0.9, "y" if i == 0 else "x", [(2, 0.3, "body")] + ([(3, 0.1, "rare")] if i < 3 else [])))
    # "rare" in 3 samples: below min_support, never flagged however bad
    return specs


# ---- the naming panel, driven like the App drives it ------------------------------


def decode_layout(scatter):
    """What the scatter component reads from the panel's layout and names
    payloads (``panel.data["scatter"]``)."""
    layout, names = json.loads(scatter["layout"]), json.loads(scatter["names"])
    assert names["signature"] == layout["signature"]
    ids = [layout["ids"][i : i + 24] for i in range(0, len(layout["ids"]), 24)]
    xy = np.frombuffer(base64.b64decode(layout["xy"]), dtype="<f4").reshape(-1, 2)
    codes = np.frombuffer(base64.b64decode(names["codes"]), dtype="<u2")
    labels = [names["legend"][c]["name"] for c in codes]
    return {"ids": ids, "xy": xy, "names": labels, "legend": names["legend"]}


def rendered_view(panel, name):
    """The view of the property ``name`` in the panel's last render."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict) and name in properties:
                found.append(properties[name]["view"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(panel.output)
    assert found, f"nothing named {name!r} was rendered"
    return found[0]


class PanelDriver:
    """Calls panel methods like the App does and keeps the panel state the
    App would hold, by applying the state patches the panel sends back."""

    def __init__(self, dataset, panel=PANEL):
        self.dataset = dataset
        self.panel = panel
        self.state = {}
        self.data = {}
        self.output = None
        self.notifications = []
        self.data_patched = []

    def call(self, method, event_args=None, state=None, **ctx):
        """Run ``method``; ``state`` sends another panel state than the
        current one (as the App does with an event sent before the answer
        to an earlier one arrived); the answer patches the current state."""
        result = foo.execute_operator(
            self.panel,
            dataset=self.dataset,
            params={
                "__method__": method,
                "panel_id": "panel-1",
                "panel_state": self.state if state is None else state,
                "event_args": event_args or {},
                **(event_args or {}),
            },
            **ctx,
        )
        assert result.error is None, result.error
        self.data_patched = []
        for request in result.executor.to_json()["requests"]:
            params = request["params"]
            if request["operator_uri"] == "patch_panel_state":
                for key, value in params["state"].items():
                    pydash.set_(self.state, key, value)
            elif request["operator_uri"] == "patch_panel_data":
                for key, value in params["data"].items():
                    pydash.set_(self.data, key, value)
                    self.data_patched.append(key)
            elif request["operator_uri"] == "show_panel_output":
                self.output = params["output"]
            else:
                self.notifications.append(request)
        return result

    def selection(self):
        """The panel's selection, kept in its memory in the execution store
        (the state holds its reference and the count)."""
        ids = PanelMemory(self.dataset, self.state["memory"]).selection()
        assert self.state["selection_count"] == len(ids)
        return ids

    def type_into(self, path, value):
        pydash.set_(self.state, path, value)
