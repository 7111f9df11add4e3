"""The concept store on a real MongoDB."""

import json
import threading

import pytest

import fiftyone as fo

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts.store import NOT_NAMEABLE, restore_assignments, validate_concept_name

from tests.support.helpers import TinyNet


@pytest.fixture
def mapped(dataset, rgb_images):
    dataset.add_samples([fo.Sample(filepath=p) for p in rgb_images])
    fpl.compute_activation_maps(dataset, TinyNet(), top_k=3)
    return dataset


def map_ids(ds):
    return [i for ids in ds.values("actmaps.detections.id") for i in ids]


@pytest.mark.parametrize(
    "name, expected",
    [("  red head ", "red head"), ("Kopf 🦜", "Kopf 🦜"), ("x" * 100, "x" * 100), (NOT_NAMEABLE, NOT_NAMEABLE)],
)
def test_valid_names_are_trimmed(name, expected):
    assert validate_concept_name(name) == expected


@pytest.mark.parametrize(
    "name, message",
    [("", "empty"), ("   ", "empty"), ("x" * 101, "at most 100"), ("a\nb", "control"), ("__x", "reserved"), (3, "text")],
)
def test_bad_names_are_clear_errors(name, message):
    with pytest.raises(ValueError, match=message):
        validate_concept_name(name)


def test_assign_list_and_clear(mapped):
    ids = map_ids(mapped)
    out = fpl.assign_concept(mapped, ids[:5], " red head ", "alice")
    assert out["assigned"] == 5 and set(out["previous"].values()) == {None}
    fpl.assign_concept(mapped, ids[5:7], "wing", "alice")
    fpl.assign_concept(mapped, ids[:2], "tail", "bob")
    assert fpl.list_concepts(mapped, "alice") == {"red head": 5, "wing": 2}
    assert fpl.list_concepts(mapped) == {"alice": {"red head": 5, "wing": 2}, "bob": {"tail": 2}}
    # the names live on the maps themselves, one attribute per annotator
    names = mapped.values("actmaps.detections.concept_alice", unwind=True)
    assert names.count("red head") == 5
    out = fpl.assign_concept(mapped, ids[:1], None, "alice")
    assert out["previous"] == {ids[0]: "red head"}
    assert fpl.list_concepts(mapped, "alice") == {"red head": 4, "wing": 2}
    assert fpl.list_concepts(mapped, "nobody") == {}


def test_bad_input_changes_nothing(mapped):
    ids = map_ids(mapped)
    fpl.assign_concept(mapped, ids[:3], "head", "alice")
    before = mapped.values("actmaps.detections.concept_alice")
    with pytest.raises(ValueError, match="at most 100"):
        fpl.assign_concept(mapped, ids, "y" * 101, "alice")
    missing = "0123456789abcdef01234567"
    with pytest.raises(ValueError, match=missing):
        fpl.assign_concept(mapped, ids[3:6] + [missing], "body", "alice")
    with pytest.raises(ValueError, match="malformed"):
        fpl.assign_concept(mapped, ["xyz"], "body", "alice")
    with pytest.raises(ValueError, match="annotator"):
        fpl.assign_concept(mapped, ids[:1], "body", "al.ice")
    assert mapped.values("actmaps.detections.concept_alice") == before


def test_rename_merge_delete_and_undo(mapped):
    ids = map_ids(mapped)
    fpl.assign_concept(mapped, ids[:4], "a", "alice")
    fpl.assign_concept(mapped, ids[4:6], "b", "alice")
    fpl.assign_concept(mapped, ids[6:7], "c", "alice")
    fpl.assign_concept(mapped, ids[:4], "a", "bob")

    assert fpl.rename_concept(mapped, "alice", "a", "apple") == 4
    with pytest.raises(ValueError, match="merge"):
        fpl.rename_concept(mapped, "alice", "b", "apple")
    with pytest.raises(ValueError, match="no concept"):
        fpl.rename_concept(mapped, "alice", "zzz", "q")
    assert fpl.list_concepts(mapped, "bob") == {"a": 4}  # other namespaces untouched

    assert fpl.merge_concepts(mapped, "alice", ["b", "c"], "apple") == 3
    assert fpl.list_concepts(mapped, "alice") == {"apple": 7}
    assert fpl.delete_concept(mapped, "alice", "apple") == 7
    assert fpl.list_concepts(mapped, "alice") == {}

    out = fpl.assign_concept(mapped, ids[:6], "x", "carol")
    out2 = fpl.assign_concept(mapped, ids[:3], "y", "carol")
    restore_assignments(mapped, out2["previous"], "carol")
    assert fpl.list_concepts(mapped, "carol") == {"x": 6}
    restore_assignments(mapped, out["previous"], "carol")
    assert fpl.list_concepts(mapped, "carol") == {}


