"""Maps in the App's own views (real App server, plugin loaded, headless
Chromium): the grid opened on the saved browsing view, a sample's heatmap in
the modal with its display range, tooltips without the maps' heavy
attributes, and a patches view of maps labelled by an annotator's concept.
Screenshots: docs/app-modal-heatmap.png, docs/app-map-patches.png (the
labels by concept are checked in the database by tests/test_display.py)."""

import os
import shutil

import pytest


import fiftyone_plugin as fpl
from tests.support import REPO_ROOT
from fiftyone_plugin.demo import build_dataset, load_model
from fiftyone_plugin.demo.pipeline import simulate_annotators
from fiftyone_plugin.maps import display

pytestmark = pytest.mark.browser

from tests.support.browser import ARTIFACTS, CHROMIUM_FLAGS  # noqa: E402


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


def _tooltip(page, x, y):
    """``(title, attribute names, text)`` of the tooltip at page pixel (x, y)."""
    page.mouse.move(x, y)
    page.wait_for_timeout(1500)
    tooltip = page.locator("[data-cy=sample-canvas-tooltip-content]")
    tooltip.wait_for(timeout=10_000)
    names = [e.get_attribute("data-cy") for e in tooltip.locator("[data-cy^=attribute-]").all()]
    return page.locator("[data-cy=sample-canvas-tooltip-title]").inner_text(), names, tooltip.inner_text()


def test_a_sample_shows_its_heatmap_and_concept_labelled_maps(world, app_server):
    from playwright.sync_api import sync_playwright

    os.makedirs(ARTIFACTS, exist_ok=True)
    view = world.load_saved_view(display.BROWSE_VIEW)
    world.save_view("map-patches", world.to_patches("actmaps"), overwrite=True)
    sample = view.first()
    top = min(sample.actmaps.detections, key=lambda d: d.rank)
    heavy = {f"attribute-{a}" for a in display.HEAVY_ATTRIBUTES}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{app_server}/datasets/{world.name}?view={display.BROWSE_VIEW}")
        page.locator("[data-cy=fo-grid] [data-cy=looker]").first.wait_for(timeout=120_000)
        for text in ("Dismiss", "Disable"):
            button = page.get_by_text(text, exact=True)
            if button.count():
                button.first.click()
        page.wait_for_timeout(3000)
        page.screenshot(path=os.path.join(ARTIFACTS, "app-grid-maps.png"))
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
        px, py = x0 + top.peak[0] * side, y0 + top.peak[1] * side
        page.mouse.move(box["x"] + box["width"] - 5, box["y"] + box["height"] - 5)
        page.wait_for_timeout(500)
        page.screenshot(path=os.path.join(ARTIFACTS, "app-modal-heatmap.png"))
        seen = [_tooltip(page, px, py)]
        if seen[0][0] != "actmaps":
            # the heatmap is on top here: hide it, and read the label under it
            modal.locator("[data-cy=checkbox-actmap_heatmap]").first.click()
            page.wait_for_timeout(2000)
            seen.append(_tooltip(page, px, py))
        page.screenshot(path=os.path.join(ARTIFACTS, "app-modal-map-tooltip.png"))
        page.keyboard.press("Escape")
        page.goto(f"{app_server}/datasets/{world.name}?view=map-patches")
        page.locator("[data-cy=fo-grid] [data-cy=looker]").first.wait_for(timeout=120_000)
        page.wait_for_timeout(3000)
        page.screenshot(path=os.path.join(ARTIFACTS, "app-map-patches.png"))
        browser.close()
    for name in ("app-modal-heatmap.png", "app-map-patches.png"):
        shutil.copy(os.path.join(ARTIFACTS, name), os.path.join(REPO_ROOT, "docs"))
    # at the top map's peak the heatmap is drawn on top, with its display
    # range (values below HEATMAP_FLOOR left clear); no tooltip on the way
    # shows the maps' heavy attributes
    title, names, values = seen[0]
    assert title == "actmap_heatmap", seen
    assert f"{display.HEATMAP_FLOOR}, 255" in values, values
    for title, names, _ in seen:
        assert names and not heavy & set(names), (title, names)
