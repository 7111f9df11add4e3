"""Where things live on the user's dataset: field-name checks and the schema
of the maps field, declared up front so that bulk writes land in known
fields."""

import re
import threading

import fiftyone as fo

#: the default maps field (``compute_activation_maps(maps_field=...)``), the
#: one place every SDK function, operator and panel takes its default from
MAPS_FIELD = "actmaps"

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_field_name(name, what="field"):
    """Field and key names must be plain identifiers (no dots, no ``$``)."""
    if not isinstance(name, str) or not _FIELD_NAME.match(name):
        raise ValueError(
            f"{what} must start with a letter and contain only letters, digits "
            f"and underscores; got {name!r}"
        )
    return name


def _check_not_grouped(samples):
    # one rule for every function: a grouped collection is refused (its
    # slices may mix media, and values() would silently read the active slice
    # only); the user picks the image slice(s) explicitly
    if samples.media_type == fo.core.media.GROUP or getattr(samples, "_is_dynamic_groups", False):
        raise ValueError(
            "this is a grouped collection; pass a flat view of its image "
            "slice(s), e.g. dataset.select_group_slices(\"<slice>\") or "
            "dataset.select_group_slices(media_type=\"image\")"
        )


def check_image_collection(samples):
    """Only plain image samples carry maps (not videos, frames or patches).

    Grouped collections are refused with a message naming
    ``select_group_slices`` (the same rule as :func:`resolve_maps`).
    """
    if not hasattr(samples, "_dataset"):
        raise TypeError(
            f"expected a FiftyOne dataset or view; got {type(samples).__name__}"
        )
    _check_not_grouped(samples)
    if samples.media_type != fo.core.media.IMAGE:
        raise ValueError(
            f"activation maps need an image collection; this one holds "
            f"{samples.media_type!r} media"
        )
    if samples._is_patches or samples._is_frames or samples._is_clips:
        raise ValueError(
            "pass the underlying image dataset (or a view of its samples), "
            "not a patches, frames or clips view"
        )


# The per-map attributes and their FiftyOne field types.
MAP_ATTRIBUTES = {
    "layer": fo.StringField,
    "channel": fo.IntField,
    "rank": fo.IntField,
    "contribution": fo.FloatField,
    "share": fo.FloatField,
    "target": fo.StringField,
    "peak": fo.ListField,
    "heatmap": fo.ArrayField,
    "descriptor": fo.ArrayField,
}
# (layout points are not declared here: each layout run owns its own points
# attribute, ``point_<brain_key>``; see maps/layouts.py)


# threads of one process share each Dataset object, and with it the field
# list that a declaration edits and saves
_DECLARE_LOCK = threading.Lock()


def check_field_type(dataset, path, ftype, *, embedded_doc_type=None):
    """Refuse an existing field ``path`` of another type than ``ftype`` (or,
    with ``embedded_doc_type``, another document type): a run checks the
    fields it will write before it writes anything. An absent field passes.

    Raises
    ------
    ValueError
        the field exists with another type.
    """
    existing = dataset.get_field(path)
    if existing is None:
        return
    if not isinstance(existing, ftype) or (
        embedded_doc_type is not None and getattr(existing, "document_type", None) is not embedded_doc_type
    ):
        raise ValueError(
            f"field {path!r} exists with another type ({type(existing).__name__}); "
            "choose another field name"
        )


def declare_field(dataset, path, ftype, *, strict=True, **kwargs):
    """Declare the sample field ``path`` unless it is declared: the one way
    every module of the plugin declares the fields it writes.

    FiftyOne saves a dataset's field list whole, so two processes declaring
    two fields at once can lose one declaration; the dataset is reloaded
    before adding and after, and the declaration retried (up to 5 times)
    until it is seen in the saved schema.

    Parameters
    ----------
    dataset : fiftyone.core.dataset.Dataset
    path : str
        the field's path (``"field"`` or ``"field.detections.attribute"``).
    ftype : type
        a :class:`fiftyone.core.fields.Field` subclass.
    strict : bool, default True
        refuse an existing field of another type (or, with
        ``embedded_doc_type``, another document type).
    **kwargs
        passed to :meth:`fiftyone.core.dataset.Dataset.add_sample_field`
        (``embedded_doc_type``, ``subfield``).

    Returns
    -------
    fiftyone.core.fields.Field
        the declared field.

    Raises
    ------
    ValueError
        with ``strict``, the field exists with another type.
    RuntimeError
        the declaration could not be saved (5 tries).
    """
    existing = dataset.get_field(path)
    if existing is None:
        with _DECLARE_LOCK:
            for _ in range(5):
                dataset.reload()  # another process may have declared it, or saved over ours
                existing = dataset.get_field(path)
                if existing is not None:
                    break
                try:
                    dataset.add_sample_field(path, ftype, **kwargs)
                except ValueError:
                    continue  # declared meanwhile; the reload above sees it
        if existing is None:
            raise RuntimeError(f"could not declare {path!r} on {dataset.name!r}")
    if strict:
        check_field_type(dataset, path, ftype, embedded_doc_type=kwargs.get("embedded_doc_type"))
    return existing


