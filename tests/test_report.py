"""The HTML report: written in one call, self-contained, every piece of user
text escaped."""

import os
import re

import numpy as np
import pytest
from PIL import Image

import fiftyone as fo

import fiftyone_plugin as fpl
from fiftyone_plugin.maps.compute import default_field_names
from fiftyone_plugin.evaluation.report import ReportResults, render_report, write_report
from fiftyone_plugin.evaluation.sections import default_agreement_annotators
from fiftyone_plugin.storage import declare_map_schema

EVIL = "<script>alert(1)</script>"
DOLLAR = "5$ sign"  # a lone "$" would start matplotlib mathtext


@pytest.fixture
def named(dataset, workdir):
    """20 images: class "x" predicted for all; the concept EVIL goes with
    errors; two annotators (alice, bob) who agree up to wording."""
    folder = os.path.join(workdir, "report-images")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    samples = []
    for i in range(20):
        path = os.path.join(folder, f"{i:02d}.png")
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
        cue = i < 8
        wrong = (cue and i < 6) or i == 19
        maps = [
            fo.Detection(label="ch1", bounding_box=[0.1, 0.1, 0.3, 0.3], layer="l", channel=1, share=0.4, contribution=1.0, rank=1),
            fo.Detection(label="ch2", bounding_box=[0.5, 0.5, 0.3, 0.3], layer="l", channel=2 if cue else 3, share=0.2, contribution=0.5, rank=2),
        ]
        samples.append(
            fo.Sample(
                filepath=path,
                actmaps=fo.Detections(detections=maps),
                actmap_prediction=fo.Classification(label="x" if i % 5 else "<b>y</b>", confidence=0.5 if cue else 0.9),
                ground_truth=fo.Classification(label="z" if wrong else ("x" if i % 5 else "<b>y</b>")),
            )
        )
    dataset.add_samples(samples)
    declare_map_schema(dataset, "actmaps", default_field_names("actmaps"))
    ids = dataset.values("actmaps.detections.id")
    first = [m[0] for m in ids]
    cue_maps = [m[1] for m in ids[:8]]
    other = [m[1] for m in ids[8:]]
    for annotator, words in (("alice", ("head", EVIL, DOLLAR)), ("bob", ("face", "sun", fpl.NOT_NAMEABLE))):
        fpl.assign_concept(dataset, first, words[0], annotator)
        fpl.assign_concept(dataset, cue_maps, words[1], annotator)
        fpl.assign_concept(dataset, other, words[2], annotator)
    return dataset


def _check_self_contained(document):
    assert document.startswith("<!DOCTYPE html>")
    # no scripts, no stylesheets or images from elsewhere, no links out
    assert "<script" not in document.lower()
    assert "<link" not in document.lower() and "href=" not in document.lower()
    assert "@import" not in document and "url(" not in document
    sources = re.findall(r'src="([^"]*)"', document)
    assert sources and all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for s in sources)
    assert "http://" not in document and "https://" not in document


def test_report_is_written_self_contained_and_escaped(named, workdir):
    path = os.path.join(workdir, "reports", "alice.html")
    result = write_report(named, "alice", path, gt_field="ground_truth")
    assert result.path == path and os.path.getsize(path) == result.bytes
    assert result.sections == {
        "coverage": "ok", "concepts": "ok", "untrustworthy": "ok", "neurons": "ok", "agreement": "ok",
    }
    with open(path, encoding="utf-8") as f:
        document = f.read()
    _check_self_contained(document)
    assert EVIL not in document and "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "<b>y</b>" not in document and "&lt;b&gt;y&lt;/b&gt;" in document  # class names too
    assert "5$ sign" in document
    for heading in ("Coverage per predicted class", "Concepts per predicted class",
                    "Untrustworthy example types", "Concepts and channels", "Inter-annotator agreement"):
        assert heading in document
    # the untrustworthy type has example thumbnails (JPEG, with the map's box drawn)
    assert document.count("data:image/jpeg;base64,") >= 5
    assert "pair alpha" in document
    assert "aligned alpha (concepts matched across annotators, cross-fitted)" in document
    assert "cross-fitted: concepts matched on one half of the maps" in document
    # recorded as a run
    assert named.get_run_info("report_alice").config.path == path


def test_report_skips_agreement_with_one_annotator(named):
    document, sections = render_report(named, "alice", gt_field="ground_truth", agreement_annotators=["alice"])
    assert sections["agreement"] == "fewer than two annotators"
    assert "Skipped: agreement needs at least two annotators" in document
    _check_self_contained(document)


def test_report_run_round_trips_and_delete_run_keeps_the_file(named, workdir):
    path = os.path.join(workdir, "reports", "bob.html")
    returned = write_report(named, "bob", path, agreement=False, run_key="bob_report")
    loaded = named.load_run_results("bob_report", cache=False)
    assert type(returned) is type(loaded) is ReportResults
    assert loaded.to_dict() == returned.to_dict()
    assert loaded.sections["agreement"] == "not requested" and loaded.bytes == os.path.getsize(path)
    schema = set(named.get_field_schema())
    named.delete_run("bob_report")
    # the report writes no field, and the file is the user's
    assert named.list_runs() == [] and set(named.get_field_schema()) == schema
    assert os.path.getsize(path) == returned.bytes


def test_report_without_ground_truth_or_images(named):
    # missing image files do not stop the report
    named.set_values("filepath", [f"/nonexistent/{i}.png" for i in range(len(named))])
    document, sections = render_report(named, "bob", agreement=False)
    _check_self_contained(document)
    assert sections["untrustworthy"] == "ok" and sections["agreement"] == "not requested"
    assert "ranked by confidence lost" in document
    assert "image unavailable" in document


def test_report_refuses_bad_input(named, workdir):
    with pytest.raises(ValueError, match="has named no maps"):
        write_report(named, "carol", os.path.join(workdir, "r.html"))
    with pytest.raises(ValueError, match="path"):
        write_report(named, "alice", "")


def _agreement_table(document):
    """The header and rows of the agreement section's table."""
    section = document.split("<h2>Inter-annotator agreement</h2>", 1)[1]
    table = section.split("<table>", 1)[1].split("</table>", 1)[0]
    headers = re.findall(r"<th>(.*?)</th>", table)
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1])]
    return headers, rows


def test_report_compares_the_chosen_annotators_without_empty_columns_or_internal_tokens(named):
    # carol judged two maps: a half-done annotator, left out by default
    ids = named.values("actmaps.detections.id", unwind=True)
    fpl.assign_concept(named, ids[:2], "x", "carol")
    assert default_agreement_annotators(named, "actmaps") == ["alice", "bob"]
    document, sections = render_report(named, "bob", gt_field="ground_truth")
    assert sections["agreement"] == "ok"
    assert "Krippendorff's alpha over alice, bob, invariant" in document
    chosen, _ = render_report(named, "bob", agreement_annotators=["alice", "bob", "carol"])
    assert "Krippendorff's alpha over alice, bob, carol, invariant" in chosen

    # every column of the agreement table says something in some row
    headers, rows = _agreement_table(document)
    assert headers[:2] == ["statistic", "alpha"] and rows
    for i, header in enumerate(headers):
        assert any(row[i] not in ("", "\u2013") for row in rows), header

    # bob marked maps not nameable: the reader sees words, not the store's token
    assert fpl.NOT_NAMEABLE not in document and "not nameable" in document
