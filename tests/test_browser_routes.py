"""Routes from the App's Embeddings panel to the concept store, in the real
FiftyOne App (1.22) driven by headless Chromium: a lasso over the maps'
layout (brain key ``actmaps_layout``) must name exactly the lassoed maps,
whether through the naming panel or the "name selected maps" operator, and
the naming panel must undo the operator's naming (issue 9, section 1).

The maps that must be named are computed here, independently of the
plugin: the brain run's stored points inside the lasso polygon the
Embeddings panel posted (matplotlib's point-in-polygon), cross-checked
with the map ids of the stage the App then sends with its requests."""

import re
import time

import pytest
from playwright.sync_api import expect

import fiftyone as fo

import fiftyone_plugin as fpl
from embeddings_app import EmbeddingsPanel, OperatorPrompt, points_in_polygon
from tests.support.browser import App, app, browser, names_by_map, world  # noqa: F401

pytestmark = pytest.mark.browser

BRAIN_KEY = "actmaps_layout"


@pytest.fixture(scope="module")
def app_server(workdir):
    """An App server of this module's own: the App keeps session state
    (panels, the Embeddings panel's mode) across pages of one server, and
    these tests drive the Embeddings panel from a known start."""
    import os

    from tests.support.app_server import AppServer

    server = AppServer(os.path.join(workdir, "app-server-routes.log")).start()
    yield server.url
    server.stop()


def dismiss_popups(page):
    """Close the App's popovers (an upsell popover may cover everything
    after a few page loads) and its "Dismiss"/"Disable" banners."""
    page.keyboard.press("Escape")
    for text in ("Dismiss", "Disable"):
        button = page.get_by_text(text, exact=True)
        if button.count():
            try:
                button.first.click(timeout=3000)
            except Exception:  # covered by a popover that Escape closes
                page.keyboard.press("Escape")
    page.keyboard.press("Escape")


def reset_spaces(page):
    """Close every panel but the grid: the App keeps the session's panels
    across page loads (and other test modules expect the grid alone)."""
    page.locator("[data-cy=panel-tab-samples]").wait_for(timeout=120_000)
    page.wait_for_timeout(1000)
    dismiss_popups(page)
    closes = page.locator("[data-cy^=panel-tab-]:not([data-cy=panel-tab-samples]) button[title=Close]")
    while (open_tabs := closes.count()):
        closes.first.click()
        expect(closes).to_have_count(open_tabs - 1)
    page.locator("[data-cy=panel-tab-samples]").click()
    page.locator("[data-cy=fo-grid]").wait_for(timeout=120_000)


def goto(app, app_server, world):
    page = app.page
    page.goto(f"{app_server}/datasets/{world.name}")
    reset_spaces(page)


@pytest.fixture(autouse=True)
def grid_alone_afterwards(app, request):
    yield
    if getattr(request.node, "failed", False):
        return  # leave the page as it failed, for the screenshot
    try:
        reset_spaces(app.page)
    except Exception:  # the page may be gone; the next page load resets too
        pass


def lasso_maps(world, embeddings, fx0=0.05, fx1=0.35):
    """Lasso the left part of the Embeddings plot; returns the map ids
    inside the polygon the panel posted."""
    polygon = embeddings.lasso(fx0, fx1)
    expected = points_in_polygon(fo.load_dataset(world.name), BRAIN_KEY, polygon)
    total = world.count("actmaps.detections")
    assert 0 < len(expected) < total, "the lasso must take some maps, not all"
    return expected


def app_lasso_ids(embeddings):
    """The map ids of the MatchLabels stage the App sent after the lasso."""
    for extended in reversed(embeddings.extended):
        stage = extended.get("fiftyone.core.stages.MatchLabels")
        if stage:
            return set(stage["ids"])
    return None


def named(world, annotator):
    """``{map_id: concept}`` of ``annotator`` from the database (``{}`` for
    an annotator who never named a map)."""
    ds = fo.load_dataset(world.name)
    ds.reload()  # the App server declared the field in another process
    if ds.get_field(f"actmaps.detections.concept_{annotator}") is None:
        return {}
    return names_by_map(world, annotator)


