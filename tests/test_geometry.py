"""Maps in the frame the App shows: preprocessing that crops, pads or keeps
aspect ratios, and EXIF orientation (issue 8, section 1).

Right values are hand-derived from the transforms' definitions (worked out in
the comments), never read back from the plugin's geometry code.
"""

import io
import logging

import numpy as np
import pytest
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.v2 as v2
from PIL import Image

import fiftyone as fo

import fiftyone_plugin as fpl
from fiftyone_plugin.maps import contributions as C
from fiftyone_plugin.maps import geometry as G
from fiftyone_plugin.maps.models import IMAGENET_MEAN, IMAGENET_STD, default_transforms
from fiftyone_plugin.concepts.naming import map_thumbnail


class Brightness(torch.nn.Module):
    """Explained channel = brightness: ``features`` is a 1x1 conv whose
    channel 0 is the un-normalised mean of R, G, B (0 on black, 1 on white)
    followed by ``pool`` x ``pool`` average pooling; class 0's logit is the
    mean of channel 0, class 1's is 0. So the only positive map is channel 0
    and it is the image's brightness seen through the layer's cells."""

    classes = ["bright", "dark"]

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, pool=4):
        super().__init__()
        conv = torch.nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            conv.weight.zero_()
            conv.bias.zero_()
            # x = (p - m) / s  =>  p = s x + m ; brightness = mean_c p_c
            conv.weight[0, :, 0, 0] = torch.tensor(std) / 3
            conv.bias[0] = sum(mean) / 3
        self.features = torch.nn.Sequential(conv, torch.nn.AvgPool2d(pool))
        self.fc = torch.nn.Linear(2, 2)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.zero_()
            self.fc.weight[0, 0] = 1.0

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def _spot_image(path, size=(224, 112), centre=(0.65, 0.5), side=8, exif_orientation=None):
    """Black image with a white ``side`` px square centred at ``centre``
    (relative). Returns the exact centre of the square (relative)."""
    width, height = size
    array = np.zeros((height, width, 3), dtype=np.uint8)
    x0 = int(round(centre[0] * width - side / 2))
    y0 = int(round(centre[1] * height - side / 2))
    array[y0 : y0 + side, x0 : x0 + side] = 255
    image = Image.fromarray(array)
    if exif_orientation is None:
        image.save(path)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(path, quality=95, exif=exif.tobytes())
    return ((x0 + side / 2) / width, (y0 + side / 2) / height)


def _maps_of(dataset, path, **kwargs):
    dataset.add_sample(fo.Sample(filepath=path))
    summary = fpl.compute_activation_maps(dataset, num_workers=0, **kwargs)
    assert summary.processed == 1, summary
    return dataset.first(), summary


