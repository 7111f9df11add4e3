"""Naming assistance on toy sets where the answer is unambiguous by
construction: maps whose descriptors form well-separated clusters, some of
each cluster named by hand."""

import numpy as np
import pytest
from fiftyone import ViewField as F

import fiftyone as fo

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts.store import provenance_field
from fiftyone_plugin.assistance.accept import (
    AcceptResults,
    accept_suggestions,
    undo_accepted_suggestions,
    undo_suggestions,
)
from fiftyone_plugin.assistance.groups import candidate_groups, what_next
from fiftyone_plugin.assistance.suggestions import SuggestionsResults, suggest_concepts
from fiftyone_plugin.assistance.transfer import TransferResults, transfer_concepts

CENTRES = {"wing": [10.0, 0, 0, 0], "beak": [0, 10.0, 0, 0], fpl.NOT_NAMEABLE: [0, 0, 10.0, 0]}


@pytest.fixture
def toy(dataset):
    """Per cluster 12 maps (on 12 samples, one map of each cluster per
    sample), descriptors = centre + N(0, 0.3) noise; the truth is kept in
    the map's ``truth`` attribute."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(12):
        dets = []
        for rank, (concept, centre) in enumerate(CENTRES.items()):
            dets.append(fo.Detection(
                label=f"ch{rank}", bounding_box=[0.1, 0.1, 0.2, 0.2], layer="l", channel=rank,
                rank=rank + 1, share=0.1 * (rank + 1) + 0.01 * i,
                descriptor=(np.array(centre) + rng.normal(0, 0.3, 4)).astype(np.float16), truth=concept,
            ))
        samples.append(fo.Sample(filepath=f"/tmp/toy{i}.png", actmaps=fo.Detections(detections=dets)))
    dataset.add_samples(samples)
    # the first 3 samples' maps are named by hand
    for concept in CENTRES:
        view = dataset.limit(3).filter_labels("actmaps", F("truth") == concept)
        fpl.assign_concept(dataset, view.values("actmaps.detections.id", unwind=True), concept, "alice")
    return dataset


def truth_of(dataset):
    ids, truths = dataset.values(["actmaps.detections.id", "actmaps.detections.truth"], unwind=True)
    return dict(zip(ids, truths))


def test_suggestions_follow_the_clusters(toy):
    df = suggest_concepts(toy, "alice").table
    truth = truth_of(toy)
    assert len(df) == 9 * 3  # every unnamed map, and only those
    assert list(df.columns[:4]) == ["map_id", "sample_id", "concept", "confidence"]
    assert all(truth[m] == c for m, c in zip(df["map_id"], df["concept"]))
    # three named maps per concept and C=1: right everywhere, well above chance (1/3)
    assert (df["confidence"] > 0.5).all() and (df["confidence"] <= 1).all()
    assert df["confidence"].is_monotonic_decreasing
    assert "suggestions_alice" in toy.list_runs()
    stored = toy.load_run_results("suggestions_alice").suggestions
    assert {r["map_id"] for r in stored} == set(df["map_id"])


def test_suggestions_run_round_trips_and_owns_no_field(toy):
    returned = suggest_concepts(toy, "alice", run_key="sugg")
    loaded = toy.load_run_results("sugg", cache=False)
    assert type(loaded) is type(returned) is SuggestionsResults
    assert loaded.to_dict() == returned.to_dict()
    assert loaded.table.equals(returned.table) and len(returned) == 27 and returned.num_taught == 9
    info = toy.get_run_info("sugg").config
    assert info.run_type == "concept_suggestions" and info.annotator == "alice" and info.fields() == []
    schema = set(toy.get_field_schema(flat=True))
    toy.delete_run("sugg")
    assert "sugg" not in toy.list_runs() and set(toy.get_field_schema(flat=True)) == schema


def test_accept_and_undo_round_trip_with_provenance(toy):
    df = suggest_concepts(toy, "alice").table
    # meanwhile a person names one of the suggested maps by hand, differently
    hand_id = df["map_id"].iloc[0]
    fpl.assign_concept(toy, [hand_id], "something else", "alice")
    record = accept_suggestions(toy, "alice", df, min_confidence=0.0)
    assert record.accepted == len(df) - 1 and record.skipped == [hand_id]
    # the accept run: what was returned is what the run gives back
    loaded = toy.load_run_results("accepted_suggestions_alice", cache=False)
    assert type(loaded) is AcceptResults and loaded.to_dict() == record.to_dict()
    names = dict(zip(*toy.values(["actmaps.detections.id", "actmaps.detections.concept_alice"], unwind=True)))
    provs = dict(zip(*toy.values(["actmaps.detections.id", provenance_field("alice")], unwind=True)))
    assert names[hand_id] == "something else" and provs[hand_id] is None
    for m, c in record.written.items():
        assert names[m] == c and provs[m] == "suggested"
    hand_named = [m for m in names if m not in record.written]
    assert all(provs[m] is None for m in hand_named)
    # a person renames one accepted suggestion by hand: provenance is cleared,
    # and undo leaves it alone
    renamed = next(iter(record.written))
    fpl.assign_concept(toy, [renamed], "beak", "alice")
    assert undo_suggestions(toy, record) == len(record.written) - 1
    names = dict(zip(*toy.values(["actmaps.detections.id", "actmaps.detections.concept_alice"], unwind=True)))
    provs = dict(zip(*toy.values(["actmaps.detections.id", provenance_field("alice")], unwind=True)))
    assert names[renamed] == "beak" and provs[renamed] is None
    assert all(names[m] is None for m in record.written if m != renamed)
    assert names[hand_id] == "something else"
    assert sum(v is not None for v in names.values()) == 9 + 2


def test_min_confidence_filters(toy):
    df = suggest_concepts(toy, "alice").table
    df.loc[df.index[:5], "confidence"] = 0.2  # pretend five are unsure
    record = accept_suggestions(toy, "alice", df, min_confidence=0.5)
    assert record.accepted == len(df) - 5
    assert set(df["map_id"].iloc[:5]).isdisjoint(record.written)


def test_accepting_the_stored_suggestions_and_undoing_the_last_acceptance(toy):
    stored = suggest_concepts(toy, "alice")
    record = accept_suggestions(toy, "alice", min_confidence=0.0)  # the stored run
    assert record.written == {r["map_id"]: r["concept"] for r in stored.suggestions}
    # deleting the accept run keeps the names: they are the annotator's now
    schema = set(toy.get_field_schema(flat=True))
    assert toy.get_run_info("accepted_suggestions_alice").config.fields() == []
    assert undo_accepted_suggestions(toy, "alice") == 27
    assert "accepted_suggestions_alice" not in toy.list_runs()
    assert set(toy.get_field_schema(flat=True)) == schema
    assert sum(v is not None for v in toy.values("actmaps.detections.concept_alice", unwind=True)) == 9
    with pytest.raises(ValueError, match="nothing to undo"):
        undo_accepted_suggestions(toy, "alice")
    with pytest.raises(ValueError, match="no suggestions for bob"):
        accept_suggestions(toy, "bob")


def test_suggested_names_do_not_teach(toy):
    df = suggest_concepts(toy, "alice")
    accept_suggestions(toy, "alice", df, min_confidence=0.0)
    # all maps are named now, the suggested ones are not learnt from: the
    # model is taught by the 9 hand-named maps only
    again = suggest_concepts(toy, "alice")
    assert len(again) == 0 and again.num_taught == 9 and len(again.table) == 0


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "high"])
def test_bad_min_confidence_writes_nothing(toy, bad):
    df = suggest_concepts(toy, "alice")
    with pytest.raises(ValueError, match="min_confidence"):
        accept_suggestions(toy, "alice", df, min_confidence=bad)
    assert toy.get_field(provenance_field("alice")) is None
    assert "accepted_suggestions_alice" not in toy.list_runs()


def test_bad_suggestions_write_nothing(toy):
    df = suggest_concepts(toy, "alice").table
    rows = df.to_dict("records")
    rows[0]["map_id"] = "000000000000000000000000"
    with pytest.raises(ValueError, match="not found"):
        accept_suggestions(toy, "alice", rows, min_confidence=0.0)
    rows = df.to_dict("records")
    rows[0]["concept"] = "   "
    with pytest.raises(ValueError, match="empty"):
        accept_suggestions(toy, "alice", rows, min_confidence=0.0)
    # checked before any write: no provenance declared, no run registered
    assert toy.get_field(provenance_field("alice")) is None
    assert "accepted_suggestions_alice" not in toy.list_runs()
    assert sum(v is not None for v in toy.values("actmaps.detections.concept_alice", unwind=True)) == 9


def test_one_concept_is_not_enough(dataset):
    dataset.add_sample(fo.Sample(filepath="/tmp/one.png", actmaps=fo.Detections(detections=[
        fo.Detection(bounding_box=[0, 0, 1, 1], descriptor=np.ones(3, np.float16)) for _ in range(3)
    ])))
    fpl.assign_concept(dataset, dataset.values("actmaps.detections.id", unwind=True)[:2], "wing", "alice")
    with pytest.raises(ValueError, match="at least two different"):
        suggest_concepts(dataset, "alice")
    assert dataset.list_runs() == []


def test_candidate_groups_are_the_clusters(toy):
    groups = candidate_groups(toy, "alice", min_cluster_size=5)
    truth = truth_of(toy)
    assert len(groups) == 3
    for ids in groups["map_ids"]:
        assert len({truth[m] for m in ids}) == 1  # pure
    # shares were built so that the NOT_NAMEABLE cluster (rank 3) carries most
    assert truth[groups["map_ids"].iloc[0][0]] == fpl.NOT_NAMEABLE
    assert groups["unexplained_share"].is_monotonic_decreasing


def test_what_next_orders_unnamed_maps_by_share(toy):
    df = what_next(toy, "alice")
    assert len(df) == 27 and df["share"].is_monotonic_decreasing
    assert df["share"].iloc[0] == pytest.approx(0.3 + 0.11)  # rank 3 map of the last sample


def test_transfer_round_trips_and_its_run_owns_the_machine_names(toy):
    truth = truth_of(toy)
    returned = transfer_concepts(toy, "alice", min_confidence=0.5)
    assert type(returned) is TransferResults and returned.machine_annotator == "alice__auto"
    loaded = toy.load_run_results("transfer_alice", cache=False)
    assert type(loaded) is TransferResults and loaded.to_dict() == returned.to_dict()
    table = returned.table
    # the 27 unnamed maps, each named by its cluster (well separated)
    assert len(table) == 27 and returned.named == 27 and returned.not_sure == 0
    assert all(truth[m] == c for m, c in zip(table["map_id"], table["concept"]))
    machine = "actmaps.detections.concept_alice__auto"
    stored = dict(zip(*toy.values(["actmaps.detections.id", machine], unwind=True)))
    assert {m: c for m, c in stored.items() if c is not None} == returned.undo["written"]
    owned = toy.get_run_info("transfer_alice").config.fields()
    assert set(owned) == {machine, "actmaps.detections.provenance_alice__auto",
                          "actmaps.detections.confidence_alice__auto"}
    # deleting the run deletes the machine's names, never the person's
    toy.delete_run("transfer_alice")
    schema = toy.get_field_schema(flat=True)
    assert not set(owned) & set(schema)
    assert "actmaps.detections.concept_alice" in schema
    assert sum(v is not None for v in toy.values("actmaps.detections.concept_alice", unwind=True)) == 9
    assert all(v is None for v in toy.values(machine, unwind=True))


def test_transfer_preview_writes_nothing_and_owns_nothing(toy):
    returned = transfer_concepts(toy, "alice", write=False, min_confidence=0.5, run_key="preview")
    assert returned.named == 27 and returned.undo is None
    assert toy.get_run_info("preview").config.fields() == []
    assert toy.get_field("actmaps.detections.concept_alice__auto") is None
    with pytest.raises(ValueError, match="already a machine annotator"):
        transfer_concepts(toy, "alice__auto")
    assert toy.list_runs() == ["preview"]
