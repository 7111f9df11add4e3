"""Running a classifier so that we get the target layer's activations and the
target logit's gradient with respect to them -- and nothing more.

Autograd records only what happens *after* the target layer: parameters are
frozen for the duration and the layer's output is cut from the graph and made
a fresh leaf. The backward pass therefore touches only the network's head, and
the trunk runs at the cost of plain inference (docs/design.md, "Performance").

Before any data is written the model is probed on a real batch
(:class:`LayerGradientEngine`): which output holds the logits, which layer is
explained and in which layout, whether it runs once per forward pass, and in
which precision. Whatever cannot be read right is refused there.

(Over 400 lines: one class, the engine, whose probe, hooks and restore
share the model state they change; it reads best whole.)
"""

import contextlib
from dataclasses import dataclass

import torch

from .models import (
    default_layer,
    probe_image,
    resolve_layer,
    split_layer_name,
    trace_model,
    _describe_shape,
)


@dataclass
class LayerPass:
    """What one batch yields, all float32 whatever the model's precision:
    ``logits (B, K)`` class scores (for a single-logit binary model the two
    columns ``(-z, z)``), ``probabilities (B, K)`` (softmax, or
    ``(1 - sigmoid(z), sigmoid(z))``), ``targets (B,)``, ``activations`` and
    ``gradients`` ``(B, C, h, w)`` (channels first, after any ``reshape``)."""

    logits: torch.Tensor
    targets: torch.Tensor
    activations: torch.Tensor
    gradients: torch.Tensor
    probabilities: torch.Tensor = None


# -- reading the model's output ----------------------------------------------


def _output_tensors(output, path=()):
    """``(path, tensor)`` for every tensor in a model output: a tensor, an
    object with ``.logits`` (Hugging Face), a dict, or a tuple/list."""
    if isinstance(output, torch.Tensor):
        return [(path, output)]
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return [(path + (("attr", "logits"),), logits)]
    if isinstance(output, dict):
        if isinstance(output.get("logits"), torch.Tensor):
            return [(path + (("key", "logits"),), output["logits"])]
        found = []
        for key, value in output.items():
            found += _output_tensors(value, path + (("key", key),))
        return found
    if isinstance(output, (tuple, list)):
        found = []
        for i, value in enumerate(output):
            found += _output_tensors(value, path + (("index", i),))
        return found
    return []


def _follow(output, path):
    for kind, step in path:
        output = getattr(output, step) if kind == "attr" else output[step]
    return output


def _path_text(path):
    text = "output"
    for kind, step in path:
        text += f".{step}" if kind == "attr" else f"[{step!r}]"
    return text


def read_logits(output, batch_size, classes):
    """Find the logits in a model output.

    The candidates are the ``(B, K)`` floating-point tensors of the output
    (a tensor, a tuple/list/dict of them, or an object with ``.logits``).
    With ``classes``, the one whose width is ``len(classes)`` (or 1 with two
    classes: a single-logit binary classifier) is taken; without, the only
    candidate. A single logit ``(B, 1)`` is read as a sigmoid binary
    classifier: ``z > 0`` predicts class 1 with confidence ``sigmoid(z)``.

    Returns
    -------
    tuple
        ``(path, width)``: where the logits are (for :func:`_follow`) and
        their width.

    Raises
    ------
    ValueError
        no candidate, several that fit, or ``classes`` that fit none (a
        class list of the wrong length), with the widths found.
    """
    found = [
        (path, t)
        for path, t in _output_tensors(output)
        if t.dim() == 2 and t.shape[0] == batch_size and t.is_floating_point()
    ]
    described = ", ".join(f"{_path_text(p)} {_describe_shape(tuple(t.shape))}" for p, t in found)
    if not found:
        shapes = [tuple(t.shape) for _, t in _output_tensors(output)]
        raise ValueError(
            "cannot find the logits in the model's output: expected a (B, num_classes) "
            f"float tensor for a batch of B = {batch_size}; got {type(output).__name__}"
            + (f" with tensors of shapes {shapes}" if shapes else "")
        )
    if classes:
        k = len(classes)
        # one logit is always a binary classifier: it needs two class names
        fit = [(p, t) for p, t in found if (t.shape[1] == k != 1) or (t.shape[1] == 1 and k == 2)]
        if not fit:
            if len(found) == 1 and found[0][1].shape[1] == 1:
                raise ValueError(
                    f"the model returns a single logit (B, 1), read as a binary classifier, but "
                    f"`classes` has {k} name(s); pass two: [negative, positive]"
                )
            raise ValueError(
                f"`classes` has {k} names but no output of the model has that width "
                f"(found {described}); pass one class name per logit"
            )
        if len(fit) > 1:
            raise ValueError(
                f"several outputs of the model fit the {k} classes ({described}); the "
                "logits cannot be told apart: wrap the model so that it returns only the logits"
            )
        path, t = fit[0]
        return path, int(t.shape[1])
    if len(found) > 1:
        raise ValueError(
            f"the model returns several (B, K) tensors ({described}); pass `classes` (one "
            "name per logit) so that the logits can be told apart, or wrap the model so "
            "that it returns only the logits"
        )
    path, t = found[0]
    return path, int(t.shape[1])


