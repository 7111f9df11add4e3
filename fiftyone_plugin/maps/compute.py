"""``compute_activation_maps``: each image's significant activation maps,
its prediction and a whole-image heatmap, streamed into FiftyOne fields."""

import hashlib
import os
import json
import logging
import re
import time
from datetime import datetime, timezone

import numpy as np
import torch
from bson import ObjectId
from pymongo import UpdateOne

import fiftyone as fo
import fiftyone.core.utils as fou
from fiftyone import ViewField as F

from . import contributions as C
from .engine import LayerGradientEngine
from .geometry import WHOLE_IMAGE, Geometry, GeometryError
from .images import ImageLoadError, load_rgb_image
from .models import resolve_model
from ..runs import register_run, save_run_results
from ..concepts.store import CONCEPT_PREFIX, annotator_of
from ..storage import check_field_name, check_image_collection, declare_map_schema
from .layout import stale_layouts, stale_message

logger = logging.getLogger(__name__)

MAPS_RUN_TYPE = "activation_maps"


def default_field_names(maps_field):
    """The prediction, heatmap and error fields that go with ``maps_field``
    (``actmap_prediction``/``actmap_heatmap`` for the default ``actmaps``)."""
    stem = "actmap" if maps_field == "actmaps" else maps_field
    return {
        "prediction_field": f"{stem}_prediction",
        "heatmap_field": f"{stem}_heatmap",
        "error_field": f"{maps_field}_error",
    }


