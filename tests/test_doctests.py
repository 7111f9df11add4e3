"""The ``Examples`` in fiftyone_plugin's docstrings run as doctests.

They run here rather than under ``pytest --doctest-modules`` because FiftyOne
reads its database settings when it is imported: by the time this module is
collected, ``conftest.py`` has pointed them at the session's private mongod,
so no example can touch a user's database. (``--doctest-modules`` would also
name the modules after the folder above the repository, whose root is a
package too, being the plugin's directory.)
"""

import doctest
import importlib
import io
import pkgutil
import types

import pytest

import fiftyone_plugin

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def module_names():
    """Every module of the package, sub-packages included."""
    return sorted(
        info.name for info in pkgutil.walk_packages(fiftyone_plugin.__path__, "fiftyone_plugin.")
    )


def examples(module):
    """The doctests of ``module``'s own objects (not of what it imports)."""
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module) if t.examples]


def run_examples(module):
    """``(attempted, failed, report)`` of running ``module``'s doctests."""
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    for test in examples(module):
        runner.run(test, out=out.write)
    return runner.tries, runner.failures, out.getvalue()


WITH_EXAMPLES = [name for name in module_names() if examples(importlib.import_module(name))]


def test_the_examples_are_found():
    # the run contract's cleaner and the alpha kernel carry examples: if
    # discovery found none, the test below would pass by running nothing
    assert {"fiftyone_plugin.runs", "fiftyone_plugin.agreement.alpha"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_hold(name):
    attempted, failed, report = run_examples(importlib.import_module(name))
    assert attempted > 0
    assert failed == 0, f"{failed} of {attempted} examples in {name} failed:\n{report}"


def test_a_wrong_example_fails():
    module = types.ModuleType("wrong_example")
    exec(
        'def double(x):\n    """\n    >>> double(2)\n    5\n    """\n    return 2 * x\n',
        module.__dict__,
    )
    attempted, failed, report = run_examples(module)
    assert (attempted, failed) == (1, 1)
    assert "Expected:\n    5\nGot:\n    4" in report