# -- leaving the user's model as it was --------------------------------------


class _ModelState:
    """Training flags, parameter/buffer devices and ``requires_grad`` of a
    module, to put back after a run."""

    def __init__(self, module):
        self.training = {name: m.training for name, m in module.named_modules()}
        self.requires_grad = {name: p.requires_grad for name, p in module.named_parameters()}
        self.devices = {
            name: t.device
            for name, t in list(module.named_parameters()) + list(module.named_buffers())
        }

    def restore(self, module):
        for name, m in module.named_modules():
            if name in self.training:
                m.training = self.training[name]
        for name, p in module.named_parameters():
            if name in self.requires_grad:
                p.requires_grad_(self.requires_grad[name])
        devices = set(self.devices.values())
        if len(devices) == 1:
            module.to(next(iter(devices)))
        elif devices:  # a model spread over devices: each tensor back where it was
            for prefix, m in module.named_modules():
                stem = prefix + "." if prefix else ""
                for key, p in m._parameters.items():
                    if p is not None and stem + key in self.devices:
                        p.data = p.data.to(self.devices[stem + key])
                for key, b in m._buffers.items():
                    if b is not None and stem + key in self.devices:
                        m._buffers[key] = b.to(self.devices[stem + key])


def _model_device(module):
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return torch.device("cpu")


def _input_dtype(module):
    # a half / bfloat16 model takes inputs of its own precision
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


