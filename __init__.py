"""FiftyOne plugin entry point: registers the operators and panels.

All logic lives in the ``fiftyone_plugin`` SDK package. When the plugin was
installed with ``fiftyone plugins download`` (not pip), that package is only
found next to this file, so its folder goes on ``sys.path`` -- importing it
by its absolute name everywhere keeps one copy of every class.
"""

import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if importlib.util.find_spec("fiftyone_plugin") is None:
    sys.path.insert(0, _HERE)

from .operators import OPERATORS  # noqa: E402
from .panels import PANELS  # noqa: E402


def register(plugin):
    for operator in OPERATORS + PANELS:
        plugin.register(operator)
