# (over 400 lines: the panel's whole model -- layout payloads, thumbnails, gallery and naming actions)
"""What the naming panel shows and does, as plain functions over a dataset:
the map layout coloured by one annotator's concepts, map thumbnails (soft
heatmap over the image region), progress counts, and naming actions that
return what an undo needs. The panel only renders these."""

import base64
import colorsys
import io
import json
import os
import tempfile
import zlib
from urllib.parse import quote

import numpy as np
from bson import ObjectId
from PIL import Image, ImageDraw, ImageOps

from fiftyone import ViewField as F
from fiftyone.core.utils import deserialize_numpy_array

from . import store
from ..maps.layouts import choose_layout
from ..storage import MAPS_FIELD
from .store import (
    NOT_NAMEABLE,
    assign_concept,
    concept_attribute,
    existing_map_ids,
    list_concepts,
    restore_assignments,
)

UNNAMED_COLOR = "#b0b0b0"
NOT_NAMEABLE_COLOR = "#505050"
NOT_NAMEABLE_LABEL = "(not nameable)"
UNNAMED_LABEL = "(unnamed)"


# well separated on a dark background (no greys: those mean unnamed / not nameable)
PALETTE = [
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
    "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8",
    "#800000", "#aaffc3", "#808000", "#ffd8b1", "#000075", "#ff9f80",
]


def concept_colors(concepts):
    """``{concept: colour}`` for a set of concepts: each takes the palette
    slot its name hashes to, the next free one if that is taken (in name
    order), so a concept keeps its colour across sessions unless a new name
    claims its slot first; past the palette's size, hues from the hash."""
    colors = {None: UNNAMED_COLOR, NOT_NAMEABLE: NOT_NAMEABLE_COLOR}
    taken = set()
    for concept in sorted(c for c in set(concepts) if c is not None and c != NOT_NAMEABLE):
        slot = zlib.crc32(concept.encode("utf-8")) % len(PALETTE)
        if len(taken) < len(PALETTE):
            while slot in taken:
                slot = (slot + 1) % len(PALETTE)
            taken.add(slot)
            colors[concept] = PALETTE[slot]
        else:
            colors[concept] = _hue_color(concept)
    return colors


def _hue_color(concept):
    hue = (zlib.crc32(concept.encode("utf-8")) % 360) / 360.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.55, 0.75)
    return "#{:02x}{:02x}{:02x}".format(int(r * 255), int(g * 255), int(b * 255))


def concept_color(concept, concepts=()):
    """The colour of ``concept`` among ``concepts`` (see :func:`concept_colors`)."""
    return concept_colors([*concepts, concept])[concept]


def display_name(concept):
    if concept is None:
        return UNNAMED_LABEL
    if concept == NOT_NAMEABLE:
        return NOT_NAMEABLE_LABEL
    return concept


