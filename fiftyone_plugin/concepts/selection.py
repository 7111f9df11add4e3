"""Which maps the FiftyOne App has selected, read from what the App sends
with every operator and panel request, so that an operator or panel names
exactly those maps.

The App selects maps in four ways, each carried differently:

- **labels** ticked in the grid or the modal: ``selected_labels`` (a list of
  ``{"label_id", "sample_id", "field", ...}``);
- **patches** ticked in a patches view of the maps field: ``selected`` (patch
  ids, which are the maps' ids);
- a **lasso in the Embeddings panel** over a patches visualization (brain key
  ``actmaps_layout``): FiftyOne 1.22's Embeddings panel asks the server's
  ``/embeddings/v2/lasso-stage`` route for a view stage that encodes the lasso
  and sets it as the App's *extended stages* (``extended``: ``{stage class:
  kwargs}``), which the App sends with every request and which triggers a
  Python panel's ``on_change_view``. In a samples view the stage is
  ``MatchLabels(fields=[maps_field], ids=<lassoed map ids>)``; in a patches
  view of the maps it is ``Select(<patch ids>)`` (patch ids are map ids), or
  a ``Mongo`` ``$geoWithin`` stage on the points field when the run has a
  spatial index. It is *not* the "extended selection";
- the legacy **extended selection** (``extended_selection["selection"]``),
  still set by ``ctx.ops.set_extended_selection`` and older panels.

``MatchLabels`` only *matches samples* that contain a lassoed map: the view it
gives holds every map of those images. Naming "all maps in the current view"
after a lasso therefore names far more than was lassoed; the ids must be read
from the stage itself (:func:`lassoed_map_ids`).
"""

import hashlib

import fiftyone.server.view as fosv
from bson import ObjectId
from fiftyone.core.stages import ViewStage

from ..maps.compute import MAPS_RUN_TYPE
from ..storage import MAPS_FIELD
from .store import existing_map_ids

_STAGES = "fiftyone.core.stages."

# stages that select maps (or the patches that stand for them); other
# extended stages (sorting, field selection) select nothing
_LABEL_STAGES = ("MatchLabels", "SelectLabels", "FilterLabels")
_PATCH_STAGES = ("Select", "Mongo", "SelectBy", "GeoWithin")

SOURCE_LABELS = {
    "labels": "selected in the grid or the sample view",
    "patches": "selected in the patches grid",
    "lasso": "lassoed in the Embeddings panel",
    "extended": "selected in the Embeddings panel (extended selection)",
    "view": "in the current view",
    "ids": "given by id",
}


def _existing(samples, ids, maps_field):
    return existing_map_ids(samples, ids, maps_field)


def maps_fields(dataset):
    """The fields of ``dataset`` that hold maps: those with an
    activation-maps run, in the order the runs were made."""
    fields = []
    for key in dataset.list_runs():
        config = dataset.get_run_info(key).config
        if getattr(config, "run_type", None) == MAPS_RUN_TYPE:
            fields.append(config.maps_field)
    return fields


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (str, ObjectId)):
        return [str(value)]
    return [str(v) for v in value]


def _names_field(fields, maps_field):
    """Whether a stage's ``fields`` / ``field`` argument covers ``maps_field``
    (``None`` means every label field)."""
    if fields is None:
        return True
    if isinstance(fields, str):
        return fields == maps_field
    return maps_field in fields


def _stage_kwargs(kwargs):
    # the App sends kwargs as a dict; a serialized stage has [[name, value]]
    if isinstance(kwargs, dict):
        return kwargs
    return {k: v for k, v in (kwargs or [])}


def _is_maps_patches(collection, maps_field):
    return bool(getattr(collection, "_is_patches", False)) and getattr(collection, "_label_fields", None) == [maps_field]


