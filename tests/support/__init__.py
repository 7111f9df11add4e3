"""Test machinery shared by the tests, the benchmarks (``bench/``), the
``run`` script and ``docs/real_model_figure.py``; not part of the SDK.

- :mod:`tests.support.mongod`: a private ``mongod`` on a free port with its own
  dbpath, so that nothing ever touches a user's datasets.
- :mod:`tests.support.app_server`: the real FiftyOne App server in a
  subprocess, for browser tests and benchmarks.
- :mod:`tests.support.helpers`: builders shared by several test modules
  (imports FiftyOne: only after the private database is set).

Importing this package or the first two modules never imports FiftyOne,
which reads its database settings at import. ``tests`` itself has no
``__init__.py`` (the repository root has one, being the plugin's directory,
and pytest would otherwise name test modules after the folder above it), so
``tests.support`` is found from the repository root: ``python -m ...`` from
there, or pytest's ``pythonpath = ["."]`` (``pyproject.toml``).
"""

import os

#: the repository, which is also the plugin's directory
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
