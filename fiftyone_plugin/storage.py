"""Where things live on the user's dataset: field-name checks and the schema
of the maps field, declared up front so that bulk writes land in known
fields."""

import re

import fiftyone as fo

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_field_name(name, what="field"):
    """Field and key names must be plain identifiers (no dots, no ``$``)."""
    if not isinstance(name, str) or not _FIELD_NAME.match(name):
        raise ValueError(
            f"{what} must start with a letter and contain only letters, digits "
            f"and underscores; got {name!r}"
        )
    return name


def check_image_collection(samples):
    """Only plain image samples carry maps (not videos, frames or patches)."""
    if not hasattr(samples, "_dataset"):
        raise TypeError(
            f"expected a FiftyOne dataset or view; got {type(samples).__name__}"
        )
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
    "point": fo.ListField,
}


def _ensure_field(dataset, path, ftype, **kwargs):
    if dataset.get_field(path) is None:
        dataset.add_sample_field(path, ftype, **kwargs)


def declare_map_schema(dataset, maps_field, fields):
    """Declare the maps field, its attributes and the companion fields."""
    existing = dataset.get_field(maps_field)
    if existing is not None and getattr(existing, "document_type", None) is not fo.Detections:
        raise ValueError(
            f"field {maps_field!r} exists and is not a Detections field"
        )
    _ensure_field(dataset, maps_field, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    _ensure_field(dataset, f"{maps_field}.config_hash", fo.StringField)
    _ensure_field(dataset, f"{maps_field}.map_identity", fo.StringField)
    for name, ftype in MAP_ATTRIBUTES.items():
        kwargs = {"subfield": fo.FloatField} if ftype is fo.ListField else {}
        _ensure_field(dataset, f"{maps_field}.detections.{name}", ftype, **kwargs)
    _ensure_field(
        dataset, fields["prediction_field"], fo.EmbeddedDocumentField, embedded_doc_type=fo.Classification
    )
    _ensure_field(
        dataset, fields["heatmap_field"], fo.EmbeddedDocumentField, embedded_doc_type=fo.Heatmap
    )
    _ensure_field(dataset, fields["error_field"], fo.StringField)
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
