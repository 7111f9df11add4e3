"""Turning what a user passes as ``model`` into a runnable classifier, and
finding the layer whose maps we explain."""

import difflib
import hashlib
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torchvision
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_transforms(image_size=224):
    """ImageNet-style preprocessing: resize the short side, centre crop,
    normalise. Used when neither the model nor the caller gives one."""
    T = torchvision.transforms
    return T.Compose(
        [
            T.Resize(int(round(image_size * 256 / 224))),
            T.CenterCrop(image_size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


@dataclass
class ModelSpec:
    """A classifier ready to run: the module, its preprocessing (PIL RGB image
    -> ``(3, H, W)`` float tensor), its class names and a stable identity used
    to tell whether stored maps came from the same model."""

    module: torch.nn.Module
    transforms: object
    classes: list
    name: str
    fingerprint: str = field(default="")

    def class_name(self, index):
        if self.classes and 0 <= index < len(self.classes):
            return str(self.classes[index])
        return str(index)

    def class_index(self, name):
        if self.classes:
            try:
                return [str(c) for c in self.classes].index(str(name))
            except ValueError:
                pass
        if str(name).isdigit():
            return int(name)
        return None


def resolve_model(model, weights=None, classes=None, transforms=None, image_size=None):
    """Normalise the accepted kinds of ``model`` to a :class:`ModelSpec`.

    Parameters
    ----------
    model : torch.nn.Module, str or fiftyone.utils.torch.TorchImageModel
        - a module: used as is; preprocessing from ``transforms``, else its
          ``transforms`` attribute, else :func:`default_transforms`; classes
          from ``classes``, else its ``classes`` attribute;
        - a torchvision classification architecture name (``"resnet50"``)
          with ``weights``: a path to a saved state dict, or a torchvision
          weights enum / its name (``"ResNet50_Weights.IMAGENET1K_V2"``),
          which brings the matching preprocessing and class names;
        - a FiftyOne zoo or custom ``TorchImageModel``: its network,
          preprocessing and classes.
    weights : str or torchvision.models.WeightsEnum, optional
        only with an architecture name.
    classes : list of str, optional
        class names, overriding the model's.
    transforms : callable, optional
        PIL image -> tensor, overriding the model's.
    image_size : int, optional
        input size for :func:`default_transforms`.
    """
    weights_enum = None
    name = None

    if isinstance(model, str):
        module, weights_enum, name = _load_torchvision(model, weights)
    elif isinstance(model, torch.nn.Module):
        if weights is not None:
            raise ValueError("`weights` is only used with an architecture name")
        module = model
        name = type(model).__name__
    elif _is_fiftyone_torch_model(model):
        module = model._model
        transforms = transforms or model.transforms
        classes = classes or model.classes
        name = type(model).__name__
    else:
        raise TypeError(
            "model must be a torch.nn.Module, a torchvision architecture name "
            "or a FiftyOne TorchImageModel; got %r" % type(model).__name__
        )

    if transforms is None and weights_enum is not None:
        transforms = _rgb_pil_first(weights_enum.transforms())
    if transforms is None:
        transforms = getattr(module, "transforms", None)
    if transforms is None:
        transforms = default_transforms(image_size or 224)

    if classes is None and weights_enum is not None:
        classes = list(weights_enum.meta.get("categories") or [])
    if classes is None:
        classes = list(getattr(module, "classes", None) or [])

    module.eval()
    return ModelSpec(
        module=module,
        transforms=transforms,
        classes=[str(c) for c in classes],
        name=name,
        fingerprint=model_fingerprint(module),
    )


class _rgb_pil_first:
    """torchvision's weight transforms expect tensors or PIL images; ours are
    always PIL, so this is just a named, picklable wrapper."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, image):
        return self.inner(image)


def _is_fiftyone_torch_model(model):
    try:
        import fiftyone.utils.torch as fout
    except ImportError:  # pragma: no cover - fiftyone is a dependency
        return False
    return isinstance(model, fout.TorchImageModel)


def _load_torchvision(arch, weights):
    try:
        builder = torchvision.models.get_model_builder(arch)
    except ValueError:
        names = torchvision.models.list_models(torchvision.models)
        close = difflib.get_close_matches(arch, names, n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(f"unknown torchvision architecture {arch!r}{hint}") from None

    if weights is None:
        raise ValueError(
            f"architecture {arch!r} needs `weights`: a path to a state dict or "
            "a torchvision weights enum (random weights explain nothing)"
        )

    if isinstance(weights, (str, os.PathLike)) and os.path.exists(weights):
        module = builder(weights=None)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        try:
            module.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(
                f"weights file {weights!r} does not fit {arch!r}: {e}"
            ) from None
        return module, None, f"{arch}:{os.path.basename(str(weights))}"

    if isinstance(weights, str):
        if weights.endswith((".pt", ".pth", ".bin")) or os.sep in weights:
            raise ValueError(f"weights file {weights!r} does not exist")
        enum = torchvision.models.get_model_weights(arch)
        try:
            weights = enum.verify(weights.split(".")[-1])
        except (ValueError, KeyError):
            raise ValueError(
                f"{weights!r} is neither a file nor one of "
                f"{[w.name for w in enum]}"
            ) from None

    # torchvision's own loader: uses the local cache, downloads otherwise
    module = builder(weights=weights)
    return module, weights, f"{arch}:{weights}"


def model_fingerprint(module):
    """A short hash of the module's class and parameters, so that maps from a
    retrained model are never mistaken for up to date."""
    digest = hashlib.sha1(type(module).__name__.encode())
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        array = tensor.detach().cpu().contiguous()
        if array.dtype == torch.bfloat16:
            array = array.float()
        digest.update(array.numpy().tobytes())
    return digest.hexdigest()[:16]


def resolve_layer(module, layer):
    """The module named ``layer`` (``None`` is resolved later by probing)."""
    if layer is None:
        return None
    modules = dict(module.named_modules())
    if layer not in modules or layer == "":
        close = difflib.get_close_matches(layer, [n for n in modules if n], n=5)
        hint = f"; close names: {close}" if close else ""
        raise ValueError(f"the model has no layer named {layer!r}{hint}")
    return modules[layer]


def find_feature_layers(module, example):
    """Names of the modules whose output is a spatial feature map
    ``(N, C, h, w)`` with ``h * w > 1``, in the order their forward passes
    finish, by running ``example`` through the model once."""
    finished = []
    handles = []

    def make_hook(name):
        def hook(_module, _inputs, output):
            if (
                isinstance(output, torch.Tensor)
                and output.dim() == 4
                and output.shape[2] * output.shape[3] > 1
            ):
                finished.append(name)

        return hook

    for name, sub in module.named_modules():
        if name:
            handles.append(sub.register_forward_hook(make_hook(name)))
    try:
        with torch.no_grad():
            module(example)
    finally:
        for h in handles:
            h.remove()

    return finished


def probe_image(size=64):
    """A deterministic textured RGB image used to probe a model before any
    real data is read."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
