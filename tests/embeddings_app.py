"""Driving FiftyOne 1.22's Embeddings panel (a three.js scatter, not plotly)
and the operator prompt in headless Chromium, for test_browser_routes.py.

The lasso: the panel's "Select" mode turns a drag into a lasso; the panel
posts the lasso's polygon (in the plot's data coordinates) to the server's
``/embeddings/v2/lasso-stage`` route, which answers with a view stage that
the App keeps as its extended stages. :class:`EmbeddingsPanel` records the
polygon it posted and the stage the App sent with later requests, so a test
can compute independently which maps lie inside the polygon."""

import json
import re


class EmbeddingsPanel:
    def __init__(self, page):
        self.page = page
        self.polygons = []  # posted by the panel, newest last
        self.extended = []  # the App's extended stages, per operator request
        self.events = []  # the panel event (``__method__``) of each operator request, or None
        page.on("request", self._seen)

    def _seen(self, request):
        if request.method != "POST":
            return
        try:
            body = json.loads(request.post_data or "null")
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if request.url.endswith("/embeddings/v2/lasso-stage") and body.get("polygon"):
            self.polygons.append(body["polygon"])
        if "/operators/" in request.url and "extended" in body:
            self.extended.append(body["extended"] or {})
            self.events.append((body.get("params") or {}).get("__method__"))

    @property
    def content(self):
        return self.page.locator("[data-cy=panel-content-Embeddings]")

    def open(self, brain_key, space=0):
        """Open the panel from a space's "+" menu and show ``brain_key``."""
        self.page.locator("[data-cy=new-panel-btn]").nth(space).click()
        self.page.get_by_text("Embeddings", exact=True).first.click()
        self.content.get_by_text(brain_key, exact=True).first.click()
        self.content.locator(".emb-plot-scene").first.wait_for(timeout=60_000)
        # the points are drawn once the geometry arrived: "<n> points"
        self.content.get_by_text(re.compile(r"\d+ points$")).first.wait_for(timeout=60_000)
        self.page.wait_for_timeout(1000)

    def lasso(self, fx0, fx1, fy0=0.05, fy1=0.95):
        """Drag a rectangular lasso over the given fractions of the plot in
        "Select" mode; returns the polygon the panel posted (data space)."""
        before = len(self.polygons)
        self.content.get_by_text("Select", exact=True).first.click()
        self.page.wait_for_timeout(500)
        box = self.content.locator(".emb-plot-scene").first.bounding_box()
        x0, x1 = box["x"] + fx0 * box["width"], box["x"] + fx1 * box["width"]
        y0, y1 = box["y"] + fy0 * box["height"], box["y"] + fy1 * box["height"]
        mouse = self.page.mouse
        mouse.move(x0, y0)
        mouse.down()
        for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1)):
            mouse.move(x, y, steps=8)
        mouse.up()
        for _ in range(100):
            if len(self.polygons) > before:
                break
            self.page.wait_for_timeout(100)
        assert len(self.polygons) > before, "the Embeddings panel posted no lasso"
        return self.polygons[-1]

    def selected_count(self):
        text = self.content.get_by_text(re.compile(r"^\d+ selected")).first.inner_text()
        return int(text.split()[0])


def points_in_polygon(dataset, brain_key, polygon):
    """The label ids of the brain run's points inside ``polygon`` (data
    space), by matplotlib's point-in-polygon test: computed here from the
    run's stored points, independently of the plugin and of the App."""
    from matplotlib.path import Path
    import numpy as np

    results = dataset.load_brain_results(brain_key)
    points = np.asarray(results.points)
    inside = Path(np.asarray(polygon)).contains_points(points)
    return {str(i) for i, keep in zip(results.label_ids, inside) if keep}


class OperatorPrompt:
    """The App's operator browser (backtick) and its form."""

    def __init__(self, page):
        self.page = page

    def open(self, label):
        self.page.keyboard.press("`")
        self.page.wait_for_timeout(500)
        self.page.keyboard.type(label)
        # operator labels read "<Capability> (interactive naming)"
        name = re.compile(rf"^{re.escape(label)} \(interactive naming\)$", re.IGNORECASE)
        self.page.get_by_text(name).first.click()
        self.page.get_by_role("button", name="Execute").wait_for()

    def field(self, label):
        return self.page.locator(f"xpath=//p[normalize-space(text())='{label}']/following::input[1]")

    def fill(self, label, text):
        field = self.field(label)
        field.fill(text)
        self.page.wait_for_timeout(800)  # the dynamic form resolves again

    def choice(self, text):
        return self.page.get_by_text(text, exact=True)

    def radios(self):
        """``{label text: checked}`` of the form's radio buttons."""
        pairs = self.page.evaluate(
            """() => Array.from(document.querySelectorAll('input[type=radio]'))
                .map(r => [(r.closest('label') || {}).innerText || '', r.checked])"""
        )
        return {text.strip(): checked for text, checked in pairs}

    def execute(self):
        self.page.get_by_role("button", name="Execute").click()

    def close(self):
        """Close the operator's output once it is shown."""
        close = self.page.get_by_role("button", name="Close", exact=True)
        try:
            close.first.wait_for(timeout=15_000)
        except Exception:  # no output dialog: a form or nothing
            pass
        for name in ("Done", "Close", "Cancel"):
            button = self.page.get_by_role("button", name=name, exact=True)
            if button.count() and button.first.is_visible():
                button.first.click()
                return
        self.page.keyboard.press("Escape")
