"""The naming panel in the real FiftyOne App, driven by headless Chromium
(Playwright), asserting after each step what the database holds.

Screenshots go to tests/artifacts/ (look at them; the good ones are copied
to docs/ for the README)."""


import pytest

import fiftyone as fo

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts import naming

from tests.support.browser import App, app, browser, close, concepts, hex_rgb, names_by_map, world  # noqa: F401

pytestmark = pytest.mark.browser

def test_name_maps_in_the_app(world, app_server, app):
    page = app.page
    page.goto(f"{app_server}/datasets/{world.name}")
    page.locator("[data-cy=fo-grid]").wait_for(timeout=120_000)
    app.dismiss_popups()
    app.open_panel()
    total = world.count("actmaps.detections")

    annotator = app.panel.locator("[data-testid=annotator-input]")
    annotator.fill("alice")
    annotator.press("Enter")
    app.expect_text("Naming as alice")
    app.expect_text(f"alice: 0 of {total} maps named")
    assert int(app.canvas.get_attribute("data-points")) == total
    # drawn at the size it is shown (not a stretched default-size bitmap)
    drawn, shown = app.canvas.evaluate("el => [el.width, el.getBoundingClientRect().width * devicePixelRatio]")
    assert abs(drawn - shown) <= 2, (drawn, shown)
    app.shot("01-panel-open")

    # lasso the left part of the layout: exactly the maps inside are selected
    left = app.lasso(0.0, 0.3)
    assert 0 < len(left) < total
    app.wait_selected(len(left))
    items = app.panel.locator("[data-testid=map-gallery-item]")
    items.first.wait_for()
    assert items.count() == min(24, len(left))
    assert {items.nth(i).get_attribute("data-map-id") for i in range(items.count())} <= left
    app.shot("02-lasso-gallery")

    # click a thumbnail to drop its map from the selection, then name the rest
    dropped = items.first.get_attribute("data-map-id")
    items.first.click()
    app.wait_selected(len(left) - 1)
    stripes = left - {dropped}
    app.name_selection("stripes")
    app.expect_text(f"{len(stripes)} map\\(s\\) named 'stripes'")
    name_field = app.panel.locator("[data-testid=new-concept-input]")
    page.wait_for_function("() => document.querySelector('[data-testid=new-concept-input]').value === ''")
    assert names_by_map(world, "alice") == {i: "stripes" for i in stripes}

    # the scatter recolours: named maps in the concept's colour, the rest grey
    app.legend(f"stripes ({len(stripes)})").wait_for()
    app.legend(f"(unnamed) ({total - len(stripes)})").wait_for()
    colour = hex_rgb(naming.concept_color("stripes"))  # the only concept yet
    points = {p["id"]: p for p in app.points()}
    assert {i for i, p in points.items() if p["concept"] == "stripes"} == stripes
    hits = sum(close(c, colour) for c in app.colours(stripes).values())
    assert hits >= 0.8 * len(stripes), f"only {hits} of {len(stripes)} named maps drawn in their colour"
    app.shot("03-named")

    # a second lasso, on the right, names another concept
    right = app.lasso(0.7, 1.0)
    app.wait_selected(len(right))
    # the name field took the focus with the new selection: type, Enter
    assert page.evaluate("() => document.activeElement?.dataset?.testid") == "new-concept-input"
    app.name_selection("dots")
    app.expect_text(f"{len(right)} map\\(s\\) named 'dots'")
    expected = {**{i: "stripes" for i in stripes}, **{i: "dots" for i in right}}
    assert names_by_map(world, "alice") == expected
    grey = hex_rgb(naming.UNNAMED_COLOR)
    app.legend(f"dots ({len(right)})").wait_for()  # the new names are drawn
    points = {p["id"]: p for p in app.points()}
    dots_colour = hex_rgb(naming.concept_colors(["stripes", "dots"])["dots"])
    assert sum(close(c, dots_colour) for c in app.colours(right).values()) >= 0.8 * len(right)
    # grey where nothing is named (points not covered by a named one)
    named_xy = [(points[i]["x"], points[i]["y"]) for i in expected]
    clear = [
        i for i in points
        if i not in expected and min((points[i]["x"] - x) ** 2 + (points[i]["y"] - y) ** 2 for x, y in named_xy) > 64
    ]
    assert clear, "the two lassos left no unnamed map in the clear"
    greys = sum(close(c, grey) for c in app.colours(clear).values())
    assert greys >= 0.8 * len(clear), f"only {greys} of {len(clear)} unnamed maps drawn grey"

    # clicking a legend entry selects that concept's maps; not nameable
    app.select_by_legend(f"dots ({len(right)})", len(right))
    app.click("Not nameable")
    app.expect_text(f"{len(right)} map\\(s\\) marked not nameable|{len(right)} map\\(s\\) named '\\(not nameable\\)'")
    assert concepts(world, "alice") == {"stripes": len(stripes), fpl.NOT_NAMEABLE: len(right)}
    app.click("Undo")
    app.expect_text("Undid the last assign")
    assert names_by_map(world, "alice") == expected

    # the selection shown in the App's grid as patches; patches picked in
    # the grid become the panel's selection; name them with an existing concept
    app.select_by_legend(f"stripes ({len(stripes)})", len(stripes))
    app.click("Show in App")
    page.get_by_text(f"{len(stripes)} patches", exact=True).wait_for()
    app.click("Clear")
    app.wait_selected(0)
    app.pick_in_grid(2)
    app.wait_selected(2)
    app.shot("04-grid-selection")
    app.choose("Existing concept", f"dots ({len(right)})")
    app.click("Assign")
    app.expect_text("2 map\\(s\\) named 'dots'")
    now = names_by_map(world, "alice")
    moved = {i for i in now if now[i] != expected[i]}
    assert len(moved) == 2 and moved <= stripes and all(now[i] == "dots" for i in moved)
    app.click("Undo")
    app.expect_text("Undid the last assign")
    assert names_by_map(world, "alice") == expected

    # rename, then undo it
    app.choose("Concept", "stripes")
    app.type("New name / merge into", "stripy")
    app.click("Rename")
    app.expect_text("rename: ")
    assert concepts(world, "alice") == {"stripy": len(stripes), "dots": len(right)}
    app.click("Undo")
    app.expect_text("Undid the last rename")
    assert concepts(world, "alice") == {"stripes": len(stripes), "dots": len(right)}

    # merge stripes into dots, then undo it
    app.choose("Concept", "stripes")
    app.type("New name / merge into", "dots")
    app.click("Merge into")
    app.expect_text("merge: ")
    assert concepts(world, "alice") == {"dots": len(stripes) + len(right)}
    app.legend(f"dots ({len(stripes) + len(right)})").wait_for()
    app.shot("05-merged")
    app.click("Undo")
    app.expect_text("Undid the last merge")
    assert names_by_map(world, "alice") == expected

    # a bad name is refused with a message and changes nothing
    app.click("Clear")
    app.wait_selected(0)
    app.select_by_legend(f"(unnamed) ({total - len(expected)})", total - len(expected))
    app.name_selection("x" * 101)
    app.expect_text("at most 100 characters")
    assert name_field.input_value() == "x" * 101  # kept, to be corrected
    assert names_by_map(world, "alice") == expected
    app.shot("06-final")

    # click one map, then shift-lasso to add a region to it
    app.click("Clear")
    app.wait_selected(0)
    app.canvas.scroll_into_view_if_needed()
    app.wait_still()  # clearing removed the gallery: the panel may re-flow under the lasso
    region = app.lasso(0.0, 0.3)
    app.wait_selected(len(region))
    app.click("Clear")
    app.wait_selected(0)
    app.wait_still()  # clearing removed the gallery: the panel may have re-flowed
    positions = app.points()
    right_edge = max(p["x"] for p in positions if p["id"] in region)
    lone = next(p for p in positions if p["x"] > right_edge + 12)
    page.mouse.click(lone["x"], lone["y"])
    app.wait_selected(1)
    page.keyboard.down("Shift")
    added = app.lasso(0.0, 0.3)
    page.keyboard.up("Shift")
    assert added == region
    app.wait_selected(len(region) + 1)
    app.click("Clear")
    app.wait_selected(0)

    # names written elsewhere (another tab, another process) show up when
    # the user comes back to this tab
    extra = [i for i in points if i not in expected][:3]
    fpl.assign_concept(fo.load_dataset(world.name), extra, "from elsewhere", "alice")
    page.evaluate("() => window.dispatchEvent(new Event('blur'))")
    page.wait_for_timeout(1200)  # away from the tab for a while
    page.evaluate("() => window.dispatchEvent(new Event('focus'))")
    app.legend("from elsewhere (3)").wait_for()
    app.expect_text(f"alice: {len(expected) + 3} of {total} maps named")
    fpl.assign_concept(fo.load_dataset(world.name), extra, None, "alice")

    # the browser remembers who is naming: a fresh panel starts as alice
    page.reload()
    page.locator("[data-cy=fo-grid]").wait_for(timeout=120_000)
    app.dismiss_popups()
    if not app.panel.count():
        app.open_panel()
    app.expect_text(f"alice: {len(expected)} of {total} maps named")

    # those who already named maps are offered in the annotator field
    offered = app.panel.locator("#interactive-naming-annotators option").evaluate_all("os => os.map(o => o.value)")
    assert {"alice", "ann_alice", "ann_bob", "ann_carol"} <= set(offered)

    # another annotator's namespace: their concepts, their colours, nothing of alice's
    annotator = app.panel.locator("[data-testid=annotator-input]")
    annotator.fill("ann_alice")
    annotator.press("Enter")
    app.expect_text("Naming as ann_alice")
    theirs = concepts(world, "ann_alice")
    assert theirs and "stripes" not in theirs and "dots" not in theirs
    for concept, count in theirs.items():
        app.legend(f"{naming.display_name(concept)} ({count})").wait_for()
    app.canvas.scroll_into_view_if_needed()
    app.shot("07-other-annotator")


