"""The concept world: a deterministic procedural image world with known parts.

(One module over 400 lines: the world's generator, its ground-truth parts and
the dataset builder share one set of constants and are read together.)

Every image shows one "creature" on a textured background. A creature is a
*head* whose shape is round, triangular or square, attached to an elliptic
*body* whose pattern is striped or dotted. The class is the combination of the
two attributes, so a classifier has to look at both parts. Colours, sizes,
positions and orientations are nuisances.

A spurious cue, a small yellow *sun* in a corner, co-occurs with one class
(:data:`CUE_CLASS`) in the ``"train"`` split and appears at random in the
``"test"`` split, so that a model trained on ``"train"`` makes explainable
mistakes: the untrustworthy example type the plugin has to surface.

Each image comes with a ground-truth part mask (0 background, 1 head, 2 body,
3 sun), so the pipeline can be measured against the truth.

The images need only numpy and PIL; :func:`build_dataset` writes them into
a FiftyOne dataset.
"""

import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

import fiftyone as fo

HEAD_SHAPES = ("round", "triangle", "square")
BODY_PATTERNS = ("striped", "dotted")

#: Class names, ``"<head_shape>_<body_pattern>"``; the index is the label.
CLASSES = [f"{h}_{b}" for h in HEAD_SHAPES for b in BODY_PATTERNS]

#: The class the sun co-occurs with in the ``"train"`` split.
CUE_CLASS = "round_striped"

#: Part ids used in part masks (0 is background).
PART_NAMES = {1: "head", 2: "body", 3: "sun"}
PART_IDS = {v: k for k, v in PART_NAMES.items()}

#: Sun probability in the train split for :data:`CUE_CLASS` and for the others.
TRAIN_CUE_RATE = 0.85
TRAIN_OTHER_CUE_RATE = 0.03
#: Sun probability in the test split, for every class.
TEST_CUE_RATE = 0.5
#: Fraction of images whose head is partly outside the frame (both splits).
PARTIAL_HEAD_RATE = 0.1

SPLITS = ("train", "test")
CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")

# Distinct codes per split so that "train" and "test" never share an image.
_SPLIT_CODES = {"train": 1, "test": 2}

_SUN_COLOR = np.array([255.0, 222.0, 20.0])


def class_attributes(class_index):
    """Return ``(head_shape, body_pattern)`` of a class index."""
    if not 0 <= int(class_index) < len(CLASSES):
        raise ValueError(
            f"class_index must be in [0, {len(CLASSES)}), got {class_index}"
        )
    head, body = CLASSES[int(class_index)].split("_")
    return head, body


