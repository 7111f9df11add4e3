"""Train the concept-world ConceptNet and report how it uses the spurious cue.

Reproduces the committed weights::

    python -m fiftyone_plugin.demo.train --out fiftyone_plugin/demo/weights/conceptnet.pt

and prints accuracy on cue-free test images, on the same test images with the
sun, and the fraction of non-cue-class test images with the sun that are
predicted as the cue class.
"""

import argparse
import json
import time

import torch

from . import model

from . import world


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=model.WEIGHTS_PATH, help="state dict path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--num-test", type=int, default=600)
    parser.add_argument(
        "--threads", type=int, default=2,
        help="torch threads; float results can depend on it (default 2)",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    t0 = time.time()
    net = model.train_model(
        seed=args.seed,
        num_train=args.num_train,
        epochs=args.epochs,
        out_path=args.out,
        progress=not args.quiet,
    )
    train_s = time.time() - t0
    # Test images come from a different seed stream ("test" split), never seen.
    metrics = model.evaluate(net, num_test=args.num_test, seed=args.seed)
    metrics["train_seconds"] = round(train_s, 1)
    metrics["weights"] = args.out
    print(f"saved weights to {args.out} ({train_s:.0f}s)")
    print(f"accuracy, test images without the sun: {metrics['acc_no_cue']:.3f}")
    print(f"accuracy, same test images with the sun: {metrics['acc_with_cue']:.3f}")
    print(
        "non-{0} test images with the sun predicted as {0}: {1:.3f} "
        "(without the sun: {2:.3f})".format(
            world.CUE_CLASS,
            metrics["cue_class_rate"],
            metrics["cue_class_rate_no_cue"],
        )
    )
    print(json.dumps(metrics))
    return metrics


if __name__ == "__main__":
    main()
