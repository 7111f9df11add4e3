"""``compute_map_visualization``: lay all maps out in 2-D so that maps showing
the same kind of thing land near each other.

The layout is a FiftyOne Brain visualization run over the maps field (so the
App's Embeddings panel shows and lassoes maps), computed from the map
descriptors stored by :func:`~fiftyone_plugin.maps.compute.compute_activation_maps`
(kernels: :mod:`fiftyone_plugin.maps.embedding`), and a custom run of the
same key that follows the package's run contract (:mod:`fiftyone_plugin.runs`):
:class:`LayoutConfig` owns the layout's points attribute, and
:class:`LayoutResults` is what the function returns and
``dataset.load_run_results(brain_key)`` gives back. Reading, choosing and
deleting layouts: :mod:`fiftyone_plugin.maps.layouts`.
"""

import warnings

import numpy as np

import fiftyone.brain as fob

from .display import with_heavy_attributes
from .embedding import METHODS, knn_purity, layout_points
from .layouts import (
    LAYOUT_RUN_TYPE,
    default_points_attribute,
    delete_layout,
    list_layouts,
    map_points,
    write_points,
)
from ..concepts.store import CONCEPT_PREFIX
from ..runs import Run, RunConfig, RunResults, jsonable, register_run, save_run_results
from ..storage import MAP_ATTRIBUTES, MAPS_FIELD, check_field_name, resolve_maps

# map attributes a layout's points must never land on (besides
# MAP_ATTRIBUTES and concepts)
_RESERVED = ("id", "_id", "label", "bounding_box", "mask", "confidence", "index", "tags", "attributes")


class LayoutConfig(RunConfig):
    """The config of a layout (run key: its Brain key).

    Parameters are those of :func:`compute_map_visualization`
    (``layout_method`` its ``method``, which names the run's type in
    FiftyOne; ``reducer_kwargs`` its ``**kwargs``). The run owns one field, the
    layout's points attribute on the maps
    (``"<maps_field>.detections.<points_attribute>"``), never the maps;
    deleting the run also deletes the layout's Brain run (:class:`LayoutRun`).
    """

    run_type = LAYOUT_RUN_TYPE

    def __init__(self, maps_field=MAPS_FIELD, brain_key=None, layout_method="umap", num_neighbors=15,
                 min_dist=0.1, seed=51, points_attribute=None, reducer_kwargs=None, **kwargs):
        self.maps_field = maps_field
        self.brain_key = brain_key or f"{maps_field}_layout"
        self.layout_method = layout_method
        self.num_neighbors = num_neighbors
        self.min_dist = min_dist
        self.seed = seed
        self.points_attribute = points_attribute or default_points_attribute(self.brain_key)
        self.reducer_kwargs = jsonable(reducer_kwargs or {})
        super().__init__(**kwargs)

    @property
    def run_cls(self):
        return LayoutRun

    @property
    def points_path(self):
        """``"<maps_field>.detections.<points_attribute>"``."""
        return f"{self.maps_field}.detections.{self.points_attribute}"

    def fields(self):
        """The layout's points attribute on the maps (not the maps)."""
        return [self.points_path]

    def validate(self, samples):
        """Check the parameters on ``samples`` (already resolved to an
        image-level collection, :func:`~fiftyone_plugin.storage.resolve_maps`).

        Raises
        ------
        ValueError
            an unknown method; a bad key or attribute name; a points
            attribute that is another map attribute or another layout's; a
            run key taken by a run that is not a layout.
        """
        if self.layout_method not in METHODS:
            raise ValueError(f"unknown layout method {self.layout_method!r}; use one of {list(METHODS)}")
        check_field_name(self.brain_key, "brain_key")
        check_field_name(self.points_attribute, "points_attribute")
        _check_points_attribute(samples, self.maps_field, self.brain_key, self.points_attribute)
        dataset = samples._root_dataset
        if self.brain_key in dataset.list_runs():
            other = dataset.get_run_info(self.brain_key).config
            if getattr(other, "run_type", None) != LAYOUT_RUN_TYPE:
                raise ValueError(
                    f"brain_key {self.brain_key!r} is the key of another run "
                    f"({getattr(other, 'run_type', None) or other.method}); choose another"
                )


class LayoutRun(Run):
    """Deleting a layout's custom run deletes its points and its Brain run
    (when that still holds these points: a renamed or replaced Brain run is
    left alone)."""

    def cleanup(self, samples, key):
        dataset = samples._root_dataset
        brain_key = self.config.brain_key
        if brain_key in dataset.list_brain_runs():
            brain_config = dataset.get_brain_info(brain_key).config
            if (getattr(brain_config, "patches_field", None) == self.config.maps_field
                    and getattr(brain_config, "points_field", None) == self.config.points_attribute):
                dataset.delete_brain_run(brain_key)
        super().cleanup(samples, key)


