"""How maps look in the App's own views (grid, sample modal, patches).

FiftyOne draws what a dataset's App config says, so the maps are made to
look like maps there through FiftyOne's own settings, not a custom viewer:

- :func:`configure_map_display`: the whole-image heatmap field drawn with a
  colour scale (``ColorScheme.colorscales``; the App only uses a heatmap's
  colour scale when colouring by value, otherwise it draws one colour whose
  opacity follows the value: the "faint grey wash"; values below the
  heatmap's range, ``HEATMAP_FLOOR`` as written, are left clear), and the maps, their
  prediction and the heatmap active (drawn) by default
  (``DatasetAppConfig.active_fields``; FiftyOne leaves heatmaps out of the
  default active fields). :func:`~fiftyone_plugin.maps.compute.compute_activation_maps`
  calls it at the end of each run.
- :func:`label_maps_by_concept` / :func:`label_maps_by_channel`: what a map's
  box says in the App (its ``label``): an annotator's concept, or the
  channel (``ch<channel>``, as computed). Colouring by value then gives each
  concept its own colour.
- :func:`browse_view` / :func:`save_browse_view`: the images that have maps,
  without the maps' heavy attributes (``HEAVY_ATTRIBUTES``). The App's
  tooltip lists every attribute of a label except ``bounding_box`` and
  ``mask`` (which it already hides) and names starting with ``_``; FiftyOne
  1.x has no dataset setting to hide others, so a view that excludes them
  is how the tooltip stops showing base64 arrays (and the grid stops
  downloading them).

References
----------
FiftyOne user guide, "Using the FiftyOne App": color schemes
(``fo.ColorScheme``: ``color_by``, ``colorscales``) and dataset App config
(``dataset.app_config``: ``active_fields``, ``color_scheme``).
"""

from bson import ObjectId

import fiftyone as fo
import fiftyone.core.stages as fost
from fiftyone import ViewField as F

from ..concepts.names import NOT_NAMEABLE
from ..concepts.store import concept_field
from ..storage import MAPS_FIELD, maps_field_of, resolve_maps
from .config import default_field_names

#: A named Plotly colour scale (FiftyOne accepts Plotly's names): blue for
#: low, red for high, the usual look of a class-activation map.
DEFAULT_COLORSCALE = "jet"

#: The whole-image heatmap's display range starts here (of 0-255, the
#: image's peak being 255): the App draws values below a heatmap's range as
#: background, so the image stays visible where the map is below 20% of its
#: peak instead of being tinted by the scale's low end everywhere.
HEATMAP_FLOOR = 51

#: Per-map attributes too heavy to read in a tooltip (uint8 / float16
#: arrays); ``mask`` is also heavy but the App already hides it.
HEAVY_ATTRIBUTES = ("heatmap", "descriptor")

#: A map's label when the annotator has not named it, or found it not nameable.
UNNAMED_LABEL = "unnamed"
NOT_NAMEABLE_LABEL = "not nameable"

#: The saved view the demo opens on (:func:`save_browse_view`).
BROWSE_VIEW = "maps"

_CHUNK = 50_000


def channel_label(channel):
    """A map's label as computed: its channel.

    Examples
    --------
    >>> channel_label(38)
    'ch38'
    """
    return f"ch{int(channel)}"


def configure_map_display(samples, *, maps_field=MAPS_FIELD, heatmap_field=None,
                          prediction_field=None, colorscale=DEFAULT_COLORSCALE):
    """Set the dataset's App config so its maps are drawn as maps.

    Parameters
    ----------
    samples : SampleCollection
        any collection of the dataset (the App config is the dataset's).
    maps_field : str, default ``"actmaps"``
    heatmap_field : str, optional
        the whole-image heatmap field; default
        ``default_field_names(maps_field)["heatmap_field"]``.
    prediction_field : str, optional
        the prediction field; default from ``default_field_names``.
    colorscale : str, default ``"jet"``
        a named Plotly colour scale for the heatmap field.

    Returns
    -------
    fiftyone.core.odm.dataset.DatasetAppConfig
        the saved App config.

    Sets, leaving the rest of the App config as it was: ``color_by="value"``
    (the App uses a heatmap's colour scale only then; maps get a colour per
    label), a ``colorscales`` entry for ``heatmap_field`` (replacing an
    earlier one for that field) and the three fields in ``active_fields``.

    Raises
    ------
    ValueError
        no maps field ``maps_field``.
    """
    dataset = samples._dataset
    maps_field_of(dataset, maps_field)
    defaults = default_field_names(maps_field)
    heatmap_field = heatmap_field or defaults["heatmap_field"]
    prediction_field = prediction_field or defaults["prediction_field"]
    # another process (an operator, the panel) may have saved the dataset since
    dataset.reload()
    app_config = dataset.app_config
    scheme = app_config.color_scheme or fo.ColorScheme()
    scheme.color_by = "value"
    scales = [s for s in (scheme.colorscales or []) if s.get("path") != heatmap_field]
    scales.append({"path": heatmap_field, "name": colorscale, "list": None})
    scheme.colorscales = scales
    app_config.color_scheme = scheme

    wanted = [maps_field, prediction_field, heatmap_field]
    active = app_config.active_fields or fo.DatasetAppConfig.default_active_fields(dataset)
    if active.exclude:
        active.paths = [p for p in active.paths if p not in wanted]
    else:
        active.paths = list(active.paths) + [p for p in wanted if p not in active.paths]
    app_config.active_fields = active
    dataset.save()
    return dataset.app_config