class LayerGradientEngine:
    """Runs ``spec.module`` on batches and returns :class:`LayerPass` results.

    The model is probed at construction, on ``example`` (a real batch) or a
    synthetic image: its output (:func:`read_logits`), the layer, its layout
    and call count, and a full gradient pass. The module is switched to
    inference (``eval()``, on ``device``) for the engine's use; :meth:`restore`
    (or leaving the engine as a context manager) puts back its training
    flags, device and ``requires_grad`` flags.

    Parameters
    ----------
    spec : ModelSpec
    layer : str, optional
        module name, or ``"<module>:input"`` for the tensor going into a
        module. Its output must be a spatial map, channels-first
        ``(N, C, h, w)`` or channels-last ``(N, h, w, C)`` (told apart by
        probing two input sizes, see :func:`fiftyone_plugin.maps.models.infer_layout`),
        unless ``reshape`` is given. The module must run exactly once per
        forward pass. Default: the end of the feature trunk
        (:func:`fiftyone_plugin.maps.models.default_layer`): never an input stem,
        a module that runs more than once, or a layer whose channels are the
        class scores.
    device : str or torch.device, optional
        default: the model's device if it is not the CPU, else CUDA when
        available, else CPU.
    reshape : callable, optional
        ``tensor -> (N, C, h, w)`` tensor, applied to the layer's output and
        to its gradient (as ``reshape_transform`` in pytorch-grad-cam), for
        layers whose output is not a map, e.g. ViT tokens ``(N, 1 + h*w, C)``:
        ``lambda t: t[:, 1:].reshape(len(t), 14, 14, -1).permute(0, 3, 1, 2)``.
        It must only rearrange or drop entries (what is dropped, e.g. a class
        token, gets no contribution). Needs an explicit ``layer``.
    example : torch.Tensor, optional
        ``(B, 3, H, W)`` preprocessed images to probe with; default one
        synthetic image.

    Attributes
    ----------
    layer_name : str
        without any ``DataParallel`` prefix.
    layout : str
        ``"NCHW"``, ``"NHWC"`` or ``"reshape"``.
    binary : bool
        a single-logit (sigmoid) binary classifier.
    output_name : str
        where the logits were found, e.g. ``"output[1]"``.
    feature_shape : tuple
        ``(C, h, w)`` on the probe.
    num_classes : int
        columns of :attr:`LayerPass.logits`.
    probe_images : int
        real images the model was probed on (0: the synthetic image).

    Raises
    ------
    ValueError
        for an unknown layer, one that is not a spatial map, runs more than
        once or does not reach the logits, a layout that cannot be told, an
        output whose logits cannot be found or do not fit the class list, or
        a model that cannot run on the probe; raised at construction, before
        any data is written, with the model restored.
    """

    def __init__(self, spec, *, layer=None, device=None, reshape=None, example=None):
        self.spec = spec
        self.module = spec.module
        self.reshape = reshape
        if reshape is not None and not callable(reshape):
            raise ValueError(f"`reshape` must be a callable; got {type(reshape).__name__}")
        if device is None:
            own = _model_device(self.module)
            device = own if own.type != "cpu" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = torch.device(device)
        self._saved = None
        try:
            self._prepare()
            # how many real images the model was read on (0: a synthetic one)
            self.probe_images = 0 if example is None else int(example.shape[0])
            if example is None:
                example = self.preprocess(probe_image(224))[None]
            self._probe(example, layer)
        except BaseException:
            self.restore()
            raise

    # -- model state ----------------------------------------------------------

    def _prepare(self):
        if self._saved is None:
            self._saved = _ModelState(self.module)
            self.module.eval()
            self.module.to(self.device)
            self.input_dtype = _input_dtype(self.module)

    def restore(self):
        """Put the model back as it was given (training flags, device,
        ``requires_grad``). A later :meth:`run` prepares it again."""
        if self._saved is not None:
            self._saved.restore(self.module)
            self._saved = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore()

    # -- probing --------------------------------------------------------------

    def _probe(self, example, layer):
        example = example.to(self.device, self.input_dtype)
        batch_size = example.shape[0]
        try:
            trace = trace_model(self.module, example)
        except Exception as e:
            raise ValueError(
                f"the model cannot run on a probe image (the first images, preprocessed): "
                f"{type(e).__name__}: {e}"
            ) from e

        self.output_path, width = read_logits(trace.output, batch_size, self.spec.classes)
        self.output_name = _path_text(self.output_path)
        self.binary = width == 1
        self.logit_width = width

        if layer is None:
            if self.reshape is not None:
                raise ValueError("`reshape` needs an explicit `layer`: the layer whose output it turns into a map")
            chosen = default_layer(trace, num_scores=width)
            self.layer_name, self.layout = chosen.name, chosen.layout
        else:
            self.layer_name, self.layout = self._check_layer(trace, layer, batch_size)
        module_name, self.layer_input = split_layer_name(self.layer_name)
        self.layer = resolve_layer(self.module, module_name)

        try:
            probe = self.run(example)
        except (ValueError, TypeError):
            raise
        except Exception as e:
            raise ValueError(
                f"the model cannot run on a probe image (the first images, preprocessed) with "
                f"layer {self.layer_name!r} explained: {type(e).__name__}: {e}"
            ) from e
        self.num_classes = probe.logits.shape[1]
        self.feature_shape = tuple(probe.activations.shape[1:])

    def _check_layer(self, trace, layer, batch_size):
        name, as_input = split_layer_name(layer)
        prefix = self.spec.wrapper_prefix
        modules = dict(self.module.named_modules())
        # names given through a DataParallel wrapper ("module.layer4")
        while prefix and name.startswith("module.") and name not in modules:
            name, prefix = name[len("module."):], prefix[len("module."):]
        layer = name + (":input" if as_input else "")
        resolve_layer(self.module, layer)

        calls = trace.calls.get(name, 0)
        if calls == 0:
            raise ValueError(f"layer {name!r} is not used in the model's forward pass")
        if calls > 1:
            hint = ""
            consumers = [
                t.name for t in trace.tensors
                if t.kind == "input" and t.producer == name and trace.calls.get(t.module) == 1
            ]
            if consumers and not as_input:
                hint = f" (its last output goes into {consumers[-1]!r}, which runs once)"
            raise ValueError(
                f"layer {name!r} runs {calls} times in one forward pass of the model; its maps "
                "would explain only one of those calls and lose the others' share of the logit. "
                f"Choose a layer that runs once per forward pass{hint}"
            )
        kind = "input" if as_input else "output"
        seen = [t for t in trace.tensors if t.module == name and t.kind == kind]
        if not seen:
            what = "input" if as_input else "output"
            raise ValueError(
                f"layer {layer!r} is not convolutional: its {what} is not a (N, C, h, w) map "
                "with spatial extent (nor a 3-D tensor that `reshape` could turn into one)"
            )
        traced = seen[0]
        if self.reshape is not None:
            return layer, "reshape"
        if len(traced.shape) != 4:
            raise ValueError(
                f"layer {layer!r} is not convolutional: its output is {_describe_shape(traced.shape)}, "
                "not a (N, C, h, w) map with spatial extent; for a transformer's tokens pass "
                "`reshape` (a callable turning them into (N, C, h, w))"
            )
        if traced.layout is None:
            raise ValueError(
                f"cannot tell whether layer {layer!r}'s output {_describe_shape(traced.shape)} is "
                "channels-first (N, C, h, w) or channels-last (N, h, w, C): the model does not run "
                "at a second input size and both readings fit the input's proportions; pass "
                "`reshape` (e.g. lambda t: t.permute(0, 3, 1, 2) for channels-last)"
            )
        h, w = traced.spatial()
        if h * w < 2:
            raise ValueError(
                f"layer {layer!r} is not convolutional: its output is {_describe_shape(traced.shape)}, "
                "not a (N, C, h, w) map with spatial extent"
            )
        return layer, traced.layout

    # -- running --------------------------------------------------------------

    def preprocess(self, image):
        tensor = self.spec.transforms(image)
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != 3:
            raise ValueError(
                "the model's transforms must turn an image into a (3, H, W) "
                f"tensor; got {getattr(tensor, 'shape', type(tensor))}"
            )
        return tensor

    @contextlib.contextmanager
    def _frozen(self):
        params = [p for p in self.module.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def _scores(self, output):
        logits = _follow(output, self.output_path)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] != self.logit_width:
            raise ValueError(
                f"the model's logits ({self.output_name}) changed shape: expected "
                f"(B, {self.logit_width}), got {getattr(logits, 'shape', type(logits))}"
            )
        if self.binary:
            # the explained score of class 0 is the negated logit, of class 1 the logit
            return torch.cat([-logits, logits], dim=1)
        return logits

    def _to_nchw(self, tensor):
        if self.layout == "NHWC":
            return tensor.permute(0, 3, 1, 2)
        if self.layout == "reshape":
            out = self.reshape(tensor)
            if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[0] != tensor.shape[0] \
                    or out.shape[2] * out.shape[3] < 2:
                raise ValueError(
                    f"`reshape` must turn layer {self.layer_name!r}'s output "
                    f"{_describe_shape(tuple(tensor.shape))} into a (N, C, h, w) map with spatial "
                    f"extent; got {getattr(out, 'shape', type(out))}"
                )
            return out
        return tensor

    def run(self, batch, targets=None):
        """Forward ``batch`` and differentiate each image's target score
        (default: its predicted class) with respect to the layer output.

        Parameters
        ----------
        batch : torch.Tensor
            ``(B, 3, H, W)`` preprocessed images (moved to ``self.device`` and
            the model's precision here).
        targets : torch.Tensor, optional
            ``(B,)`` class indices; entries ``< 0`` mean "predicted".
        """
        self._prepare()
        captured = {"calls": 0}

        def capture(tensor):
            captured["calls"] += 1
            leaf = tensor.detach().requires_grad_(True)
            captured["activations"] = leaf
            # a clone so that in-place ops after the layer don't touch the leaf
            return leaf.clone()

        def bad(tensor):
            return ValueError(
                f"layer {self.layer_name!r} is not convolutional: its output is "
                f"{_describe(tensor)}, not a (N, C, h, w) map with spatial extent"
            )

        if self.layer_input:
            def pre_hook(_module, args):
                if not args or not isinstance(args[0], torch.Tensor):
                    raise bad(args[0] if args else None)
                return (capture(args[0]),) + tuple(args[1:])

            handle = self.layer.register_forward_pre_hook(pre_hook)
        else:
            def hook(_module, _inputs, output):
                if not isinstance(output, torch.Tensor):
                    raise bad(output)
                return capture(output)

            handle = self.layer.register_forward_hook(hook)

        batch = batch.to(self.device, self.input_dtype)
        try:
            with self._frozen(), torch.inference_mode(False), torch.enable_grad():
                scores = self._scores(self.module(batch))
                if "activations" not in captured:
                    raise ValueError(
                        f"layer {self.layer_name!r} is not used in the model's forward pass"
                    )
                if captured["calls"] > 1:
                    raise ValueError(
                        f"layer {self.layer_name!r} runs {captured['calls']} times in one forward "
                        "pass of the model; choose a layer that runs once"
                    )
                predicted = scores.argmax(dim=1)
                if targets is None:
                    targets = predicted
                else:
                    targets = torch.where(targets.to(predicted.device) >= 0, targets.to(predicted.device), predicted)
                selected = scores.gather(1, targets[:, None]).sum()
                activations = captured["activations"]
                if not selected.requires_grad:
                    raise ValueError(
                        f"the logits do not depend on layer {self.layer_name!r}"
                    )
                (gradients,) = torch.autograd.grad(selected, activations)
        finally:
            handle.remove()

        # the maths downstream are float32 whatever the model's precision
        # (bfloat16/half weights, or torch.autocast)
        activations = self._to_nchw(activations.detach()).float()
        gradients = self._to_nchw(gradients).float()
        if activations.dim() != 4 or activations.shape[2] * activations.shape[3] < 2:
            raise bad(activations)
        scores = scores.detach().float()
        if self.binary:
            p = torch.sigmoid(scores[:, 1:])
            probabilities = torch.cat([1 - p, p], dim=1)
        else:
            probabilities = torch.softmax(scores, dim=1)
        return LayerPass(scores, targets, activations, gradients, probabilities)


def _describe(output):
    if isinstance(output, torch.Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    return f"a {type(output).__name__}"
