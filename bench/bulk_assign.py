"""Naming 10,000 maps: ``fpl.assign_concept`` (one ``update_many`` with
array filters) vs the obvious per-sample loop (set the attribute on each
selected map, ``sample.save()``)."""

import argparse

from ._common import best_of, private_database, report


def build(num_samples, maps_per_sample):
    import numpy as np

    import fiftyone as fo

    from fiftyone_plugin.maps.compute import default_field_names
    from fiftyone_plugin.storage import declare_map_schema

    dataset = fo.Dataset()
    rng = np.random.default_rng(0)
    samples = []
    for i in range(num_samples):
        maps = [
            fo.Detection(
                label=f"ch{c}",
                bounding_box=[0.1, 0.1, 0.3, 0.3],
                layer="layer4",
                channel=int(c),
                rank=r + 1,
                heatmap=rng.integers(0, 255, (7, 7), dtype=np.uint8),
            )
            for r, c in enumerate(rng.choice(512, maps_per_sample, replace=False))
        ]
        samples.append(fo.Sample(filepath=f"/bench/{i}.jpg", actmaps=fo.Detections(detections=maps)))
    dataset.add_samples(samples, progress=False)
    declare_map_schema(dataset, "actmaps", default_field_names("actmaps"))
    return dataset


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--maps", type=int, default=10_000)
    parser.add_argument("--maps-per-sample", type=int, default=5)
    args = parser.parse_args(argv)

    private_database()
    import fiftyone_plugin as fpl

    dataset = build(args.maps // args.maps_per_sample, args.maps_per_sample)
    ids = dataset.values("actmaps.detections.id", unwind=True)
    wanted = set(ids)
    counter = iter(range(10**6))

    def bulk():
        fpl.assign_concept(dataset, ids, f"bulk {next(counter)}", "alice")

    def loop():
        name = f"loop {next(counter)}"
        for sample in dataset.select_fields("actmaps"):
            for m in sample.actmaps.detections:
                if m.id in wanted:
                    m["concept_bob"] = name
            sample.save()

    t_bulk = best_of(bulk)
    t_loop = best_of(loop, repeat=1)
    assert sum(fpl.list_concepts(dataset, "alice").values()) == len(ids)
    rows = [
        ("maps named", f"{len(ids)}"),
        ("assign_concept (one update_many)", f"{t_bulk * 1000:.0f} ms"),
        ("per-sample save() loop", f"{t_loop * 1000:.0f} ms"),
    ]
    ok = report("bulk assignment", rows, [("bulk vs per-sample loop", t_loop / t_bulk, 20, True)])
    dataset.delete()
    return ok


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
