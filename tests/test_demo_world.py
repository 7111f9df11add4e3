"""Tests of the concept world, its model and the simulated annotators.

No MongoDB is needed: only the pure generator, the committed weights and the
annotator logic are exercised here.
"""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from fiftyone_plugin import demo
from fiftyone_plugin.demo import annotators, model, world


def _render(seed, class_index=0, with_cue=True, size=128):
    return world.render_creature(np.random.default_rng(seed), class_index, with_cue, size)


# --- generator ---------------------------------------------------------------


def test_classes_combine_head_shape_and_body_pattern():
    assert len(world.CLASSES) == 6
    assert world.CUE_CLASS in world.CLASSES
    assert world.PART_NAMES == {1: "head", 2: "body", 3: "sun"}
    for k, name in enumerate(world.CLASSES):
        head, body = world.class_attributes(k)
        assert name == f"{head}_{body}"
    assert {world.class_attributes(k)[0] for k in range(6)} == set(world.HEAD_SHAPES)
    assert {world.class_attributes(k)[1] for k in range(6)} == set(world.BODY_PATTERNS)


def test_render_is_deterministic_and_seed_dependent():
    a = _render(7, 3)
    b = _render(7, 3)
    c = _render(8, 3)
    assert a[0].tobytes() == b[0].tobytes()
    assert a[1].tobytes() == b[1].tobytes()
    assert a[2] == b[2]
    assert a[0].tobytes() != c[0].tobytes()


def test_render_shapes_and_dtypes():
    for size in (64, 128):
        image, mask, info = _render(1, 2, size=size)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        assert mask.shape == (size, size) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1, 2, 3}
        assert info["head_shape"] == "triangle" and info["body_pattern"] == "striped"


def test_render_rejects_bad_inputs():
    with pytest.raises(ValueError):
        _render(0, class_index=6)
    with pytest.raises(TypeError):
        world.render_creature(0, 0, True)
    with pytest.raises(ValueError):
        _render(0, size=16)


def test_cue_only_adds_the_sun():
    # Same generator state: identical creature, the sun is the only change.
    with_sun = _render(11, 4, with_cue=True)
    without = _render(11, 4, with_cue=False)
    sun = with_sun[1] == 3
    assert sun.any() and not (without[1] == 3).any()
    changed = (with_sun[0] != without[0]).any(axis=2)
    assert not changed[~sun].any()
    assert np.array_equal(with_sun[1][~sun], without[1][~sun])


def test_masks_align_with_pixels():
    for seed in range(12):
        image, mask, info = _render(seed, seed % 6, with_cue=True)
        head, body, sun = mask == 1, mask == 2, mask == 3
        assert head.sum() > 50 and body.sum() > 300 and sun.sum() > 30
        # The sun is yellow: bright red and green, little blue.
        rgb = image[sun].astype(float)
        yellow = (rgb[:, 0] > 200) & (rgb[:, 1] > 170) & (rgb[:, 2] < 90)
        assert yellow.mean() > 0.95
        # ...and sits in the reported corner.
        rows, cols = np.nonzero(sun)
        top = rows.mean() < 64
        left = cols.mean() < 64
        expected = f"{'top' if top else 'bottom'}_{'left' if left else 'right'}"
        assert info["cue_corner"] == expected
        # Boxes are relative [x, y, w, h] of the visible part pixels.
        x, y, w, h = info["boxes"]["head"]
        rows, cols = np.nonzero(head)
        assert x == pytest.approx(cols.min() / 128) and w == pytest.approx(
            (cols.max() + 1 - cols.min()) / 128
        )
        assert y == pytest.approx(rows.min() / 128) and h == pytest.approx(
            (rows.max() + 1 - rows.min()) / 128
        )
    _, mask, info = _render(3, with_cue=False)
    assert not (mask == 3).any()
    assert info["cue_corner"] is None and "sun" not in info["boxes"]


