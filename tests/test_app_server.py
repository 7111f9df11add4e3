"""The real FiftyOne App server lists the plugin with all its operators."""

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from conftest import REPO_ROOT
from fiftyone_plugin.mongod import free_port


@pytest.fixture(scope="module")
def app_server(workdir):
    port = free_port()
    log = open(os.path.join(workdir, "app-server.log"), "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "fiftyone.server.main", "--address", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"App server exited; see {log.name}")
        try:
            urllib.request.urlopen(url + "/plugins", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        raise RuntimeError("App server did not start")
    yield url
    process.terminate()
    process.wait(timeout=30)


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
