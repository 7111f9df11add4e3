"""Turning what a user passes as ``model`` into a runnable classifier, and
finding the layer whose maps we explain.

(Over 400 lines: model resolution and layer finding share one trace of the
model and are read together; splitting them would split that trace.)
"""

import difflib
import hashlib
import os
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
import torchvision
from PIL import Image

import fiftyone.utils.torch as fout

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
    # the name-prefix a DataParallel/DistributedDataParallel wrapper added
    # ("module."), removed so that layer names fit the unwrapped weights
    wrapper_prefix: str = field(default="")

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


def resolve_model(model, *, weights=None, classes=None, transforms=None, image_size=None):
    """Normalise the accepted kinds of ``model`` to a :class:`ModelSpec`.

    Parameters
    ----------
    model : torch.nn.Module, str or fiftyone.utils.torch.TorchImageModel
        - a module: used as is (a ``DataParallel`` or
          ``DistributedDataParallel`` wrapper is removed, see
          :func:`unwrap_model`); preprocessing from ``transforms``, else its
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
        class names, overriding the model's; one per logit (two, negative
        then positive, for a single-logit binary model). A list that does not
        fit the model's output is refused when the model is probed.
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

    module, wrapper_prefix = unwrap_model(module)
    if name is None:
        name = type(module).__name__

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

    # the module is left as given (training mode, device, requires_grad):
    # LayerGradientEngine switches it to inference for a run and restores it
    return ModelSpec(
        module=module,
        transforms=transforms,
        classes=[str(c) for c in classes],
        name=name,
        fingerprint=model_fingerprint(module),
        wrapper_prefix=wrapper_prefix,
    )


_WRAPPERS = (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)


def unwrap_model(module):
    """Remove ``torch.nn.DataParallel`` / ``DistributedDataParallel`` wrappers.

    A wrapper adds ``module.`` to every layer and state-dict name, and its
    replicas are copies on which hooks on the original modules never fire;
    maps are computed on the wrapped model itself, so that names and the
    fingerprint are those of the weights unwrapped.

    Returns
    -------
    tuple
        ``(module, prefix)``: the innermost module and the name prefix the
        wrappers had added (``""`` when there was none).
    """
    prefix = ""
    while isinstance(module, _WRAPPERS):
        module = module.module
        prefix += "module."
    return module, prefix


class _rgb_pil_first:
    """torchvision's weight transforms expect tensors or PIL images; ours are
    always PIL, so this is just a named, picklable wrapper."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, image):
        return self.inner(image)


def _is_fiftyone_torch_model(model):
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


# "head:input" names the tensor that goes into module ``head``; used where the
# tensor's producer cannot name it (a module that runs more than once).
INPUT_SUFFIX = ":input"


def split_layer_name(layer):
    """``"head:input"`` -> ``("head", True)``; ``"layer4"`` -> ``("layer4", False)``."""
    if layer.endswith(INPUT_SUFFIX):
        return layer[: -len(INPUT_SUFFIX)], True
    return layer, False


def resolve_layer(module, layer):
    """The module named ``layer`` (``None`` is resolved later by probing).

    ``layer`` may end in ``":input"`` (the tensor going into that module);
    the module is returned either way."""
    if layer is None:
        return None
    name, _ = split_layer_name(layer)
    modules = dict(module.named_modules())
    if name not in modules or name == "":
        close = difflib.get_close_matches(name, [n for n in modules if n], n=5)
        hint = f"; close names: {close}" if close else ""
        raise ValueError(f"the model has no layer named {layer!r}{hint}")
    return modules[name]


@dataclass
class TracedTensor:
    """One tensor seen while tracing a forward pass: a module's output, or
    the first argument going into a module.

    ``shape`` comes from the probe batch, ``shape2`` (if the model accepted
    it) from a second input size; ``layout`` is ``"NCHW"``, ``"NHWC"`` or
    ``None`` (not a 4-D tensor, or undecidable); ``producer`` (inputs only)
    is the module whose output this very tensor object was."""

    name: str
    module: str
    kind: str
    call: int
    order: int
    shape: tuple
    shape2: tuple = None
    layout: str = None
    producer: str = None

    def channels(self):
        return {"NCHW": self.shape[1], "NHWC": self.shape[3]}.get(self.layout)

    def spatial(self):
        return {"NCHW": self.shape[2:4], "NHWC": self.shape[1:3]}.get(self.layout)


@dataclass
class ModelTrace:
    """What :func:`trace_model` saw: ``tensors`` in the order they appeared,
    ``calls`` per module name, the orders at which modules holding their own
    weight matrices / kernels (``>= 2``-D parameters) finished, the model's
    output and the input sizes ``(H, W)`` of the two passes."""

    tensors: list
    calls: dict
    mixing_orders: list
    output: object
    input_hw: tuple
    input_hw2: tuple = None
    pass_through: set = field(default_factory=set)
    mixing_modules: set = field(default_factory=set)


