"""Shared bench plumbing: a private mongod, timers, memory, reporting.

Every benchmark prints ratios against a baseline measured in the same run,
because these machines are noisy (2 shared cores); absolute times are printed
for context only.
"""

import atexit
import os
import resource
import time

from tests.support.mongod import PrivateMongod

_mongod = None


def private_database():
    """Start a throw-away mongod and point FiftyOne at it (call before
    importing fiftyone)."""
    global _mongod
    if _mongod is None:
        _mongod = PrivateMongod().start()
        os.environ.update(_mongod.environ())
        os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
        atexit.register(_mongod.stop)
    return _mongod


def best_of(fn, repeat=3):
    """Fastest of ``repeat`` runs, in seconds (the least disturbed one)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(name, rows, checks):
    """Print a small table and each target check; return True if all pass."""
    print(f"\n== {name}")
    for label, value in rows:
        print(f"  {label:<52} {value}")
    ok = True
    for label, ratio, target, higher_is_better in checks:
        passed = ratio >= target if higher_is_better else ratio <= target
        ok &= passed
        sign = ">=" if higher_is_better else "<="
        print(f"  {'PASS' if passed else 'FAIL'} {label}: {ratio:.2f}x (target {sign} {target}x)")
    return ok
