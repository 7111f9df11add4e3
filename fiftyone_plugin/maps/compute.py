"""``compute_activation_maps``: each image's significant activation maps,
its prediction and a whole-image heatmap, streamed into FiftyOne fields.

The run follows the package's run contract (:mod:`fiftyone_plugin.runs`):
validate (:class:`ActivationMapsConfig`) -> probe the model -> register ->
per-batch kernel (:func:`fiftyone_plugin.maps.writing.batch_maps`) and
writes -> save and return :class:`ActivationMapsResults`. Batches come from
:mod:`fiftyone_plugin.maps.loading`, writes go through
:mod:`fiftyone_plugin.maps.writing`.
"""

import logging
import time

import torch

import fiftyone.core.utils as fou
from fiftyone import ViewField as F

from .display import configure_map_display
from .config import MAPS_RUN_TYPE, ActivationMapsConfig, ActivationMapsResults, default_field_names
from .engine import LayerGradientEngine
from .geometry import Geometry, GeometryError
from .layouts import stale_layouts, stale_message
from .loading import load_probe_image, make_loader, probe_batch, same_shape_chunks
from .models import resolve_model
from .writing import MapWriter, batch_maps, refuse_to_lose_names
from ..runs import register_run, save_run_results
from ..storage import MAPS_FIELD, declare_map_schema

logger = logging.getLogger(__name__)

# re-exported: callers read the run's type and field names from here
__all__ = [
    "compute_activation_maps", "default_field_names", "MAPS_RUN_TYPE",
    "ActivationMapsConfig", "ActivationMapsResults",
]