class LayoutResults(RunResults):
    """What :func:`compute_map_visualization` made, as
    ``dataset.load_run_results(brain_key)`` gives it back.

    Attributes
    ----------
    num_maps : int
        maps laid out (those with a descriptor).
    layout : dict
        the method and parameters actually used (:func:`~fiftyone_plugin.maps.embedding.layout_points`'s
        ``info``), with ``maps_field`` and ``points_attribute``.
    """

    def __init__(self, samples, config, key, num_maps=0, layout=None, backend=None):
        super().__init__(samples, config, key, backend=backend)
        self.num_maps = num_maps
        self.layout = jsonable(layout or {})

    def points(self):
        """``(map_ids, points (N, 2))`` of this layout, read from the maps."""
        return map_points(
            self.samples, maps_field=self.config.maps_field, points_attribute=self.config.points_attribute
        )

    def visualization(self):
        """The layout's FiftyOne Brain ``VisualizationResults``."""
        return self.samples._root_dataset.load_brain_results(self.key)


def map_descriptor_matrix(samples, *, maps_field=MAPS_FIELD):
    """Every map of ``samples`` that has a descriptor.

    Parameters
    ----------
    samples : SampleCollection
        an image-level collection with maps in ``maps_field``.
    maps_field : str, default ``"actmaps"``

    Returns
    -------
    sample_ids, map_ids : list of str
        in sample order, and map order within a sample.
    descriptors : ndarray, shape (N, C), float32
        ``(0, 0)`` when no map has one.

    Raises
    ------
    ValueError
        descriptors of different lengths (maps of several layers).
    """
    # the App's browsing view leaves descriptors out (maps.display)
    sids, ids, descriptors = with_heavy_attributes(samples, maps_field=maps_field).values(
        ["id", f"{maps_field}.detections.id", f"{maps_field}.detections.descriptor"]
    )
    flat_sids, flat_ids, rows = [], [], []
    for sample_id, sample_maps, sample_descriptors in zip(sids, ids, descriptors):
        for map_id, descriptor in zip(sample_maps or [], sample_descriptors or []):
            if descriptor is not None:
                flat_sids.append(sample_id)
                flat_ids.append(map_id)
                rows.append(np.asarray(descriptor, dtype=np.float32).ravel())
    if not rows:
        return [], [], np.zeros((0, 0), dtype=np.float32)
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise ValueError(
            f"the descriptors in {maps_field!r} have different lengths {sorted(widths)} "
            "(maps of several layers?); lay out one layer at a time, e.g. "
            "samples.filter_labels(maps_field, F('layer') == name)"
        )
    return flat_sids, flat_ids, np.stack(rows)


def compute_map_visualization(
    samples,
    *,
    maps_field=MAPS_FIELD,
    brain_key=None,
    method="umap",
    num_neighbors=15,
    min_dist=0.1,
    seed=51,
    points_attribute=None,
    progress=None,
    **kwargs,
):
    """Lay out the maps of ``samples`` in 2-D.

    The points are computed here (:func:`~fiftyone_plugin.maps.embedding.layout_points`:
    umap-learn, t-SNE or PCA on the map descriptors, duplicates merged,
    small inputs handled) and registered as a FiftyOne Brain visualization
    run over the maps field (``patches_field=maps_field``, the points given,
    so the Brain records ``method="manual"``; the method and the parameters
    actually used are in the Brain run config's ``layout`` entry), and as a
    custom run of the same key (:class:`LayoutConfig`). Each map of the
    layout gets its point in the attribute ``points_attribute``, which the
    runs own: maps outside the layout have none, and deleting either run
    (or :func:`~fiftyone_plugin.maps.layouts.delete_layout`) removes them.

    Parameters
    ----------
    samples : SampleCollection
        a dataset, a view of its samples, or a patches view of the maps field
        (its maps are laid out). Grouped collections are refused (pass
        ``select_group_slices(...)``).
    maps_field : str, default ``"actmaps"`` (:data:`~fiftyone_plugin.storage.MAPS_FIELD`)
    brain_key : str, optional
        default ``"{maps_field}_layout"``; replaced if it exists (with its
        points).
    method : {"umap", "tsne", "pca"}, default "umap"
    num_neighbors : int, default 15
        UMAP's number of neighbours.
    min_dist : float, default 0.1
        UMAP's minimum distance between points, in layout units.
    seed : int, default 51
        makes the layout reproducible.
    points_attribute : str, optional
        the map attribute that keeps this layout's points; default
        ``point_<brain_key>``. Must not be another map attribute.
    progress : bool or callable, optional
        passed to FiftyOne Brain.
    **kwargs
        passed to the reducer (``umap.UMAP``, ``sklearn.manifold.TSNE``,
        ``sklearn.decomposition.PCA``), e.g. ``perplexity``.

    Returns
    -------
    LayoutResults
        the same class and values as ``samples.load_run_results(brain_key)``;
        ``results.visualization()`` is the Brain run's results.

    Raises
    ------
    ValueError
        no maps field (or a collection that cannot stand for maps), no map
        with a descriptor, an unknown method, a bad key or attribute; raised
        before anything is written.

    References
    ----------
    .. [1] McInnes, Healy, Melville, "UMAP: Uniform Manifold Approximation
       and Projection for Dimension Reduction", arXiv:1802.03426, 2018.
    """
    # 1 validate
    samples, _ = resolve_maps(samples, maps_field=maps_field, what="compute_map_visualization")
    config = LayoutConfig(
        maps_field=maps_field, brain_key=brain_key, layout_method=method, num_neighbors=num_neighbors,
        min_dist=min_dist, seed=seed, points_attribute=points_attribute, reducer_kwargs=kwargs,
    )
    config.validate(samples)
    sample_ids, map_ids, descriptors = map_descriptor_matrix(samples, maps_field=maps_field)
    if not map_ids:
        raise ValueError(
            f"no map with a descriptor in {maps_field!r}; a layout needs at least "
            "one (run compute_activation_maps with store_descriptors=True)"
        )
    # 2 kernel, before any write: a reducer that fails leaves the old layout
    points, info = layout_points(
        descriptors, method=method, num_neighbors=num_neighbors, min_dist=min_dist, seed=seed, **kwargs
    )
    if info["fallback"]:
        warnings.warn(f"layout {config.brain_key!r}: {info['fallback']}")
    info.update(maps_field=maps_field, points_attribute=config.points_attribute)

    # 3 register (replacing the key's old layout) and write
    dataset = samples._root_dataset
    if config.brain_key in dataset.list_brain_runs():
        delete_layout(dataset, config.brain_key)
    register_run(samples, config.brain_key, config)
    _write_brain_run(samples, config, map_ids, points, info, progress)

    # 4 save and return
    results = LayoutResults(samples, config, config.brain_key, num_maps=len(map_ids), layout=info)
    save_run_results(samples, config.brain_key, results)
    return results