def layout_and_progress(samples, annotator=None, maps_field=MAPS_FIELD, points_attribute=None, brain_key=None):
    """Everything the panel shows about all maps, in one aggregation:
    ``(points, stats)`` where ``points`` is ``{"ids", "x", "y", "concepts"}``
    (one entry per map with a point in the chosen layout) and ``stats`` is as
    :func:`progress` returns, counted over all maps.

    The layout is ``brain_key``'s, else the newest fresh layout of
    ``maps_field`` (:func:`fiftyone_plugin.maps.layouts.choose_layout`,
    which warns when the chosen layout is stale); ``points_attribute`` names
    a map attribute of points directly instead. Without any layout,
    ``points`` is empty."""
    if points_attribute is None:
        chosen = choose_layout(samples, maps_field=maps_field, brain_key=brain_key)
        points_attribute = chosen["points_attribute"] if chosen else None
    attribute = concept_attribute(annotator) if annotator else None
    # $map keeps one entry per map: "$field.detections.x" would skip maps
    # without x and misalign ids, points and names
    point = f"$$d.{points_attribute}" if points_attribute else None
    per_map = ["$$d._id", point] + ([f"$$d.{attribute}"] if attribute else [])
    pipeline = [
        {"$match": {f"{maps_field}.detections.0": {"$exists": True}}},
        {"$project": {"_id": 0, "m": {"$map": {"input": f"${maps_field}.detections", "as": "d", "in": per_map}}}},
    ]
    ids, xs, ys, concepts = [], [], [], []
    counts = {}
    total = 0
    for row in samples._aggregate(pipeline=pipeline):
        for entry in row["m"]:
            total += 1
            concept = entry[2] if attribute else None
            if concept is not None:
                counts[concept] = counts.get(concept, 0) + 1
            point = entry[1]
            if point is None:
                continue
            ids.append(str(entry[0]))
            xs.append(float(point[0]))
            ys.append(float(point[1]))
            concepts.append(concept)
    not_nameable = counts.pop(NOT_NAMEABLE, 0)
    named = sum(counts.values())
    stats = {
        "total": total,
        "named": named,
        "not_nameable": not_nameable,
        "unnamed": total - named - not_nameable,
        "concepts": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
    return {"ids": ids, "x": xs, "y": ys, "concepts": concepts}, stats


def legend(points):
    """One entry per concept present, in drawing order (unnamed underneath,
    then not nameable, then concepts by name): ``[{"name", "color",
    "count", "layer", "concept"}]``, and each point's index into it."""
    counts = {}
    for concept in points["concepts"]:
        counts[concept] = counts.get(concept, 0) + 1
    order = sorted(counts, key=lambda c: (c is not None, c != NOT_NAMEABLE, str(c)))
    colors = concept_colors(order)
    entries = [
        {
            "name": display_name(c),
            "concept": c,
            "color": colors[c],
            "count": counts[c],
            "layer": 0 if c is None else 1 if c == NOT_NAMEABLE else 2,
        }
        for c in order
    ]
    code_of = {c: i for i, c in enumerate(order)}
    return entries, np.array([code_of[c] for c in points["concepts"]], dtype="<u2")


def layout_signature(points):
    """Identifies which maps a layout has, in which order: names sent for one
    layout are drawn only over that layout."""
    return format(zlib.crc32("".join(points["ids"]).encode()) ^ len(points["ids"]), "08x")


def layout_payload(points, version=0):
    """Where the maps are, as the panel's scatter component reads it: one
    JSON string with the ids concatenated (24 hex characters each) and the
    coordinates as base64 little-endian float32 pairs. Strings, because the
    App replaces a string in panel data whole but merges arrays element by
    element; compact, because 20,000 maps must open quickly. Sent only when
    the maps change; naming sends :func:`names_payload` alone."""
    xy = np.empty(2 * len(points["ids"]), dtype="<f4")
    xy[0::2] = points["x"]
    xy[1::2] = points["y"]
    payload = {
        "version": version,
        "signature": layout_signature(points),
        "ids": "".join(points["ids"]),
        "xy": base64.b64encode(xy.tobytes()).decode(),
    }
    return json.dumps(payload, separators=(",", ":"))


def names_payload(points, version=0):
    """What the maps are named, for the layout with the same signature: each
    map's legend index as base64 uint16, and the legend."""
    entries, codes = legend(points)
    payload = {
        "version": version,
        "signature": layout_signature(points),
        "codes": base64.b64encode(codes.tobytes()).decode(),
        "legend": entries,
    }
    return json.dumps(payload, separators=(",", ":"))


def progress(samples, annotator, maps_field=MAPS_FIELD):
    """``{"total", "named", "not_nameable", "unnamed", "concepts"}`` for an
    annotator, counted by the database (never from a client's copy)."""
    total = samples.count(f"{maps_field}.detections")
    concepts = list_concepts(samples, annotator, maps_field=maps_field) if annotator else {}
    not_nameable = concepts.pop(NOT_NAMEABLE, 0)
    named = sum(concepts.values())
    return {
        "total": total,
        "named": named,
        "not_nameable": not_nameable,
        "unnamed": total - named - not_nameable,
        "concepts": concepts,
    }


def map_records(samples, map_ids, maps_field=MAPS_FIELD, annotator=None):
    """``{map_id: {filepath, bounding_box, heatmap, channel, rank, share,
    sample_id, concept}}`` for the given maps, in one query; ``concept`` is
    ``annotator``'s name for the map (``None`` without an annotator)."""
    concept_path = f"$m.{concept_attribute(annotator)}" if annotator else None
    wanted = [ObjectId(i) for i in map_ids]
    path = f"{maps_field}.detections"
    pipeline = [
        {"$match": {f"{path}._id": {"$in": wanted}}},
        {"$project": {"filepath": 1, "m": f"${path}"}},
        {"$unwind": "$m"},
        {"$match": {"m._id": {"$in": wanted}}},
        {
            "$project": {
                "filepath": 1,
                "id": "$m._id",
                "box": "$m.bounding_box",
                "heatmap": "$m.heatmap",
                "channel": "$m.channel",
                "rank": "$m.rank",
                "share": "$m.share",
                **({"concept": concept_path} if concept_path else {}),
            }
        },
    ]
    records = {}
    for row in samples._dataset._sample_collection.aggregate(pipeline):
        heatmap = row.get("heatmap")
        records[str(row["id"])] = {
            "sample_id": str(row["_id"]),
            "filepath": row["filepath"],
            "bounding_box": row.get("box"),
            "heatmap": deserialize_numpy_array(heatmap) if heatmap is not None else None,
            "channel": row.get("channel"),
            "rank": row.get("rank"),
            "share": row.get("share"),
            "concept": row.get("concept"),
        }
    return records


def _colormap(values):
    """A perceptual yellow-red ramp with opacity rising with the value, so
    low activation leaves the image visible."""
    v = np.clip(values, 0, 1)
    rgba = np.zeros(v.shape + (4,), dtype=np.float32)
    rgba[..., 0] = 1.0
    rgba[..., 1] = 0.85 * (1 - v) + 0.1 * v
    rgba[..., 2] = 0.1
    rgba[..., 3] = 0.5 * v
    return rgba


def map_thumbnail(filepath, bounding_box, heatmap, size=160, context=0.5):
    """PNG bytes: the map's region with ``context`` (fraction of the box size)
    around it, the soft heatmap blended over the image, the region outlined."""
    with Image.open(filepath) as image:
        # the frame the App shows and the maps are stored in (EXIF applied)
        image = ImageOps.exif_transpose(image).convert("RGB")
    width, height = image.size
    x, y, w, h = bounding_box
    pad_x, pad_y = w * context, h * context
    left, top = max(0.0, x - pad_x), max(0.0, y - pad_y)
    right, bottom = min(1.0, x + w + pad_x), min(1.0, y + h + pad_y)
    crop_box = (int(left * width), int(top * height), max(int(right * width), int(left * width) + 1), max(int(bottom * height), int(top * height) + 1))
    crop = image.crop(crop_box)
    scale = size / max(crop.size)
    out_size = (max(1, round(crop.size[0] * scale)), max(1, round(crop.size[1] * scale)))
    crop = crop.resize(out_size, Image.BILINEAR)

    if heatmap is not None:
        full = Image.fromarray(np.asarray(heatmap, dtype=np.uint8)).resize((width, height), Image.BILINEAR)
        region = np.asarray(full.crop(crop_box).resize(out_size, Image.BILINEAR), dtype=np.float32) / 255
        overlay = _colormap(region)
        base = np.asarray(crop, dtype=np.float32) / 255
        # dim what the map does not look at, so that its focus stands out
        # on busy images, then tint the focus warm
        base = base * (0.3 + 0.7 * np.clip(region, 0, 1))[..., None]
        alpha = overlay[..., 3:4]
        blended = base * (1 - alpha) + overlay[..., :3] * alpha
        crop = Image.fromarray((blended * 255).round().astype(np.uint8))

    draw = ImageDraw.Draw(crop)
    bx0 = (x - left) / (right - left) * out_size[0]
    by0 = (y - top) / (bottom - top) * out_size[1]
    bx1 = (x + w - left) / (right - left) * out_size[0]
    by1 = (y + h - top) / (bottom - top) * out_size[1]
    draw.rectangle([bx0, by0, max(bx0, bx1 - 1), max(by0, by1 - 1)], outline=(0, 200, 255), width=1)
    buffer = io.BytesIO()
    crop.save(buffer, format="PNG")
    return buffer.getvalue()


# bump when map_thumbnail draws differently, so cached files are redrawn
THUMBNAIL_STYLE = 3


def thumbnail_path(map_id, size=160, cache_dir=None):
    """Where the thumbnail of ``map_id`` is cached. Map ids are never
    reused (recomputed maps get new ids), so a cached file stays valid."""
    cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "interactive-naming-thumbnails")
    return os.path.join(cache_dir, map_id[-2:], f"{map_id}-{size}-v{THUMBNAIL_STYLE}.png")