def _second_size(example):
    # 64 more pixels per side: every stride up to 64 changes the extent of a
    # spatial map, and multiples of common window/patch sizes are kept
    h, w = example.shape[-2:]
    return torch.nn.functional.interpolate(
        example[:1].float(), size=(h + 64, w + 64), mode="bilinear", align_corners=False
    ).to(example.dtype)


def trace_model(module, example, *, second_size=True):
    """Run ``example`` through ``module`` once (no gradients) and record every
    module's calls, its 3-D/4-D outputs and its 4-D inputs.

    With ``second_size``, one image of ``example`` enlarged by 64 px per side
    runs too: a dimension that changes with the input size is spatial, one
    that does not is channels, which tells channels-first ``(N, C, h, w)``
    from channels-last ``(N, h, w, C)`` outputs (Swin stages). A model that
    cannot run at that size leaves ``shape2`` empty.

    Raises whatever the model raises on ``example``.
    """
    records = []
    calls = {}
    mixing = []
    produced = {}
    counter = [0]
    named = [(n, m) for n, m in module.named_modules() if n]
    pass_through = {
        n for n, m in named if isinstance(m, (torch.nn.Identity, torch.nn.modules.dropout._DropoutNd))
    }
    own_mixing = {
        n for n, m in named if any(p.dim() >= 2 for p in m.parameters(recurse=False))
    }

    def tick():
        counter[0] += 1
        return counter[0]

    def make_hooks(name, record, shapes):
        def pre(_module, args):
            order = tick()
            x = args[0] if args else None
            if isinstance(x, torch.Tensor) and x.dim() in (3, 4):
                call = (shapes[0].get(name, 0) if shapes else calls.get(name, 0)) + 1
                if record:
                    ref = produced.get(id(x))
                    producer = ref[1] if ref and ref[0]() is x else None
                    records.append(TracedTensor(name + INPUT_SUFFIX, name, "input", call, order, tuple(x.shape), producer=producer))
                else:
                    shapes[1][("input", name, call)] = tuple(x.shape)

        def post(_module, _args, output):
            order = tick()
            if record:
                calls[name] = calls.get(name, 0) + 1
                call = calls[name]
                if name in own_mixing:
                    mixing.append(order)
            else:
                shapes[0][name] = shapes[0].get(name, 0) + 1
                call = shapes[0][name]
            if isinstance(output, torch.Tensor) and output.dim() in (3, 4):
                if record:
                    records.append(TracedTensor(name, name, "output", call, order, tuple(output.shape)))
                    try:
                        produced[id(output)] = (weakref.ref(output), name)
                    except TypeError:  # pragma: no cover - tensors take weak references
                        pass
                else:
                    shapes[1][("output", name, call)] = tuple(output.shape)

        return pre, post

    def run(x, record, shapes=None):
        handles = []
        for name, sub in named:
            pre, post = make_hooks(name, record, shapes)
            handles.append(sub.register_forward_pre_hook(pre))
            handles.append(sub.register_forward_hook(post))
        try:
            with torch.no_grad():
                return module(x)
        finally:
            for h in handles:
                h.remove()

    output = run(example, True)
    trace = ModelTrace(
        records, calls, mixing, output, tuple(example.shape[-2:]),
        pass_through=pass_through, mixing_modules=own_mixing,
    )

    if second_size:
        bigger = _second_size(example)
        shapes = ({}, {})
        try:
            run(bigger, False, shapes)
        except Exception:  # a model fixed to one input size: layouts from proportions
            shapes = None
        if shapes is not None:
            trace.input_hw2 = tuple(bigger.shape[-2:])
            for t in records:
                t.shape2 = shapes[1].get((t.kind, t.module, t.call))
    for t in records:
        if len(t.shape) == 4:
            t.layout = infer_layout(t.shape, trace.input_hw, t.shape2, trace.input_hw2)
    return trace


def _proportional(a, b, height, width):
    # a/height and b/width agree within one cell: the extent of a map whose
    # stride is the same along both axes
    return abs(a * width - b * height) <= max(height, width)


