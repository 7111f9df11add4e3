"""Unit tests of the contribution maths against hand computations."""

import numpy as np
import pytest
import torch

from fiftyone_plugin.maps import contributions as C
from fiftyone_plugin.maps.engine import LayerGradientEngine
from fiftyone_plugin.maps.models import resolve_model


class GapLinear(torch.nn.Module):
    """conv -> relu -> global average pool -> linear: contributions are exact."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(inplace=True)
        )
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = torch.nn.Linear(4, 3)
        self.transforms = lambda image: torch.from_numpy(
            np.asarray(image.resize((6, 6)), dtype=np.float32) / 255
        ).permute(2, 0, 1)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def test_hand_computed_contributions_on_a_two_channel_map():
    # A: channel 0 is 1 everywhere, channel 1 is 2 on one cell of a 2x2 map;
    # with GAP + linear weights w = (3, -1), dy/dA = w / 4.
    a = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]], [[2.0, 0.0], [0.0, 0.0]]]])
    g = torch.tensor([3.0, -1.0])[None, :, None, None].expand(1, 2, 2, 2) / 4
    c = C.channel_contributions(a, g)
    assert torch.allclose(c, torch.tensor([[3.0, -0.5]]))
    top = C.select_top_maps(c, top_k=2)
    assert top.channels.tolist() == [[0, 1]]
    assert top.keep.tolist() == [[True, False]]  # negative contributions never qualify
    assert top.shares[0, 0].item() == pytest.approx(1.0)


def test_engine_contributions_sum_to_logit_minus_bias_for_gap_linear():
    torch.manual_seed(0)
    net = GapLinear()
    engine = LayerGradientEngine(resolve_model(net), layer="features", device="cpu")
    x = torch.rand(5, 3, 6, 6)
    result = engine.run(x)
    c = C.channel_contributions(result.activations, result.gradients)
    logits = net(x).detach()
    chosen = logits.gather(1, result.targets[:, None]).squeeze(1)
    bias = net.classifier.bias.detach()[result.targets]
    assert torch.allclose(c.sum(1) + bias, chosen, atol=1e-5)
    # and each channel's term is exactly w_yk * mean(A_k)
    feats = net.features(x).detach()
    expected = net.classifier.weight.detach()[result.targets] * feats.mean(dim=(2, 3))
    assert torch.allclose(c, expected, atol=1e-6)
    assert torch.equal(result.targets, logits.argmax(1))


def test_engine_explains_a_given_target_instead_of_the_prediction():
    torch.manual_seed(1)
    net = GapLinear()
    engine = LayerGradientEngine(resolve_model(net), layer="features", device="cpu")
    x = torch.rand(3, 3, 6, 6)
    targets = torch.tensor([2, -1, 0])
    result = engine.run(x, targets)
    predicted = net(x).argmax(1)
    assert result.targets.tolist() == [2, int(predicted[1]), 0]


def test_engine_backward_does_not_reach_layers_before_the_target():
    torch.manual_seed(0)
    net = GapLinear()
    engine = LayerGradientEngine(resolve_model(net), layer="features", device="cpu")
    engine.run(torch.rand(2, 3, 6, 6))
    # nothing upstream recorded a gradient, and parameters are unfrozen again
    assert all(p.grad is None for p in net.parameters())
    assert all(p.requires_grad for p in net.parameters())


def test_default_layer_is_the_end_of_the_convolutional_trunk():
    net = GapLinear()
    engine = LayerGradientEngine(resolve_model(net), device="cpu")
    assert engine.layer_name == "features"
    assert engine.feature_shape == (4, 6, 6)


def test_inplace_activation_after_the_chosen_conv_is_supported():
    torch.manual_seed(0)
    net = GapLinear()
    engine = LayerGradientEngine(resolve_model(net), layer="features.0", device="cpu")
    result = engine.run(torch.rand(2, 3, 6, 6))
    assert result.gradients.shape == (2, 4, 6, 6)


@pytest.mark.parametrize(
    "layer, message",
    [
        ("nope", "no layer named"),
        ("classifier", "not convolutional"),
        ("pool", "not convolutional"),
    ],
)
def test_bad_layers_raise_clear_errors(layer, message):
    with pytest.raises(ValueError, match=message):
        LayerGradientEngine(resolve_model(GapLinear()), layer=layer, device="cpu")


def test_a_model_that_cannot_run_is_reported_before_any_work():
    class Broken(GapLinear):
        def forward(self, x):
            raise RuntimeError("boom")

    with pytest.raises(ValueError, match="cannot run on a probe image"):
        LayerGradientEngine(resolve_model(Broken()), device="cpu")


def test_top_k_and_cumulative_share_cut_off():
    c = torch.tensor([[5.0, 3.0, 1.0, 1.0, -2.0]])
    top = C.select_top_maps(c, top_k=4)
    assert top.channels.tolist() == [[0, 1, 2, 3]]
    assert torch.allclose(top.shares, torch.tensor([[0.5, 0.3, 0.1, 0.1]]))
    # 0.5 reached by the first map alone -> only it is kept
    assert C.select_top_maps(c, top_k=4, cumulative_share=0.5).keep.tolist() == [[True, False, False, False]]
    # 0.8 needs the first two
    assert C.select_top_maps(c, top_k=4, cumulative_share=0.8).keep.tolist() == [[True, True, False, False]]
    assert C.select_top_maps(c, top_k=4, cumulative_share=0.85).keep.tolist() == [[True, True, True, False]]
    with pytest.raises(ValueError):
        C.select_top_maps(c, top_k=0)
    with pytest.raises(ValueError):
        C.select_top_maps(c, top_k=3, cumulative_share=1.5)


def test_region_is_the_component_around_the_peak():
    grid = np.zeros((8, 8))
    grid[1:3, 1:4] = 1.0  # peak blob: rows 1-2, cols 1-3
    grid[1, 2] = 2.0
    grid[6, 6] = 1.5  # a separate, weaker blob above threshold
    grid[3, 4] = 1.0  # touches the peak blob diagonally: part of it
    box, mask, peak = C.map_region(grid, threshold=0.5)
    assert box == [1 / 8, 1 / 8, 4 / 8, 3 / 8]
    assert mask.shape == (3, 4) and mask[:2, :3].all() and mask[2, 3] and mask.sum() == 7
    assert peak == [2.5 / 8, 1.5 / 8]
    assert C.map_region(np.zeros((4, 4))) is None


def test_heatmaps_descriptors_and_sample_heatmap():
    a = torch.zeros(1, 3, 2, 2)
    a[0, 0, 0, 0] = 2.0  # channel 0 fires top-left
    a[0, 1, 1, 1] = 4.0  # channel 1 fires bottom-right
    a[0, 2] = 1.0  # channel 2 everywhere
    g = torch.ones_like(a)
    maps = C.map_heatmaps(a, g, torch.tensor([[1, 0]]))
    assert maps[0, 0].tolist() == [[0, 0], [0, 1]]
    assert maps[0, 1].tolist() == [[1, 0], [0, 0]]
    d = C.map_descriptors(a, maps)
    # the descriptor of the bottom-right map is the activation vector there
    assert d[0, 0].tolist() == [0.0, 4.0, 1.0]
    assert d[0, 1].tolist() == [2.0, 0.0, 1.0]
    whole = C.sample_heatmap(a, g)
    assert torch.allclose(whole[0], torch.tensor([[0.6, 0.2], [0.2, 1.0]]))
    assert C.quantize(maps)[0, 0].tolist() == [[0, 0], [0, 255]]


@pytest.mark.parametrize("vectorised", [True, False])
def test_batched_regions_equal_the_scipy_reference(vectorised):
    torch.manual_seed(0)
    # smooth random maps with several blobs, plus an all-zero map
    maps = C.upsample_maps(torch.rand(40, 6, 6) ** 3)
    maps[7] = 0
    # the data-parallel path (used on GPUs) and the per-map CPU path
    regions = C.map_regions_dense if vectorised else C.map_regions
    valid, boxes, peaks, components = regions(maps, threshold=0.5)
    for i in range(maps.shape[0]):
        reference = C.map_region(maps[i].numpy(), threshold=0.5)
        if reference is None:
            assert not valid[i]
            continue
        box, mask, peak = reference
        assert valid[i]
        assert boxes[i].tolist() == pytest.approx(box)
        assert peaks[i].tolist() == pytest.approx(peak)
        x, y, w, h = (np.array(box) * 64).round().astype(int)
        crop = components[i, y : y + h, x : x + w].numpy()
        assert np.array_equal(crop, mask)
        assert components[i].sum() == mask.sum()  # nothing outside the box