def compute_activation_maps(
    samples,
    model,
    layer=None,
    maps_field="actmaps",
    top_k=5,
    cumulative_share=None,
    batch_size=16,
    device=None,
    skip_existing=True,
    overwrite=False,
    discard_names=False,
    target_field=None,
    weights=None,
    classes=None,
    transforms=None,
    image_size=None,
    prediction_field=None,
    heatmap_field=None,
    region_threshold=0.5,
    store_descriptors=True,
    num_workers=None,
    progress=None,
    reshape=None,
):
    """Compute the significant activation maps of every image in ``samples``.

    For each image the model's prediction is stored in ``prediction_field``;
    for the target class (the prediction, or ``target_field``'s label where
    present) each channel of ``layer`` gets its contribution to the target
    logit (see :mod:`fiftyone_plugin.maps.contributions`), and the ``top_k``
    channels with the largest positive contributions (stopping early once
    ``cumulative_share`` of the positive contribution is reached) become
    ``fo.Detection`` maps in ``maps_field``. The sum of all positive
    per-position contributions becomes the ``fo.Heatmap`` in
    ``heatmap_field``.

    Each map has: ``layer``, ``channel``, ``rank`` (1 = largest),
    ``contribution``, ``share`` (fraction of the positive contribution),
    ``target`` (the class explained), ``bounding_box`` and ``mask`` (the
    region around the peak where the map is at least ``region_threshold`` of
    its peak), ``peak`` ``[x, y]``, ``heatmap`` (the soft map over the whole
    image with the layer's cell size, uint8) and ``descriptor`` (float16).

    Everything is placed in the frame the App shows: EXIF orientation
    applied, and the layer's grid put where the model's input lies on the
    image (a centre crop leaves the sides unseen: no heatmap, no region
    there), found per image size by :class:`fiftyone_plugin.maps.geometry.Geometry`.
    The run config's ``geometry`` describes how; where it cannot be
    determined it reads ``"unknown: ..."``, a warning is logged and the maps
    are placed on the whole image (per sample: ``geometry_unknown=True`` on
    the maps field, counted in the summary's ``geometry_unknown``).

    Samples whose file cannot be used get a message in ``{maps_field}_error``
    and are skipped; the run goes on. The work is streamed in batches, so
    memory does not grow with the collection, and results are written after
    every batch, so an interrupted run resumes where it stopped.

    Parameters
    ----------
    samples : fiftyone.core.collections.SampleCollection
        an image dataset or view.
    model : torch.nn.Module, str or fiftyone.utils.torch.TorchImageModel
        see :func:`fiftyone_plugin.maps.models.resolve_model`.
    layer : str, optional
        name of a module whose output is a spatial map, channels-first
        ``(N, C, h, w)`` or channels-last ``(N, h, w, C)`` (detected), that
        runs once per forward pass; ``"<module>:input"`` for the tensor going
        into a module. Default: the end of the feature trunk, see
        :class:`fiftyone_plugin.maps.engine.LayerGradientEngine`. Names given
        through a ``DataParallel`` wrapper (``"module.layer4"``) are stored
        unwrapped (``"layer4"``).
    maps_field : str
    top_k : int
    cumulative_share : float, optional
    batch_size : int
    device : str, optional
        ``"cpu"``, ``"cuda"``, ...; default CUDA when available.
    skip_existing : bool
        skip samples already computed with this exact configuration.
    overwrite : bool
        recompute every sample.
    discard_names : bool
        recomputed maps keep the names people gave the old ones when they
        come from the same model, layer, preprocessing and explained class
        (matched by channel per image); where they do not, names would be
        lost, so this raises ``ValueError`` first unless ``discard_names``
        (export them with :func:`fiftyone_plugin.export_concepts` before).
    target_field : str, optional
        a ``fo.Classification`` field whose label is explained instead of the
        prediction (where the label is a known class).
    weights, classes, transforms, image_size
        see :func:`fiftyone_plugin.maps.models.resolve_model`.
    prediction_field, heatmap_field : str, optional
        default :func:`default_field_names`.
    region_threshold : float
    store_descriptors : bool
        keep each map's descriptor (needed by
        :func:`compute_map_visualization`).
    num_workers : int, optional
        image-decoding worker processes; default from the CPU count.
    progress : bool or callable, optional
        a progress bar, or a callback as in FiftyOne (receives the bar).
    reshape : callable, optional
        turns ``layer``'s output into a ``(N, C, h, w)`` map, for layers
        that do not output one (ViT/Swin tokens), applied to activations and
        gradients as pytorch-grad-cam's ``reshape_transform``; needs
        ``layer``. See :class:`fiftyone_plugin.maps.engine.LayerGradientEngine`.

    The model is read on the first images of ``samples`` before anything is
    written: which output holds the logits (the one as wide as ``classes``;
    a single logit ``(B, 1)`` is a sigmoid binary classifier whose two
    classes are ``classes``, negative then positive, whose confidence is the
    sigmoid and whose class-0 maps explain the negated logit), the layer's
    layout and call count, and its precision (the maths run in float32,
    also under ``torch.autocast`` or for half/bfloat16 models). What cannot
    be read right raises ``ValueError`` then, with no run registered and no
    field declared. A ``DataParallel``/``DistributedDataParallel`` wrapper is
    removed (names and fingerprint are those of the wrapped model), and the
    model is left as given: training mode, device and ``requires_grad``
    flags are restored after the run.

    Returns
    -------
    dict
        ``{"run_key", "layer", "processed", "skipped", "failed", "num_maps",
        "names_kept", "geometry_unknown", "stale_layouts", "seconds"}``;
        ``stale_layouts`` lists the layouts (brain keys) some of whose maps
        this run replaced (each also logged as a warning).
    """
    check_image_collection(samples)
    check_field_name(maps_field, "maps_field")
    if not 0 < region_threshold < 1:
        raise ValueError(f"region_threshold must be in (0, 1); got {region_threshold}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if target_field is not None and target_field not in samples.get_field_schema():
        raise ValueError(f"samples have no field {target_field!r}")
    C.select_top_maps(torch.zeros(1, 1), top_k, cumulative_share)  # validates

    fields = default_field_names(maps_field)
    fields["prediction_field"] = prediction_field or fields["prediction_field"]
    fields["heatmap_field"] = heatmap_field or fields["heatmap_field"]
    for name, value in fields.items():
        check_field_name(value, name)

    # Everything that can fail on the model fails here, before any write:
    # the model is probed on the first real images of the samples.
    spec = resolve_model(
        model, weights=weights, classes=classes, transforms=transforms, image_size=image_size
    )
    example = _probe_batch(samples, spec, batch_size)
    engine = LayerGradientEngine(spec, layer=layer, device=device, reshape=reshape, example=example)
    try:
        geometry, geometry_note = _check_geometry(engine)
        return _compute(
            samples, spec, engine, maps_field, fields, top_k, cumulative_share, batch_size,
            skip_existing, overwrite, discard_names, target_field, region_threshold,
            store_descriptors, num_workers, progress, geometry, geometry_note,
        )
    finally:
        engine.restore()


# at most this many images probe the model before a run (a real batch, kept
# small: the probe runs the model three times)
PROBE_IMAGES = 4


def _probe_batch(samples, spec, batch_size, tries=64):
    """The first images of ``samples`` that load, preprocessed and of one
    shape, as a ``(B, 3, H, W)`` batch (``B <= PROBE_IMAGES``); ``None`` when
    none of the first ``tries`` loads (the engine then probes a synthetic
    image). Reads only."""
    ids, paths = samples.limit(tries).values(["id", "filepath"])
    images = _ImageSet(ids, paths, [-1] * len(ids), spec.transforms, None)
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


def _compute(
    samples, spec, engine, maps_field, fields, top_k, cumulative_share, batch_size,
    skip_existing, overwrite, discard_names, target_field, region_threshold,
    store_descriptors, num_workers, progress, geometry, geometry_note,
):
    config = {
        "model": spec.name,
        "model_fingerprint": spec.fingerprint,
        "layer": engine.layer_name,
        "top_k": int(top_k),
        "cumulative_share": cumulative_share,
        "target_field": target_field,
        "region_threshold": float(region_threshold),
        "store_descriptors": bool(store_descriptors),
        "maps_field": maps_field,
        "geometry": geometry_note,
        **fields,
    }
    if engine.layout == "reshape":
        # another reshape makes other maps; a repr without memory addresses
        config["reshape"] = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(engine.reshape))
    config_hash = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    # what makes channel c of an image the same map: not top_k and the like,
    # which only choose among the maps
    identity = {k: config[k] for k in ("model", "model_fingerprint", "layer", "target_field")}
    # a repr without memory addresses: the same across processes
    identity["transforms"] = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(spec.transforms))
    if "reshape" in config:
        identity["reshape"] = config["reshape"]
    map_identity = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    dataset = samples._dataset
    todo = samples
    if skip_existing and not overwrite:
        todo = samples.match(F(f"{maps_field}.config_hash") != config_hash)
    columns = ["id", "filepath"] + ([f"{target_field}.label"] if target_field else [])
    values = todo.values(columns)
    ids, paths = values[0], values[1]
    target_labels = values[2] if target_field else [None] * len(ids)
    skipped = len(samples) - len(ids) if skip_existing and not overwrite else 0

    collection = dataset._sample_collection
    if not discard_names:
        _refuse_to_lose_names(collection, maps_field, ids, map_identity)

    # the first writes: every check above has passed
    declare_map_schema(dataset, maps_field, fields)
    run_key = maps_field
    register_run(
        samples,
        run_key,
        MAPS_RUN_TYPE,
        dict(config, config_hash=config_hash, classes=spec.classes,
             feature_shape=list(engine.feature_shape), layout=engine.layout,
             logits=engine.output_name, binary=engine.binary, probe_images=engine.probe_images),
    )
    writer = _MapWriter(dataset, maps_field, fields, config_hash, engine.layer_name, spec, map_identity)
    started = time.perf_counter()
    loader = _make_loader(engine, ids, paths, target_labels, spec, batch_size, num_workers, geometry)

    with fou.ProgressBar(total=len(ids), progress=progress) as pbar:
        for batch in loader:
            ops = writer.error_ops(batch["failures"])
            if batch["ids"]:
                targets = batch["targets"].to(engine.device)
                for chunk in _same_shape_chunks(batch["images"]):
                    images = torch.stack([batch["images"][i] for i in chunk]).to(engine.device)
                    result = engine.run(images, targets[chunk])
                    # float32 maths even inside a caller's torch.autocast
                    with torch.autocast(engine.device.type, enabled=False):
                        ops.extend(
                            writer.map_ops(
                                [batch["ids"][i] for i in chunk],
                                result,
                                batch["frames"][chunk],
                                [batch["frame_known"][i] for i in chunk],
                                top_k=top_k,
                                cumulative_share=cumulative_share,
                                region_threshold=region_threshold,
                                store_descriptors=store_descriptors,
                            )
                        )
            if ops:
                collection.bulk_write(ops, ordered=False)
            pbar.update(len(batch["ids"]) + len(batch["failures"]))

    seconds = time.perf_counter() - started
    summary = {
        "run_key": run_key,
        "layer": engine.layer_name,
        "processed": writer.processed,
        "skipped": skipped,
        "failed": writer.failed,
        "num_maps": writer.num_maps,
        "names_kept": writer.names_kept,
        "geometry_unknown": writer.geometry_unknown,
        "seconds": round(seconds, 3),
    }
    # layouts drawn from the replaced maps no longer show them: say so now,
    # not only when a layout is next read
    stale = stale_layouts(dataset, maps_field) if writer.processed else []
    summary["stale_layouts"] = [entry["brain_key"] for entry in stale]
    save_run_results(samples, run_key, summary)
    for entry in stale:
        logger.warning("%s", stale_message(entry))
    if writer.failed:
        logger.warning(
            "%d sample(s) could not be processed; see the %r field",
            writer.failed,
            fields["error_field"],
        )
    if writer.geometry_unknown and geometry is not None:
        logger.warning(
            "for %d image(s) the preprocessing's geometry could not be determined; their maps "
            "are placed as if the model saw the whole image (their maps field has "
            "geometry_unknown=True)",
            writer.geometry_unknown,
        )
    return summary