def lassoed_map_ids(base_view, extended, maps_field=MAPS_FIELD):
    """The maps an Embeddings-panel lasso selected, from the App's extended
    stages.

    Parameters
    ----------
    base_view : fiftyone.core.collections.SampleCollection
        The App's view *without* its extended stages (the dataset, a saved
        view, or a patches view of the maps), as the App's ``view`` request
        parameter defines it.
    extended : dict or None
        The App's extended stages, ``{"fiftyone.core.stages.<Stage>":
        kwargs}`` (the ``extended`` request parameter; kwargs as a dict or as
        ``[[name, value], ...]``).
    maps_field : str, default ``MAPS_FIELD`` ("actmaps")

    Returns
    -------
    list of str or None
        The lassoed maps' ids, in the stage's order, without repeats and
        without ids that are not maps of ``maps_field`` (deleted since, or
        samples); ``None`` when no extended stage selects maps of
        ``maps_field`` (no lasso, or a lasso over a samples visualization).

    Notes
    -----
    - ``MatchLabels`` / ``SelectLabels`` with ``ids`` on the maps field: the
      ids themselves (``MatchLabels`` keeps every map of a matched image, so
      the view cannot be used).
    - ``SelectLabels`` / ``FilterLabels`` without ids, on the maps field: the
      maps left in ``base_view`` plus that stage.
    - In a patches view of the maps field, ``Select`` / ``Mongo`` (the
      ``$geoWithin`` lasso of a run with a spatial index) / ``SelectBy`` /
      ``GeoWithin`` / ``Match``: the patches ``base_view`` plus that stage
      keeps (a patch's id is its map's id).

    Several selecting stages (not made by the Embeddings panel) intersect.
    """
    if not extended:
        return None
    found = None
    for cls, raw_kwargs in extended.items():
        if not isinstance(cls, str) or not cls.startswith(_STAGES) or raw_kwargs is None:
            continue
        name = cls[len(_STAGES):]
        kwargs = _stage_kwargs(raw_kwargs)
        ids = None
        if name in ("MatchLabels", "SelectLabels") and kwargs.get("ids") is not None:
            if kwargs.get("bool") is False or not _names_field(kwargs.get("fields"), maps_field):
                continue
            if kwargs.get("tags") is not None or kwargs.get("filter") is not None:
                continue  # ids AND tags/filter: not a plain selection
            ids = _existing(base_view, _as_list(kwargs["ids"]), maps_field)
        elif name in ("SelectLabels", "FilterLabels") or (
            name in _PATCH_STAGES and _is_maps_patches(base_view, maps_field)
        ):
            if name == "SelectLabels" and not _names_field(kwargs.get("fields"), maps_field):
                continue
            if name == "FilterLabels" and kwargs.get("field") != maps_field:
                continue
            stage = ViewStage._from_dict({"_cls": cls, "kwargs": [[k, v] for k, v in kwargs.items()]})
            ids = map_ids_in(base_view.add_stage(stage), maps_field)
        else:
            continue
        found = ids if found is None else [i for i in found if i in set(ids)]
    return found


def map_ids_in(collection, maps_field=MAPS_FIELD):
    """Every map left in ``collection`` (a samples or patches view, filtered
    or not), without repeats."""
    _, path = collection._get_label_field_path(maps_field, "id")
    return list(dict.fromkeys(collection.values(path, unwind=True)))


def app_selections(
    dataset,
    maps_field=MAPS_FIELD,
    *,
    base_view=None,
    view=None,
    extended=None,
    selected=None,
    selected_labels=None,
    extended_selection=None,
):
    """Every selection of maps the App holds, by source.

    Parameters
    ----------
    dataset : fiftyone.core.dataset.Dataset
    maps_field : str, default ``MAPS_FIELD`` ("actmaps")
    base_view : SampleCollection, optional
        The App's view without extended stages (see :func:`lassoed_map_ids`);
        default ``view``.
    view : SampleCollection, optional
        The App's current view (with its extended stages); tells whether
        ``selected`` are patches of the maps field.
    extended : dict, optional
        The App's extended stages.
    selected : list of str, optional
        Selected sample (or patch) ids.
    selected_labels : list of dict, optional
        Selected labels, ``{"label_id", "field", ...}``.
    extended_selection : dict, optional
        The legacy extended selection, ``{"selection": [ids], ...}``.

    Returns
    -------
    list of dict
        ``[{"source", "label", "ids"}]`` for each source that selects at least
        one existing map, in this order: labels ticked in the grid or the
        sample view, patches ticked in a patches view of the maps, the
        Embeddings-panel lasso, the legacy extended selection. ``source`` is
        a key of :data:`SOURCE_LABELS`; ``label`` says where the selection
        came from.
    """
    view = view if view is not None else dataset
    base_view = base_view if base_view is not None else view
    out = []

    def add(source, ids, extra=""):
        ids = _existing(dataset, ids, maps_field) if ids else []
        if ids:
            out.append({"source": source, "label": SOURCE_LABELS[source] + extra, "ids": ids})

    add("labels", [l.get("label_id") for l in (selected_labels or []) if l.get("field") == maps_field and l.get("label_id")])
    if selected and _is_maps_patches(view, maps_field):
        add("patches", list(selected))
    lassoed = lassoed_map_ids(base_view, extended, maps_field)
    if lassoed:
        keys = _embeddings_keys(dataset, maps_field)
        add("lasso", lassoed, f" (brain key {', '.join(keys)})" if keys else "")
    legacy = [i for i in ((extended_selection or {}).get("selection") or []) if isinstance(i, str)]
    if not (lassoed and set(lassoed) == set(_existing(dataset, legacy, maps_field))):
        # (the App also turns it into a Select stage, read above in a patches view)
        add("extended", legacy)
    return out


