"""The README's demo: ``./run demo`` (or ``python -m fiftyone_plugin.demo.run``).

Builds the concept world, loads its model (trained by
``python -m fiftyone_plugin.demo.train``; the weights ship with the package),
computes maps and their layout, lets three SIMULATED annotators name the
maps, prints a summary and opens the FiftyOne App on 127.0.0.1.
"""

import argparse
import os
import time

import fiftyone as fo

import fiftyone_plugin as fpl
from fiftyone_plugin.demo import model as demo_model
from fiftyone_plugin.demo import world
from fiftyone_plugin.demo.pipeline import map_parts, pointing_accuracy, simulate_annotators
from fiftyone_plugin.maps.display import BROWSE_VIEW, save_browse_view
from fiftyone_plugin.maps.layout import layout_purity


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="interactive-naming-demo", help="dataset name")
    parser.add_argument("--num-train", type=int, default=300)
    parser.add_argument("--num-test", type=int, default=600)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="delete and rebuild the dataset")
    parser.add_argument("--no-app", action="store_true", help="stop after the headless part")
    parser.add_argument("--port", type=int, default=5151)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    step = lambda text: print(f"\n[demo {time.perf_counter() - started:5.0f}s] {text}", flush=True)

    step(f"building the concept world as dataset {args.dataset!r}")
    dataset = world.build_dataset(
        args.dataset,
        num_train=args.num_train,
        num_test=args.num_test,
        overwrite=args.rebuild,
        persistent=True,
    )
    test = dataset.match_tags("test")

    step("loading the concept-world model (committed weights)")
    model = demo_model.load_model()

    step(f"computing significant activation maps of {len(test)} test images")
    summary = fpl.compute_activation_maps(test, model, top_k=args.top_k, batch_size=32, device="cpu")
    print(f"  {summary.to_dict()}")

    step("laying the maps out with UMAP (FiftyOne Brain run 'actmaps_layout')")
    fpl.compute_map_visualization(test)

    step("naming maps with SIMULATED annotators (stand-ins for people)")
    parts = map_parts(test)
    named = simulate_annotators(test, parts=parts)

    F = fo.ViewField
    cue_free = test.match(F("has_cue") == False)  # noqa: E712
    correct = cue_free.match(F("actmap_prediction.label") == F("ground_truth.label"))
    part_labels = {k: v for k, v in parts.items() if v > 0}

    # the App opens on the test images with maps, without the maps' heavy
    # attributes in its tooltips (heatmaps drawn with a colour scale:
    # compute_activation_maps set the dataset's App config)
    save_browse_view(test)

    step("summary")
    print(f"  dataset               {dataset.name!r} ({len(dataset)} samples; maps on the {len(test)} test images)")
    print(f"  database              {fo.config.database_uri or 'FiftyOne-managed mongod in ' + fo.config.database_dir}")
    print(f"  images                {os.path.dirname(os.path.dirname(dataset.first().filepath))}")
    print(f"  maps                  {test.count('actmaps.detections')} in field 'actmaps' ({summary.processed} images computed now, {summary.skipped} already done)")
    print(f"  accuracy (no cue)     {len(correct) / max(1, len(cue_free)):.3f} on {len(cue_free)} images")
    print(f"  pointing accuracy     {pointing_accuracy(parts):.3f} (map peak on a part or the cue)")
    print(f"  layout 10-NN purity   {layout_purity(test, part_labels):.3f} (by ground-truth part)")
    for annotator, concepts in fpl.list_concepts(test).items():
        top = ", ".join(f"{c} ({n})" for c, n in list(concepts.items())[:6])
        print(f"  {annotator:<21} named {named.get(annotator, sum(concepts.values()))} maps: {top}")
    print(f"  runs                  {dataset.list_runs()} + brain {dataset.list_brain_runs()}")
    print(f"  headless part took    {time.perf_counter() - started:.0f} s")

    if args.no_app:
        return 0
    step(f"opening the FiftyOne App at http://127.0.0.1:{args.port} (Ctrl-C to stop)")
    session = fo.launch_app(
        view=dataset.load_saved_view(BROWSE_VIEW), address="127.0.0.1", port=args.port, auto=False
    )
    print(f"  open http://127.0.0.1:{args.port} in a browser, then:")
    print("   - click + beside the Samples tab, choose 'Interactive naming'")
    print("   - type your name as annotator and press Enter (or ann_alice to see a simulated annotator's concepts)")
    print("   - lasso maps in the scatter, click thumbnails to drop maps, type a concept name, 'Name selection'")
    print(f"   - the grid opens on the saved view {BROWSE_VIEW!r} (test images with maps); the operator")
    print("     'label maps by concept or channel' shows an annotator's concepts on the maps' boxes")
    session.wait(-1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