def _check_geometry(engine):
    """The :class:`~fiftyone_plugin.maps.geometry.Geometry` of the model's
    preprocessing and a short description for the run config; ``(None,
    "unknown: ...")`` with a warning when it cannot be determined on a
    probe image (then every map is placed on the whole image)."""
    geometry = Geometry(engine.spec.transforms)
    probe = load_probe_image((320, 240))
    try:
        geometry.frame(probe.size, tuple(engine.preprocess(probe).shape[-2:]))
    except GeometryError as e:
        note = f"unknown: {e}; maps placed as if the model saw the whole image"
        logger.warning("the geometry of the model's preprocessing cannot be determined (%s): %s", e, note)
        return None, note
    return geometry, geometry.describe()


def load_probe_image(size):
    """A deterministic textured RGB image of ``size = (W, H)``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


class _ImageSet(torch.utils.data.Dataset):
    """Decodes and preprocesses one image per item; failures become values,
    not exceptions, so one bad file never stops a worker."""

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


def _collate(items):
    good = [it for it in items if it[3] is None]
    return {
        "ids": [it[0] for it in good],
        "images": [it[1][0] for it in good],
        "frames": torch.tensor([it[1][1] for it in good], dtype=torch.float32).reshape(-1, 4),
        "frame_known": [it[1][2] for it in good],
        "targets": torch.tensor([it[2] for it in good], dtype=torch.long),
        "failures": [(it[0], it[3]) for it in items if it[3] is not None],
    }


def _make_loader(engine, ids, paths, target_labels, spec, batch_size, num_workers, geometry=None):
    targets = [
        (-1 if label is None else (spec.class_index(label) if spec.class_index(label) is not None else -1))
        for label in target_labels
    ]
    if num_workers is None:
        cpus = os.cpu_count() or 1
        num_workers = 0 if cpus <= 2 else min(8, cpus // 2)
    size = max(engine.feature_shape[1:]) * 64  # generous draft size for JPEGs
    return torch.utils.data.DataLoader(
        _ImageSet(ids, paths, targets, engine.spec.transforms, size, geometry),
        batch_size=int(batch_size),
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=engine.device.type == "cuda",
    )


def _same_shape_chunks(images):
    """Indices grouped by tensor shape: a model's own transforms may keep
    aspect ratios, and only same-shaped images can share a batch."""
    groups = {}
    for i, image in enumerate(images):
        groups.setdefault(tuple(image.shape), []).append(i)
    return list(groups.values())


def place_maps(heatmaps, sample_heatmaps, frames, grid=C.REGION_GRID):
    """Maps from the model-input frame to the image frame (see
    :mod:`fiftyone_plugin.maps.geometry`): zero where the model never saw the
    image.

    Parameters
    ----------
    heatmaps : torch.Tensor
        ``(B, k, h, w)`` per-map soft maps on the layer grid.
    sample_heatmaps : torch.Tensor
        ``(B, h, w)`` whole-image heatmaps on the layer grid.
    frames : torch.Tensor
        ``(B, 4)`` input frames ``(ox, oy, sx, sy)``.
    grid : int
        cells per side of the region grid.

    Returns
    -------
    tuple
        ``(regions_grid (B, k, grid, grid) float tensor, per-map uint8
        heatmaps (list of B arrays (k, g_y, g_x)), sample uint8 heatmaps
        (list of B arrays (g_y, g_x)))``; the stored heatmaps cover the whole
        image with the layer's cell size (:func:`contributions.image_grid_size`).
    """
    b_size, k, h, w = heatmaps.shape
    up = C.resample_to_image(heatmaps, frames, (grid, grid))
    both = torch.cat([heatmaps, sample_heatmaps[:, None].to(heatmaps.dtype)], dim=1)
    frames_cpu = frames.cpu()
    by_size = {}
    for b in range(b_size):
        by_size.setdefault(C.image_grid_size(h, w, frames_cpu[b].tolist()), []).append(b)
    maps_q, whole_q = [None] * b_size, [None] * b_size
    # one resampling per stored size: images of one size share a call
    for size, members in by_size.items():
        index = torch.tensor(members, device=heatmaps.device)
        placed = C.quantize(C.resample_to_image(both[index], frames[index], size)).cpu().numpy()
        for row, b in enumerate(members):
            maps_q[b], whole_q[b] = placed[row, :k], placed[row, k]
    return up, maps_q, whole_q


def _named_maps_pipeline(maps_field, sample_ids):
    """Per sample: the maps' identity and, for each map with names, its
    (channel, target) and its ``concept_*`` attributes."""
    names_of = {
        "$arrayToObject": {
            "$filter": {
                "input": {"$objectToArray": "$$d"},
                "cond": {"$eq": [{"$substrCP": ["$$this.k", 0, len(CONCEPT_PREFIX)]}, CONCEPT_PREFIX]},
            }
        }
    }
    return [
        {"$match": {"_id": {"$in": [ObjectId(i) for i in sample_ids]}, f"{maps_field}.detections.0": {"$exists": True}}},
        {
            "$project": {
                "identity": f"${maps_field}.map_identity",
                "maps": {
                    "$map": {
                        "input": f"${maps_field}.detections",
                        "as": "d",
                        "in": {"channel": "$$d.channel", "target": "$$d.target", "names": names_of},
                    }
                },
            }
        },
    ]


def _names_by_map(collection, maps_field, sample_ids):
    """``{sample_id: (identity, {(channel, target): {concept_<a>: name}})}``
    for the samples whose maps carry names."""
    found = {}
    for row in collection.aggregate(_named_maps_pipeline(maps_field, sample_ids)):
        named = {(m.get("channel"), m.get("target")): m["names"] for m in row["maps"] if m.get("names")}
        if named:
            found[str(row["_id"])] = (row.get("identity"), named)
    return found


def _refuse_to_lose_names(collection, maps_field, sample_ids, map_identity, chunk=10_000):
    """Raise before computing if recomputing would replace named maps by maps
    of another model, layer, preprocessing or explained class."""
    lost, annotators = 0, set()
    for start in range(0, len(sample_ids), chunk):
        found = _names_by_map(collection, maps_field, sample_ids[start : start + chunk])
        for identity, named in found.values():
            if identity != map_identity:
                lost += len(named)
                for names in named.values():
                    annotators.update(annotator_of(k) for k in names)
    if lost:
        raise ValueError(
            f"recomputing would replace {lost} named map(s) (named by {', '.join(sorted(annotators))}) "
            f"with maps of a different model, layer, preprocessing or explained class, whose names "
            f"cannot carry over; export the names first (fpl.export_concepts) and pass "
            f"discard_names=True, or compute into another maps_field"
        )


class _MapWriter:
    """Turns engine results into MongoDB update operations."""

    def __init__(self, dataset, maps_field, fields, config_hash, layer_name, spec, map_identity):
        self.collection = dataset._sample_collection
        self.maps_field = maps_field
        self.fields = fields
        self.config_hash = config_hash
        self.layer_name = layer_name
        self.spec = spec
        self.map_identity = map_identity
        self.processed = self.failed = self.num_maps = self.names_kept = 0
        self.geometry_unknown = 0

    def error_ops(self, failures):
        now = datetime.now(timezone.utc)
        self.failed += len(failures)
        # existing maps stay: a file that went missing must not erase names
        return [
            UpdateOne(
                {"_id": ObjectId(sample_id)},
                {"$set": {self.fields["error_field"]: message, "last_modified_at": now}},
            )
            for sample_id, message in failures
        ]

    def map_ops(self, ids, result, frames, frame_known, top_k, cumulative_share, region_threshold,
                store_descriptors):
        acts, grads = result.activations, result.gradients
        contributions = C.channel_contributions(acts, grads)
        top = C.select_top_maps(contributions, top_k, cumulative_share)
        heat = C.map_heatmaps(acts, grads, top.channels)
        b_size, k = heat.shape[:2]
        up, heat_q, whole = place_maps(heat, C.sample_heatmap(acts, grads), frames)
        grid = up.shape[-1]
        valid, boxes, peaks, components = (
            t.cpu().numpy() for t in C.map_regions(up.reshape(-1, grid, grid), region_threshold)
        )
        valid, boxes = valid.reshape(b_size, k), boxes.reshape(b_size, k, 4)
        peaks, components = peaks.reshape(b_size, k, 2), components.reshape(b_size, k, grid, grid)
        descriptors = (
            C.map_descriptors(acts, heat).half().cpu().numpy() if store_descriptors else None
        )
        # softmax, or the sigmoid of a single-logit binary model (engine)
        confidence, predicted = result.probabilities.max(dim=1)

        channels = top.channels.cpu().numpy()
        values = top.contributions.cpu().numpy()
        shares = top.shares.cpu().numpy()
        keep = top.keep.cpu().numpy()
        targets = result.targets.cpu().numpy()
        predicted = predicted.cpu().numpy()
        confidence = confidence.cpu().numpy()

        now = datetime.now(timezone.utc)
        ops = []
        old_names = _names_by_map(self.collection, self.maps_field, ids)
        for b, sample_id in enumerate(ids):
            target_name = self.spec.class_name(int(targets[b]))
            identity, named = old_names.get(sample_id, (None, {}))
            keep_names = named if identity == self.map_identity else {}
            detections = []
            for j in np.flatnonzero(keep[b] & valid[b]):
                x0, y0, w, h = np.rint(boxes[b, j] * grid).astype(int)
                attrs = dict(
                    label=f"ch{int(channels[b, j])}",
                    bounding_box=boxes[b, j].tolist(),
                    mask=components[b, j, y0 : y0 + h, x0 : x0 + w],
                    layer=self.layer_name,
                    channel=int(channels[b, j]),
                    rank=len(detections) + 1,
                    contribution=float(values[b, j]),
                    share=float(shares[b, j]),
                    target=target_name,
                    peak=peaks[b, j].tolist(),
                    heatmap=heat_q[b][j],
                )
                if descriptors is not None:
                    attrs["descriptor"] = descriptors[b, j]
                names = keep_names.get((int(channels[b, j]), target_name))
                if names:
                    attrs.update(names)
                    self.names_kept += 1
                detections.append(fo.Detection(**attrs))

            extra = {}
            if not frame_known[b]:
                extra["geometry_unknown"] = True
                self.geometry_unknown += 1
            maps = fo.Detections(
                detections=detections, config_hash=self.config_hash, map_identity=self.map_identity,
                **extra,
            )
            prediction = fo.Classification(
                label=self.spec.class_name(int(predicted[b])),
                confidence=float(confidence[b]),
            )
            heatmap = fo.Heatmap(map=whole[b], range=[0, 255])
            ops.append(
                UpdateOne(
                    {"_id": ObjectId(sample_id)},
                    {
                        "$set": {
                            self.maps_field: maps.to_dict(),
                            self.fields["prediction_field"]: prediction.to_dict(),
                            self.fields["heatmap_field"]: heatmap.to_dict(),
                            self.fields["error_field"]: None,
                            "last_modified_at": now,
                        }
                    },
                )
            )
            self.num_maps += len(detections)
        self.processed += len(ids)
        return ops
