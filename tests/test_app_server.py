"""The real FiftyOne App server loads the plugin: it registers every operator
and panel that the plugin's code registers, and serves the panel's JS bundle."""

import importlib.util
import json
import os
import sys
import urllib.request

import pytest
import yaml

import fiftyone as fo

from tests.support import REPO_ROOT

PLUGIN = "@interactive-naming/interactive-naming"


@pytest.fixture(scope="module")
def registered_names():
    """The names of the operators and panels the plugin's entry point
    (the repository root's ``__init__.py``) registers, read from the code
    itself: loaded as FiftyOne loads a plugin directory, by file location."""
    name = "interactive_naming_entry_point"
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(REPO_ROOT, "__init__.py"), submodule_search_locations=[REPO_ROOT]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        return sorted(cls().config.name for cls in module.OPERATORS + module.PANELS)
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


def get_json(url, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def test_the_manifest_declares_exactly_the_registered_operators(registered_names):
    # FiftyOne registers only the operators its manifest names: one missing
    # there is silently absent from the App
    with open(os.path.join(REPO_ROOT, "fiftyone.yml")) as f:
        manifest = yaml.safe_load(f)
    assert sorted(manifest["operators"] + manifest["panels"]) == registered_names


def test_the_app_registers_every_operator_and_panel_without_errors(app_server, registered_names):
    dataset = fo.Dataset(persistent=True)
    try:
        body = get_json(app_server + "/operators", {"dataset_name": dataset.name})
    finally:
        dataset.delete()
    ours = sorted(op["uri"] for op in body["operators"] if op["uri"].startswith(PLUGIN + "/"))
    assert ours == [f"{PLUGIN}/{name}" for name in registered_names]
    assert not [e for e in body.get("errors", []) if "interactive" in json.dumps(e)]


def test_the_app_serves_the_committed_js_bundle(app_server):
    (ours,) = [p for p in get_json(app_server + "/plugins")["plugins"] if p["name"] == PLUGIN]
    with urllib.request.urlopen(app_server + ours["js_bundle_server_path"], timeout=60) as response:
        served = response.read()
    with open(os.path.join(REPO_ROOT, "js", "dist", "index.js"), "rb") as f:
        assert served == f.read()