def infer_layout(shape, input_hw, shape2=None, input_hw2=None):
    """``"NCHW"``, ``"NHWC"`` or ``None`` (cannot be told) for a 4-D tensor.

    With a second input size: the dimensions that changed with it are the
    spatial ones. Otherwise (or when no dimension changed, as after adaptive
    pooling) by proportions: the spatial dimensions are in the ratio of the
    input's height and width, within one cell.
    """
    if shape2 is not None and len(shape2) == 4 and input_hw2 is not None and input_hw2 != input_hw:
        changed = tuple(d for d in (1, 2, 3) if shape[d] != shape2[d])
        if changed == (2, 3):
            return "NCHW"
        if changed == (1, 2):
            return "NHWC"
    height, width = input_hw
    first = _proportional(shape[2], shape[3], height, width)
    last = _proportional(shape[1], shape[2], height, width)
    if first != last:
        return "NCHW" if first else "NHWC"
    return None


def _describe_shape(shape):
    return "(N, " + ", ".join(str(s) for s in shape[1:]) + ")"


def feature_map_candidates(trace, *, num_scores=None):
    """The tensors a default layer may be, in execution order, and why the
    others were passed over.

    A candidate is a spatial map (4-D, channels-first or channels-last as
    told by :func:`infer_layout`, more than one position) that

    - comes from a module that runs exactly once per forward pass (the maps
      of a module that runs twice would explain one call only), or, where the
      producing module runs several times, goes into a module that runs once
      (named ``"<module>:input"``);
    - is not a pass-through (``Dropout``/``Identity``: the same tensor as the
      layer before);
    - does not hold the class scores: ``num_scores`` channels with no weight
      matrix or kernel after it (SqueezeNet's final 1x1 convolution, whose
      channels are the logits before pooling).

    Returns
    -------
    tuple
        ``(candidates, skipped)``: a list of :class:`TracedTensor` and a dict
        ``{name: reason}``.
    """
    candidates, skipped = [], {}
    for t in trace.tensors:
        if len(t.shape) != 4:
            continue
        if t.kind == "input":
            # only to name the output of a module that runs several times
            if t.producer is None or trace.calls.get(t.producer, 0) < 2:
                continue
        if trace.calls.get(t.module, 0) != 1:
            skipped[t.name] = f"runs {trace.calls.get(t.module, 0)} times per forward pass"
            continue
        if t.module in trace.pass_through:
            continue
        if t.layout is None:
            skipped[t.name] = f"layout of {_describe_shape(t.shape)} cannot be told"
            continue
        h, w = t.spatial()
        if h * w < 2:
            continue
        if num_scores is not None and t.channels() == num_scores and not any(
            o > t.order for o in trace.mixing_orders
        ):
            skipped[t.name] = f"its {num_scores} channels are the class scores"
            continue
        candidates.append(t)
    return candidates, skipped


def default_layer(trace, *, num_scores=None):
    """The end of the feature trunk: the last of :func:`feature_map_candidates`.

    Raises
    ------
    ValueError
        when the trunk does not end in a spatial map (the model goes on as a
        token sequence after the last candidate, as a ViT after its patch
        embedding: that candidate is an input stem), or there is no candidate;
        the message says what to pass.
    """
    candidates, skipped = feature_map_candidates(trace, num_scores=num_scores)
    last = candidates[-1] if candidates else None
    # learned layers (weight matrices) on a token sequence after the last map:
    # the trunk goes on as tokens (a mere nn.Flatten(2) does not count)
    tokens = [
        t for t in trace.tensors
        if t.kind == "output" and len(t.shape) == 3 and t.shape[1] > 1 and t.shape[2] > 1
        and t.module in trace.mixing_modules and (last is None or t.order > last.order)
    ]
    if tokens:
        seen = f"after {last.name!r} {_describe_shape(last.shape)} " if last else ""
        example = tokens[-1]
        raise ValueError(
            f"the model's feature trunk does not end in a spatial map: {seen}it goes on as a "
            f"token sequence ({example.name!r} outputs {_describe_shape(example.shape)}), so no "
            "default layer is taken (it would be an input stem); pass `layer` (a module whose "
            "output holds one token per image patch, e.g. the last block's first norm) and "
            "`reshape` (a callable turning that output into (N, C, h, w))"
        )
    if last is None:
        why = "".join(f"; {name!r}: {reason}" for name, reason in list(skipped.items())[-5:])
        raise ValueError(
            "the model has no layer that runs once per forward pass and produces a spatial "
            f"feature map (N, C, h, w) or (N, h, w, C){why}; pass `layer` explicitly"
        )
    return last


def find_feature_layers(module, example, *, num_scores=None):
    """Names of the tensors a default layer may be (see
    :func:`feature_map_candidates`), in execution order, by running
    ``example`` through the model."""
    candidates, _ = feature_map_candidates(trace_model(module, example), num_scores=num_scores)
    return [t.name for t in candidates]


def probe_image(size=64):
    """A deterministic textured RGB image used to probe a model before any
    real data is read."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
