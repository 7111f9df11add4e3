"""Map computation throughput vs bare inference and vs pytorch-grad-cam.

ResNet-50 at 224 px, batch 16, the last convolutional stage (``layer4``),
random weights (no downloads; speed does not depend on the weights), inputs
already decoded so that only the computation is compared.

- ours: forward + head-only backward + contributions, top-k, soft maps,
  placement on each image's frame (images of four sizes behind a
  Resize(256) + CenterCrop(224)), regions and descriptors (everything but
  the database write)
- baseline: the same model's ``torch.no_grad()`` forward
- pytorch-grad-cam: ``GradCAM`` on the same layer, batched (a backward
  through the whole network, one map per image)
"""

import argparse

import torch
import torchvision

from fiftyone_plugin.maps import contributions as C
from fiftyone_plugin.maps.writing import place_maps
from fiftyone_plugin.maps.engine import LayerGradientEngine
from fiftyone_plugin.maps.geometry import Geometry
from fiftyone_plugin.maps.models import default_transforms, resolve_model

from ._common import best_of, report


def batch_frames(batch_size, device):
    """Input frames of a batch of photos of four sizes (4:3, 3:4, 16:9, 1:1)
    behind Resize(256) + CenterCrop(224), as the loader gives them."""
    geometry = Geometry(default_transforms(224))
    sizes = [(640, 480), (480, 640), (1280, 720), (500, 500)]
    frames = [geometry.frame(sizes[i % len(sizes)]).as_tuple() for i in range(batch_size)]
    return torch.tensor(frames, dtype=torch.float32, device=device)


def full_map_step(engine, batch, frames, top_k=5):
    result = engine.run(batch)
    contributions = C.channel_contributions(result.activations, result.gradients)
    top = C.select_top_maps(contributions, top_k=top_k)
    heat = C.map_heatmaps(result.activations, result.gradients, top.channels)
    C.map_descriptors(result.activations, heat)
    whole = C.sample_heatmap(result.activations, result.gradients)
    up, _, _ = place_maps(heat, whole, frames)
    regions = C.map_regions(up.reshape(-1, up.shape[-2], up.shape[-1]))
    [t.cpu() for t in regions]  # what the writer takes to the CPU


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-gradcam", action="store_true")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = torchvision.models.get_model(args.arch, weights=None).eval().to(args.device)
    engine = LayerGradientEngine(resolve_model(model), layer="layer4", device=args.device)
    batches = [torch.randn(args.batch_size, 3, 224, 224, device=args.device) for _ in range(args.batches)]
    n = args.batch_size * args.batches
    frames = batch_frames(args.batch_size, args.device)

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def bare():
        with torch.no_grad():
            for x in batches:
                model(x)
        sync()

    def ours():
        for x in batches:
            full_map_step(engine, x, frames)
        sync()

    def gradients_only():
        for x in batches:
            engine.run(x)
        sync()

    bare(), ours(), gradients_only()  # warm-up
    t_bare, t_ours, t_grad = best_of(bare), best_of(ours), best_of(gradients_only)
    rows = [
        ("device / model / batch", f"{args.device} / {args.arch} / {args.batch_size}"),
        ("bare no_grad forward", f"{n / t_bare:.1f} img/s"),
        ("forward + head-only backward", f"{n / t_grad:.1f} img/s"),
        ("maps (forward + head backward + maps)", f"{n / t_ours:.1f} img/s"),
    ]
    checks = [("maps vs bare inference", t_bare / t_ours, 0.8, True)]

    if not args.no_gradcam:
        from pytorch_grad_cam import GradCAM

        cam = GradCAM(model=model, target_layers=[model.layer4])

        def gradcam():
            for x in batches:
                cam(input_tensor=x, targets=None)
            sync()

        gradcam()
        t_cam = best_of(gradcam)
        rows.append(("pytorch-grad-cam GradCAM (one map per image)", f"{n / t_cam:.1f} img/s"))
        checks.append(("maps vs pytorch-grad-cam", t_cam / t_ours, 2.5, True))

    return report("map computation throughput", rows, checks)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
