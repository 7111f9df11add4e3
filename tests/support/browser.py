"""The real App in headless Chromium for the browser tests: the concept
world they share (``world``), the browser and a page per test (``browser``,
``app``: screenshots and console to tests/artifacts on failure), the
:class:`App` driver, and small helpers. Test modules import the fixtures
they use from here (no test module imports another)."""

import os
import re
import shutil
import time

import pytest
from playwright.sync_api import expect

import fiftyone as fo

import fiftyone_plugin as fpl
from fiftyone_plugin.demo import build_dataset, load_model
from fiftyone_plugin.demo.pipeline import simulate_annotators
from tests.support import REPO_ROOT

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
    simulate_annotators(dataset)  # ann_alice, ann_bob, ann_carol: other namespaces
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
        self.panel.locator("[data-testid=annotator-input]").wait_for()

    def input_after(self, label):
        return self.panel.locator(f"xpath=.//p[normalize-space(text())='{label}']/following::input[1]")

    def type(self, label, text):
        # (the panel draws nothing for the App's re-syncs that change
        # nothing, so no late output resets the field)
        field = self.input_after(label)
        field.click()
        field.fill(text)
        field.press("Tab")
        expect(field).to_have_value(text)

    def button(self, text):
        # a button's accessible name starts with its icon's ligature, if any
        return self.panel.get_by_role("button", name=re.compile(rf"(^|\s){re.escape(text)}$"))

    def click(self, text):
        # a real click: Playwright waits for the button to be attached,
        # enabled and still, so a re-render replacing it can't eat the click
        button = self.button(text).first
        button.scroll_into_view_if_needed()
        button.click()

    def expect_text(self, pattern, timeout=30_000):
        self.panel.get_by_text(re.compile(pattern)).first.wait_for(timeout=timeout)

    def choose(self, label, option):
        self.panel.locator(
            f"xpath=.//p[normalize-space(text())='{label}']/following::*[@role='combobox'][1]"
        ).click()
        self.page.get_by_role("option", name=option, exact=True).click()

    def selected_count(self):
        text = self.panel.get_by_text(re.compile(r"^\d+ map\(s\) selected$")).first.inner_text()
        return int(text.split()[0])

    @property
    def canvas(self):
        return self.panel.locator("[data-testid=concept-scatter-canvas]")

    def points(self):
        """Every map in the scatter: id, concept and position in page pixels."""
        return self.canvas.evaluate(
            """el => {
                const box = el.getBoundingClientRect();
                return el.namingPoints().map(p => ({...p, x: box.left + p.x, y: box.top + p.y}));
            }"""
        )

    def lasso(self, q0, q1):
        """Lasso the maps whose screen x lies between roughly the q0 and q1
        quantiles of all maps' x; returns the ids that must be selected.
        The lasso's sides go through gaps of 4+ pixels near those quantiles,
        so that the browser rounding the pointer to whole pixels changes
        nothing."""
        self.canvas.scroll_into_view_if_needed()
        self.wait_still()
        points = self.points()
        xs = sorted(p["x"] for p in points)

        def cut(q):
            if q <= 0:
                return xs[0] - 4
            if q >= 1:
                return xs[-1] + 4
            at = int(q * (len(xs) - 1))
            gaps = [k for k in range(1, len(xs)) if xs[k] - xs[k - 1] >= 4] or [
                max(range(1, len(xs)), key=lambda k: xs[k] - xs[k - 1])
            ]
            i = min(gaps, key=lambda k: abs(k - at))
            return (xs[i - 1] + xs[i]) / 2

        lo, hi = cut(q0), cut(q1)
        box = self.canvas.bounding_box()
        top, bottom = box["y"] + 2, box["y"] + box["height"] - 2
        mouse = self.page.mouse
        mouse.move(lo, top)
        mouse.down()
        for x, y in ((hi, top), (hi, bottom), (lo, bottom), (lo, top + 1)):
            mouse.move(x, y, steps=6)
        mouse.up()
        return {p["id"] for p in points if lo < p["x"] < hi}

    def name_selection(self, text):
        """Type a concept name in the naming bar and press Enter."""
        field = self.panel.locator("[data-testid=new-concept-input]")
        field.fill(text)
        field.press("Enter")

    def select_by_legend(self, text, count):
        """Click a legend entry and wait for its ``count`` maps to be the
        selection (once: the App's late re-syncs no longer draw an older
        panel over the answer, which once looked like a lost click)."""
        self.wait_still()
        self.legend(text).click()
        self.wait_selected(count)

    def legend(self, text):
        """The scatter's legend entry reading ``text``, e.g. "dots (12)"."""
        return self.panel.locator("[data-testid=scatter-legend-entry]").filter(
            has_text=re.compile(rf"^{re.escape(text)}$")
        )

    def pick_in_grid(self, count):
        """Tick the first ``count`` items of the App's grid."""
        lookers = self.page.locator("[data-cy=fo-grid] [data-cy=looker]")
        for k in range(count):
            lookers.nth(k).hover()
            lookers.nth(k).locator("[data-cy^=looker-checkbox]:not(input)").first.click()

    def wait_still(self, timeout=15):
        """Wait until the scatter stops moving (a re-render that adds a
        scrollbar or a message shifts it), so a drag lands where aimed."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            now = self.canvas.evaluate(
                "el => { const b = el.getBoundingClientRect(); return [b.x, b.y, b.width, el.dataset.version]; }"
            )
            if now == last:
                return
            last = now
            self.page.wait_for_timeout(300)
        raise AssertionError("the scatter kept moving")

    def colours(self, ids):
        """``{map_id: (r, g, b)}``: the canvas colour at each map's point,
        read in one go from the last drawing (its own coordinates), so a
        re-render in between cannot shift anything."""
        found = self.canvas.evaluate(
            """(el, ids) => {
                const wanted = new Set(ids), ratio = window.devicePixelRatio || 1, g = el.getContext("2d");
                const out = {};
                for (const p of el.namingPoints()) {
                    if (!wanted.has(p.id)) continue;
                    const d = g.getImageData(Math.round(p.x * ratio), Math.round(p.y * ratio), 1, 1).data;
                    out[p.id] = [d[0], d[1], d[2]];
                }
                return out;
            }""",
            list(ids),
        )
        return {i: tuple(c) for i, c in found.items()}

    def wait_selected(self, count, timeout=30):
        """Wait until the panel says ``count`` maps are selected and the
        scatter highlights that many."""
        self.expect_text(f"^{count} map\\(s\\) selected$", timeout * 1000)
        deadline = time.time() + timeout
        while int(self.canvas.get_attribute("data-selected")) != count:
            assert time.time() < deadline, f"the scatter shows {self.canvas.get_attribute('data-selected')} selected, not {count}"
            self.page.wait_for_timeout(200)


def concepts(dataset, annotator):
    return fpl.list_concepts(fo.load_dataset(dataset.name), annotator)


def names_by_map(dataset, annotator):
    """``{map_id: concept}`` of ``annotator``'s named maps, from the database."""
    dataset = fo.load_dataset(dataset.name)
    ids, names = dataset.values(["actmaps.detections.id", f"actmaps.detections.concept_{annotator}"])
    return {i: n for per_ids, per_names in zip(ids, names) for i, n in zip(per_ids, per_names or []) if n is not None}


def hex_rgb(color):
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


def close(rgb, expected, tolerance=40):
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, expected))


@pytest.fixture
def app(browser, request):
    """A fresh page; on failure its screenshot and console go to artifacts."""
    page = browser.new_page(viewport={"width": 1600, "height": 1100})
    console = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"page error: {e}"))
    yield App(page)
    if getattr(request.node, "failed", False):
        App(page).shot(f"failed-{request.node.name}")
        with open(os.path.join(ARTIFACTS, f"failed-{request.node.name}.log"), "w") as f:
            f.write("\n".join(console))
    page.close()