def test_body_pattern_shows_in_pixels():
    # Stripes and dots are two-colour patterns: body pixels are not flat.
    for seed in range(6):
        image, mask, _ = _render(seed, seed % 6, with_cue=False)
        body = image[mask == 2].astype(float)
        assert body.std(axis=0).max() > 20


def test_generate_split_is_deterministic_and_prefix_stable():
    a = world.generate_split("test", 8, seed=3)
    b = world.generate_split("test", 8, seed=3)
    c = world.generate_split("test", 5, seed=3)
    assert a.images.tobytes() == b.images.tobytes()
    assert a.masks.tobytes() == b.masks.tobytes()
    assert np.array_equal(a.images[:5], c.images)
    assert len(a) == 8 and a.images.shape == (8, 128, 128, 3)
    assert list(a.labels) == [i % 6 for i in range(8)]
    assert np.array_equal(a.has_cue, [d["has_cue"] for d in a.infos])
    # Train and test never share images.
    t = world.generate_split("train", 8, seed=3)
    assert not any(np.array_equal(x, y) for x, y in zip(a.images, t.images))


def test_generate_split_cue_override():
    forced = world.generate_split("train", 12, seed=0, cue=True)
    none = world.generate_split("train", 12, seed=0, cue=False)
    assert forced.has_cue.all() and not none.has_cue.any()
    assert all((m == 3).any() for m in forced.masks)
    assert not any((m == 3).any() for m in none.masks)
    with pytest.raises(ValueError):
        world.generate_split("val", 3)


def _cue_flags(split, n, seed=0):
    # Only the cue decision matters here: skip rendering for speed.
    flags, labels = [], []
    for i in range(n):
        ss = np.random.SeedSequence([seed, world._SPLIT_CODES[split], i])
        cue_rng = np.random.default_rng(ss.spawn(2)[0])
        labels.append(i % 6)
        flags.append(cue_rng.random() < world.cue_probability(split, i % 6))
    return np.array(flags), np.array(labels)


def test_cue_statistics_of_splits():
    cue_idx = world.CLASSES.index(world.CUE_CLASS)
    flags, labels = _cue_flags("train", 6000)
    assert flags[labels == cue_idx].mean() == pytest.approx(0.85, abs=0.04)
    assert flags[labels != cue_idx].mean() == pytest.approx(0.03, abs=0.015)
    flags, labels = _cue_flags("test", 6000)
    for k in range(6):
        assert flags[labels == k].mean() == pytest.approx(0.5, abs=0.06)


def test_cue_flags_match_generated_split():
    split = world.generate_split("train", 60, seed=0)
    flags, _ = _cue_flags("train", 60)
    assert np.array_equal(split.has_cue, flags)


# --- annotators ----------------------------------------------------------------


def test_true_concepts():
    assert annotators.true_concept(0, "round", "striped") == annotators.NOT_NAMEABLE
    assert annotators.true_concept(1, "round", "striped") == "round head"
    assert annotators.true_concept(1, "triangle", "dotted") == "triangular head"
    assert annotators.true_concept(2, "square", "dotted") == "dotted body"
    assert annotators.true_concept(3, "square", "striped") == "sun"
    with pytest.raises(ValueError):
        annotators.true_concept(4, "round", "striped")


def test_default_annotators_use_different_words():
    anns = demo.default_annotators()
    assert [a.name for a in anns] == ["ann_alice", "ann_bob", "ann_carol"]
    for a in anns:
        assert re.match(r"^[A-Za-z][A-Za-z0-9_]*$", a.name)
        assert 0 < a.error_rate <= 0.15 and 0 <= a.skip_rate <= 0.1
    words = [set(a.vocabulary.values()) for a in anns]
    assert all(len(w) == len(annotators.CONCEPTS) for w in words)
    assert not (words[0] & words[1]) and not (words[0] & words[2]) and not (words[1] & words[2])
    # The same map gets each annotator's own word for the same concept.
    perfect = [
        annotators.SimulatedAnnotator(a.name, vocabulary=a.vocabulary) for a in anns
    ]
    names = [p.name_map(1, "round", "striped") for p in perfect]
    assert names == ["round head", "circle face", "blob head"]


