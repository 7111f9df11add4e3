"""Running a classifier so that we get the target layer's activations and the
target logit's gradient with respect to them -- and nothing more.

Autograd records only what happens *after* the target layer: parameters are
frozen for the duration and the layer's output is cut from the graph and made
a fresh leaf. The backward pass therefore touches only the network's head, and
the trunk runs at the cost of plain inference (DESIGN.md section 8).
"""

import contextlib
from dataclasses import dataclass

import torch

from .models import find_feature_layers, probe_image, resolve_layer


@dataclass
class LayerPass:
    """What one batch yields: ``logits (B, K)``, ``targets (B,)``,
    ``activations`` and ``gradients`` ``(B, C, h, w)``."""

    logits: torch.Tensor
    targets: torch.Tensor
    activations: torch.Tensor
    gradients: torch.Tensor


def _logits_of(output):
    # classifiers sometimes return auxiliary outputs alongside the logits
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, (tuple, list)) and output:
        return _logits_of(output[0])
    if isinstance(output, dict) and "logits" in output:
        return output["logits"]
    raise TypeError(f"cannot find logits in model output of type {type(output)}")


class LayerGradientEngine:
    """Runs ``spec.module`` on batches and returns :class:`LayerPass` results.

    Parameters
    ----------
    spec : ModelSpec
    layer : str, optional
        module name; default: the end of the convolutional trunk (the last
        module, in execution order, whose output is a spatial feature map).
    device : str or torch.device, optional
        default: CUDA when available, else CPU.

    Raises
    ------
    ValueError
        for an unknown or non-convolutional layer, or a model that cannot run
        on a probe image; raised at construction, before any data is written.
    """

    def __init__(self, spec, layer=None, device=None):
        self.spec = spec
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.module = spec.module.to(self.device).eval()

        example = self.preprocess(probe_image(224))[None].to(self.device)
        if layer is None:
            try:
                candidates = find_feature_layers(self.module, example)
            except Exception as e:
                raise ValueError(f"the model cannot run on a probe image: {e}") from e
            if not candidates:
                raise ValueError(
                    "the model has no layer producing a spatial feature map; "
                    "pass `layer` explicitly"
                )
            layer = candidates[-1]
        self.layer_name = layer
        self.layer = resolve_layer(self.module, layer)

        try:
            probe = self.run(example)
        except (ValueError, TypeError):
            raise
        except Exception as e:
            raise ValueError(f"the model cannot run on a probe image: {e}") from e
        self.num_classes = probe.logits.shape[1]
        self.feature_shape = tuple(probe.activations.shape[1:])

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

    def run(self, batch, targets=None):
        """Forward ``batch`` and differentiate each image's target logit
        (default: its predicted class) with respect to the layer output.

        Parameters
        ----------
        batch : torch.Tensor
            ``(B, 3, H, W)`` preprocessed images on ``self.device``.
        targets : torch.Tensor, optional
            ``(B,)`` class indices; entries ``< 0`` mean "predicted".
        """
        captured = {}

        def hook(_module, _inputs, output):
            if (
                not isinstance(output, torch.Tensor)
                or output.dim() != 4
                or output.shape[2] * output.shape[3] < 2
            ):
                raise ValueError(
                    f"layer {self.layer_name!r} is not convolutional: its "
                    f"output is {_describe(output)}, not a (N, C, h, w) map "
                    "with spatial extent"
                )
            leaf = output.detach().requires_grad_(True)
            captured["activations"] = leaf
            # a clone so that in-place ops after the layer don't touch the leaf
            return leaf.clone()

        handle = self.layer.register_forward_hook(hook)
        try:
            with self._frozen(), torch.enable_grad():
                logits = _logits_of(self.module(batch))
                if "activations" not in captured:
                    raise ValueError(
                        f"layer {self.layer_name!r} is not used in the "
                        "model's forward pass"
                    )
                if logits.dim() != 2:
                    raise ValueError(
                        f"the model must return (B, num_classes) logits; got "
                        f"shape {tuple(logits.shape)}"
                    )
                predicted = logits.argmax(dim=1)
                if targets is None:
                    targets = predicted
                else:
                    targets = torch.where(targets >= 0, targets, predicted)
                selected = logits.gather(1, targets[:, None]).sum()
                activations = captured["activations"]
                if not selected.requires_grad:
                    raise ValueError(
                        f"the logits do not depend on layer {self.layer_name!r}"
                    )
                (gradients,) = torch.autograd.grad(selected, activations)
        finally:
            handle.remove()

        return LayerPass(logits.detach(), targets, activations.detach(), gradients)


def _describe(output):
    if isinstance(output, torch.Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    return f"a {type(output).__name__}"
