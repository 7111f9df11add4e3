"""The evaluation panel in the real FiftyOne App, driven by headless
Chromium: on the concept world with its evaluation runs stored, the panel
lists the spurious cue first among the untrustworthy types, its Show opens
exactly that type's images in the grid, and the findings are there again
after a page reload (they are read from the stored runs).

Its screenshot is docs/evaluation-panel.png (README, "The evaluation panel")."""

import os
import shutil

import pytest

import fiftyone_plugin as fpl
from fiftyone_plugin.demo import CUE_CLASS, build_dataset, default_annotators, load_model
from fiftyone_plugin.demo.pipeline import simulate_annotators

from tests.support import REPO_ROOT
from tests.support.app_server import AppServer

pytestmark = pytest.mark.browser

ARTIFACTS = os.path.join(REPO_ROOT, "tests", "artifacts")
SCREENSHOT = os.path.join(REPO_ROOT, "docs", "evaluation-panel.png")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
ANNOTATOR = "ann_alice"


@pytest.fixture(scope="module")
def world(workdir):
    # 600 test images: enough errors for the cue to pass the FDR guard (as
    # in test_evaluation); persistent, so that the App server can load it
    dataset = build_dataset("evaluation-world", num_train=0, num_test=600,
                            images_dir=f"{workdir}/evaluation-world", overwrite=True, persistent=True)
    fpl.compute_activation_maps(dataset, load_model(), top_k=5, batch_size=64)
    simulate_annotators(dataset)
    fpl.untrustworthy_concepts(dataset, ANNOTATOR, "ground_truth")
    fpl.summarize_concepts(dataset, ANNOTATOR, gt_field="ground_truth")
    fpl.compute_explanations(dataset, ANNOTATOR)
    fpl.neuron_correspondence(dataset, ANNOTATOR)
    fpl.compute_agreement(dataset)
    yield dataset
    dataset.delete()


@pytest.fixture(scope="module")
def app_server(workdir):
    # a server of this module's own: the App keeps its panels per server
    server = AppServer(os.path.join(workdir, "app-server-evaluation.log")).start()
    yield server.url
    server.stop()


@pytest.fixture
def page(request):
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed: ./run tests installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        yield page
        if getattr(request.node, "failed", False):
            os.makedirs(ARTIFACTS, exist_ok=True)
            page.screenshot(path=os.path.join(ARTIFACTS, f"failed-{request.node.name}.png"))
        browser.close()


def panel_of(page):
    return page.locator("[data-cy=panel-content-evaluation_panel]")


def choose(panel, page, label, option):
    panel.locator(f"xpath=.//p[normalize-space(text())='{label}']/following::*[@role='combobox'][1]").click()
    page.get_by_role("option", name=option, exact=True).click()


def type_rows(panel):
    """The rows of the untrustworthy types' table (the only one with a Show)."""
    return panel.locator("tr").filter(has=panel.page.locator("button", has_text="Show"))


def cells(row):
    return [c.strip() for c in row.locator("td").all_inner_texts()]


def grid_count(page):
    return page.locator("[data-cy=entry-counts]").first


def test_the_evaluation_panel_shows_the_findings_and_opens_a_type(world, app_server, page):
    sun = next(a for a in default_annotators() if a.name == ANNOTATOR).word("sun")
    results = world.load_run_results(f"untrustworthy_{ANNOTATOR}")
    top = results.rows[0]
    assert (top["predicted_class"], top["concept"], top["flagged"]) == (CUE_CLASS, sun, True)
    expected = len(world.load_saved_view(top["view"]))

    page.goto(f"{app_server}/datasets/{world.name}")
    page.locator("[data-cy=fo-grid]").wait_for(timeout=120_000)
    page.keyboard.press("Escape")
    page.locator("[data-cy=new-panel-btn]").first.click()
    page.get_by_text("Interactive naming: evaluation", exact=True).first.click()
    panel = panel_of(page)
    panel.get_by_text("Untrustworthy example types").wait_for(timeout=60_000)
    # the App opens it beside the grid
    page.locator("[data-cy=fo-grid]").wait_for()

    # another annotator has no runs of their own: each section offers its operator
    choose(panel, page, "Annotator", "ann_bob")
    panel.locator("button", has_text="Compute (untrustworthy concepts)").wait_for()
    assert type_rows(panel).count() == 0
    choose(panel, page, "Annotator", ANNOTATOR)
    type_rows(panel).first.wait_for()

    # the spurious cue first, with its statistic and support
    first = cells(type_rows(panel).first)
    assert first[:3] == [CUE_CLASS, sun, str(top["n_with"])], first
    assert first[4] == f"{round(top['excess_errors'], 3):.1f}"
    # concepts in words, never the internal token
    assert fpl.NOT_NAMEABLE not in panel.inner_text()

    # Show: the grid shows that type's images
    assert int(grid_count(page).inner_text().split()[0]) == len(world)
    type_rows(panel).first.locator("button", has_text="Show").click()
    page.wait_for_function(
        "n => parseInt(document.querySelector('[data-cy=entry-counts]')?.innerText) === n",
        arg=expected, timeout=60_000,
    )
    panel.get_by_text(f"Showing {CUE_CLASS} with {sun}: {expected} images").wait_for()
    # the README's figure, once the grid's images have arrived
    page.locator("[data-cy=fo-grid] [data-cy=looker]").first.wait_for()
    try:
        page.wait_for_load_state("networkidle", timeout=20_000)
    except Exception:  # an App that keeps a request open: the figure as it is
        pass
    page.screenshot(path=SCREENSHOT)

    # a reload: the panel comes back with the same findings, read from the runs
    page.reload()
    panel = panel_of(page)
    type_rows(panel).first.wait_for(timeout=120_000)
    assert cells(type_rows(panel).first)[:3] == first[:3]
    panel.get_by_text("Agreement between annotators").wait_for()
    assert panel.locator("th", has_text="ann_carol").count() == 1