def render_creature(rng, class_index, with_cue, size=128):
    """Render one image of the concept world.

    The background and the creature are drawn from ``rng`` before the sun, so
    the same generator state gives the same creature with and without the cue:
    ``render_creature(np.random.default_rng(s), c, True)`` differs from
    ``render_creature(np.random.default_rng(s), c, False)`` only by the sun.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of all randomness.
    class_index : int
        Index into :data:`CLASSES`.
    with_cue : bool
        Whether to draw the spurious sun in a corner.
    size : int, default=128
        Width and height in pixels (at least 32).

    Returns
    -------
    image : ndarray of shape (size, size, 3), dtype uint8
        The RGB image.
    part_mask : ndarray of shape (size, size), dtype uint8
        0 background, 1 head, 2 body, 3 sun (see :data:`PART_NAMES`).
    info : dict
        ``class_index``, ``label``, ``head_shape``, ``body_pattern``,
        ``has_cue``, ``cue_corner`` (None without the cue), ``head_cut``
        (head partly outside the frame, see :data:`PARTIAL_HEAD_RATE`) and
        ``boxes``: part name -> ``[x, y, w, h]`` in relative coordinates
        (FiftyOne's convention) of the visible pixels of that part.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng)}")
    size = int(size)
    if size < 32:
        raise ValueError(f"size must be at least 32, got {size}")
    head_shape, body_pattern = class_attributes(class_index)

    # Geometry is designed at 128 px and scaled, so other sizes look alike.
    s = size / 128.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5

    image = _background(rng, size)
    mask = np.zeros((size, size), np.uint8)

    # Body: a rotated ellipse.
    a = rng.uniform(19, 27) * s
    b = rng.uniform(12, 17) * s
    theta = rng.uniform(-np.pi / 5, np.pi / 5)
    head_r = rng.uniform(11, 14.5) * s
    # Dark outlines make shapes readable whatever the background colour.
    outline = 1.5 * s
    side = rng.choice([-1.0, 1.0])
    # Head centre sits on the body axis, overlapping the body a little.
    head_off = side * (a + 0.45 * head_r)
    ux, uy = np.cos(theta), np.sin(theta)

    # Extent of the creature relative to the body centre, to keep it inside.
    body_hw = np.sqrt((a * ux) ** 2 + (b * uy) ** 2)
    body_hh = np.sqrt((a * uy) ** 2 + (b * ux) ** 2)
    hx, hy = head_off * ux, head_off * uy
    ext = 1.55 * head_r + 2 * outline  # largest head extent (triangle)
    x0 = min(-body_hw, hx - ext)
    x1 = max(body_hw, hx + ext)
    y0 = min(-body_hh, hy - ext)
    y1 = max(body_hh, hy + ext)
    margin = 3 * s
    cx = rng.uniform(margin - x0, size - margin - x1)
    cy = rng.uniform(margin - y0, size - margin - y1)
    # Some creatures walk out of the frame head first. Their head shape is
    # ambiguous, which is what lets a model learn to lean on the sun.
    partial = rng.random() < PARTIAL_HEAD_RATE
    outside = rng.uniform(0.25, 0.65) * head_r
    if partial:
        # The body is at most 36 degrees off horizontal: the head leaves by
        # the left or right edge.
        edge = size + outside if hx > 0 else -outside
        cx = edge - hx

    dx, dy = xx - cx, yy - cy
    u = dx * ux + dy * uy
    v = -dx * uy + dy * ux
    body = (u / (a + outline)) ** 2 + (v / (b + outline)) ** 2 <= 1.0
    body_inside = (u / a) ** 2 + (v / b) ** 2 <= 1.0

    c1, c2 = _contrasting_colors(rng)
    if body_pattern == "striped":
        phi = rng.uniform(0, np.pi)
        period = rng.uniform(6.5, 9.5) * s
        phase = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(phi) + yy * np.sin(phi)
        second = np.sin(2 * np.pi * t / period + phase) > 0
    else:
        spacing = rng.uniform(7.5, 10) * s
        radius = rng.uniform(0.22, 0.3) * spacing
        psi = rng.uniform(0, np.pi)
        ox, oy = rng.uniform(0, spacing, 2)
        p = xx * np.cos(psi) + yy * np.sin(psi) + ox
        q = -xx * np.sin(psi) + yy * np.cos(psi) + oy
        row = np.floor(q / spacing)
        # Staggered rows: a hexagonal-ish dot lattice.
        p = p + (row % 2) * spacing / 2
        pu = np.mod(p, spacing) - spacing / 2
        qv = np.mod(q, spacing) - spacing / 2
        second = pu**2 + qv**2 <= radius**2
    body_rgb = np.where(second[..., None], c2, c1)
    image[body] = _dark(rng)
    image[body_inside] = body_rgb[body_inside]
    mask[body] = PART_IDS["body"]

    # Head: drawn over the body so the two parts meet without a gap.
    hcx, hcy = cx + hx, cy + hy
    # Heads face away from the body (a triangle's tip points outward, a square
    # shows a flat face), with some jitter: shape, not pose, is the attribute.
    head_rot = theta + (0.0 if side > 0 else np.pi) + rng.uniform(-0.3, 0.3)
    if head_shape == "square":
        head_rot += np.pi / 4
    head = _head_mask(head_shape, hcx, hcy, head_r, head_rot, size, pad=outline)
    head_inside = _head_mask(head_shape, hcx, hcy, head_r, head_rot, size)
    head_color = _random_color(rng)
    shade = 1.0 + 0.12 * ((xx - hcx) * 0.6 - (yy - hcy)) / max(head_r, 1.0)
    head_rgb = np.clip(head_color[None, None] * shade[..., None], 0, 255)
    image[head] = _dark(rng)
    image[head_inside] = head_rgb[head_inside]
    mask[head] = PART_IDS["head"]

    # Sensor noise over everything, so flat areas are not perfectly flat. It is
    # drawn before the sun so the sun's draws never change the rest.
    noise = rng.normal(0, 4.0, image.shape)
    cue_corner = None
    if with_cue:
        cue_corner = _draw_sun(rng, image, mask, xx, yy, size, s)
    image = np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)

    boxes = {}
    for pid, pname in PART_NAMES.items():
        box = _relative_box(mask == pid)
        if box is not None:
            boxes[pname] = box
    info = {
        "class_index": int(class_index),
        "label": CLASSES[int(class_index)],
        "head_shape": head_shape,
        "body_pattern": body_pattern,
        "has_cue": bool(with_cue),
        "cue_corner": cue_corner,
        "head_cut": bool(partial),
        "boxes": boxes,
    }
    return image, mask, info


def _random_color(rng):
    """A saturated-enough random RGB colour, as float array of shape (3,)."""
    h = rng.uniform(0, 1)
    sat = rng.uniform(0.35, 0.95)
    val = rng.uniform(0.35, 0.95)
    return _hsv_to_rgb(h, sat, val) * 255.0


def _hsv_to_rgb(h, s, v):
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float64)


def _contrasting_colors(rng):
    """Two pattern colours that differ clearly in brightness."""
    c1 = _random_color(rng)
    lum1 = c1 @ np.array([0.299, 0.587, 0.114])
    # Push the second colour to the other side of mid-grey so the pattern reads.
    c2 = _random_color(rng)
    lum2 = c2 @ np.array([0.299, 0.587, 0.114])
    if abs(lum1 - lum2) < 70:
        target = 35.0 if lum1 > 127 else 220.0
        c2 = np.clip(c2 + (target - lum2), 0, 255)
    return c1, c2


def _background(rng, size):
    """Smooth coloured noise plus soft blotches, as float image."""
    base = rng.uniform(50, 200, 3)
    grid = int(rng.integers(3, 7))
    low = np.clip(base + rng.normal(0, 40, (grid, grid, 3)), 0, 255)
    img = Image.fromarray(low.astype(np.uint8)).resize((size, size), Image.BICUBIC)
    image = np.asarray(img, dtype=np.float64).copy()

    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    for _ in range(int(rng.integers(3, 8))):
        bx, by = rng.uniform(0, size, 2)
        rx, ry = rng.uniform(0.06, 0.22, 2) * size
        alpha = rng.uniform(0.2, 0.5)
        color = _random_color(rng)
        d = ((xx - bx) / rx) ** 2 + ((yy - by) / ry) ** 2
        # Soft edge: blotches are texture, not objects.
        w = alpha * np.clip(1.5 - d, 0, 1)[..., None]
        image = image * (1 - w) + color * w
    return image


def _dark(rng):
    """A dark outline colour."""
    return _random_color(rng) * 0.2


def _head_mask(shape, hcx, hcy, r, rot, size, pad=0.0):
    """Boolean mask of a head of ``shape`` centred at (hcx, hcy).

    ``pad`` grows the shape by that many pixels on every edge (for outlines).
    """
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "round":
        r = r + pad
        draw.ellipse([hcx - r, hcy - r, hcx + r, hcy + r], fill=1)
    else:
        n = 3 if shape == "triangle" else 4
        # Circumradius chosen so all shapes have about the same area; a
        # uniform edge offset needs the circumradius to grow by pad/cos(pi/n).
        rad = r * (1.55 if n == 3 else 1.25) + pad / np.cos(np.pi / n)
        pts = [
            (hcx + rad * np.cos(rot + 2 * np.pi * k / n),
             hcy + rad * np.sin(rot + 2 * np.pi * k / n))
            for k in range(n)
        ]
        draw.polygon(pts, fill=1)
    return np.asarray(canvas, dtype=bool)


def _draw_sun(rng, image, mask, xx, yy, size, s):
    """Draw the sun (disc with rays) into a corner free of the creature."""
    r = rng.uniform(4.5, 6.0) * s
    ray_len = rng.uniform(3.0, 4.5) * s
    n_rays = int(rng.integers(7, 10))
    ray_rot = rng.uniform(0, 2 * np.pi)
    reach = r + 1.0 * s + ray_len
    pad = rng.uniform(1.5, 5.0, 2) * s
    order = rng.permutation(len(CORNERS))

    def centre(corner):
        top, left = corner.startswith("top"), corner.endswith("left")
        x = reach + pad[0] if left else size - reach - pad[0]
        y = reach + pad[1] if top else size - reach - pad[1]
        return x, y

    # Prefer a random corner where the sun does not cover the creature.
    best, best_overlap = None, None
    for k in order:
        corner = CORNERS[k]
        x, y = centre(corner)
        box = mask[
            max(int(y - reach) - 1, 0): int(y + reach) + 2,
            max(int(x - reach) - 1, 0): int(x + reach) + 2,
        ]
        overlap = int(np.count_nonzero(box))
        if best is None or overlap < best_overlap:
            best, best_overlap = corner, overlap
        if overlap == 0:
            break
    x, y = centre(best)

    dx, dy = xx - x, yy - y
    d = np.sqrt(dx**2 + dy**2)
    disc = d <= r
    step = 2 * np.pi / n_rays
    ang = np.mod(np.arctan2(dy, dx) - ray_rot + step / 2, step) - step / 2
    rays = (d >= r + 1.0 * s) & (d <= reach) & (np.abs(ang) * d <= 0.9 * s)
    sun = disc | rays
    color = _SUN_COLOR + rng.uniform(-10, 0, 3) * np.array([0, 1, 0])
    image[sun] = color
    mask[sun] = PART_IDS["sun"]
    return best


def _relative_box(part):
    """``[x, y, w, h]`` relative bounding box of a boolean mask, or None."""
    if not part.any():
        return None
    h, w = part.shape
    rows = np.flatnonzero(part.any(axis=1))
    cols = np.flatnonzero(part.any(axis=0))
    x0, x1 = cols[0], cols[-1] + 1
    y0, y1 = rows[0], rows[-1] + 1
    return [x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h]


def cue_probability(split, class_index):
    """Probability that an image of ``class_index`` in ``split`` has the sun."""
    _check_split(split)
    if split == "test":
        return TEST_CUE_RATE
    if CLASSES[int(class_index)] == CUE_CLASS:
        return TRAIN_CUE_RATE
    return TRAIN_OTHER_CUE_RATE


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


@dataclass
class WorldSplit:
    """Images, part masks, labels and per-image info of one generated split.

    Attributes
    ----------
    images : ndarray of shape (n, size, size, 3), dtype uint8
    masks : ndarray of shape (n, size, size), dtype uint8
    labels : ndarray of shape (n,), dtype int64
        Indices into :data:`CLASSES`.
    has_cue : ndarray of shape (n,), dtype bool
    infos : list of dict
        As returned by :func:`render_creature`, plus ``split`` and ``index``.
    """

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    has_cue: np.ndarray
    infos: list = field(default_factory=list)

    def __len__(self):
        return len(self.labels)


def iter_split(split, n, seed=0, size=128, cue=None, start=0):
    """Yield ``(image, part_mask, info)`` for images ``start .. start + n - 1``.

    Image ``i`` depends only on ``(seed, split, i)``, not on ``n``: a larger
    split extends a smaller one. Classes cycle through :data:`CLASSES`, so
    every split is balanced.

    Parameters
    ----------
    split : {"train", "test"}
        Decides the cue rule (see :func:`cue_probability`).
    n : int
        Number of images.
    seed : int, default=0
    size : int, default=128
    cue : bool or None, default=None
        None follows the split's cue rule; True or False forces the sun on
        every image or on none. The creature is the same either way.
    start : int, default=0
        Index of the first image.
    """
    _check_split(split)
    if int(n) < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    for i in range(int(start), int(start) + int(n)):
        ss = np.random.SeedSequence([int(seed), _SPLIT_CODES[split], i])
        # Separate streams: the cue decision never shifts the rendering.
        cue_rng, render_rng = (np.random.default_rng(c) for c in ss.spawn(2))
        class_index = i % len(CLASSES)
        draw = cue_rng.random() < cue_probability(split, class_index)
        with_cue = draw if cue is None else bool(cue)
        image, mask, info = render_creature(render_rng, class_index, with_cue, size)
        info["split"] = split
        info["index"] = i
        yield image, mask, info


def generate_split(split, n, seed=0, size=128, cue=None, start=0):
    """Generate a whole split in memory.

    Parameters are those of :func:`iter_split`.

    Returns
    -------
    WorldSplit
    """
    images = np.empty((int(n), size, size, 3), np.uint8)
    masks = np.empty((int(n), size, size), np.uint8)
    infos = []
    for k, (image, mask, info) in enumerate(
        iter_split(split, n, seed=seed, size=size, cue=cue, start=start)
    ):
        images[k] = image
        masks[k] = mask
        infos.append(info)
    labels = np.array([d["class_index"] for d in infos], dtype=np.int64)
    has_cue = np.array([d["has_cue"] for d in infos], dtype=bool)
    return WorldSplit(images, masks, labels, has_cue, infos)


def build_dataset(
    name="concept-world",
    num_train=2000,
    num_test=600,
    seed=0,
    images_dir=None,
    overwrite=False,
    persistent=False,
    size=128,
):
    """Write the concept world to disk and load it as a FiftyOne dataset.

    Each sample has the tag ``"train"`` or ``"test"`` and the fields
    ``ground_truth`` (``fo.Classification``), ``head_shape``,
    ``body_pattern``, ``has_cue`` (bool), ``cue_corner`` (str or None),
    ``part_mask`` (``fo.Segmentation`` whose ``mask_path`` is a PNG next to
    the image; 0 background, 1 head, 2 body, 3 sun) and ``parts``
    (``fo.Detections``, one box per visible part).

    Parameters
    ----------
    name : str, default="concept-world"
        Dataset name.
    num_train, num_test : int
        Number of images per split.
    seed : int, default=0
    images_dir : str or None
        Where PNGs go; default ``<fo.config.default_dataset_dir>/<name>``.
    overwrite : bool, default=False
        If a dataset called ``name`` exists: delete and rebuild it when True,
        else return it unchanged.
    persistent : bool, default=False
    size : int, default=128

    Returns
    -------
    fiftyone.core.dataset.Dataset
    """
    if fo.dataset_exists(name):
        if not overwrite:
            return fo.load_dataset(name)
        fo.delete_dataset(name)
    if images_dir is None:
        images_dir = os.path.join(fo.config.default_dataset_dir, name)
    images_dir = os.path.abspath(os.path.expanduser(images_dir))

    samples = []
    for split, n in (("train", num_train), ("test", num_test)):
        split_dir = os.path.join(images_dir, split)
        os.makedirs(split_dir, exist_ok=True)
        for image, mask, info in iter_split(split, n, seed=seed, size=size):
            stem = f"{split}_{info['index']:05d}"
            image_path = os.path.join(split_dir, stem + ".png")
            mask_path = os.path.join(split_dir, stem + "_parts.png")
            Image.fromarray(image).save(image_path)
            Image.fromarray(mask).save(mask_path)
            parts = [
                fo.Detection(label=part, bounding_box=box)
                for part, box in info["boxes"].items()
            ]
            samples.append(
                fo.Sample(
                    filepath=image_path,
                    tags=[split],
                    ground_truth=fo.Classification(label=info["label"]),
                    head_shape=info["head_shape"],
                    body_pattern=info["body_pattern"],
                    has_cue=info["has_cue"],
                    cue_corner=info["cue_corner"],
                    part_mask=fo.Segmentation(mask_path=mask_path),
                    parts=fo.Detections(detections=parts),
                )
            )

    dataset = fo.Dataset(name, persistent=persistent)
    dataset.add_samples(samples)
    dataset.classes = {"ground_truth": list(CLASSES)}
    dataset.mask_targets = {"part_mask": dict(PART_NAMES)}
    dataset.info = {
        "world": "interactive-naming concept world",
        "seed": int(seed),
        "size": int(size),
        "cue_class": CUE_CLASS,
        "part_names": {str(k): v for k, v in PART_NAMES.items()},
    }
    # maps are drawn as filled regions: keep the pictures visible under them
    dataset.app_config.color_scheme = fo.ColorScheme(opacity=0.3)
    dataset.save()
    return dataset