def test_concept_names_are_shown_as_text(world, app_server, app):
    # a name that would run script if anything rendered it as HTML
    evil = '<img src=x onerror="window.__injected = 1">'
    ids = world.values("actmaps.detections.id", unwind=True)[:3]
    fpl.assign_concept(world, ids, evil, "mallory")
    page = app.page
    page.goto(f"{app_server}/datasets/{world.name}")
    page.locator("[data-cy=fo-grid]").wait_for(timeout=120_000)
    app.dismiss_popups()
    app.open_panel()
    annotator = app.panel.locator("[data-testid=annotator-input]")
    annotator.fill("mallory")
    annotator.press("Enter")
    app.expect_text("Naming as mallory")
    app.legend(f"{evil} (3)").wait_for()  # the literal text, in the legend
    app.select_by_legend(f"{evil} (3)", 3)  # and its maps in the gallery, captioned
    # the App re-renders the panel a few times per event: read the captions
    # once all three are drawn in one render
    captions = page.wait_for_function(
        """evil => {
            const texts = [...document.querySelectorAll('[data-testid=map-gallery-item] figcaption')].map(f => f.innerText);
            return texts.length === 3 && texts.every(t => t.startsWith(evil)) && texts;
        }""",
        arg=evil,
    ).json_value()
    assert len(captions) == 3 and all(c.startswith(evil) for c in captions)
    app.panel.get_by_role("cell", name=evil, exact=True).wait_for()  # the concepts table
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("() => window.__injected") is None