def test_vocabulary_deterministic_from_name_and_seed():
    a = annotators.SimulatedAnnotator("x1", seed=5)
    b = annotators.SimulatedAnnotator("x1", seed=5)
    assert a.vocabulary == b.vocabulary
    for concept, word in a.vocabulary.items():
        assert word in annotators.SYNONYMS[concept]
    vocabs = {
        tuple(annotators.SimulatedAnnotator(f"a{k}").vocabulary.values())
        for k in range(10)
    }
    assert len(vocabs) > 1
    custom = annotators.SimulatedAnnotator("c", vocabulary={"sun": "daystar"})
    assert custom.name_map(3, "round", "dotted") == "daystar"


def test_annotator_validation():
    for bad in ("", "1abc", "has space", "a-b", None):
        with pytest.raises(ValueError):
            annotators.SimulatedAnnotator(bad)
    with pytest.raises(ValueError):
        annotators.SimulatedAnnotator("a", error_rate=1.5)
    with pytest.raises(ValueError):
        annotators.SimulatedAnnotator("a", skip_rate=-0.1)
    with pytest.raises(ValueError):
        annotators.SimulatedAnnotator("a", vocabulary={"sun": "x", "dotted body": "x"})
    with pytest.raises(ValueError):
        annotators.SimulatedAnnotator("a", vocabulary={"wing": "x"})


def test_perfect_annotator_names_every_part():
    ann = annotators.SimulatedAnnotator("ann", vocabulary={c: c for c in annotators.CONCEPTS})
    assert ann.name_map(0, "square", "dotted") == annotators.NOT_NAMEABLE
    assert ann.name_map(1, "square", "dotted") == "square head"
    assert ann.name_map(2, "square", "dotted") == "dotted body"
    assert ann.name_map(3, "square", "dotted") == "sun"
    quiet = annotators.SimulatedAnnotator("q", name_background=False)
    assert quiet.name_map(0, "round", "striped") is None


def test_error_and_skip_rates():
    ann = annotators.SimulatedAnnotator(
        "noisy", error_rate=0.2, skip_rate=0.1, seed=1,
        vocabulary={c: c for c in annotators.CONCEPTS},
    )
    answers = [ann.name_map(2, "round", "striped", key=i) for i in range(5000)]
    skipped = np.mean([a is None for a in answers])
    named = [a for a in answers if a is not None]
    wrong = np.mean([a != "striped body" for a in named])
    assert skipped == pytest.approx(0.1, abs=0.02)
    assert wrong == pytest.approx(0.2, abs=0.025)
    # Errors are other concepts, never the truth or the background marker.
    assert set(named) <= set(annotators.CONCEPTS)
    assert len(set(named) - {"striped body"}) == len(annotators.CONCEPTS) - 1

    # Keyed answers are reproducible and independent of call order.
    again = [ann.name_map(2, "round", "striped", key=i) for i in reversed(range(5000))]
    assert again[::-1] == answers

    clean = annotators.SimulatedAnnotator("clean")
    assert all(
        clean.name_map(3, "round", "dotted") == clean.vocabulary["sun"] for _ in range(200)
    )


def test_part_under_point_exact_cases():
    mask = np.zeros((10, 10), np.uint8)
    mask[2:4, 2:4] = 1  # head
    mask[6:9, 5:9] = 2  # body
    mask[0, 9] = 3  # sun
    # The pixel containing the point wins.
    assert annotators.part_under_point(mask, 0.25, 0.25) == 1
    assert annotators.part_under_point(mask, 0.65, 0.75) == 2
    # x is the column, y the row.
    assert annotators.part_under_point(mask, 0.95, 0.0) == 3
    assert annotators.part_under_point(mask, 0.0, 0.95, tolerance_px=0) == 0
    # Background pixel near a part: tolerance picks the part up.
    assert annotators.part_under_point(mask, 0.45, 0.45, tolerance_px=0) == 0
    assert annotators.part_under_point(mask, 0.45, 0.45, tolerance_px=1) == 1
    # Far from every part.
    assert annotators.part_under_point(mask, 0.05, 0.95, tolerance_px=2) == 0
    # 1.0 is the last pixel, not out of bounds.
    assert annotators.part_under_point(mask, 1.0, 1.0, tolerance_px=0) == 0
    assert annotators.part_under_point(mask, 0.85, 0.85, tolerance_px=0) == 2


