"""The real FiftyOne App server in a subprocess, for browser tests and
benchmarks: it serves the database and plugins directory named by this
process's environment (``FIFTYONE_DATABASE_URI``, ``FIFTYONE_PLUGINS_DIR``)."""

import os
import subprocess
import sys
import time
import urllib.request

from .mongod import free_port


class AppServer:
    """``start()`` returns once the server answers; ``url``; ``stop()``."""

    def __init__(self, log_path, port=None, timeout=120):
        self.log_path = log_path
        self.port = port or free_port()
        self.timeout = timeout
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fiftyone.server.main", "--address", "127.0.0.1", "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        deadline = time.time() + self.timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the App server exited; see {self.log_path}")
            try:
                urllib.request.urlopen(self.url + "/plugins", timeout=2)
                return self
            except OSError:
                if time.time() > deadline:
                    self.process.kill()
                    raise RuntimeError(f"the App server did not start in {self.timeout} s; see {self.log_path}")
                time.sleep(0.5)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