def declare_map_schema(dataset, maps_field, fields):
    """Declare the maps field, its attributes and the companion fields.

    Existing fields are kept as they are (``strict=False``): datasets made by
    earlier versions may hold them with a looser type."""
    existing = dataset.get_field(maps_field)
    if existing is not None and getattr(existing, "document_type", None) is not fo.Detections:
        raise ValueError(
            f"field {maps_field!r} exists and is not a Detections field"
        )
    declare_field(dataset, maps_field, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections, strict=False)
    declare_field(dataset, f"{maps_field}.config_hash", fo.StringField, strict=False)
    declare_field(dataset, f"{maps_field}.map_identity", fo.StringField, strict=False)
    for name, ftype in MAP_ATTRIBUTES.items():
        kwargs = {"subfield": fo.FloatField} if ftype is fo.ListField else {}
        declare_field(dataset, f"{maps_field}.detections.{name}", ftype, strict=False, **kwargs)
    declare_field(
        dataset, fields["prediction_field"], fo.EmbeddedDocumentField, embedded_doc_type=fo.Classification, strict=False
    )
    declare_field(
        dataset, fields["heatmap_field"], fo.EmbeddedDocumentField, embedded_doc_type=fo.Heatmap, strict=False
    )
    declare_field(dataset, fields["error_field"], fo.StringField, strict=False)
    # label ids are how maps are addressed; this index keeps that fast
    dataset.create_index(f"{maps_field}.detections._id")


def maps_field_of(samples, maps_field):
    """Check that ``maps_field`` holds maps on ``samples``."""
    field = samples.get_field(maps_field)
    if field is None or getattr(field, "document_type", None) is not fo.Detections:
        raise ValueError(
            f"no maps field {maps_field!r}; run compute_activation_maps first"
        )
    return field


def resolve_maps(samples, *, maps_field=MAPS_FIELD, whole_images=False, what=None):
    """The one rule for which maps a collection stands for.

    Every SDK function that takes ``samples`` and a maps field resolves them
    here first, so that they all accept (and refuse) the same collections:

    - a dataset or a view of its image samples: its maps, as given;
    - a patches view of the maps field (``dataset.to_patches(maps_field)``,
      what the naming panel's "Show in App" leaves in the App's grid): a patch
      is a map, so the collection stands for exactly the maps in the view,
      returned as an image-level view of the patches' source restricted to
      those maps (``select_labels``);
    - anything else (grouped collections, videos, frames, clips, patches of
      another field, evaluation patches) is refused with one clear message.
      Grouped collections are refused everywhere (never read as their active
      slice): pass ``select_group_slices(...)``.

    Parameters
    ----------
    samples : SampleCollection
    maps_field : str
    whole_images : bool, default False
        for functions that read whole images (explanations, summaries,
        reports): a patches view is refused, since a sample's explanation
        needs all of its maps.
    what : str, optional
        the function's name, for the messages.

    Returns
    -------
    (collection, map_ids)
        ``collection`` is image-level (``samples`` itself unless it was a
        patches view); ``map_ids`` is the list of map ids a patches view holds,
        else ``None`` (all maps of ``collection``).

    Raises
    ------
    TypeError
        not a FiftyOne collection.
    ValueError
        no maps field ``maps_field``, or a collection that cannot stand for
        maps (see above). Nothing is read or written beyond the schema.
    """
    if not hasattr(samples, "_dataset"):
        raise TypeError(
            f"expected a FiftyOne dataset or view; got {type(samples).__name__}"
        )
    who = f"{what}: " if what else ""
    _check_not_grouped(samples)
    if samples._is_patches:
        patches_field = getattr(samples, "patches_field", None)
        if patches_field != maps_field:
            kind = f"patches of {patches_field!r}" if patches_field else "evaluation patches"
            raise ValueError(
                f"{who}this is a view of {kind}, not of the maps field "
                f"{maps_field!r}; pass the image dataset, a view of its samples, "
                f"or to_patches({maps_field!r})"
            )
        if whole_images:
            raise ValueError(
                f"{who}works on whole images (all maps of each sample); pass "
                "the image dataset or a view of its samples, not a patches view"
            )
        source = samples._source_collection
        maps_field_of(source, maps_field)
        map_ids = [i for i in samples.values(f"{maps_field}.id") if i is not None]
        return source.select_labels(ids=map_ids, fields=maps_field), map_ids
    if samples._is_frames or samples._is_clips or samples.media_type != fo.core.media.IMAGE:
        raise ValueError(
            f"{who}maps live on image samples; this collection holds "
            f"{'frames' if samples._is_frames else 'clips' if samples._is_clips else repr(samples.media_type) + ' media'}"
        )
    maps_field_of(samples, maps_field)
    return samples, None