def test_concurrent_annotators_lose_nothing(mapped):
    ids = map_ids(mapped)
    errors = []

    def work(annotator, concept, chunk):
        try:
            for i in range(0, len(chunk), 2):
                fpl.assign_concept(mapped, chunk[i : i + 2], concept, annotator)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    # two annotators on the same maps, and one annotator in two "tabs"
    threads = [
        threading.Thread(target=work, args=("alice", "head", ids[::2])),
        threading.Thread(target=work, args=("alice", "body", ids[1::2])),
        threading.Thread(target=work, args=("bob", "thing", ids)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert fpl.list_concepts(mapped, "alice") == {"head": len(ids[::2]), "body": len(ids[1::2])}
    assert fpl.list_concepts(mapped, "bob") == {"thing": len(ids)}


def test_lost_schema_declaration_is_repaired_from_the_data(mapped):
    # what a concurrent save of the field list by another process leaves:
    # names in the data, no declaration in the schema
    ids = map_ids(mapped)
    mapped._sample_collection.update_many({}, {"$set": {"actmaps.detections.$[].concept_zoe": "wheel"}})
    assert mapped.get_field("actmaps.detections.concept_zoe") is None
    assert fpl.list_concepts(mapped, "zoe") == {"wheel": len(ids)}
    assert mapped.get_field("actmaps.detections.concept_zoe") is not None
    mapped._sample_collection.update_many({}, {"$set": {"actmaps.detections.$[].concept_yan": "rim"}})
    assert "yan" in fpl.list_annotators(mapped)
    assert fpl.list_concepts(mapped)["yan"] == {"rim": len(ids)}


WRITER = """
import sys
import fiftyone as fo
import fiftyone_plugin as fpl
dataset = fo.load_dataset(sys.argv[1])
ids = [i for ids in dataset.values("actmaps.detections.id") for i in ids]
for annotator in sys.argv[2:]:
    for start in range(0, len(ids), 4):
        fpl.assign_concept(dataset, ids[start : start + 4], "c_" + annotator, annotator)
"""


def test_annotators_in_separate_processes_lose_nothing(mapped):
    # two App server workers (or two machines) declaring annotators at once
    import subprocess
    import sys

    mapped.persistent = True
    groups = [["p1a", "p1b", "p1c"], ["p2a", "p2b", "p2c"]]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, mapped.name, *g]) for g in groups]
    assert [w.wait(timeout=300) for w in writers] == [0, 0]
    n = len(map_ids(mapped))
    everyone = [a for g in groups for a in g]
    assert fpl.list_annotators(mapped) == sorted(everyone)
    assert fpl.list_concepts(mapped) == {a: {f"c_{a}": n} for a in everyone}


def test_export_import_round_trip_and_recomputed_maps(mapped, workdir):
    ids = map_ids(mapped)
    fpl.assign_concept(mapped, ids[:5], "Kopf 🦜", "alice")
    fpl.assign_concept(mapped, ids[5:8], NOT_NAMEABLE, "alice")
    fpl.assign_concept(mapped, ids[:2], "head", "bob")
    path = f"{workdir}/concepts.json"
    doc = fpl.export_concepts(mapped, path)
    assert doc["format"] == "interactive-naming/concepts" and len(doc["assignments"]) == 10
    with open(path, encoding="utf-8") as f:
        assert json.load(f)["assignments"][0]["annotator"] in {"alice", "bob"}

    # clear everything, import: all placed by id
    for annotator in ("alice", "bob"):
        for concept in list(fpl.list_concepts(mapped, annotator)):
            fpl.delete_concept(mapped, annotator, concept)
    report = fpl.import_concepts(mapped, path)
    assert report["by_id"] == 10 and not report["unplaced"]
    assert fpl.list_concepts(mapped, "alice") == {"Kopf 🦜": 5, NOT_NAMEABLE: 3}

    # recompute maps (new ids): names are placed by (sample, layer, channel)
    fpl.compute_activation_maps(mapped, TinyNet(), top_k=3, overwrite=True)
    assert not set(map_ids(mapped)) & set(ids)
    report = fpl.import_concepts(mapped, path)
    assert report["by_position"] == 10 and report["unplaced"] == []
    assert fpl.list_concepts(mapped) == {"alice": {"Kopf 🦜": 5, NOT_NAMEABLE: 3}, "bob": {"head": 2}}

    # maps that no longer exist are reported, not silently dropped
    fpl.compute_activation_maps(mapped, TinyNet(), top_k=1, overwrite=True)
    report = fpl.import_concepts(mapped, path)
    assert report["assigned"] + len(report["unplaced"]) == 10 and report["unplaced"]


def test_import_rejects_bad_documents(mapped, workdir):
    bad = f"{workdir}/bad.json"
    with open(bad, "w") as f:
        f.write("{nope")
    with pytest.raises(ValueError, match="JSON"):
        fpl.import_concepts(mapped, bad)
    with pytest.raises(ValueError, match="interactive-naming"):
        fpl.import_concepts(mapped, {"format": "other"})
    report = fpl.import_concepts(
        mapped,
        {
            "format": "interactive-naming/concepts",
            "version": 1,
            "assignments": [{"annotator": "alice", "concept": "", "map_id": map_ids(mapped)[0]}],
        },
    )
    assert report["assigned"] == 0 and len(report["invalid"]) == 1
