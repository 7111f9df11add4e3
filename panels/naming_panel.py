"""The naming panel: an annotator looks at the layout of all activation
maps, selects some (lasso in the panel, or selection/lasso in the App),
checks them in a gallery of heatmap thumbnails, and names them.

Rendering and event plumbing only; all work is done by
``fiftyone_plugin.concepts.naming`` and the concept store.
"""

import time

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_plugin.concepts import selection as app_selection

from fiftyone_plugin.concepts import naming
from fiftyone_plugin.maps.layouts import layout_options
from fiftyone_plugin.concepts.store import NOT_NAMEABLE, list_annotators, validate_annotator

from ..operators._common import app_selections, base_view, maps_fields

PER_PAGE = 24


class _OnePatch:
    """An event sets many state and data keys, and the App applies each
    patch as an operation of its own, re-rendering in between; this sends
    them as one state patch and one data patch."""

    def __init__(self, ctx):
        self.ops = ctx.ops
        self.state, self.data = {}, {}
        self.send_state, self.send_data = self.ops.patch_panel_state, self.ops.patch_panel_data
        self.ops.patch_panel_state = lambda d, panel_id=None: self.state.update(d)
        self.ops.patch_panel_data = lambda d, panel_id=None: self.data.update(d)

    def flush(self):
        self.ops.patch_panel_state, self.ops.patch_panel_data = self.send_state, self.send_data
        if self.state:
            self.send_state(self.state)
        if self.data:
            self.send_data(self.data)
        self.state, self.data = {}, {}


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
        # the batch lives on this request's ctx: the panel object is shared
        batch = ctx.naming_patch = _OnePatch(ctx)
        try:
            return super().execute(ctx)
        finally:
            batch.flush()  # if the event failed before rendering

    # ---- state helpers -------------------------------------------------

    def _maps_field(self, ctx):
        field = ctx.panel.state.maps_field
        if field:
            return field
        fields = maps_fields(ctx.dataset)
        return fields[0] if fields else None

    def _annotator(self, ctx):
        return ctx.panel.state.annotator or None

    def _selection(self, ctx):
        return list(ctx.panel.state.selection or [])

    def _set_selection(self, ctx, ids):
        ids = list(dict.fromkeys(ids))
        self._say(ctx, None)  # the count is in the selection bar; old news goes
        ctx.panel.state.selection = ids
        ctx.panel.state.selection_version = (ctx.panel.state.selection_version or 0) + 1
        # the scatter highlights these; one string, replaced whole
        ctx.panel.data.set("scatter.selection", "".join(ids))
        ctx.panel.state.page = 0
        self._refresh_gallery(ctx)

    def _say(self, ctx, text, error=False):
        ctx.panel.state.message = text
        ctx.panel.state.message_is_error = error

    # ---- data ------------------------------------------------------------

    def _refresh_layout(self, ctx, resend=False):
        """Re-read the maps' layout, names and counts. The positions (most of
        the payload) are sent only when the maps changed, or with ``resend``
        when the App may not hold them (panel data is not kept on reload)."""
        maps_field = self._maps_field(ctx)
        if maps_field is None:
            return
        if resend or not ctx.panel.state.layout_points_attribute:
            self._choose_layout(ctx)
        points, stats = naming.layout_and_progress(
            ctx.dataset, self._annotator(ctx), maps_field,
            # "point" when there is no layout: a legacy attribute or nothing
            points_attribute=ctx.panel.state.layout_points_attribute or "point",
        )
        version = (ctx.panel.state.layout_version or 0) + 1
        signature = naming.layout_signature(points)
        if resend or signature != ctx.panel.state.layout_signature:
            ctx.panel.data.set("scatter.layout", naming.layout_payload(points, version))
            ctx.panel.state.layout_signature = signature
        ctx.panel.data.set("scatter.names", naming.names_payload(points, version))
        # the gallery frames maps in the scatter's colours (same concept set)
        ctx.panel.state.concept_colors = {
            c: color for c, color in naming.concept_colors(points["concepts"]).items() if isinstance(c, str)
        }
        ctx.panel.state.layout_version = version
        ctx.panel.state.stats = {k: v for k, v in stats.items() if k != "concepts"}
        ctx.panel.state.concepts = [
            {"concept": c, "maps": n} for c, n in stats["concepts"].items()
        ]
        ctx.panel.state.has_layout = bool(points["ids"])
        # a concept renamed, merged or deleted (here or in another tab) leaves the pickers
        names = set(stats["concepts"])
        for key in ("manage_row.manage_concept", "naming_row.existing_concept"):
            if ctx.panel.state.get(key) and ctx.panel.state.get(key) not in names:
                ctx.panel.state.set(key, None)

    def _choose_layout(self, ctx):
        # which layout run the scatter draws: the picker's, else the newest
        # fresh one; a stale one is drawn with a warning
        entries, chosen, message = layout_options(ctx.dataset, maps_field=self._maps_field(ctx), brain_key=ctx.panel.state.layout_key or None)
        ctx.panel.state.layouts = [
            {"key": e["brain_key"], "label": f"{e['brain_key']} ({e['method']}{', stale' if e['stale'] else ''})"}
            for e in entries
        ]
        ctx.panel.state.layout_key = chosen["brain_key"] if chosen else None
        ctx.panel.state.layout_points_attribute = chosen["points_attribute"] if chosen else None
        ctx.panel.state.layout_warning = message

    def set_layout(self, ctx):
        ctx.panel.state.layout_key = ctx.params.get("value") or ctx.panel.state.get("top.layout_key")
        self._refresh_layout(ctx, resend=True)
        self._set_selection(ctx, [])

    def _refresh_annotators(self, ctx):
        # offered in the annotator field (it also takes a new name)
        maps_field = self._maps_field(ctx)
        ctx.panel.state.annotators = list_annotators(ctx.dataset, maps_field) if maps_field else []

    def _refresh_gallery(self, ctx):
        maps_field = self._maps_field(ctx)
        selection = self._selection(ctx)
        page = naming.gallery_page(
            ctx.dataset, selection, page=ctx.panel.state.page or 0, per_page=PER_PAGE, maps_field=maps_field,
            annotator=self._annotator(ctx),
            colors=ctx.panel.state.concept_colors or {},
        ) if maps_field and selection else {"items": [], "page": 0, "pages": 1}
        ctx.panel.state.page = page["page"]
        ctx.panel.state.pages = page["pages"]
        # thumbnails are small cached files served by the App; state holds URLs
        ctx.panel.state.gallery_items = page["items"]

    # ---- lifecycle and App events ---------------------------------------------

    def on_load(self, ctx):
        # the annotator is remembered by the browser (the annotator input
        # component keeps it in localStorage and sends it on load)
        maps_field = ctx.panel.state.maps_field = self._maps_field(ctx)
        self._refresh_annotators(ctx)
        self._refresh_layout(ctx, resend=True)
        # a selection kept in the panel's state (reload, workspace) is
        # highlighted again (panel data is not kept), minus maps since deleted
        kept = self._selection(ctx)
        self._set_selection(ctx, naming.existing_map_ids(ctx.dataset, kept, maps_field) if kept and maps_field else [])

    def on_change_dataset(self, ctx):
        ctx.panel.state.maps_field = None
        ctx.panel.state.layout_key = None
        ctx.panel.state.undo = None
        ctx.panel.state.selection = []
        self.on_load(ctx)

    def on_change_selected_labels(self, ctx):
        maps_field = self._maps_field(ctx)
        ids = [l["label_id"] for l in (ctx.selected_labels or []) if l.get("field") == maps_field]
        if ids:
            self._set_selection(ctx, ids)

    def on_change_selected(self, ctx):
        maps_field = self._maps_field(ctx)
        if maps_field and ctx.selected:
            found = [s for s in app_selections(ctx, maps_field) if s["source"] == "patches"]
            if found:
                self._set_selection(ctx, found[0]["ids"])

    def on_change_extended_selection(self, ctx):
        # the legacy extended selection (set by operators, older panels)
        selection = (ctx.extended_selection or {}).get("selection") or []
        maps_field = self._maps_field(ctx)
        if maps_field and selection:
            ids = naming.existing_map_ids(ctx.dataset, selection, maps_field)
            if ids:
                self._set_selection(ctx, ids)

    def on_change_view(self, ctx):
        # a lasso in the App's Embeddings panel over the maps' layout: the
        # App adds a stage on the lassoed map ids to its extended stages
        # and tells panels through this event. A lasso is taken once: a
        # later re-sync of the view (same lasso) leaves the panel's own
        # selection alone, and a lasso that is dropped changes nothing
        maps_field = self._maps_field(ctx)
        if not maps_field:
            return
        ids = app_selection.lassoed_map_ids(base_view(ctx), ctx.request_params.get("extended"), maps_field)
        if not ids:
            ctx.panel.state.lasso_digest = None
            return
        digest = app_selection.ids_digest(ids)
        if digest != ctx.panel.state.lasso_digest:
            ctx.panel.state.lasso_digest = digest
            self._set_selection(ctx, ids)

    # ---- panel events ----------------------------------------------------

    def set_annotator(self, ctx):
        value = (ctx.params.get("value") or "").strip()
        try:
            validate_annotator(value)
        except ValueError as e:
            self._say(ctx, str(e), error=True)
            return
        if value == ctx.panel.state.annotator:
            return
        ctx.panel.state.annotator = value
        ctx.panel.state.undo = None
        self._say(ctx, f"Naming as {value}")
        self.resync(ctx)

    def set_maps_field(self, ctx):
        ctx.panel.state.maps_field = ctx.params.get("value") or ctx.panel.state.get("top.maps_field")
        ctx.panel.state.layout_key = None  # the other field's layouts
        ctx.panel.state.undo = None  # it was about the other field's maps
        self._refresh_annotators(ctx)
        self._refresh_layout(ctx, resend=True)
        self._set_selection(ctx, [])

    def select_maps(self, ctx):
        # the scatter sends the whole new selection (lasso, click, legend)
        ids = [i for i in (ctx.params.get("ids") or []) if isinstance(i, str)]
        maps_field = self._maps_field(ctx)
        if ids and maps_field:
            # maps may have been deleted in another tab since the layout was sent
            ids = naming.existing_map_ids(ctx.dataset, ids, maps_field)
        self._set_selection(ctx, ids)

    def use_app_selection(self, ctx):
        maps_field = self._maps_field(ctx)
        found = app_selections(ctx, maps_field) if maps_field else []
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
        ctx.panel.state.page = (ctx.panel.state.page or 0) + 1
        self._refresh_gallery(ctx)

    def previous_page(self, ctx):
        ctx.panel.state.page = max(0, (ctx.panel.state.page or 0) - 1)
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
            record = naming.name_maps(ctx.dataset, ids, concept, annotator, maps_field)
        except ValueError as e:
            self._say(ctx, str(e), error=True)
            return
        self._remember(ctx, record)
        what = "unnamed" if concept is None else f"named '{naming.display_name(concept)}'"
        self._say(ctx, f"{len(ids)} map(s) {what}")
        ctx.panel.state.namings = (ctx.panel.state.namings or 0) + 1  # empties the name field
        self.resync(ctx)

    def name_new(self, ctx):
        # the naming bar sends what was typed (Enter or its button)
        self._act(ctx, ctx.params.get("concept") or "")

    def name_existing(self, ctx):
        concept = ctx.panel.state.get("naming_row.existing_concept")
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
            record = app_selection.pending_undo(ctx.dataset, annotator, maps_field)
        except Exception:  # no execution store: nothing to offer
            return None
        if record and record.get("time", 0) > (ctx.panel.state.last_action_time or 0):
            return record
        return None

    def undo(self, ctx):
        record = ctx.panel.state.undo
        external = self._operator_undo(ctx)
        if external and external["time"] > ((record or {}).get("time") or 0):
            try:
                done = app_selection.undo_operator_naming(ctx.dataset, external, self._maps_field(ctx))
            except ValueError as e:
                self._say(ctx, f"Could not undo: {e}", error=True)
                return
            ctx.panel.state.last_action_time = external["time"]  # taken: not offered again
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
        ctx.panel.state.undo = None
        self._say(ctx, f"Undid the last {record['kind']} ({count} map(s))")
        self.resync(ctx)

    def _remember(self, ctx, record):
        # this panel's one undo step; an operator's earlier naming is no
        # longer the last action
        record["time"] = time.time()
        ctx.panel.state.undo = record
        ctx.panel.state.last_action_time = record["time"]

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
            self._manage(ctx, "rename", concept=concept, new_name=ctx.panel.state.get("manage_row.manage_new_name") or "")

    def merge(self, ctx):
        # merge the chosen concept into the typed name (existing or new)
        concept = self._chosen_concept(ctx)
        if concept:
            self._manage(ctx, "merge", concepts=[concept], into=ctx.panel.state.get("manage_row.manage_new_name") or "")

    def delete(self, ctx):
        concept = self._chosen_concept(ctx)
        if concept:
            self._manage(ctx, "delete", concept=concept)

    def _chosen_concept(self, ctx):
        concept = ctx.panel.state.get("manage_row.manage_concept")
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
        batch = getattr(ctx, "naming_patch", None)
        if batch is not None:
            batch.flush()  # the event's patches go before the output they lead to
        panel = types.Object()
        state = ctx.panel.state
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
        top.btn("undo", label="Undo", icon="undo", on_click=self.undo, disabled=not (state.undo or self._operator_undo(ctx)))

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

        selection = state.selection or []
        sel = panel.h_stack("selection_bar", align_y="center", gap=1)
        sel.view("selection_count", types.Notice(label=f"{len(selection)} map(s) selected"))
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