def wait_named(page, world, annotator, expected, timeout=30):
    for _ in range(timeout * 4):
        if named(world, annotator) == expected:
            return
        page.wait_for_timeout(250)
    assert named(world, annotator) == expected


def touched_maps(world, ids):
    """Every map of the images that hold one of ``ids`` (what the App's
    current view holds after the lasso)."""
    ds = fo.load_dataset(world.name)
    return {i for per in ds.values("actmaps.detections.id") for i in (per or []) if set(per) & ids}


def test_lasso_in_the_embeddings_panel_becomes_the_naming_panels_selection(world, app_server, app):
    goto(app, app_server, world)
    app.open_panel()  # opens beside the grid
    annotator = app.panel.locator("[data-testid=annotator-input]")
    annotator.fill("emb_panel")
    annotator.press("Enter")
    app.expect_text("Naming as emb_panel")
    embeddings = EmbeddingsPanel(app.page)
    embeddings.open(BRAIN_KEY, space=0)

    expected = lasso_maps(world, embeddings)
    assert embeddings.selected_count() == len(expected)
    app.wait_selected(len(expected))
    assert app_lasso_ids(embeddings) == expected  # what the App itself carried
    app.shot("routes-01-embeddings-lasso-panel")
    app.name_selection("lassoed")
    app.expect_text(f"{len(expected)} map\\(s\\) named 'lassoed'")
    assert named(world, "emb_panel") == {i: "lassoed" for i in expected}

    # the App re-syncs after the panel's update and drops the lasso from
    # what it sends: the panel keeps its selection, nothing more is named
    app.click("Refresh")
    app.wait_selected(len(expected))
    assert named(world, "emb_panel") == {i: "lassoed" for i in expected}


def test_lasso_then_operator_names_exactly_the_lassoed_maps_and_the_panel_undoes_it(world, app_server, app):
    page = app.page
    goto(app, app_server, world)
    embeddings = EmbeddingsPanel(page)
    embeddings.open(BRAIN_KEY, space=0)
    expected = lasso_maps(world, embeddings, 0.05, 0.4)
    touched = touched_maps(world, expected)
    assert len(touched) > len(expected)  # the current view holds more maps than lassoed

    prompt = OperatorPrompt(page)
    prompt.open("name selected maps")
    lasso_choice = prompt.choice(f"The {len(expected)} map(s) lassoed in the Embeddings panel (brain key {BRAIN_KEY})")
    lasso_choice.wait_for()
    # the whole view is offered only with its count, and is not chosen
    view_choice = prompt.choice(f"All {len(touched)} map(s) in the current view")
    view_choice.wait_for()
    radios = prompt.radios()
    assert radios[f"The {len(expected)} map(s) lassoed in the Embeddings panel (brain key {BRAIN_KEY})"] is True
    assert radios[f"All {len(touched)} map(s) in the current view"] is False
    app.shot("routes-02-operator-form")
    prompt.fill("Annotator", "emb_operator")
    prompt.fill("Concept", "lassoed")
    prompt.execute()
    wait_named(page, world, "emb_operator", {i: "lassoed" for i in expected})
    assert app_lasso_ids(embeddings) == expected
    app.shot("routes-03-operator-output")

    # the naming panel offers to undo it
    prompt.close()
    app.open_panel()
    annotator = app.panel.locator("[data-testid=annotator-input]")
    annotator.fill("emb_operator")
    annotator.press("Enter")
    app.expect_text("Naming as emb_operator")
    app.click("Undo")
    app.expect_text(f"Undid the operator's naming \\({len(expected)} map\\(s\\)\\)")
    assert named(world, "emb_operator") == {}


