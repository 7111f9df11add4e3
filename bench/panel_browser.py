"""The naming panel in the real App (headless Chromium) on 20,000 maps:
opening it, lassoing about 1,000 maps, and naming them, each timed from the
user's action to what the user sees, against the App loading its own grid of
the same dataset (baseline, measured in the same run)."""

import argparse
import os
import re
import shutil
import tempfile
import time

from ._common import private_database, report

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]

def build(workdir, num_samples, maps_per_sample):
    import numpy as np
    from PIL import Image

    from fiftyone_plugin.concepts import naming
    from fiftyone_plugin.maps.config import ActivationMapsConfig
    from fiftyone_plugin.runs import register_run
    from fiftyone_plugin.maps.layouts import write_points

    from .bulk_assign import build as build_maps

    dataset = build_maps(num_samples, maps_per_sample)
    rng = np.random.default_rng(0)
    # real image files, for the thumbnails
    paths = []
    for i in range(num_samples):
        path = os.path.join(workdir, "images", f"{i}.jpg")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    dataset.set_values("filepath", paths)
    ids = dataset.values("actmaps.detections.id", unwind=True)
    centres = rng.normal(scale=6, size=(12, 2))
    write_points(dataset, {i: centres[k % 12] + rng.normal(size=2) for k, i in enumerate(ids)})
    naming.name_maps(dataset, ids[: len(ids) // 4], "already named", "alice")
    # the panel finds maps fields by their runs
    register_run(dataset, "actmaps", ActivationMapsConfig(maps_field="actmaps"))
    dataset.persistent = True
    return dataset, ids

def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--maps", type=int, default=20_000)
    parser.add_argument("--maps-per-sample", type=int, default=5)
    parser.add_argument("--select", type=int, default=1000, help="about how many maps the lasso takes")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="in-bench-browser-")
    private_database()
    plugins = os.path.join(workdir, "plugins")
    os.makedirs(plugins)
    os.symlink(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.path.join(plugins, "interactive-naming"))
    os.environ["FIFTYONE_PLUGINS_DIR"] = plugins

    import fiftyone as fo  # noqa: F401
    from playwright.sync_api import sync_playwright

    import fiftyone_plugin as fpl
    from tests.support.app_server import AppServer

    dataset, ids = build(workdir, args.maps // args.maps_per_sample, args.maps_per_sample)
    server = AppServer(os.path.join(workdir, "app-server.log")).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            panel = page.locator("[data-cy=panel-content-naming_panel]")

            def seen(pattern, timeout=120_000):
                try:
                    panel.get_by_text(re.compile(pattern)).first.wait_for(timeout=timeout)
                except Exception:
                    page.screenshot(path=os.path.join(tempfile.gettempdir(), "panel-browser-failed.png"))
                    raise

            # baseline: the App shows its grid of the same dataset (warm: second load)
            page.goto(f"{server.url}/datasets/{dataset.name}")
            page.locator("[data-cy=fo-grid] [data-cy=looker]").first.wait_for(timeout=180_000)
            start = time.perf_counter()
            page.reload()
            page.locator("[data-cy=fo-grid] [data-cy=looker]").first.wait_for(timeout=180_000)
            t_grid = time.perf_counter() - start
            for text in ("Dismiss", "Disable"):
                if page.get_by_text(text, exact=True).count():
                    page.get_by_text(text, exact=True).first.click()

            # open the panel and say who is naming: until all maps are drawn
            page.click("[data-cy=new-panel-btn]")
            page.get_by_text("Interactive naming", exact=True).first.click()
            field = panel.locator("[data-testid=annotator-input]")
            field.wait_for()
            start = time.perf_counter()
            field.fill("alice")
            field.press("Enter")
            seen(rf"alice: {len(ids) // 4} of {len(ids)} maps named")
            canvas = panel.locator("[data-testid=concept-scatter-canvas]")
            page.wait_for_function(f"() => document.querySelector('[data-testid=concept-scatter-canvas]')?.dataset.points === '{len(ids)}'")
            t_open = time.perf_counter() - start

            # lasso the leftmost ~N maps: until the count and the first thumbnail show
            canvas.scroll_into_view_if_needed()
            points = canvas.evaluate("el => { const b = el.getBoundingClientRect(); return el.namingPoints().map(p => [p.x + b.left, p.y + b.top]); }")
            xs = sorted(x for x, _ in points)
            cut = xs[min(args.select, len(xs) - 1)]
            box = canvas.bounding_box()
            # inside the canvas margin, clear of the panel's resize handle
            top, bottom, left = box["y"] + 4, box["y"] + box["height"] - 4, box["x"] + 8
            start = time.perf_counter()
            page.mouse.move(left, top)
            page.mouse.down()
            for x, y in ((cut, top), (cut, bottom), (left, bottom), (left, top + 1)):
                page.mouse.move(x, y, steps=4)
            page.mouse.up()
            seen(r"^[1-9]\d* map\(s\) selected$")
            panel.locator("[data-testid=map-gallery-item] img").first.wait_for()
            page.wait_for_function("() => document.querySelector('[data-testid=map-gallery-item] img')?.complete")
            t_select = time.perf_counter() - start
            selected = int(panel.get_by_text(re.compile(r"^\d+ map\(s\) selected$")).first.inner_text().split()[0])

            def redrawn(after):
                # the scatter drew a layout newer than ``after``
                page.wait_for_function(
                    f"() => Number(document.querySelector('[data-testid=concept-scatter-canvas]')?.dataset.version) > {after}",
                    timeout=120_000,
                )
                return int(canvas.get_attribute("data-version"))

            version = int(canvas.get_attribute("data-version"))
            refresh = panel.get_by_role("button", name=re.compile(r"(^|\s)Refresh$"))
            name_field = panel.locator("[data-testid=new-concept-input]")
            t_refresh, t_name = [], []
            for k in range(3):
                # baseline round trip: Refresh re-reads and redraws the layout
                page.wait_for_timeout(500)
                start = time.perf_counter()
                refresh.click()
                version = redrawn(version)
                t_refresh.append(time.perf_counter() - start)

                # name the selection: until the panel confirms and the scatter recolours
                page.wait_for_timeout(500)
                name_field.fill(f"bench concept {k}")
                start = time.perf_counter()
                name_field.press("Enter")
                seen(rf"{selected} map\(s\) named 'bench concept {k}'")
                version = redrawn(version)
                t_name.append(time.perf_counter() - start)
            t_refresh, t_name = min(t_refresh), min(t_name)
            named = fpl.list_concepts(dataset, "alice").get("bench concept 2")
            assert named == selected, (named, selected)
            browser.close()
    finally:
        server.stop()
        dataset.delete()
        shutil.rmtree(workdir, ignore_errors=True)

    rows = [
        ("maps", f"{len(ids)}"),
        ("App grid load (baseline)", f"{t_grid * 1000:.0f} ms"),
        ("panel: choose annotator -> all maps drawn", f"{t_open * 1000:.0f} ms"),
        (f"panel: lasso {selected} maps -> count + first thumbnail", f"{t_select * 1000:.0f} ms"),
        ("panel: Refresh round trip (best of 3)", f"{t_refresh * 1000:.0f} ms"),
        (f"panel: name {selected} maps -> confirmed, recoloured (best of 3)", f"{t_name * 1000:.0f} ms ({named} in the database)"),
    ]
    return report(
        "naming panel in the browser",
        rows,
        [
            ("panel open vs App grid load", t_open / t_grid, 1.5, False),
            ("naming vs a refresh round trip", t_name / t_refresh, 2.0, False),
        ],
    )

if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
