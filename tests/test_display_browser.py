"""Maps in the App's own sample modal (real App server, plugin loaded,
headless Chromium): the heatmap drawn with its colour scale, the maps'
boxes labelled by an annotator's concept, and tooltips without the maps'
heavy attributes. The modal's screenshot goes to docs/app-modal-heatmap.png."""

import os
import shutil

import pytest

import fiftyone as fo

import fiftyone_plugin as fpl
from conftest import REPO_ROOT
from fiftyone_plugin.demo import build_dataset, load_model
from fiftyone_plugin.demo.pipeline import simulate_annotators
from fiftyone_plugin.maps import display

pytestmark = pytest.mark.browser

ARTIFACTS = os.path.join(REPO_ROOT, "tests", "artifacts")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def world(workdir):
    # persistent, so that the App server (another process) can load it
    dataset = build_dataset(
        "display-world", num_train=0, num_test=12, images_dir=f"{workdir}/display-world",
        overwrite=True, persistent=True,
    )
    fpl.compute_activation_maps(dataset, load_model(), top_k=5)
    simulate_annotators(dataset)
    display.label_maps_by_concept(dataset, "ann_alice")
    display.save_browse_view(dataset)
    yield dataset
    dataset.delete()


def test_a_sample_shows_its_heatmap_and_concept_labelled_maps(world, app_server):
    from playwright.sync_api import sync_playwright

    os.makedirs(ARTIFACTS, exist_ok=True)
    view = world.load_saved_view(display.BROWSE_VIEW)
    sample = view.first()
    top = min(sample.actmaps.detections, key=lambda d: d.rank)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{app_server}/datasets/{world.name}?view={display.BROWSE_VIEW}")
        page.locator("[data-cy=fo-grid] [data-cy=looker]").first.wait_for(timeout=120_000)
        for text in ("Dismiss", "Disable"):
            button = page.get_by_text(text, exact=True)
            if button.count():
                button.first.click()
        page.locator("[data-cy=fo-grid] [data-cy=looker]").first.click()
        modal = page.locator("[data-cy=modal]")
        modal.wait_for(timeout=60_000)
        page.wait_for_timeout(4000)  # the looker draws its overlays in a worker
        canvas = modal.locator("canvas").first
        box = canvas.bounding_box()
        # the 128 x 128 image is fitted into the canvas, centred
        side = min(box["width"], box["height"])
        x0 = box["x"] + (box["width"] - side) / 2
        y0 = box["y"] + (box["height"] - side) / 2
        page.mouse.move(x0 + top.peak[0] * side, y0 + top.peak[1] * side)
        page.wait_for_timeout(1500)
        page.screenshot(path=os.path.join(ARTIFACTS, "app-modal-heatmap.png"))
        tooltip = page.locator("[data-cy=sample-canvas-tooltip-content]")
        tooltip.wait_for(timeout=10_000)
        names = [e.get_attribute("data-cy") for e in tooltip.locator("[data-cy^=attribute-]").all()]
        title = page.locator("[data-cy=sample-canvas-tooltip-title]").inner_text()
        values = tooltip.inner_text()
        browser.close()
    shutil.copy(os.path.join(ARTIFACTS, "app-modal-heatmap.png"), os.path.join(REPO_ROOT, "docs"))
    print(title, names, values)
    assert names, "the tooltip lists the label's attributes"
    assert not {f"attribute-{a}" for a in display.HEAVY_ATTRIBUTES} & set(names), names
    if title == "actmaps":
        concepts = {d.label for d in sample.actmaps.detections}
        assert any(c in values for c in concepts) and "ch" not in values.split("\n")[0], values