def test_part_under_point_majority_and_ties():
    mask = np.zeros((5, 5), np.uint8)
    mask[0, :] = 2
    mask[1, 0] = 1
    mask[4, :2] = 1
    # Centre (2, 2) is background; window of 2 px covers the whole mask:
    # five 2s against three 1s.
    assert annotators.part_under_point(mask, 0.5, 0.5, tolerance_px=2) == 2
    tie = np.zeros((3, 3), np.uint8)
    tie[0, 0], tie[2, 2] = 3, 1
    assert annotators.part_under_point(tie, 0.5, 0.5, tolerance_px=1) == 1


def test_part_under_point_validation():
    with pytest.raises(ValueError):
        annotators.part_under_point(np.zeros((4, 4, 3)), 0.5, 0.5)
    with pytest.raises(ValueError):
        annotators.part_under_point(np.zeros((4, 4)), 1.2, 0.5)
    with pytest.raises(ValueError):
        annotators.part_under_point(np.zeros((4, 4)), 0.5, 0.5, tolerance_px=-1)


def test_annotators_name_generated_parts():
    # End to end on a real image: sample each part's centre and name it.
    image, mask, info = _render(5, 1, with_cue=True)
    ann = annotators.SimulatedAnnotator("ann", vocabulary={c: c for c in annotators.CONCEPTS})
    expected = {1: "round head", 2: "dotted body", 3: "sun"}
    for pid, concept in expected.items():
        rows, cols = np.nonzero(mask == pid)
        k = len(rows) // 2
        x, y = (cols[k] + 0.5) / 128, (rows[k] + 0.5) / 128
        part = annotators.part_under_point(mask, x, y)
        assert part == pid
        assert ann.name_map(part, info["head_shape"], info["body_pattern"]) == concept


# --- model -------------------------------------------------------------------


def test_conceptnet_shapes_and_transforms():
    net = model.ConceptNet()
    assert net.classes == world.CLASSES and net.image_size == 128
    assert isinstance(net.classifier, torch.nn.Linear)
    assert isinstance(net.features, torch.nn.Sequential)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert convs[-1].out_channels == 64
    x = torch.zeros(2, 3, 128, 128)
    assert net.features(x).shape == (2, 64, 16, 16)
    assert net(x).shape == (2, 6)

    image, _, _ = _render(0)
    t = net.transforms(Image.fromarray(image))
    assert t.shape == (3, 128, 128) and t.dtype == torch.float32
    # The PIL path and the batch path used in training agree exactly.
    assert torch.equal(t, model.images_to_tensor(image[None])[0])
    # Any mode and size becomes 3 x 128 x 128.
    gray = Image.fromarray(image).convert("L").resize((200, 150))
    assert net.transforms(gray).shape == (3, 128, 128)
    rgba = Image.fromarray(image).convert("RGBA")
    assert torch.equal(net.transforms(rgba), t)


def test_committed_weights_are_small_and_load():
    import os

    assert os.path.getsize(model.WEIGHTS_PATH) < 1_000_000
    net = demo.load_model()
    assert not net.training
    with pytest.raises(FileNotFoundError):
        demo.load_model("/nonexistent/weights.pt")


def test_committed_weights_accuracy_on_cue_free_test_images():
    net = demo.load_model()
    test = world.generate_split("test", 300, seed=0, cue=False)
    pred, probs = model.predict(net, test.images)
    assert probs.shape == (300, 6)
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    accuracy = (pred == test.labels).mean()
    assert accuracy >= 0.9, accuracy
