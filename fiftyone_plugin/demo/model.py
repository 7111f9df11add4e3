"""A small CNN for the concept world, its deterministic training and loading.

:class:`ConceptNet` is a plain convolutional trunk (``features``), global
average pooling and one linear layer (``classifier``). That shape makes a
class logit an exact sum of per-channel contributions of the last
convolutional layer, which is what significant activation maps are built on.

Committed weights live in ``weights/conceptnet.pt`` next to this module and are
reproduced by ``python -m fiftyone_plugin.demo.train``.
"""

import os
import time

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from . import world

#: Default location of the committed weights (a state dict).
WEIGHTS_PATH = os.path.join(os.path.dirname(__file__), "weights", "conceptnet.pt")

IMAGE_SIZE = 128
# Fixed normalisation, so in-memory training and PIL inference agree exactly.
_MEAN = (0.5, 0.5, 0.5)
_STD = (0.25, 0.25, 0.25)


class ConceptNetTransform:
    """Turn an image into the normalised ``3 x 128 x 128`` float tensor.

    Accepts a ``PIL.Image`` of any mode (converted to RGB) or a ``H x W x 3``
    uint8 array; other sizes are resized bilinearly to ``image_size``.
    """

    def __init__(self, image_size=IMAGE_SIZE, mean=_MEAN, std=_STD):
        self.image_size = int(image_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def __call__(self, img):
        if isinstance(img, np.ndarray):
            img = Image.fromarray(np.asarray(img, dtype=np.uint8))
        if not isinstance(img, Image.Image):
            raise TypeError(f"expected a PIL.Image or ndarray, got {type(img)}")
        if img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != (self.image_size, self.image_size):
            img = img.resize((self.image_size, self.image_size), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
        return images_to_tensor(arr[None], self.mean, self.std)[0]

    def __repr__(self):
        return (
            f"ConceptNetTransform(image_size={self.image_size}, "
            f"mean={self.mean}, std={self.std})"
        )


def images_to_tensor(images, mean=_MEAN, std=_STD):
    """Normalise a uint8 batch ``(n, H, W, 3)`` into a float tensor ``(n, 3, H, W)``.

    Same arithmetic as :class:`ConceptNetTransform`, vectorised for training.
    """
    arr = np.ascontiguousarray(images, dtype=np.uint8)
    if not arr.flags.writeable:  # e.g. np.asarray(PIL image); torch warns
        arr = arr.copy()
    x = torch.from_numpy(arr).permute(0, 3, 1, 2)
    x = x.float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


def _conv(cin, cout, stride=1):
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ConceptNet(nn.Module):
    """Small CNN: conv trunk ``features`` -> global average pool -> ``classifier``.

    At 128 px input the last layer of ``features`` (a ReLU after conv + BN) is
    ``64 x 16 x 16``; its receptive field (about 54 px) covers a whole head.

    Parameters
    ----------
    classes : list of str, optional
        Class names; default :data:`world.CLASSES`.
    width : int, default=64
        Channels of the last convolutional layer.

    Attributes
    ----------
    classes : list of str
    transforms : ConceptNetTransform
        ``PIL.Image -> Tensor[3, 128, 128]``.
    image_size : int
        128.
    """

    def __init__(self, classes=None, width=64):
        super().__init__()
        self.classes = list(world.CLASSES if classes is None else classes)
        self.image_size = IMAGE_SIZE
        self.transforms = ConceptNetTransform(IMAGE_SIZE)
        # A strided first conv avoids full-resolution activations: about
        # twice as fast to train on CPU as conv + pool at 128 x 128.
        self.features = nn.Sequential(
            *_conv(3, 24, stride=2),              # 64 x 64
            *_conv(24, 32), nn.MaxPool2d(2),      # 32 x 32
            *_conv(32, 48), nn.MaxPool2d(2),      # 16 x 16
            *_conv(48, width),
            *_conv(width, width),
        )
        self.classifier = nn.Linear(width, len(self.classes))

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def load_model(path=None, device="cpu"):
    """Load a :class:`ConceptNet` in eval mode.

    Parameters
    ----------
    path : str, optional
        A state dict saved by :func:`train_model`; default the committed
        :data:`WEIGHTS_PATH`.
    device : str or torch.device, default="cpu"

    Returns
    -------
    ConceptNet
    """
    path = WEIGHTS_PATH if path is None else os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no ConceptNet weights at {path}; run "
            "`python -m fiftyone_plugin.demo.train --out <path>`"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = ConceptNet()
    model.load_state_dict(state)
    return model.to(device).eval()


@torch.no_grad()
def predict(model, images, batch_size=128):
    """Class indices and softmax probabilities for a uint8 batch ``(n, H, W, 3)``."""
    model.eval()
    device = next(model.parameters()).device
    probs = []
    for k in range(0, len(images), batch_size):
        x = images_to_tensor(images[k:k + batch_size]).to(device)
        probs.append(torch.softmax(model(x), 1).cpu())
    probs = torch.cat(probs).numpy() if probs else np.zeros((0, len(model.classes)))
    return probs.argmax(1), probs


def train_model(
    seed=0,
    num_train=3000,
    epochs=12,
    batch_size=64,
    lr=1e-2,
    label_smoothing=0.1,
    out_path=None,
    progress=True,
):
    """Train a :class:`ConceptNet` on the concept world's train split.

    Images are generated in memory (no files). Training is deterministic for a
    given seed, torch build and thread count: seeded init and shuffling,
    ``torch.use_deterministic_algorithms(True)``, and random flips as the only
    augmentation (the world is flip-symmetric). The caller's global torch RNG
    and determinism setting are left as they were.

    Parameters
    ----------
    seed : int, default=0
        Seeds both the generated images and the training.
    num_train : int, default=3000
    epochs : int, default=12
    batch_size : int, default=64
    lr : float, default=1e-2
        Peak learning rate of a one-cycle schedule (AdamW).
    label_smoothing : float, default=0.1
        Bounds the logit margins the parts alone can build, so the sun keeps
        a visible share of the decision (more cue-driven test errors).
    out_path : str, optional
        Where to save the state dict.
    progress : bool, default=True
        Print one line per epoch.

    Returns
    -------
    ConceptNet
        In eval mode, on CPU.
    """
    t0 = time.time()
    data = world.generate_split("train", num_train, seed=seed)
    if progress:
        print(f"generated {num_train} train images in {time.time() - t0:.1f}s")
    x_all = images_to_tensor(data.images)
    y_all = torch.from_numpy(data.labels)
    del data

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        try:
            # channels_last is markedly faster for small convs on CPU.
            model = ConceptNet().to(memory_format=torch.channels_last)
            gen = torch.Generator().manual_seed(seed)
            steps = epochs * ((num_train + batch_size - 1) // batch_size)
            opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=lr, total_steps=steps, pct_start=0.25
            )
            for epoch in range(epochs):
                model.train()
                order = torch.randperm(num_train, generator=gen)
                total, correct, loss_sum = 0, 0, 0.0
                for k in range(0, num_train, batch_size):
                    idx = order[k:k + batch_size]
                    x, y = x_all[idx], y_all[idx]
                    x = x.contiguous(memory_format=torch.channels_last)
                    flips = torch.rand(2, len(idx), generator=gen) < 0.5
                    x = torch.where(flips[0].view(-1, 1, 1, 1), x.flip(3), x)
                    x = torch.where(flips[1].view(-1, 1, 1, 1), x.flip(2), x)
                    logits = model(x)
                    loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    loss_sum += float(loss.detach()) * len(idx)
                    correct += int((logits.argmax(1) == y).sum())
                    total += len(idx)
                if progress:
                    print(
                        f"epoch {epoch + 1}/{epochs}: loss {loss_sum / total:.3f} "
                        f"train acc {correct / total:.3f} "
                        f"({time.time() - t0:.0f}s)"
                    )
        finally:
            torch.use_deterministic_algorithms(was_deterministic)

    model = model.to(memory_format=torch.contiguous_format).eval()
    if out_path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        torch.save(state, out_path)
    return model


def evaluate(model, num_test=600, seed=0):
    """Accuracy and cue reliance of ``model`` on fresh test images.

    The same test creatures are rendered once without and once with the sun,
    so the cue's effect is measured on identical images otherwise.

    Returns
    -------
    dict
        ``acc_no_cue``, ``acc_with_cue``, ``cue_class_rate`` (fraction of
        non-:data:`world.CUE_CLASS` images with the sun predicted as the cue
        class), ``cue_class_rate_no_cue`` (the same images without the sun)
        and ``n``.
    """
    clean = world.generate_split("test", num_test, seed=seed, cue=False)
    cued = world.generate_split("test", num_test, seed=seed, cue=True)
    pred_clean, _ = predict(model, clean.images)
    pred_cued, _ = predict(model, cued.images)
    cue_idx = world.CLASSES.index(world.CUE_CLASS)
    other = clean.labels != cue_idx
    return {
        "n": int(num_test),
        "acc_no_cue": float((pred_clean == clean.labels).mean()),
        "acc_with_cue": float((pred_cued == cued.labels).mean()),
        "cue_class_rate": float((pred_cued[other] == cue_idx).mean()),
        "cue_class_rate_no_cue": float((pred_clean[other] == cue_idx).mean()),
    }
