"""Test session set-up: a private mongod and FiftyOne settings that never
touch a user's data. This runs before any test module imports fiftyone.

Fixtures shared by several test modules are here; shared builders and
drivers are in ``tests/support/helpers.py``."""

import atexit
import os
import shutil
import sys
import tempfile

from tests.support import REPO_ROOT
from tests.support.mongod import PrivateMongod

assert "fiftyone" not in sys.modules, "fiftyone was imported before its database was set"

_workdir = tempfile.mkdtemp(prefix="in-tests-")
_mongod = PrivateMongod(dbpath=os.path.join(_workdir, "db")).start()
atexit.register(shutil.rmtree, _workdir, ignore_errors=True)
atexit.register(_mongod.stop)

# FiftyOne finds plugins in directories below FIFTYONE_PLUGINS_DIR
_plugins_dir = os.path.join(_workdir, "plugins")
os.makedirs(_plugins_dir)
os.symlink(REPO_ROOT, os.path.join(_plugins_dir, "interactive-naming"))

os.environ.update(_mongod.environ())
os.environ.update(
    {
        "FIFTYONE_PLUGINS_DIR": _plugins_dir,
        "FIFTYONE_DEFAULT_DATASET_DIR": os.path.join(_workdir, "datasets"),
        "FIFTYONE_DO_NOT_TRACK": "true",
        "FIFTYONE_SHOW_PROGRESS_BARS": "false",
        "FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS": "true",
    }
)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import fiftyone as fo  # noqa: E402

import fiftyone_plugin as fpl  # noqa: E402

from tests.support.app_server import AppServer  # noqa: E402
from tests.support.helpers import TinyNet  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def workdir():
    return _workdir


@pytest.fixture(scope="session")
def mongod():
    return _mongod


@pytest.fixture
def dataset():
    """An empty, non-persistent dataset, deleted after the test."""
    ds = fo.Dataset()
    yield ds
    if not ds.deleted:
        ds.delete()


@pytest.fixture(scope="session")
def rgb_images(workdir):
    """Twelve small random RGB PNGs."""
    folder = os.path.join(workdir, "rgb")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):
        path = os.path.join(folder, f"{i:02d}.png")
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def app_server(workdir):
    """The real FiftyOne App server on a free port, for this test session's
    database and plugins directory."""
    server = AppServer(os.path.join(workdir, "app-server.log")).start()
    yield server.url
    server.stop()


@pytest.fixture
def mapped(dataset, rgb_images):
    """The twelve images with TinyNet's top-3 maps and a UMAP layout."""
    dataset.add_samples([fo.Sample(filepath=p) for p in rgb_images])
    fpl.compute_activation_maps(dataset, TinyNet(), top_k=3)
    fpl.compute_map_visualization(dataset, num_neighbors=5)
    return dataset


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # lets fixtures see that their test failed (the browser test saves a
    # screenshot then)
    outcome = yield
    if outcome.get_result().failed:
        item.failed = True