def _normalise():
    return [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


# --- the frames themselves, hand-derived ------------------------------------

# 224x112 image, default preprocessing at image_size=56: Resize(64) makes the
# short side 112 -> 64, so 224 -> 128; CenterCrop(56) cuts x in [36, 92] of
# 128 and y in [4, 60] of 64: the input covers x in [0.28125, 0.71875] and
# y in [0.0625, 0.9375] of the image.  Resize(256) + CenterCrop(224) (the
# ResNet preset) is the same scaled by 4: x [144, 368] / 512, y [16, 240] / 256.
WIDE_CROP = (0.28125, 0.0625, 0.4375, 0.875)
# a portrait 112x224 image: the same with the axes swapped
TALL_CROP = (0.0625, 0.28125, 0.875, 0.4375)
# Resize((48, 96)) then Pad((4, 8)) (left/right 4, top/bottom 8): the image
# spans x [4, 100] of 104 and y [8, 56] of 64, so ox = -4/96, sx = 104/96,
# oy = -8/48, sy = 64/48
PADDED = (-4 / 96, -8 / 48, 104 / 96, 64 / 48)


def _user_callable(image):
    # a user's own function: opaque to any transform analysis
    return default_transforms(56)(image)


CASES = {
    "default": (default_transforms(56), (224, 112), WIDE_CROP, "torchvision"),
    "default portrait": (default_transforms(56), (112, 224), TALL_CROP, "torchvision"),
    "v1 compose": (T.Compose([T.Resize(256), T.CenterCrop(224), *_normalise()]), (224, 112), WIDE_CROP, "torchvision"),
    "v2 compose": (
        v2.Compose([v2.ToImage(), v2.Resize(64), v2.CenterCrop(56), v2.ToDtype(torch.float32, scale=True),
                    v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]),
        (224, 112), WIDE_CROP, "torchvision",
    ),
    "weights preset": (
        torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms(), (224, 112), WIDE_CROP, "torchvision"
    ),
    "pad": (T.Compose([T.Resize((48, 96)), T.Pad((4, 8)), T.ToTensor()]), (224, 112), PADDED, "torchvision"),
    "v2 reflect pad": (
        v2.Compose([v2.ToImage(), v2.Resize((48, 96)), v2.Pad([4, 8], padding_mode="reflect"),
                    v2.ToDtype(torch.float32, scale=True)]),
        (224, 112), PADDED, "torchvision",
    ),
    "user callable": (_user_callable, (224, 112), WIDE_CROP, "probe"),
    "user callable portrait": (_user_callable, (112, 224), TALL_CROP, "probe"),
    "lambda in compose": (
        T.Compose([T.Lambda(lambda im: im.resize((96, 48))), T.Pad((4, 8)), T.ToTensor()]),
        (224, 112), PADDED, "probe",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_frame_of_each_kind_of_preprocessing(case):
    transforms, size, expected, method = CASES[case]
    geometry = G.Geometry(transforms)
    assert geometry.method == method
    shape = tuple(transforms(Image.new("RGB", size)).shape[-2:])
    frame = geometry.frame(size, shape).as_tuple()
    # keypoints are exact; the probe reads 8-bit ramps (about 1/255)
    tolerance = 1e-9 if method == "torchvision" else 4e-3
    np.testing.assert_allclose(frame, expected, atol=tolerance)


def test_probe_refuses_random_and_rotating_transforms():
    random_crop = T.Compose([T.RandomResizedCrop(56), T.ToTensor()])
    with pytest.raises(G.GeometryError, match="random"):
        G.probe_frame(random_crop, (224, 112))
    rotate = lambda im: T.functional.to_tensor(im.rotate(90, expand=True))  # noqa: E731
    with pytest.raises(G.GeometryError, match="not a scale"):
        G.probe_frame(rotate, (224, 112))


def test_resampling_matches_plain_upsampling_on_the_whole_image():
    # the whole-image frame must reproduce the former bilinear upsampling
    maps = torch.rand(2, 3, 7, 5)
    whole = torch.tensor([G.WHOLE_IMAGE] * 2)
    placed = C.resample_to_image(maps, whole, (64, 64))
    torch.testing.assert_close(placed, C.upsample_maps(maps), atol=1e-5, rtol=0)


def test_resampling_puts_a_cell_where_the_crop_was():
    # one hot cell (row 3, col 5) of a 7x7 map through WIDE_CROP: its centre
    # (u, v) = (5.5/7, 3.5/7) lies at x = 0.28125 + 0.4375 * 5.5/7 = 0.62500,
    # y = 0.0625 + 0.875 * 0.5 = 0.5
    maps = torch.zeros(1, 1, 7, 7)
    maps[0, 0, 3, 5] = 1
    placed = C.resample_to_image(maps, torch.tensor([WIDE_CROP]), (128, 128))[0, 0]
    row, col = np.unravel_index(int(placed.argmax()), placed.shape)
    assert abs((col + 0.5) / 128 - 0.625) <= 1 / 128 and abs((row + 0.5) / 128 - 0.5) <= 1 / 128
    # nothing outside the window x in [0.28125, 0.71875], y in [0.0625, 0.9375]
    centres = (torch.arange(128) + 0.5) / 128
    outside_x = (centres < 0.28125) | (centres > 0.71875)
    outside_y = (centres < 0.0625) | (centres > 0.9375)
    assert placed[:, outside_x].abs().max() == 0 and placed[outside_y].abs().max() == 0


# --- the smallest case, end to end ----------------------------------


def _check_spot(sample, spot, window, cell):
    """Rank-1 map peaks within one layer cell of the spot, its box contains
    it, and neither the box nor the stored heatmaps reach outside the window
    the model saw."""
    maps = sample.actmaps.detections
    assert len(maps) == 1 and maps[0].channel == 0
    top = maps[0]
    assert abs(top.peak[0] - spot[0]) <= cell[0] and abs(top.peak[1] - spot[1]) <= cell[1], (top.peak, spot)
    x, y, w, h = top.bounding_box
    assert x <= spot[0] <= x + w and y <= spot[1] <= y + h
    left, top_y, right, bottom = window
    assert x >= left - 1e-9 and x + w <= right + 1e-9 and y >= top_y - 1e-9 and y + h <= bottom + 1e-9
    for heat in (top.heatmap, sample.actmap_heatmap.map):
        rows, cols = heat.shape
        cx, cy = (np.arange(cols) + 0.5) / cols, (np.arange(rows) + 0.5) / rows
        outside = ((cx < left) | (cx > right))[None, :] | ((cy < top_y) | (cy > bottom))[:, None]
        assert not outside.any() or heat[outside].max() == 0
        assert heat[~outside].max() > 0
        r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
        # the hottest stored cell holds the spot (within one cell)
        assert abs((c + 0.5) / cols - spot[0]) <= 1.5 / cols and abs((r + 0.5) / rows - spot[1]) <= 1.5 / rows


def test_smallest_case_default_preprocessing(dataset, workdir):
    # black 224x112 PNG, 8 px white square centred at x=0.65, y=0.5,
    # image_size=56 (default preprocessing); layer cells: 56/4 = 14 per side
    # of the crop, i.e. 0.4375/14 = 0.03125 wide and 0.875/14 = 0.0625 high
    path = f"{workdir}/smallest.png"
    spot = _spot_image(path)
    sample, summary = _maps_of(dataset, path, model=Brightness(), image_size=56, layer="features")
    window = (0.28125, 0.0625, 0.71875, 0.9375)
    _check_spot(sample, spot, window, cell=(0.03125, 0.0625))
    # the stored heatmaps keep the layer's cell size over the whole image:
    # 14 / 0.875 = 16 rows, 14 / 0.4375 = 32 columns
    assert sample.actmap_heatmap.map.shape == (16, 32)
    assert sample.actmaps.detections[0].heatmap.shape == (16, 32)
    config = dataset.get_run_info("actmaps").config
    assert config.geometry.startswith("torchvision keypoints through Resize+CenterCrop")
    assert summary.geometry_unknown == 0


@pytest.mark.parametrize(
    "case, size, centre, window",
    [
        # portrait: the crop is vertical, y in [0.28125, 0.71875]
        ("default portrait", (112, 224), (0.5, 0.35), (0.0625, 0.28125, 0.9375, 0.71875)),
        ("weights preset", (224, 112), (0.35, 0.5), (0.28125, 0.0625, 0.71875, 0.9375)),
        ("v2 compose", (224, 112), (0.65, 0.3), (0.28125, 0.0625, 0.71875, 0.9375)),
        ("user callable", (224, 112), (0.65, 0.5), (0.28125, 0.0625, 0.71875, 0.9375)),
        # padding: the whole image is seen
        ("pad", (224, 112), (0.8, 0.3), (0.0, 0.0, 1.0, 1.0)),
    ],
)
def test_spot_variants(dataset, workdir, case, size, centre, window):
    transforms = CASES[case][0]
    path = f"{workdir}/spot-{case.replace(' ', '-')}.png"
    spot = _spot_image(path, size=size, centre=centre, side=8 if case != "weights preset" else 12)
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if case != "pad" else ((0, 0, 0), (1, 1, 1))
    model = Brightness(mean, std, pool=4 if case != "weights preset" else 16)
    sample, _ = _maps_of(dataset, path, model=model, transforms=transforms, layer="features")
    sx, sy = (window[2] - window[0], window[3] - window[1]) if case != "pad" else (104 / 96, 64 / 48)
    # one layer cell on the image: the crop's extent over the cells per side
    input_h, input_w = transforms(Image.new("RGB", size)).shape[-2:]
    pool = 4 if case != "weights preset" else 16
    cell = (sx / (input_w // pool), sy / (input_h // pool))
    _check_spot(sample, spot, window, cell)


def test_images_of_different_sizes_share_a_batch(dataset, workdir):
    # 224x112 and 112x224 both become 56x56 tensors under the default
    # preprocessing, so they share one model batch, yet each map must sit in
    # its own image's frame (windows WIDE_CROP and TALL_CROP, hand-derived)
    wide, tall = f"{workdir}/batch-wide.png", f"{workdir}/batch-tall.png"
    spots = {wide: _spot_image(wide, centre=(0.62, 0.4)), tall: _spot_image(tall, size=(112, 224), centre=(0.3, 0.62))}
    dataset.add_samples([fo.Sample(filepath=wide), fo.Sample(filepath=tall)])
    fpl.compute_activation_maps(
        dataset, Brightness(), image_size=56, layer="features", batch_size=2, num_workers=0
    )
    windows = {wide: (0.28125, 0.0625, 0.71875, 0.9375), tall: (0.0625, 0.28125, 0.9375, 0.71875)}
    cells = {wide: (0.03125, 0.0625), tall: (0.0625, 0.03125)}
    for sample in dataset:
        _check_spot(sample, spots[sample.filepath], windows[sample.filepath], cells[sample.filepath])


def test_undeterminable_geometry_is_warned_and_recorded(dataset, workdir, caplog):
    # a user callable that rotates: no scale + shift explains it
    def rotating(image):
        return T.functional.to_tensor(image.rotate(90, expand=True).resize((32, 32)))

    path = f"{workdir}/rotating.png"
    _spot_image(path)
    with caplog.at_level(logging.WARNING, logger="fiftyone_plugin"):
        sample, summary = _maps_of(
            dataset, path, model=Brightness((0, 0, 0), (1, 1, 1)), transforms=rotating, layer="features"
        )
    config = dataset.get_run_info("actmaps").config
    assert config.geometry.startswith("unknown: ")
    assert "geometry" in caplog.text and "cannot be determined" in caplog.text
    assert sample.actmaps.geometry_unknown is True and summary.geometry_unknown == 1


def test_fiftyone_zoo_preprocessing_is_probed():
    # FiftyOne's own transforms (not torchvision's): MinResize(224) then
    # PatchSize(40), which centre-crops to multiples of 40. On 224x112:
    # resized to 448x224, cropped to 440x200 at offset (4, 12), so the input
    # covers x in [4, 444] / 448 and y in [12, 212] / 224
    import fiftyone.utils.torch as fout

    config = fout.TorchImageModelConfig(
        {
            "entrypoint_fcn": "torchvision.models.resnet18",
            "entrypoint_args": {"weights": None, "num_classes": 2},
            "output_processor_cls": "fiftyone.utils.torch.ClassifierOutputProcessor",
            "classes": ["p", "q"],
            "image_min_dim": 224,
            "image_patch_size": 40,
            "device": "cpu",
        }
    )
    zoo_like = fout.TorchImageModel(config)
    geometry = G.Geometry(zoo_like.transforms)
    assert geometry.method == "probe"
    shape = tuple(zoo_like.transforms(Image.new("RGB", (224, 112))).shape[-2:])
    assert shape == (200, 440)
    expected = (4 / 448, 12 / 224, 440 / 448, 200 / 224)
    np.testing.assert_allclose(geometry.frame((224, 112), shape).as_tuple(), expected, atol=4e-3)


# --- EXIF orientation -------------------------------------------------------

# where a point at raw (x, y) is shown, per EXIF orientation (TIFF/EXIF
# spec: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 CW,
# 7 transverse, 8 rotate 90 CCW)
SHOWN = {
    1: lambda x, y: (x, y),
    2: lambda x, y: (1 - x, y),
    3: lambda x, y: (1 - x, 1 - y),
    4: lambda x, y: (x, 1 - y),
    5: lambda x, y: (y, x),
    6: lambda x, y: (1 - y, x),
    7: lambda x, y: (1 - y, 1 - x),
    8: lambda x, y: (y, 1 - x),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_maps_and_thumbnails(dataset, workdir, orientation):
    # raw 224x112 JPEG, spot at raw (0.79, 0.5); Orientation 6 shows it at
    # (0.50, 0.79). A whole-image resize, so only the orientation matters.
    path = f"{workdir}/exif-{orientation}.jpg"
    raw_spot = _spot_image(path, centre=(0.79, 0.5), side=12, exif_orientation=orientation)
    shown = SHOWN[orientation](*raw_spot)
    if orientation == 6:
        assert np.allclose(shown, (0.5, 0.79), atol=0.01)
    transforms = T.Compose([T.Resize((64, 64)), T.ToTensor()])
    sample, _ = _maps_of(
        dataset, path, model=Brightness((0, 0, 0), (1, 1, 1)), transforms=transforms, layer="features"
    )
    dataset.compute_metadata()
    sample.reload()
    portrait = orientation >= 5
    # FiftyOne's metadata is the displayed frame
    assert (sample.metadata.width, sample.metadata.height) == ((112, 224) if portrait else (224, 112))
    top = sample.actmaps.detections[0]
    # 16 layer cells over the whole image
    assert abs(top.peak[0] - shown[0]) <= 1 / 16 and abs(top.peak[1] - shown[1]) <= 1 / 16, (top.peak, shown)

    # the panel thumbnail crops the displayed image around the box: the spot
    # (white) must be inside it, hot under the heatmap, near its centre
    png = map_thumbnail(sample.filepath, top.bounding_box, top.heatmap, size=64)
    thumb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)
    plain = np.asarray(Image.open(io.BytesIO(map_thumbnail(sample.filepath, top.bounding_box, None, size=64))))
    assert plain.max() > 200  # the spot is in the crop
    bright = plain.mean(axis=2) > 128
    ys, xs = np.nonzero(bright)
    x, y, w, h = top.bounding_box
    # the box with its 50 % context: where the spot's centre sits in the crop
    left, top_y = max(0, x - w / 2), max(0, y - h / 2)
    right, bottom = min(1, x + 1.5 * w), min(1, y + 1.5 * h)
    expect_x = (shown[0] - left) / (right - left) * plain.shape[1]
    expect_y = (shown[1] - top_y) / (bottom - top_y) * plain.shape[0]
    assert abs(xs.mean() - expect_x) <= 0.15 * plain.shape[1] and abs(ys.mean() - expect_y) <= 0.15 * plain.shape[0]
    # the heatmap overlay is hot on the spot: where the stored heatmap is 0
    # the thumbnail dims white to 0.3 * 255 = 77; where it is 1 it stays 255
    assert thumb[bright][:, 0].mean() > 128


def test_exif_orientation_is_applied_when_loading(workdir):
    from fiftyone_plugin.maps.images import load_rgb_image

    path = f"{workdir}/exif-load.jpg"
    _spot_image(path, centre=(0.79, 0.5), side=12, exif_orientation=6)
    image = load_rgb_image(path)
    assert image.size == (112, 224)
    array = np.asarray(image).mean(axis=2)
    ys, xs = np.nonzero(array > 128)
    # shown at (0.5, 0.79) per the EXIF spec (see SHOWN)
    assert abs((xs.mean() + 0.5) / 112 - 0.5) < 0.02 and abs((ys.mean() + 0.5) / 224 - 0.79) < 0.02


def test_report_thumbnails_use_the_displayed_frame(workdir):
    # the HTML report draws map boxes on thumbnails: on an Orientation 6
    # JPEG a box around the displayed spot (0.5, 0.79) (see SHOWN) must
    # frame the white spot
    import base64

    from fiftyone_plugin.evaluation.html import thumbnail

    path = f"{workdir}/exif-report.jpg"
    _spot_image(path, centre=(0.79, 0.5), side=12, exif_orientation=6)
    url = thumbnail(path, [[0.4, 0.7, 0.2, 0.18]], size=224)
    thumb = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
    assert thumb.size == (112, 224)
    gray = np.asarray(thumb, dtype=float).mean(axis=2)
    # the spot (12 px, at (56, 177)) is white; inside the red outline
    assert gray[172:182, 51:61].mean() > 200
