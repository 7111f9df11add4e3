"""End to end into MongoDB: ``compute_activation_maps`` on image files vs
the bare model's batched inference over the same files (same loader, batch
size and device); and peak memory at 4,000 vs 1,000 images (streaming must
keep it flat).

ResNet-18 with random weights, 224 px JPEGs generated once into a cache.
"""

import argparse
import json
import os
import subprocess
import sys

from ._common import best_of, peak_rss_mib, private_database, report

CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "images")


def make_images(n, size=224):
    import numpy as np
    from PIL import Image

    os.makedirs(CACHE, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = os.path.join(CACHE, f"{i:05d}.jpg")
        if not os.path.exists(path):
            # smooth blobs rather than white noise: JPEG size and decode cost
            # like a photo's
            small = rng.integers(0, 255, (size // 16, size // 16, 3), dtype=np.uint8)
            Image.fromarray(small).resize((size, size), Image.BILINEAR).save(path, quality=90)
        paths.append(path)
    return paths


def _model(seed=0):
    import torch
    import torchvision

    torch.manual_seed(seed)
    return torchvision.models.resnet18(weights=None).eval()


def child_memory_run(n, image_size):
    """Run in a fresh process: compute maps for n images, print peak RSS."""
    private_database()
    import fiftyone as fo

    import fiftyone_plugin as fpl
    from fiftyone_plugin.maps.models import default_transforms

    dataset = fo.Dataset()
    dataset.add_samples([fo.Sample(filepath=p) for p in make_images(n)], progress=False)
    base = peak_rss_mib()
    fpl.compute_activation_maps(
        dataset, _model(), batch_size=16, transforms=default_transforms(image_size), device="cpu"
    )
    print(json.dumps({"n": n, "peak_mib": peak_rss_mib(), "before_mib": base}))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--memory-images", type=int, nargs=2, default=[1000, 4000])
    parser.add_argument("--memory-image-size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default=None)
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_memory_run(*args.child)
        return True

    private_database()
    import torch

    import fiftyone as fo

    import fiftyone_plugin as fpl
    from fiftyone_plugin.maps.loading import ImageSet, collate, default_num_workers
    from fiftyone_plugin.maps.models import default_transforms

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    paths = make_images(max(args.images, *args.memory_images))[: args.images]
    model = _model().to(device)
    transforms = default_transforms(224)
    workers = default_num_workers()  # as compute_activation_maps decodes

    def bare():
        loader = torch.utils.data.DataLoader(
            ImageSet(paths, paths, [-1] * len(paths), transforms, None),
            batch_size=args.batch_size, num_workers=workers, collate_fn=collate,
        )
        with torch.no_grad():
            for batch in loader:
                model(torch.stack(batch["images"]).to(device))
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def ours():
        dataset = fo.Dataset()
        dataset.add_samples([fo.Sample(filepath=p) for p in paths], progress=False)
        fpl.compute_activation_maps(
            dataset, model, batch_size=args.batch_size, transforms=transforms, device=device
        )
        assert len(dataset.exists("actmaps")) == len(paths)
        dataset.delete()

    t_bare = best_of(bare, repeat=1)
    t_ours = best_of(ours, repeat=1)

    memory = {}
    for n in args.memory_images:
        out = subprocess.run(
            [sys.executable, "-m", "bench.end_to_end", "--child", str(n), str(args.memory_image_size)],
            capture_output=True, text=True, check=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        memory[n] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]
    small, large = args.memory_images

    rows = [
        ("device / model / batch", f"{device} / resnet18 224px / {args.batch_size}"),
        (f"bare inference over {len(paths)} files", f"{len(paths) / t_bare:.1f} img/s"),
        ("compute_activation_maps into MongoDB", f"{len(paths) / t_ours:.1f} img/s"),
        (f"peak RSS at {small} images", f"{memory[small]:.0f} MiB"),
        (f"peak RSS at {large} images", f"{memory[large]:.0f} MiB"),
    ]
    checks = [
        ("end to end vs bare inference", t_bare / t_ours, 0.6, True),
        (f"peak memory {large} vs {small} images", memory[large] / memory[small], 1.2, False),
    ]
    return report("end to end into MongoDB", rows, checks)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
