"""Opening the naming panel on a 20,000-map dataset, and naming 1,000
selected maps from it, against a plain read of the same layout points (the
least any panel must do)."""

import argparse
import time

from ._common import best_of, private_database, report


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--maps", type=int, default=20_000)
    parser.add_argument("--maps-per-sample", type=int, default=5)
    args = parser.parse_args(argv)

    private_database()
    import numpy as np

    from fiftyone_plugin.concepts import naming
    from fiftyone_plugin.maps.layouts import write_points

    from .bulk_assign import build

    dataset = build(args.maps // args.maps_per_sample, args.maps_per_sample)
    ids = dataset.values("actmaps.detections.id", unwind=True)
    rng = np.random.default_rng(0)
    write_points(dataset, {i: rng.normal(size=2) for i in ids})
    naming.name_maps(dataset, ids[: args.maps // 4], "already named", "alice")

    def raw_read():
        dataset.values(["actmaps.detections.id", "actmaps.detections.point"])

    def panel_open():
        points, stats = naming.layout_and_progress(dataset, "alice")
        return naming.layout_payload(points), naming.names_payload(points)

    def after_naming():
        # what naming re-sends: names and counts, not positions
        points, stats = naming.layout_and_progress(dataset, "alice")
        return naming.names_payload(points)

    layout_size, names_size = (len(p) for p in panel_open())
    t_raw, t_open, t_resync = best_of(raw_read), best_of(panel_open), best_of(after_naming)
    chosen = ids[-1000:]  # not among the already named
    start = time.perf_counter()
    naming.name_maps(dataset, chosen, "new concept", "alice")
    t_name = time.perf_counter() - start
    assert naming.progress(dataset, "alice")["named"] == args.maps // 4 + 1000

    rows = [
        ("maps", f"{len(ids)}"),
        ("plain read of ids + points", f"{t_raw * 1000:.0f} ms"),
        ("panel open (one aggregation: points, names, counts; payload)", f"{t_open * 1000:.0f} ms"),
        ("scatter payloads: positions / names", f"{layout_size / 1e6:.2f} MB / {names_size / 1e3:.0f} KB"),
        ("refresh after naming (names and counts)", f"{t_resync * 1000:.0f} ms"),
        ("naming 1,000 selected maps", f"{t_name * 1000:.0f} ms"),
    ]
    ok = report(
        "naming panel",
        rows,
        [("panel open vs plain read", t_open / t_raw, 3.0, False)],
    )
    dataset.delete()
    return ok


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
