"""Run every benchmark: ``python -m bench [name ...]`` (names: map_throughput,
bulk_assign, panel_open, panel_browser, end_to_end, agreement). Exit status 1 if any target is missed."""

import importlib
import sys

from ._common import private_database

ALL = ["map_throughput", "bulk_assign", "panel_open", "panel_browser", "end_to_end", "agreement"]


def main():
    names = [a for a in sys.argv[1:] if not a.startswith("-")] or ALL
    # before any benchmark imports FiftyOne (map_throughput does at import):
    # FiftyOne reads its database settings once, at import, and the later
    # benchmarks must write to the private database, never to the user's
    private_database()
    results = {}
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        results[name] = module.main([])
    print("\n== summary")
    for name, ok in results.items():
        print(f"  {'PASS' if ok else 'FAIL'} {name}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
