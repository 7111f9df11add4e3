"""Images into batches for :func:`~fiftyone_plugin.maps.compute.compute_activation_maps`:
decoding and preprocessing (in DataLoader workers), the probe batch read
before a run, and the probe image that checks the preprocessing's geometry.
Reads files only; no FiftyOne writes."""

import logging
import os

import numpy as np
import torch
from PIL import Image

from .geometry import WHOLE_IMAGE, GeometryError
from .images import ImageLoadError, load_rgb_image

logger = logging.getLogger(__name__)

# at most this many images probe the model before a run (a real batch, kept
# small: the probe runs the model three times)
PROBE_IMAGES = 4


class ImageSet(torch.utils.data.Dataset):
    """Decodes and preprocesses one image per item; failures become values,
    not exceptions, so one bad file never stops a worker.

    Parameters
    ----------
    ids, paths : list of str
        sample ids and image paths, one per item.
    targets : list of int
        class index to explain per item, ``-1`` for the prediction.
    transforms : callable
        PIL image -> ``(3, H, W)`` float tensor.
    target_size : int or None
        draft size for JPEG decoding (:func:`~fiftyone_plugin.maps.images.load_rgb_image`).
    geometry : Geometry, optional
        places the input on the image; ``None``: the whole image.

    An item is ``(sample_id, (tensor, frame, frame_known), target, None)``,
    or ``(sample_id, None, None, message)`` when the image cannot be used.
    """

    def __init__(self, ids, paths, targets, transforms, target_size, geometry=None):
        self.ids, self.paths, self.targets = ids, paths, targets
        self.transforms, self.target_size = transforms, target_size
        self.geometry = geometry

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        sample_id = self.ids[index]
        try:
            image = load_rgb_image(self.paths[index], target_size=self.target_size)
            tensor = self.transforms(image)
            if not isinstance(tensor, torch.Tensor) or tensor.dim() != 3:
                raise ImageLoadError("preprocessing did not give a (3, H, W) tensor")
            frame, known = self._frame(image.size, tuple(tensor.shape[-2:]))
            return sample_id, (tensor, frame, known), self.targets[index], None
        except ImageLoadError as e:
            return sample_id, None, None, str(e)
        except Exception as e:  # a transform failing on one odd image
            return sample_id, None, None, f"cannot preprocess image: {type(e).__name__}: {e}"

    def _frame(self, image_size, input_shape):
        # where the input tensor lies on the image (cached per size in each
        # worker); unknown geometry places the maps on the whole image
        if self.geometry is None:
            return WHOLE_IMAGE, False
        try:
            return self.geometry.frame(image_size, input_shape).as_tuple(), True
        except GeometryError:
            return WHOLE_IMAGE, False


def collate(items):
    """A batch of :class:`ImageSet` items: ``{"ids", "images" (list of
    (3, H, W) tensors), "frames" (B, 4), "frame_known", "targets" (B,),
    "failures" [(sample_id, message)]}``."""
    good = [it for it in items if it[3] is None]
    return {
        "ids": [it[0] for it in good],
        "images": [it[1][0] for it in good],
        "frames": torch.tensor([it[1][1] for it in good], dtype=torch.float32).reshape(-1, 4),
        "frame_known": [it[1][2] for it in good],
        "targets": torch.tensor([it[2] for it in good], dtype=torch.long),
        "failures": [(it[0], it[3]) for it in items if it[3] is not None],
    }


def default_num_workers():
    """Image-decoding worker processes when none are asked for: none on a
    machine with two cores or fewer, else half the cores, at most 8."""
    cpus = os.cpu_count() or 1
    return 0 if cpus <= 2 else min(8, cpus // 2)


def make_loader(engine, ids, paths, target_labels, spec, *, batch_size, num_workers=None, geometry=None):
    """The run's DataLoader over ``ids``/``paths`` (in order, never
    shuffled); ``target_labels`` are class names or ``None`` (explain the
    prediction); ``num_workers=None``: :func:`default_num_workers`."""
    targets = [
        (-1 if label is None else (spec.class_index(label) if spec.class_index(label) is not None else -1))
        for label in target_labels
    ]
    if num_workers is None:
        num_workers = default_num_workers()
    size = max(engine.feature_shape[1:]) * 64  # generous draft size for JPEGs
    return torch.utils.data.DataLoader(
        ImageSet(ids, paths, targets, engine.spec.transforms, size, geometry),
        batch_size=int(batch_size),
        shuffle=False,
        num_workers=int(num_workers),
        collate_fn=collate,
        pin_memory=engine.device.type == "cuda",
    )


def same_shape_chunks(images):
    """Indices grouped by tensor shape: a model's own transforms may keep
    aspect ratios, and only same-shaped images can share a batch.

    >>> same_shape_chunks([torch.zeros(3, 4, 4), torch.zeros(3, 4, 5), torch.zeros(3, 4, 4)])
    [[0, 2], [1]]
    """
    groups = {}
    for i, image in enumerate(images):
        groups.setdefault(tuple(image.shape), []).append(i)
    return list(groups.values())


def probe_batch(samples, spec, *, batch_size, tries=64):
    """The first images of ``samples`` that load, preprocessed and of one
    shape, as a ``(B, 3, H, W)`` batch (``B <= PROBE_IMAGES``); ``None`` when
    none of the first ``tries`` loads (the engine then probes a synthetic
    image). Reads only."""
    ids, paths = samples.limit(tries).values(["id", "filepath"])
    images = ImageSet(ids, paths, [-1] * len(ids), spec.transforms, None)
    want = min(int(batch_size), PROBE_IMAGES)
    chosen = []
    for i in range(len(ids)):
        _, item, _, error = images[i]
        tensor = item[0] if error is None else None
        if error is None and (not chosen or tensor.shape == chosen[0].shape):
            chosen.append(tensor)
            if len(chosen) == want:
                break
    if not chosen:
        logger.warning("none of the first %d images loads; the model is probed on a synthetic image", len(ids))
        return None
    return torch.stack(chosen)


def load_probe_image(size):
    """A deterministic textured RGB image of ``size = (W, H)`` pixels.

    >>> load_probe_image((32, 24)).size
    (32, 24)
    """
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
