"""The naming panel in the real FiftyOne App, driven by headless Chromium
(Playwright), asserting after each step what the database holds.

Screenshots go to tests/artifacts/ (look at them; the good ones are copied
to docs/ for the README)."""

import os
import re
import shutil

import pytest

import fiftyone as fo

import fiftyone_plugin as fpl
from conftest import REPO_ROOT
from fiftyone_plugin.demo import build_dataset, load_model

pytestmark = pytest.mark.browser

ARTIFACTS = os.path.join(REPO_ROOT, "tests", "artifacts")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def world(workdir):
    # persistent, so that the App server (another process) can load it
    dataset = build_dataset(
        "browser-world", num_train=0, num_test=40, images_dir=f"{workdir}/browser-world",
        overwrite=True, persistent=True,
    )
    fpl.compute_activation_maps(dataset, load_model(), top_k=5)
    fpl.compute_map_visualization(dataset, num_neighbors=10)
    yield dataset
    dataset.delete()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed: ./run tests installs it"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


class App:
    """Small helpers over a Playwright page showing the FiftyOne App."""

    def __init__(self, page):
        self.page = page
        os.makedirs(ARTIFACTS, exist_ok=True)

    def shot(self, name):
        self.page.screenshot(path=os.path.join(ARTIFACTS, f"{name}.png"))

    def dismiss_popups(self):
        for text in ("Dismiss", "Disable"):
            button = self.page.get_by_text(text, exact=True)
            if button.count():
                button.first.click()

    @property
    def panel(self):
        return self.page.locator("[data-cy=panel-content-naming_panel]")

    def open_panel(self):
        self.page.click("[data-cy=new-panel-btn]")
        self.page.get_by_text("Interactive naming", exact=True).first.click()
        self.panel.get_by_text("who is naming").wait_for()

    def input_after(self, label):
        return self.panel.locator(f"xpath=.//p[normalize-space(text())='{label}']/following::input[1]")

    def type(self, label, text):
        # let pending re-renders settle so they don't reset the field
        self.page.wait_for_timeout(1000)
        field = self.input_after(label)
        field.click()
        field.fill(text)
        field.press("Tab")
        self.page.wait_for_timeout(500)
        assert field.input_value() == text

    def button(self, text):
        # a button's accessible name starts with its icon's ligature, if any
        return self.panel.get_by_role("button", name=re.compile(rf"(^|\s){re.escape(text)}$"))

    def click(self, text):
        # the panel re-renders whenever its state changes, replacing its
        # elements, so dispatch the click rather than wait for stillness
        self.button(text).first.dispatch_event("click")

    def expect_text(self, pattern, timeout=30_000):
        self.panel.get_by_text(re.compile(pattern)).first.wait_for(timeout=timeout)

    def choose(self, label, option):
        self.panel.locator(
            f"xpath=.//p[normalize-space(text())='{label}']/following::*[@role='combobox'][1]"
        ).click()
        self.page.get_by_role("option", name=option, exact=True).click()

    def wait_selection_change(self, previous, timeout=30):
        import time

        deadline = time.time() + timeout
        while time.time() < deadline:
            count = self.selected_count()
            if count != previous:
                return count
            self.page.wait_for_timeout(250)
        raise AssertionError(f"the selection stayed at {previous} maps")

    def selected_count(self):
        text = self.panel.get_by_text(re.compile(r"^\d+ map\(s\) selected$")).first.inner_text()
        return int(text.split()[0])

    def lasso(self, q0, q1):
        """Lasso the maps whose x lies between the q0 and q1 quantiles of
        all maps' x, using plotly's own axes to find them on screen."""
        plot = self.panel.locator(".js-plotly-plot").first
        left, right, top, bottom = plot.evaluate(
            """(gd, [q0, q1]) => {
                const xs = gd.data.flatMap(t => t.x).sort((a, b) => a - b);
                const ys = gd.data.flatMap(t => t.y);
                const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
                const box = gd.getBoundingClientRect();
                const q = f => xs[Math.min(xs.length - 1, Math.floor(f * (xs.length - 1)))];
                const px = x => box.left + xa._offset + xa.l2p(x);
                const py = y => box.top + ya._offset + ya.l2p(y);
                const pad = 4;
                return [px(q(q0)) - pad, px(q(q1)) + pad,
                        py(Math.max(...ys)) - pad, py(Math.min(...ys)) + pad];
            }""",
            [q0, q1],
        )
        mouse = self.page.mouse
        mouse.move(left, top)
        mouse.down()
        for x, y in ((right, top), (right, bottom), (left, bottom), (left, top + 1)):
            mouse.move(x, y, steps=8)
        mouse.up()


def concepts(dataset, annotator):
    return fpl.list_concepts(fo.load_dataset(dataset.name), annotator)


def test_name_maps_in_the_app(world, app_server, browser):
    page = browser.new_page(viewport={"width": 1600, "height": 1100})
    app = App(page)
    page.goto(f"{app_server}/datasets/{world.name}")
    page.locator("[data-cy=fo-grid]").wait_for(timeout=120_000)
    app.dismiss_popups()
    app.open_panel()

    app.type("Annotator", "alice")
    app.expect_text("Naming as alice")
    app.expect_text(r"alice: 0 of \d+ maps named")
    app.shot("01-panel-open")

    # lasso the left half of the layout
    app.lasso(0.0, 0.45)
    app.expect_text(r"^[1-9]\d* map\(s\) selected$")
    selected = app.selected_count()
    total = world.count("actmaps.detections")
    assert 0 < selected < total
    app.panel.locator("img").first.wait_for()
    app.shot("02-lasso-gallery")

    # drop one map from the selection with the button under its thumbnail
    app.click("drop")
    app.expect_text(f"^{selected - 1} map\\(s\\) selected$")
    selected -= 1

    app.type("New concept", "stripes")
    app.click("Name selection")
    app.expect_text(f"{selected} map\\(s\\) named 'stripes'")
    assert concepts(world, "alice") == {"stripes": selected}

    app.shot("03-named")

    # rename, then undo it
    app.choose("Concept", "stripes")
    app.type("New name / merge into", "stripy")
    app.click("Rename")
    app.expect_text("rename: ")
    assert concepts(world, "alice") == {"stripy": selected}
    app.click("Undo")
    app.expect_text("Undid the last rename")
    assert concepts(world, "alice") == {"stripes": selected}

    # a bad name is refused with a message and changes nothing
    app.type("New concept", "x" * 101)
    app.click("Name selection")
    app.expect_text("at most 100 characters")
    assert concepts(world, "alice") == {"stripes": selected}
    app.shot("05-final")
    page.close()