def _relabel(samples, maps_field, label_of):
    """Set every map's ``label`` (of ``samples``' maps) to the aggregation
    expression ``label_of`` of the map ``$$m``, in one pipeline update per
    chunk of samples; returns the number of maps relabelled."""
    collection, map_ids = resolve_maps(samples, maps_field=maps_field)
    maps_field_of(collection, maps_field)
    if map_ids is not None:
        # a patches view: only its maps, the others keep their label
        wanted = [ObjectId(i) for i in map_ids]
        label_of = {"$cond": [{"$in": ["$$m._id", wanted]}, label_of, "$$m.label"]}
    update = [{
        "$set": {
            f"{maps_field}.detections": {
                "$map": {
                    "input": f"${maps_field}.detections",
                    "as": "m",
                    "in": {"$mergeObjects": ["$$m", {"label": label_of}]},
                }
            },
            "last_modified_at": "$$NOW",
        }
    }]
    ids = [ObjectId(i) for i in collection.values("id")]
    raw = collection._dataset._sample_collection
    for start in range(0, len(ids), _CHUNK):
        raw.update_many(
            {"_id": {"$in": ids[start : start + _CHUNK]}, f"{maps_field}.detections.0": {"$exists": True}},
            update,
        )
    return len(map_ids) if map_ids is not None else collection.count(f"{maps_field}.detections")


def label_maps_by_concept(samples, annotator, *, maps_field=MAPS_FIELD):
    """Label each map of ``samples`` with ``annotator``'s concept, so the App's
    boxes and patches say what the map shows.

    Parameters
    ----------
    samples : SampleCollection
        a dataset, a view of its images, or a patches view of ``maps_field``
        (then only its maps are relabelled).
    annotator : str
        whose concepts (``concept_<annotator>``).
    maps_field : str, default ``"actmaps"``

    Returns
    -------
    int
        the number of maps relabelled.

    A map's ``label`` becomes the annotator's concept, ``"unnamed"``
    (:data:`UNNAMED_LABEL`) where they gave none, and ``"not nameable"``
    (:data:`NOT_NAMEABLE_LABEL`) where they found none. Labels are display
    only: nothing reads them back as names, so a later renaming shows after
    calling this again; :func:`label_maps_by_channel` restores the computed
    labels.

    Raises
    ------
    ValueError
        an invalid annotator id, no maps field, or a collection that cannot
        stand for maps (:func:`fiftyone_plugin.storage.resolve_maps`).
    """
    attribute = concept_field(annotator, maps_field).rsplit(".", 1)[1]
    name = f"$$m.{attribute}"
    label_of = {
        "$cond": [
            {"$eq": [name, NOT_NAMEABLE]},
            NOT_NAMEABLE_LABEL,
            {"$ifNull": [name, UNNAMED_LABEL]},
        ]
    }
    return _relabel(samples, maps_field, label_of)


def label_maps_by_channel(samples, *, maps_field=MAPS_FIELD):
    """Label each map of ``samples`` with its channel (``ch<channel>``), as
    :func:`~fiftyone_plugin.maps.compute.compute_activation_maps` wrote it.

    Parameters
    ----------
    samples : SampleCollection
        as in :func:`label_maps_by_concept`.
    maps_field : str, default ``"actmaps"``

    Returns
    -------
    int
        the number of maps relabelled.
    """
    return _relabel(samples, maps_field, {"$concat": ["ch", {"$toString": "$$m.channel"}]})


def browse_view(samples, *, maps_field=MAPS_FIELD):
    """The images of ``samples`` that have maps, without the maps' heavy
    attributes (:data:`HEAVY_ATTRIBUTES`), for browsing in the App.

    Parameters
    ----------
    samples : SampleCollection
        an image collection.
    maps_field : str, default ``"actmaps"``

    Returns
    -------
    DatasetView

    The excluded attributes are only out of this view: readers that need
    them call :func:`with_heavy_attributes` first (the layouts do; other
    readers of descriptors, e.g. suggestions, need the dataset or another view).
    """
    maps_field_of(samples, maps_field)
    return (
        samples.exists(maps_field)
        .match(F(f"{maps_field}.detections").length() > 0)
        .exclude_fields([f"{maps_field}.detections.{a}" for a in HEAVY_ATTRIBUTES])
    )


def save_browse_view(samples, *, maps_field=MAPS_FIELD, name=BROWSE_VIEW):
    """Save :func:`browse_view` on the dataset as ``name`` (replacing a view
    of that name) and return it, so the App opens on it
    (``fo.launch_app(view=...)``) and lists it among the saved views."""
    view = browse_view(samples, maps_field=maps_field)
    samples._dataset.save_view(name, view, overwrite=True)
    return view


def with_heavy_attributes(samples, *, maps_field=MAPS_FIELD):
    """``samples`` with the stages that exclude the maps' heavy attributes
    (:func:`browse_view`) removed, the other stages kept in order: the same
    images and maps, with their heatmaps and descriptors.

    Parameters
    ----------
    samples : SampleCollection
    maps_field : str, default ``"actmaps"``

    Returns
    -------
    SampleCollection
        ``samples`` itself when it excludes none of them (datasets, patches
        and other generated views are returned as given).
    """
    heavy = {f"{maps_field}.detections.{a}" for a in HEAVY_ATTRIBUTES}

    def excludes_heavy(stage):
        return isinstance(stage, fost.ExcludeFields) and set(stage.field_names) <= heavy

    stages = getattr(samples, "_stages", None)
    if not stages or samples._dataset is not samples._root_dataset or not any(map(excludes_heavy, stages)):
        return samples
    view = samples._root_dataset.view()
    for stage in stages:
        if not excludes_heavy(stage):
            view = view.add_stage(stage)
    return view
