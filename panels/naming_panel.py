# (over 400 lines: one panel class, its events and its render; the work is in fiftyone_plugin.concepts)
"""The naming panel: an annotator looks at the layout of all activation
maps, selects some (lasso in the panel, or selection/lasso in the App),
checks them in a gallery of heatmap thumbnails, and names them.

Rendering and event plumbing only; all work is done by
``fiftyone_plugin.concepts.naming`` and the concept store.
"""

import time

import pydash

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_plugin.concepts import naming, records
from fiftyone_plugin.concepts import selection as app_selection
from fiftyone_plugin.concepts.records import PanelMemory
from fiftyone_plugin.concepts.selection import base_view, maps_fields, request_selections
from fiftyone_plugin.concepts.store import NOT_NAMEABLE, existing_map_ids, list_annotators, validate_annotator
from fiftyone_plugin.maps.layouts import layout_options

PER_PAGE = 24


class _Patch:
    """One event's changes to the panel, sent as one state patch and one
    data patch when the event renders (or fails): the App applies each
    patch as an operation of its own and re-renders in between, so a patch
    per key would flicker and cost a render each.

    Reads see the event's own writes. The state holds small values only
    (counts, a version, the page of thumbnails, a reference to the panel's
    :class:`~fiftyone_plugin.concepts.records.PanelMemory`): the App sends
    it with every event. Data (the scatter's payloads) is write-only.
    """

    def __init__(self, ctx):
        object.__setattr__(self, "_values", ctx.panel_state if ctx.panel_state is not None else {})
        object.__setattr__(self, "_state", {})
        object.__setattr__(self, "_data", {})
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "cache", {})  # per-event reads of the panel's memory
        object.__setattr__(self, "_changed", False)

    def get(self, key, default=None):
        return pydash.get(self._values, key, default)

    def set(self, key, value, quiet=False):
        """Set ``key`` (``"nested.key"`` paths too); ``quiet``: a bookkeeping
        value that alone is no reason to draw the panel again."""
        pydash.set_(self._values, key, value)
        self._state[key] = value
        if not quiet:
            object.__setattr__(self, "_changed", True)

    def set_data(self, key, value):
        self._data[key] = value
        object.__setattr__(self, "_changed", True)

    def __getattr__(self, key):
        return self.get(key)

    def __setattr__(self, key, value):
        self.set(key, value)

    @property
    def changed(self):
        """Whether the event changed the state or data (sent or not)."""
        return self._changed

    def send(self):
        """Send what changed since the last send (nothing if nothing did)."""
        if self._state:
            self._ctx.ops.patch_panel_state(dict(self._state))
            self._state.clear()
        if self._data:
            self._ctx.ops.patch_panel_data(dict(self._data))
            self._data.clear()


# events the App sends on its own (see NamingPanel._take)
_APP_EVENTS = {
    "on_change_view", "on_change_selected", "on_change_selected_labels", "on_change_extended_selection",
}


def _patch(ctx):
    # the patch lives on this request's ctx: the panel object is shared
    return ctx.naming_patch


