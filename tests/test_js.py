"""The panel's JS components: their unit tests (node's test runner), the
committed bundle being built from the current sources, and the layout
payload written by Python being read back by the JS decoder."""

import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest

from fiftyone_plugin.concepts import naming

from tests.support import REPO_ROOT

JS = os.path.join(REPO_ROOT, "js")


def node():
    path = shutil.which("node")
    assert path, "Node.js is needed for the JS tests: ./run tests installs it"
    return path


def test_js_unit_tests_pass():
    result = subprocess.run([node(), "--test", "test/"], cwd=JS, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^# pass [1-9]", result.stdout, re.M)
    assert re.search(r"^# fail 0$", result.stdout, re.M)


def sources_hash():
    # the same hash js/build.mjs writes into the bundle's header
    digest = hashlib.sha256()
    src = os.path.join(JS, "src")
    for name in sorted(os.listdir(src)):
        digest.update(name.encode())
        with open(os.path.join(src, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def test_committed_bundle_is_built_from_the_current_sources():
    with open(os.path.join(JS, "dist", "index.js")) as f:
        header = f.readline()
    found = re.search(r"sources-sha256: ([0-9a-f]{64})", header)
    assert found, header
    assert found.group(1) == sources_hash(), "js/dist/index.js is stale: run `./run build-js` and commit it"


def test_fiftyone_yml_names_the_bundle():
    with open(os.path.join(REPO_ROOT, "fiftyone.yml")) as f:
        assert re.search(r"^js_bundle: js/dist/index.js$", f.read(), re.M)


def read_in_js(tmp_path, layout_points, names_points, version=7):
    layout, names = tmp_path / "layout.json", tmp_path / "names.json"
    layout.write_text(naming.layout_payload(layout_points, version=version))
    names.write_text(naming.names_payload(names_points, version=version))
    result = subprocess.run(
        [node(), "check_payload.js", str(layout), str(names)], cwd=JS, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


POINTS = {
    "ids": ["0123456789abcdef01234567", "89abcdef0123456789abcdef", "aaaaaaaaaaaaaaaaaaaaaaaa"],
    "x": [0.25, -3.5, 1e3],
    "y": [1.0, 2.0, -7.125],
    "concepts": [None, "stripes", naming.NOT_NAMEABLE],
}


def test_python_payloads_read_back_in_js(tmp_path):
    read = read_in_js(tmp_path, POINTS, POINTS)
    assert read["ids"] == POINTS["ids"]
    assert read["xy"] == pytest.approx([v for pair in zip(POINTS["x"], POINTS["y"]) for v in pair])
    assert read["names"] == ["(unnamed)", "stripes", "(not nameable)"]
    assert read["colors"] == [naming.concept_color(c) for c in POINTS["concepts"]]
    assert read["version"] == 7


def test_names_for_other_maps_are_not_drawn(tmp_path):
    # names sent for a different set of maps (the layout changed meanwhile)
    other = {k: v[:2] for k, v in POINTS.items()}
    other["concepts"] = ["stripes", "stripes"]
    read = read_in_js(tmp_path, POINTS, other)
    assert read["names"] == ["(unnamed)"] * 3