def _write_brain_run(samples, config, map_ids, points, info, progress):
    maps_field = config.maps_field
    # only maps with descriptors take part, so restrict the view to them
    # (when some lack one); the points are given in the view's label order
    # (sample order, then map order), as map_descriptor_matrix reads them
    view = samples
    if samples.count(f"{maps_field}.detections") != len(map_ids):
        view = samples.select_labels(ids=map_ids, fields=maps_field)
    brain_results = fob.compute_visualization(
        view,
        patches_field=maps_field,
        points=points,
        brain_key=config.brain_key,
        num_dims=2,
        progress=progress,
        layout=jsonable(info),
    )
    # the points on the maps: written here in bulk (FiftyOne's
    # set_label_values, which the Brain's points_field uses, took 19 s for
    # 20,000 maps against 2 s), then declared as the run's points_field so
    # that the Brain's own cleanup and listing know them
    write_points(
        samples._root_dataset, dict(zip(map_ids, points)), maps_field=maps_field,
        attribute=config.points_attribute,
    )
    brain_results.config.points_field = config.points_attribute
    brain_results.save_config()


def _check_points_attribute(samples, maps_field, brain_key, attribute):
    # a layout's points must never land on another map attribute (a concept,
    # the heatmap, another layout's points)
    if attribute in MAP_ATTRIBUTES or attribute.startswith(CONCEPT_PREFIX) or attribute in _RESERVED:
        raise ValueError(f"points_attribute {attribute!r} is a map attribute of its own; choose another")
    owners = {
        entry["points_attribute"]: entry["brain_key"]
        for entry in list_layouts(samples, maps_field=maps_field, check_stale=False)
    }
    if attribute in owners and owners[attribute] != brain_key:
        raise ValueError(
            f"points_attribute {attribute!r} holds the points of layout {owners[attribute]!r}; "
            "choose another (or delete that layout)"
        )
    declared = samples._root_dataset.get_field(f"{maps_field}.detections.{attribute}")
    if declared is not None and attribute not in owners:
        raise ValueError(f"{maps_field}.detections.{attribute} exists and is not a layout's points; choose another")


def layout_purity(samples, map_labels, *, k=10, maps_field=MAPS_FIELD, points_attribute=None):
    """:func:`~fiftyone_plugin.maps.embedding.knn_purity` of a stored layout.

    Parameters
    ----------
    samples : SampleCollection
    map_labels : dict
        ``{map_id: label}``, e.g. the ground-truth part under each map's
        peak; maps without a label (or ``None``) are left out.
    k : int, default 10
        neighbours per point.
    maps_field : str, default ``"actmaps"``
    points_attribute : str, optional
        as in :func:`~fiftyone_plugin.maps.layouts.map_points` (default: the
        chosen layout's).

    Returns
    -------
    float
        in ``[0, 1]``.
    """
    ids, points = map_points(samples, maps_field=maps_field, points_attribute=points_attribute)
    keep = [i for i, map_id in enumerate(ids) if map_labels.get(map_id) is not None]
    return knn_purity(points[keep], [map_labels[ids[i]] for i in keep], k=k)