def _embeddings_keys(dataset, maps_field):
    """Brain visualization runs over patches of ``maps_field``."""
    keys = []
    for key in dataset.list_brain_runs():
        config = dataset.get_brain_info(key).config
        if getattr(config, "patches_field", None) == maps_field and "visualization" in type(config).__name__.lower():
            keys.append(key)
    return keys


def ids_digest(ids):
    """A short fingerprint of a set of ids (order-free): what a form showed
    and what is there at execution can be compared cheaply."""
    h = hashlib.sha1()
    for i in sorted(set(ids)):
        h.update(i.encode())
    return h.hexdigest()[:16]


def selection_key(source, ids):
    """What a form carries for a selection: ``"<source>:<count>:<digest>"``.
    FiftyOne's App sends a form's visible choices but not its hidden
    defaults, so the set shown travels as the value of the choice itself."""
    return f"{source}:{len(set(ids))}:{ids_digest(ids)}"


def parse_selection_key(key):
    """``(source, count, digest)`` of a :func:`selection_key`; ``ValueError``
    if ``key`` is not one."""
    try:
        source, count, digest = str(key).split(":")
        return source, int(count), digest
    except ValueError:
        raise ValueError(f"{key!r} is not a selection resolved by the form: open the form again (nothing was named)") from None


def check_unchanged(key, current_ids, source_label):
    """Refuse (``ValueError``) when the selection a form showed (``key``,
    from :func:`selection_key`) is empty or differs from the maps the same
    source selects now; returns the ids to name.

    Parameters
    ----------
    key : str
        ``"<source>:<count>:<digest>"`` carried by the form.
    current_ids : list of str or None
        The ids the same source selects at execution time.
    source_label : str
        Where they came from, for the message.

    Raises
    ------
    ValueError
        If the form showed no maps, or the set differs from ``current_ids``.
    """
    _, count, digest = parse_selection_key(key)
    current = list(dict.fromkeys(current_ids or []))
    if count == 0:
        raise ValueError("no maps to name: select maps first (nothing was changed)")
    if ids_digest(current) != digest:
        raise ValueError(
            f"the selection changed since the form was shown: it showed {count} map(s) "
            f"{source_label}, now there are {len(current)} (the App may have re-synced and dropped a lasso). "
            "Nothing was named: open the operator again."
        )
    return current


def images_of(collection):
    """The image samples under a patches, frames or clips view: the
    dataset's samples (with all their maps, unfiltered) whose images the
    view's patches come from. Any other collection is returned unchanged.

    Parameters
    ----------
    collection : SampleCollection

    Returns
    -------
    SampleCollection
        ``collection`` itself, or ``dataset.select(sample_ids)``.
    """
    if not (getattr(collection, "_is_patches", False) or getattr(collection, "_is_frames", False) or getattr(collection, "_is_clips", False)):
        return collection
    ids = collection.distinct("sample_id")
    return collection._root_dataset.select(ids, ordered=False)


# ---- what an operator's or panel's request carries --------------------------


def base_view(ctx):
    """The App's view without its extended stages (where the Embeddings
    panel's lasso lives), from an operator's or panel's request: the saved
    view, or the view's own stages.

    Parameters
    ----------
    ctx : fiftyone.operators.executor.ExecutionContext

    Returns
    -------
    SampleCollection
    """
    # the App server's own reading of its request (a private FiftyOne
    # module: this is the one place the plugin uses it)
    params = ctx.request_params
    return fosv.get_view(ctx.dataset, view_name=params.get("view_name"), stages=params.get("view"), reload=False)


def request_selections(ctx, maps_field=MAPS_FIELD):
    """Every selection of maps the App sends with this request, by source:
    :func:`app_selections` over the request's view, extended stages,
    selected samples and labels and extended selection.

    Parameters
    ----------
    ctx : fiftyone.operators.executor.ExecutionContext
    maps_field : str, default ``MAPS_FIELD`` ("actmaps")

    Returns
    -------
    list of dict
        as :func:`app_selections` returns.
    """
    return app_selections(
        ctx.dataset,
        maps_field,
        base_view=base_view(ctx),
        view=ctx.view,
        extended=ctx.request_params.get("extended"),
        selected=ctx.selected,
        selected_labels=ctx.selected_labels,
        extended_selection=ctx.extended_selection,
    )


def selected_map_ids(ctx, maps_field=MAPS_FIELD):
    """The maps the user selected in the App, from the first selection
    source of :func:`request_selections` (labels ticked in the grid or
    modal, patches ticked in a patches view of ``maps_field``, an
    Embeddings-panel lasso, the extended selection); ``[]`` if none."""
    found = request_selections(ctx, maps_field)
    return found[0]["ids"] if found else []