def media_url(path):
    """The App server's URL for a local file (its ``/media`` route)."""
    return "/media?filepath=" + quote(path, safe="")


def gallery_page(
    samples, map_ids, page=0, per_page=24, maps_field=MAPS_FIELD, size=160, annotator=None, colors=None
):
    """One page of the selection as thumbnails: ``{"items": [{"map_id",
    "src", "caption", "concept", "color"}], "page", "pages"}``; ``concept``
    is ``annotator``'s current name for the map (display form, ``None`` if
    unnamed) and ``color`` its colour in the scatter (from ``colors``, as
    given by :func:`concept_colors`, else computed for the concepts shown). ``src`` is an App media URL of a
    cached PNG. Maps that no longer exist
    are left out."""
    pages = max(1, -(-len(map_ids) // per_page))
    page = min(max(0, int(page)), pages - 1)
    chosen = map_ids[page * per_page : (page + 1) * per_page]
    records = map_records(samples, chosen, maps_field, annotator) if chosen else {}
    items = []
    for map_id in chosen:
        record = records.get(map_id)
        if record is None:
            continue
        path = thumbnail_path(map_id, size)
        try:
            if not os.path.exists(path):
                png = map_thumbnail(record["filepath"], record["bounding_box"], record["heatmap"], size=size)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path + ".tmp", "wb") as f:
                    f.write(png)
                os.replace(path + ".tmp", path)  # atomic for concurrent panels
        except OSError:
            continue  # the image file went missing: skip its thumbnail
        share = record.get("share")
        caption = f"ch {record['channel']} · rank {record['rank']}" + (f" · {share:.0%}" if share is not None else "")
        src = media_url(path)
        concept = record.get("concept")
        items.append(
            {
                "map_id": map_id,
                "src": src,
                "caption": caption,
                "concept": None if concept is None else display_name(concept),
                "color": (colors or {}).get(concept) or concept_color(concept) if annotator else None,
            }
        )
    return {"items": items, "page": page, "pages": pages}


def name_maps(samples, map_ids, concept, annotator, *, maps_field=MAPS_FIELD):
    """Name (or with ``None``, unname) maps and return the undo record."""
    result = assign_concept(samples, map_ids, concept, annotator, maps_field=maps_field)
    return {"kind": "assign", "annotator": annotator, "previous": result["previous"], "concept": concept}


def undo(samples, record, maps_field=MAPS_FIELD):
    """Undo a naming action recorded by :func:`name_maps`."""
    if not record:
        raise ValueError("nothing to undo")
    # maps deleted or recomputed since (another tab, a rerun) are skipped, so
    # the undo is never left half done by one missing map
    previous = record["previous"]
    alive = set(existing_map_ids(samples, list(previous), maps_field))
    kept = {map_id: name for map_id, name in previous.items() if map_id in alive}
    return restore_assignments(samples, kept, record["annotator"], maps_field=maps_field)


def selection_view(samples, map_ids, maps_field=MAPS_FIELD):
    """A patches view of the given maps, for the App's grid."""
    return samples.select_labels(ids=list(map_ids), fields=maps_field).to_patches(maps_field)


def concept_view(samples, annotator, concept, maps_field=MAPS_FIELD):
    """A patches view of ``annotator``'s maps named ``concept``."""
    attribute = concept_attribute(annotator)
    return samples.filter_labels(maps_field, F(attribute) == concept).to_patches(maps_field)


def save_concept_view(samples, annotator, concept, maps_field=MAPS_FIELD):
    """Save :func:`concept_view` on the dataset as ``"<annotator>: <concept>"``
    (replacing an older one of that name) and return the name. The view
    filters by the name, so after a rename it must be saved again."""
    dataset = samples._dataset
    name = f"{annotator}: {display_name(concept)}"
    view = concept_view(dataset, annotator, concept, maps_field)
    dataset.save_view(name, view, description=f"maps {annotator} named {display_name(concept)!r}", overwrite=name in dataset.list_saved_views())
    return name


def maps_of_concept(samples, annotator, concept, maps_field=MAPS_FIELD):
    """Ids of ``annotator``'s maps named ``concept`` (``None``: unnamed)."""
    view = samples.filter_labels(maps_field, F(concept_attribute(annotator)) == concept, only_matches=True)
    return view.values(f"{maps_field}.detections.id", unwind=True)


def snapshot(samples, annotator, concepts, maps_field=MAPS_FIELD):
    """``{map_id: concept}`` for all maps of ``concepts``: taken before a
    rename, merge or delete, it is what undoing them needs."""
    previous = {}
    for concept in concepts:
        for map_id in maps_of_concept(samples, annotator, concept, maps_field):
            previous[map_id] = concept
    return previous


def manage(samples, action, annotator, maps_field=MAPS_FIELD, **kwargs):
    """Rename, merge or delete with an undo record. ``action`` is
    ``"rename"`` (``concept``, ``new_name``), ``"merge"`` (``concepts``,
    ``into``) or ``"delete"`` (``concept``)."""
    if action == "rename":
        previous = snapshot(samples, annotator, [kwargs["concept"]], maps_field)
        count = store.rename_concept(samples, annotator, kwargs["concept"], kwargs["new_name"], maps_field=maps_field)
    elif action == "merge":
        previous = snapshot(samples, annotator, kwargs["concepts"], maps_field)
        count = store.merge_concepts(samples, annotator, kwargs["concepts"], kwargs["into"], maps_field=maps_field)
    elif action == "delete":
        previous = snapshot(samples, annotator, [kwargs["concept"]], maps_field)
        count = store.delete_concept(samples, annotator, kwargs["concept"], maps_field=maps_field)
    else:
        raise ValueError(f"unknown action {action!r}")
    return count, {"kind": action, "annotator": annotator, "previous": previous}