class NamingPanel(foo.Panel):
    @property
    def config(self):
        return foo.PanelConfig(
            name="naming_panel",
            label="Interactive naming",
            description="Group activation maps into named concepts",
            icon="label",
            surfaces="grid",
        )

    def execute(self, ctx):
        method = ctx.params.get("__method__")
        if method is None or method == "on_startup":
            return self.on_startup(ctx)
        patch = ctx.naming_patch = _Patch(ctx)
        try:
            ctx.event_args = ctx.params.get("event_args", {})
            result = getattr(self, method)(ctx) if hasattr(self, method) else None
            if method in _APP_EVENTS:
                # an operator's naming (run from the App) makes Undo available
                offered = bool(self._operator_undo(ctx))
                if offered != bool(patch.operator_undo):
                    patch.operator_undo = offered
                if not patch.changed:
                    return result  # the App keeps the newer output it shows
            ctx.ops.show_panel_output(self.render(ctx))
            return result
        finally:
            patch.send()  # if the event failed before rendering

    # ---- state helpers -------------------------------------------------

    def _maps_field(self, ctx):
        field = _patch(ctx).maps_field
        if field:
            return field
        fields = maps_fields(ctx.dataset)
        return fields[0] if fields else None

    def _annotator(self, ctx):
        return _patch(ctx).annotator or None

    def _memory(self, ctx):
        # the selection and undo step: in the execution store, not in the
        # state the App sends with every event; keyed by the panel's id, so
        # that the events a new panel sends at once agree on it (the key is
        # kept in state, as the id may change)
        patch = _patch(ctx)
        if not patch.memory:
            patch.set("memory", ctx.panel_id or PanelMemory.new_ref(), quiet=True)
        return PanelMemory(ctx.dataset, patch.memory)

    def _selection(self, ctx):
        cache = _patch(ctx).cache
        if "selection" not in cache:
            cache["selection"] = self._memory(ctx).selection()
        return list(cache["selection"])

    def _set_selection(self, ctx, ids):
        ids = list(dict.fromkeys(ids))
        patch = _patch(ctx)
        self._say(ctx, None)  # the count is in the selection bar; old news goes
        self._memory(ctx).set_selection(ids)
        patch.cache["selection"] = ids
        patch.selection_count = len(ids)
        patch.selection_version = (patch.selection_version or 0) + 1
        # the scatter highlights these; one string, replaced whole
        patch.set_data("scatter.selection", "".join(ids))
        patch.page = 0
        self._refresh_gallery(ctx)

    def _undo_record(self, ctx):
        return self._memory(ctx).undo() if _patch(ctx).has_undo else None

    def _set_undo(self, ctx, record):
        self._memory(ctx).set_undo(record)
        _patch(ctx).has_undo = record is not None

    def _say(self, ctx, text, error=False):
        _patch(ctx).message = text
        _patch(ctx).message_is_error = error

    # ---- data ------------------------------------------------------------

    def _refresh_layout(self, ctx, resend=False):
        """Re-read the maps' layout, names and counts. The positions (most of
        the payload) are sent only when the maps changed, or with ``resend``
        when the App may not hold them (panel data is not kept on reload)."""
        maps_field = self._maps_field(ctx)
        if maps_field is None:
            return
        if resend or not _patch(ctx).layout_points_attribute:
            self._choose_layout(ctx)
        points, stats = naming.layout_and_progress(
            ctx.dataset, self._annotator(ctx), maps_field,
            # "point" when there is no layout: a legacy attribute or nothing
            points_attribute=_patch(ctx).layout_points_attribute or "point",
        )
        version = (_patch(ctx).layout_version or 0) + 1
        signature = naming.layout_signature(points)
        if resend or signature != _patch(ctx).layout_signature:
            _patch(ctx).set_data("scatter.layout", naming.layout_payload(points, version))
            _patch(ctx).layout_signature = signature
        _patch(ctx).set_data("scatter.names", naming.names_payload(points, version))
        # the gallery frames maps in the scatter's colours (same concept set)
        _patch(ctx).concept_colors = {
            c: color for c, color in naming.concept_colors(points["concepts"]).items() if isinstance(c, str)
        }
        _patch(ctx).layout_version = version
        _patch(ctx).stats = {k: v for k, v in stats.items() if k != "concepts"}
        _patch(ctx).concepts = [
            {"concept": c, "maps": n} for c, n in stats["concepts"].items()
        ]
        _patch(ctx).has_layout = bool(points["ids"])
        # a concept renamed, merged or deleted (here or in another tab) leaves the pickers
        names = set(stats["concepts"])
        for key in ("manage_row.manage_concept", "naming_row.existing_concept"):
            if _patch(ctx).get(key) and _patch(ctx).get(key) not in names:
                _patch(ctx).set(key, None)

    def _choose_layout(self, ctx):
        # which layout run the scatter draws: the picker's, else the newest
        # fresh one; a stale one is drawn with a warning
        entries, chosen, message = layout_options(ctx.dataset, maps_field=self._maps_field(ctx), brain_key=_patch(ctx).layout_key or None)
        _patch(ctx).layouts = [
            {"key": e["brain_key"], "label": f"{e['brain_key']} ({e['method']}{', stale' if e['stale'] else ''})"}
            for e in entries
        ]
        _patch(ctx).layout_key = chosen["brain_key"] if chosen else None
        _patch(ctx).layout_points_attribute = chosen["points_attribute"] if chosen else None
        _patch(ctx).layout_warning = message

    def set_layout(self, ctx):
        _patch(ctx).layout_key = ctx.params.get("value") or _patch(ctx).get("top.layout_key")
        self._refresh_layout(ctx, resend=True)
        self._set_selection(ctx, [])

    def _refresh_annotators(self, ctx):
        # offered in the annotator field (it also takes a new name)
        maps_field = self._maps_field(ctx)
        _patch(ctx).annotators = list_annotators(ctx.dataset, maps_field=maps_field) if maps_field else []

    def _refresh_gallery(self, ctx):
        maps_field = self._maps_field(ctx)
        selection = self._selection(ctx)
        page = naming.gallery_page(
            ctx.dataset, selection, page=_patch(ctx).page or 0, per_page=PER_PAGE, maps_field=maps_field,
            annotator=self._annotator(ctx),
            colors=_patch(ctx).concept_colors or {},
        ) if maps_field and selection else {"items": [], "page": 0, "pages": 1}
        _patch(ctx).page = page["page"]
        _patch(ctx).pages = page["pages"]
        # thumbnails are small cached files served by the App; state holds URLs
        _patch(ctx).gallery_items = page["items"]

    # ---- lifecycle and App events ---------------------------------------------

    def on_load(self, ctx):
        # the annotator is remembered by the browser (the annotator input
        # component keeps it in localStorage and sends it on load)
        maps_field = _patch(ctx).maps_field = self._maps_field(ctx)
        self._refresh_annotators(ctx)
        self._refresh_layout(ctx, resend=True)
        # a selection kept in the panel's state (reload, workspace) is
        # highlighted again (panel data is not kept), minus maps since deleted
        patch = _patch(ctx)
        if isinstance(patch.selection, list):
            # a panel saved before its memory moved to the execution store
            self._memory(ctx).set_selection(patch.selection)
            self._set_undo(ctx, patch.undo or None)
            patch.selection = patch.undo = None
        kept = self._selection(ctx)
        self._set_selection(ctx, existing_map_ids(ctx.dataset, kept, maps_field) if kept and maps_field else [])

    def on_change_dataset(self, ctx):
        _patch(ctx).maps_field = None
        _patch(ctx).layout_key = None
        # (the memory is per dataset: this one's may hold an old selection)
        self._memory(ctx).set_selection([])
        self._set_undo(ctx, None)
        self.on_load(ctx)

    # The App sends these with every re-sync of its view, several times
    # after each panel event, carrying the panel state of when they were sent
    # (possibly before the panel's last event). An App selection is taken
    # once (PanelMemory.take, read fresh), and an event that changed nothing
    # is not rendered (_APP_EVENTS): its output would be drawn from that old
    # state over the newer one, and re-flow the panel under the user's pointer.

    def _take(self, ctx, source, ids):
        # a selection the App holds replaces the panel's own, once
        digest = app_selection.ids_digest(ids) if ids else None
        if self._memory(ctx).take(source, digest):
            self._set_selection(ctx, ids)

    def on_change_selected_labels(self, ctx):
        maps_field = self._maps_field(ctx)
        if maps_field:
            ids = [l["label_id"] for l in (ctx.selected_labels or []) if l.get("field") == maps_field]
            self._take(ctx, "labels", existing_map_ids(ctx.dataset, ids, maps_field) if ids else [])

    def on_change_selected(self, ctx):
        maps_field = self._maps_field(ctx)
        if maps_field:
            found = [s for s in request_selections(ctx, maps_field) if s["source"] == "patches"] if ctx.selected else []
            self._take(ctx, "patches", found[0]["ids"] if found else [])

    def on_change_extended_selection(self, ctx):
        # the legacy extended selection (set by operators, older panels)
        selection = (ctx.extended_selection or {}).get("selection") or []
        maps_field = self._maps_field(ctx)
        if maps_field:
            self._take(ctx, "extended", existing_map_ids(ctx.dataset, selection, maps_field) if selection else [])

    def on_change_view(self, ctx):
        # a lasso in the App's Embeddings panel over the maps' layout: the
        # App adds a stage on the lassoed map ids to its extended stages
        # and tells panels through this event. A lasso that is dropped
        # changes nothing
        maps_field = self._maps_field(ctx)
        if maps_field:
            ids = app_selection.lassoed_map_ids(base_view(ctx), ctx.request_params.get("extended"), maps_field)
            self._take(ctx, "lasso", ids or [])

    # ---- panel events ----------------------------------------------------

    def set_annotator(self, ctx):
        value = (ctx.params.get("value") or "").strip()
        try:
            validate_annotator(value)
        except ValueError as e:
            self._say(ctx, str(e), error=True)
            return
        if value == _patch(ctx).annotator:
            return
        _patch(ctx).annotator = value
        self._set_undo(ctx, None)
        self._say(ctx, f"Naming as {value}")
        self.resync(ctx)

    def set_maps_field(self, ctx):
        _patch(ctx).maps_field = ctx.params.get("value") or _patch(ctx).get("top.maps_field")
        _patch(ctx).layout_key = None  # the other field's layouts
        self._set_undo(ctx, None)  # it was about the other field's maps
        self._refresh_annotators(ctx)
        self._refresh_layout(ctx, resend=True)
        self._set_selection(ctx, [])

    def select_maps(self, ctx):
        # the scatter sends the whole new selection (lasso, click, legend)
        ids = [i for i in (ctx.params.get("ids") or []) if isinstance(i, str)]
        maps_field = self._maps_field(ctx)
        if ids and maps_field:
            # maps may have been deleted in another tab since the layout was sent
            ids = existing_map_ids(ctx.dataset, ids, maps_field)
        self._set_selection(ctx, ids)

    def use_app_selection(self, ctx):
        maps_field = self._maps_field(ctx)
        found = request_selections(ctx, maps_field) if maps_field else []
        if not found:
            self._say(
                ctx,
                "Nothing is selected in the App: tick patches or labels of the maps field, or lasso maps in the Embeddings panel",
                error=True,
            )
            return
        self._set_selection(ctx, found[0]["ids"])
        self._say(ctx, f"{len(found[0]['ids'])} map(s) {found[0]['label']}")

    def drop_map(self, ctx):
        # the gallery sends every map dropped since its last answer
        dropped = set(ctx.params.get("map_ids") or [ctx.params.get("map_id")])
        self._set_selection(ctx, [i for i in self._selection(ctx) if i not in dropped])

    def clear_selection(self, ctx):
        self._set_selection(ctx, [])

    def next_page(self, ctx):
        _patch(ctx).page = (_patch(ctx).page or 0) + 1
        self._refresh_gallery(ctx)

    def previous_page(self, ctx):
        _patch(ctx).page = max(0, (_patch(ctx).page or 0) - 1)
        self._refresh_gallery(ctx)

    def show_selection_in_app(self, ctx):
        maps_field = self._maps_field(ctx)
        ids = self._selection(ctx)
        if not ids:
            self._say(ctx, "Select maps first", error=True)
            return
        ctx.ops.set_view(naming.selection_view(ctx.dataset, ids, maps_field))

    def _act(self, ctx, concept):
        annotator = self._annotator(ctx)
        maps_field = self._maps_field(ctx)
        ids = self._selection(ctx)
        if not annotator:
            self._say(ctx, "Choose who is naming first", error=True)
            return
        if not ids:
            self._say(ctx, "Select maps first", error=True)
            return
        try:
            record = naming.name_maps(ctx.dataset, ids, concept, annotator, maps_field=maps_field)
        except ValueError as e:
            self._say(ctx, str(e), error=True)
            return
        self._remember(ctx, record)
        what = "unnamed" if concept is None else f"named '{naming.display_name(concept)}'"
        self._say(ctx, f"{len(ids)} map(s) {what}")
        _patch(ctx).namings = (_patch(ctx).namings or 0) + 1  # empties the name field
        self.resync(ctx)

    def name_new(self, ctx):
        # the naming bar sends what was typed (Enter or its button)
        self._act(ctx, ctx.params.get("concept") or "")

    def name_existing(self, ctx):
        concept = _patch(ctx).get("naming_row.existing_concept")
        if not concept:
            self._say(ctx, "Pick a concept from the list", error=True)
            return
        self._act(ctx, concept)

    def mark_not_nameable(self, ctx):
        self._act(ctx, NOT_NAMEABLE)

    def unassign(self, ctx):
        self._act(ctx, None)

    def _operator_undo(self, ctx):
        """The 'name selected maps' operator's undo record for this
        annotator, if it acted after this panel's last action."""
        maps_field, annotator = self._maps_field(ctx), self._annotator(ctx)
        if not (maps_field and annotator):
            return None
        try:
            record = records.pending_undo(ctx.dataset, annotator, maps_field)
        except Exception:  # no execution store: nothing to offer
            return None
        if record and record.get("time", 0) > (_patch(ctx).last_action_time or 0):
            return record
        return None

    def undo(self, ctx):
        record = self._undo_record(ctx)
        external = self._operator_undo(ctx)
        if external and external["time"] > ((record or {}).get("time") or 0):
            try:
                done = records.undo_operator_naming(ctx.dataset, external, self._maps_field(ctx))
            except ValueError as e:
                self._say(ctx, f"Could not undo: {e}", error=True)
                return
            _patch(ctx).last_action_time = external["time"]  # taken: not offered again
            skipped = f", {done['skipped']} renamed since left as they are" if done["skipped"] else ""
            self._say(ctx, f"Undid the operator's naming ({done['restored']} map(s){skipped})")
            self.resync(ctx)
            return
        if not record:
            self._say(ctx, "Nothing to undo", error=True)
            return
        try:
            count = naming.undo(ctx.dataset, record, self._maps_field(ctx))
        except ValueError as e:
            self._say(ctx, f"Could not undo: {e}", error=True)
            return
        self._set_undo(ctx, None)
        self._say(ctx, f"Undid the last {record['kind']} ({count} map(s))")
        self.resync(ctx)

    def _remember(self, ctx, record):
        # this panel's one undo step; an operator's earlier naming is no
        # longer the last action
        record["time"] = time.time()
        self._set_undo(ctx, record)
        _patch(ctx).last_action_time = record["time"]

    def _manage(self, ctx, action, **kwargs):
        annotator = self._annotator(ctx)
        if not annotator:
            self._say(ctx, "Choose who is naming first", error=True)
            return
        try:
            count, record = naming.manage(ctx.dataset, action, annotator, self._maps_field(ctx), **kwargs)
        except (ValueError, KeyError, TypeError) as e:
            self._say(ctx, str(e), error=True)
            return
        self._remember(ctx, record)
        self._say(ctx, f"{action}: {count} map(s) changed")
        self.resync(ctx)

    def rename(self, ctx):
        concept = self._chosen_concept(ctx)
        if concept:
            self._manage(ctx, "rename", concept=concept, new_name=_patch(ctx).get("manage_row.manage_new_name") or "")

    def merge(self, ctx):
        # merge the chosen concept into the typed name (existing or new)
        concept = self._chosen_concept(ctx)
        if concept:
            self._manage(ctx, "merge", concepts=[concept], into=_patch(ctx).get("manage_row.manage_new_name") or "")

    def delete(self, ctx):
        concept = self._chosen_concept(ctx)
        if concept:
            self._manage(ctx, "delete", concept=concept)

    def _chosen_concept(self, ctx):
        concept = _patch(ctx).get("manage_row.manage_concept")
        if not (concept and self._annotator(ctx)):
            self._say(ctx, "Pick a concept first", error=True)
            return None
        return concept

    def show_concept_in_app(self, ctx):
        concept = self._chosen_concept(ctx)
        if concept:
            ctx.ops.set_view(naming.concept_view(ctx.dataset, self._annotator(ctx), concept, self._maps_field(ctx)))

    def save_concept_view(self, ctx):
        concept = self._chosen_concept(ctx)
        if not concept:
            return
        try:
            name = naming.save_concept_view(ctx.dataset, self._annotator(ctx), concept, self._maps_field(ctx))
        except ValueError as e:  # e.g. a name whose URL slug another view has
            self._say(ctx, f"Could not save the view: {e}", error=True)
            return
        self._say(ctx, f"Saved view '{name}'")

    def refresh(self, ctx):
        # the Refresh button: everything again
        self._refresh_annotators(ctx)
        self._refresh_layout(ctx, resend=True)
        self._refresh_gallery(ctx)

    def on_focus(self, ctx):
        # back in this tab: names and counts may have changed elsewhere. Not
        # the gallery: a selection may be on its way in another event
        self._refresh_layout(ctx)

    def resync(self, ctx):
        # after an action, or back in this tab: names and counts (positions if the maps changed)
        self._refresh_layout(ctx)
        self._refresh_gallery(ctx)

    # ---- rendering ---------------------------------------------------------

    def render(self, ctx):
        state = _patch(ctx)
        state.send()  # the event's patches go before the output they lead to
        panel = types.Object()
        maps_field = state.maps_field

        top = panel.h_stack("top", align_y="center", gap=2)
        top.view(
            "annotator",
            types.View(
                component="NamingAnnotator",
                annotator=state.annotator or "",
                annotators=state.annotators or [],
                on_change=self.set_annotator,
            ),
        )
        fields = maps_fields(ctx.dataset)
        if len(fields) > 1:
            choices = types.DropdownView()
            for f in fields:
                choices.add_choice(f, label=f)
            top.enum("maps_field", choices.values(), view=choices, label="Maps", on_change=self.set_maps_field)
        layouts = state.layouts or []
        if len(layouts) > 1:
            picker = types.DropdownView()
            for entry in layouts:
                picker.add_choice(entry["key"], label=entry["label"])
            top.enum("layout_key", picker.values(), view=picker, label="Layout", default=state.layout_key, on_change=self.set_layout)
        top.btn("refresh", label="Refresh", icon="refresh", on_click=self.refresh)
        top.btn("undo", label="Undo", icon="undo", on_click=self.undo, disabled=not (state.has_undo or self._operator_undo(ctx)))

        if state.message:
            view = types.Error if state.message_is_error else types.Notice
            panel.view("message_view", view(label=str(state.message)))

        if maps_field is None:
            panel.view("no_maps", types.Notice(label="No activation maps on this dataset yet: run 'compute activation maps' and 'compute map layout'."))
            return types.Property(panel, view=types.GridView(orientation="vertical"))

        stats = state.stats or {}
        if state.annotator and stats:
            panel.view(
                "progress",
                types.Notice(
                    label=f"{state.annotator}: {stats.get('named', 0)} of {stats.get('total', 0)} maps named, "
                    f"{stats.get('not_nameable', 0)} not nameable, {len(state.concepts or [])} concepts"
                ),
            )

        if state.layout_warning:
            panel.view("layout_warning", types.Warning(label=str(state.layout_warning)))
        if state.has_layout:
            panel.view(
                "scatter",
                types.View(component="NamingConceptScatter", on_select=self.select_maps, on_focus=self.on_focus),
            )
        else:
            panel.view("no_layout", types.Notice(label="No layout yet: run 'compute map layout'."))

        selection = state.selection_count or 0
        sel = panel.h_stack("selection_bar", align_y="center", gap=1)
        sel.view("selection_count", types.Notice(label=f"{selection} map(s) selected"))
        sel.btn("use_app_selection", label="Use App selection", on_click=self.use_app_selection)
        sel.btn("show_selection", label="Show in App", on_click=self.show_selection_in_app, disabled=not selection)
        sel.btn("clear_selection", label="Clear", on_click=self.clear_selection, disabled=not selection)

        if selection:
            # naming controls right under the selection, above the (long) gallery
            naming_row = panel.h_stack("naming_row", gap=1, align_y="center")
            naming_row.view(
                "name_bar",
                types.View(
                    component="NamingBar",
                    on_name=self.name_new,
                    namings=state.namings or 0,
                    selection_key=state.selection_version or 0,
                    selected=bool(selection),
                ),
            )
            concepts = state.concepts or []
            if concepts:
                choices = types.DropdownView()
                for row in concepts:
                    choices.add_choice(row["concept"], label=f"{row['concept']} ({row['maps']})")
                naming_row.enum("existing_concept", choices.values(), view=choices, label="Existing concept")
                naming_row.btn("name_existing", label="Assign", on_click=self.name_existing)
            naming_row.btn("not_nameable", label="Not nameable", on_click=self.mark_not_nameable)
            naming_row.btn("unassign", label="Unassign", on_click=self.unassign)

            if (state.pages or 1) > 1:
                pager = panel.h_stack("pager", gap=1, align_y="center")
                pager.btn("previous_page", label="Previous", on_click=self.previous_page, disabled=(state.page or 0) == 0)
                pager.view("page_label", types.Notice(label=f"page {(state.page or 0) + 1} of {state.pages}"))
                pager.btn("next_page", label="Next", on_click=self.next_page, disabled=(state.page or 0) >= (state.pages or 1) - 1)
            panel.view(
                "gallery",
                types.View(component="NamingMapGallery", items=state.gallery_items or [], on_drop=self.drop_map),
            )

        concepts = state.concepts or []
        if concepts:
            table = types.TableView()
            table.add_column("concept", label="Concept")
            table.add_column("maps", label="Maps")
            panel.list("concepts", types.Object(), view=table, label="Concepts")

            manage = panel.h_stack("manage_row", gap=1, align_y="center")
            choices = types.DropdownView()
            for row in concepts:
                choices.add_choice(row["concept"], label=row["concept"])
            manage.enum("manage_concept", choices.values(), view=choices, label="Concept")
            manage.str("manage_new_name", label="New name / merge into")
            manage.btn("rename", label="Rename", on_click=self.rename)
            manage.btn("merge", label="Merge into", on_click=self.merge)
            manage.btn("delete", label="Delete", on_click=self.delete)
            manage.btn("show_concept", label="Show in App", on_click=self.show_concept_in_app)
            manage.btn("save_concept_view", label="Save view", on_click=self.save_concept_view)

        return types.Property(panel, view=types.GridView(orientation="vertical", gap=2, padding=1))