def compute_activation_maps(
    samples,
    model,
    *,
    layer=None,
    maps_field=MAPS_FIELD,
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
    logit, its gradient-weighted activation (gradient x input summed over
    positions; see :mod:`fiftyone_plugin.maps.contributions`), and the
    ``top_k`` channels with the largest positive contributions (stopping
    early once ``cumulative_share`` of the positive contribution is reached)
    become ``fo.Detection`` maps in ``maps_field``. The sum of all positive
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
    the maps field, counted in the results' ``geometry_unknown``).

    Samples whose file cannot be used get a message in ``{maps_field}_error``
    and are skipped; the run goes on. The work is streamed in batches, so
    memory does not grow with the collection, and results are written after
    every batch, so an interrupted run resumes where it stopped (re-running
    the same ``maps_field`` keeps the maps already computed).

    Parameters
    ----------
    samples : fiftyone.core.collections.SampleCollection
        an image dataset or a view of its samples (not grouped, patches,
        frames or clips).
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
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
        the ``fo.Detections`` field of the maps; also the run key.
    top_k : int, default 5
        at most this many maps per image (``>= 1``).
    cumulative_share : float, optional
        in ``(0, 1]``: stop adding maps once they hold this fraction of the
        image's positive contribution. Default: no cut-off.
    batch_size : int, default 16
        images per forward/backward pass (``>= 1``).
    device : str, optional
        ``"cpu"``, ``"cuda"``, ...; default CUDA when available.
    skip_existing : bool, default True
        skip samples already computed with this exact configuration.
    overwrite : bool, default False
        recompute every sample.
    discard_names : bool, default False
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
        default :func:`default_field_names` of ``maps_field``.
    region_threshold : float, default 0.5
        in ``(0, 1)``, a fraction of each map's peak value.
    store_descriptors : bool, default True
        keep each map's descriptor (a ``(C,)`` float16 vector; needed by
        :func:`~fiftyone_plugin.maps.layout.compute_map_visualization`).
    num_workers : int, optional
        image-decoding DataLoader worker processes; default from the CPU
        count (:func:`fiftyone_plugin.maps.loading.default_num_workers`);
        ``0`` decodes in this process.
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
    also under ``torch.autocast`` or for half/bfloat16 models). A
    ``DataParallel``/``DistributedDataParallel`` wrapper is removed (names
    and fingerprint are those of the wrapped model), and the model is left
    as given: training mode, device and ``requires_grad`` flags are restored
    after the run.

    Returns
    -------
    ActivationMapsResults
        the same class and values as ``samples.load_run_results(maps_field)``;
        its ``stale_layouts`` lists the layouts (brain keys) some of whose
        maps this run replaced (each also logged as a warning).

    Raises
    ------
    ValueError
        bad parameters (see :meth:`ActivationMapsConfig.validate`), a model or
        layer that cannot be read right, or named maps that would be lost
        (see ``discard_names``): raised before any run is registered or field
        declared.

    References
    ----------
    .. [1] Selvaraju et al., "Grad-CAM: Visual Explanations from Deep
       Networks via Gradient-based Localization", ICCV 2017 (the per-position
       gradient-weighted maps).
    .. [2] Shrikumar, Greenside, Kundaje, "Learning Important Features
       Through Propagating Activation Differences", ICML 2017 (gradient x
       input contributions).
    .. [3] The interactive-naming study: people name the few maps that carry
       most of a prediction (its significant maps); see ``docs/design.md``.
    """
    # 1 validate: the user's parameters, then the model on real images
    config = ActivationMapsConfig(
        maps_field=maps_field, top_k=int(top_k), cumulative_share=cumulative_share,
        target_field=target_field, region_threshold=float(region_threshold),
        store_descriptors=bool(store_descriptors), prediction_field=prediction_field,
        heatmap_field=heatmap_field,
    )
    config.validate(samples)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    spec = resolve_model(
        model, weights=weights, classes=classes, transforms=transforms, image_size=image_size
    )
    engine = LayerGradientEngine(
        spec, layer=layer, device=device, reshape=reshape,
        example=probe_batch(samples, spec, batch_size=batch_size),
    )
    try:
        geometry, geometry_note = _check_geometry(engine)
        config.describe_model(spec, engine, geometry_note)
        return _run(
            samples, config, spec, engine, geometry, batch_size=batch_size,
            skip_existing=skip_existing, overwrite=overwrite, discard_names=discard_names,
            num_workers=num_workers, progress=progress,
        )
    finally:
        engine.restore()


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


def _todo(samples, config, *, skip_existing, overwrite):
    """``(ids, paths, target_labels, skipped)`` of the samples to compute."""
    todo = samples
    if skip_existing and not overwrite:
        todo = samples.match(F(f"{config.maps_field}.config_hash") != config.config_hash)
    target_field = config.target_field
    columns = ["id", "filepath"] + ([f"{target_field}.label"] if target_field else [])
    values = todo.values(columns)
    ids, paths = values[0], values[1]
    target_labels = values[2] if target_field else [None] * len(ids)
    skipped = len(samples) - len(ids) if skip_existing and not overwrite else 0
    return ids, paths, target_labels, skipped


def _run(samples, config, spec, engine, geometry, *, batch_size, skip_existing, overwrite,
         discard_names, num_workers, progress):
    dataset = samples._dataset
    map_identity = config.map_identity(spec)
    ids, paths, target_labels, skipped = _todo(
        samples, config, skip_existing=skip_existing, overwrite=overwrite
    )
    if not discard_names:
        refuse_to_lose_names(dataset._sample_collection, config.maps_field, ids, map_identity)

    # 2 register: the first writes, every check above has passed
    run_key = config.maps_field
    register_run(samples, run_key, config)
    declare_map_schema(dataset, config.maps_field, config.output_fields)

    # 3 kernel per batch, written as it goes (so a run resumes)
    writer = MapWriter(
        dataset, config.maps_field, config.output_fields, config.config_hash, engine.layer_name,
        spec, map_identity,
    )
    started = time.perf_counter()
    loader = make_loader(
        engine, ids, paths, target_labels, spec, batch_size=batch_size, num_workers=num_workers,
        geometry=geometry,
    )
    with fou.ProgressBar(total=len(ids), progress=progress) as pbar:
        for batch in loader:
            ops = writer.error_ops(batch["failures"])
            if batch["ids"]:
                ops.extend(_batch_ops(batch, engine, writer, config))
            if ops:
                dataset._sample_collection.bulk_write(ops, ordered=False)
            pbar.update(len(batch["ids"]) + len(batch["failures"]))
    seconds = time.perf_counter() - started

    # 4 save: layouts drawn from the replaced maps no longer show them; say
    # so now, not only when a layout is next read
    stale = stale_layouts(dataset, maps_field=config.maps_field) if writer.processed else []
    results = ActivationMapsResults(
        samples, config, run_key, layer=engine.layer_name, processed=writer.processed,
        skipped=skipped, failed=writer.failed, num_maps=writer.num_maps,
        names_kept=writer.names_kept, geometry_unknown=writer.geometry_unknown,
        stale_layouts=[entry["brain_key"] for entry in stale], seconds=round(seconds, 3),
    )
    save_run_results(samples, run_key, results)
    # the App draws the new fields as maps (colour scale, active fields)
    configure_map_display(
        dataset, maps_field=config.maps_field, heatmap_field=config.heatmap_field,
        prediction_field=config.prediction_field,
    )
    _log_outcome(writer, stale, config, geometry)
    return results


def _batch_ops(batch, engine, writer, config):
    """The update operations of one loaded batch's images."""
    ops = []
    targets = batch["targets"].to(engine.device)
    for chunk in same_shape_chunks(batch["images"]):
        images = torch.stack([batch["images"][i] for i in chunk]).to(engine.device)
        result = engine.run(images, targets[chunk])
        # float32 maths even inside a caller's torch.autocast
        with torch.autocast(engine.device.type, enabled=False):
            maps = batch_maps(
                result, batch["frames"][chunk], top_k=config.top_k,
                cumulative_share=config.cumulative_share,
                region_threshold=config.region_threshold,
                store_descriptors=config.store_descriptors,
            )
        ops.extend(writer.map_ops(
            [batch["ids"][i] for i in chunk], maps, [batch["frame_known"][i] for i in chunk]
        ))
    return ops


def _log_outcome(writer, stale, config, geometry):
    for entry in stale:
        logger.warning("%s", stale_message(entry))
    if writer.failed:
        logger.warning(
            "%d sample(s) could not be processed; see the %r field",
            writer.failed,
            config.error_field,
        )
    if writer.geometry_unknown and geometry is not None:
        logger.warning(
            "for %d image(s) the preprocessing's geometry could not be determined; their maps "
            "are placed as if the model saw the whole image (their maps field has "
            "geometry_unknown=True)",
            writer.geometry_unknown,
        )