def test_after_a_panel_update_the_operator_never_widens_a_dropped_lasso(world, app_server, app):
    page = app.page
    goto(app, app_server, world)
    app.open_panel()
    annotator = app.panel.locator("[data-testid=annotator-input]")
    annotator.fill("emb_dropped")
    annotator.press("Enter")
    app.expect_text("Naming as emb_dropped")
    embeddings = EmbeddingsPanel(page)
    embeddings.open(BRAIN_KEY, space=0)
    expected = lasso_maps(world, embeddings)
    app.wait_selected(len(expected))
    sent = len(embeddings.events)
    app.click("Refresh")  # a panel state update: the App re-syncs
    app.wait_selected(len(expected))
    # the App's re-sync of its view reached the panel
    deadline = time.time() + 60
    while "on_change_view" not in embeddings.events[sent:]:
        assert time.time() < deadline, "the App did not re-sync its view after the panel's update"
        page.wait_for_timeout(100)

    prompt = OperatorPrompt(page)
    prompt.open("name selected maps")
    total = world.count("actmaps.detections")
    lasso_label = f"The {len(expected)} map(s) lassoed in the Embeddings panel (brain key {BRAIN_KEY})"
    still_sent = app_lasso_ids(embeddings) == expected and embeddings.extended[-1]
    if still_sent:
        # the App kept the lasso: it is offered, exactly
        prompt.choice(lasso_label).wait_for()
    else:
        # the App dropped it: not offered, and the whole dataset is only a
        # choice with its count, not the default
        prompt.choice(f"All {total} map(s) in the current view").wait_for()
        assert prompt.choice(lasso_label).count() == 0
        assert prompt.radios()[f"All {total} map(s) in the current view"] is False
        prompt.fill("Annotator", "emb_dropped")
        prompt.fill("Concept", "x")
        assert page.get_by_role("button", name="Execute").is_disabled()
    app.shot("routes-04-dropped-lasso-form")
    page.get_by_role("button", name="Cancel").click()
    assert named(world, "emb_dropped") == {}
    fpl.list_concepts(fo.load_dataset(world.name), "emb_dropped")  # still a valid namespace


def test_evaluations_from_a_patches_view_and_the_untrustworthy_top_view(world, app_server, app):
    page = app.page
    goto(app, app_server, world)
    app.open_panel()
    annotator = app.panel.locator("[data-testid=annotator-input]")
    annotator.fill("ann_alice")  # a simulated annotator who named every map
    annotator.press("Enter")
    app.expect_text("Naming as ann_alice")
    ds = fo.load_dataset(world.name)
    concept, count = max(fpl.list_concepts(ds, "ann_alice").items(), key=lambda kv: kv[1])
    # the panel's "Show in App" leaves the grid on a patches view
    app.select_by_legend(f"{concept} ({count})", count)
    app.click("Show in App")
    page.get_by_text(f"{count} patches", exact=True).wait_for()
    images = {
        sid for sid, names in zip(ds.values("id"), ds.values("actmaps.detections.concept_ann_alice")) if concept in (names or [])
    }

    prompt = OperatorPrompt(page)
    prompt.open("explain predictions by concepts")
    page.get_by_text(re.compile(rf"Runs on the {len(images)} image\(s\) under the current patches view")).first.wait_for()
    prompt.fill("Annotator", "ann_alice")
    prompt.execute()
    for _ in range(240):
        ds.reload()
        if ds.get_field("explanation_ann_alice") is not None and len(ds.exists("explanation_ann_alice")) == len(images):
            break
        page.wait_for_timeout(250)
    assert set(ds.exists("explanation_ann_alice").values("id")) == images
    assert page.get_by_text("not a patches").count() == 0
    prompt.close()

    # untrustworthy types, "open the top type in the App" (the default): no
    # "Saved view ... does not exist"; the grid shows the top type's samples
    prompt.open("untrustworthy example types")
    prompt.fill("Annotator", "ann_alice")
    prompt.execute()
    for _ in range(240):
        ds.reload()
        if "untrustworthy_ann_alice" in ds.list_runs():
            break
        page.wait_for_timeout(250)
    assert "untrustworthy_ann_alice" in ds.list_runs()
    flagged = [v for v in ds.list_saved_views() if v.startswith("naming: untrustworthy")]
    if flagged:
        # the operator opened one flagged type's saved view: the grid counts its samples
        counts = sorted({len(ds.load_saved_view(v)) for v in flagged})
        page.wait_for_function(
            """counts => {
                const e = document.querySelector('[data-cy=entry-counts]');
                return e !== null && counts.includes(parseInt(e.innerText.split(' ')[0], 10));
            }""",
            arg=counts,
            timeout=60_000,
        )
    app.shot("routes-05-untrustworthy")
    assert page.get_by_text(re.compile("does not exist")).count() == 0
