"""The real FiftyOne App server lists the plugin with all its operators."""

import json
import os
import urllib.request

import yaml

from conftest import REPO_ROOT


def test_plugins_route_lists_every_operator_and_panel(app_server):
    with open(os.path.join(REPO_ROOT, "fiftyone.yml")) as f:
        manifest = yaml.safe_load(f)
    with urllib.request.urlopen(app_server + "/plugins", timeout=30) as response:
        plugins = json.load(response)["plugins"]
    (ours,) = [p for p in plugins if p["name"] == manifest["name"]]
    assert sorted(ours["operators"]) == sorted(manifest["operators"])
    assert sorted(ours["panels"] or []) == sorted(manifest["panels"] or [])
    assert ours["has_py"]


def test_operators_route_has_no_registration_errors(app_server):
    import fiftyone as fo

    dataset = fo.Dataset(persistent=True)
    try:
        request = urllib.request.Request(
            app_server + "/operators",
            data=json.dumps({"dataset_name": dataset.name}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
        uris = {op["uri"] for op in body["operators"]}
        assert "@interactive-naming/interactive-naming/assign_concept" in uris
        assert not [e for e in body.get("errors", []) if "interactive" in json.dumps(e)]
    finally:
        dataset.delete()
