"""Operators over the concept store: name the selected maps, manage an
annotator's concepts, export and import."""

import base64
import json

import fiftyone.operators as foo
import fiftyone.operators.types as types

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts.selection import (
    SOURCE_LABELS,
    check_unchanged,
    parse_selection_key,
    request_selections,
    selection_key,
)
from fiftyone_plugin.concepts.records import record_undo
from fiftyone_plugin.concepts.store import NOT_NAMEABLE, existing_map_ids

from ._common import (
    annotator_input,
    concept_choice_input,
    map_ids_in_view,
    maps_field_input,
    output_summary,
)
from ._forms import RunOperator, operator_config, tidy


def _config(name, label, description):
    return foo.OperatorConfig(name=name, label=label, description=description, dynamic=True)


class AssignConcept(foo.Operator):
    """Names an explicit set of maps: the form resolves which maps each
    selection source (grid, patches, Embeddings lasso, the whole view)
    holds and shows their number; the chosen option carries that set as
    ``"<source>:<count>:<digest>"`` (the App sends a form's choices, not its
    hidden fields); execution names exactly the maps the source selects if
    they are that set, and refuses an empty or changed set (e.g. the App
    re-synced and dropped a lasso). Callers without a form pass
    ``scope="ids"`` and ``map_ids``."""

    @property
    def config(self):
        return _config(
            "assign_concept",
            "Name selected maps (interactive naming)",
            "Assign the maps selected in the App (grid, patches, Embeddings lasso) or, explicitly, all maps in the view to a concept",
        )

    @staticmethod
    def _sources(ctx, maps_field):
        """``{source: (label, ids)}`` the App selects now, ``view`` included."""
        found = {s["source"]: (s["label"], s["ids"]) for s in request_selections(ctx, maps_field)}
        found["view"] = (SOURCE_LABELS["view"], map_ids_in_view(ctx.view, maps_field))
        return found

    def resolve_input(self, ctx):
        inputs = types.Object()
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is None:
            return types.Property(inputs)
        annotator_input(ctx, inputs, maps_field)

        sources = self._sources(ctx, maps_field)
        scope = types.RadioGroup()
        offered = []
        for source, (label, ids) in sources.items():
            if source == "view":
                text = f"All {len(ids)} map(s) in the current view"
            else:
                text = f"The {len(ids)} map(s) {label}"
            scope.add_choice(selection_key(source, ids), label=text)
            offered.append(selection_key(source, ids))
        chosen = ctx.params.get("scope")
        changed = None
        if chosen == "ids":
            # a caller without a form (SDK, another operator) names given maps
            given = ctx.params.get("map_ids") or []
            scope.add_choice("ids", label=f"The {len(set(given))} map(s) {SOURCE_LABELS['ids']}")
            inputs.list("map_ids", types.String(), view=types.HiddenView())
        elif chosen and chosen not in offered:
            # chosen when the form opened, different now (e.g. the App
            # re-synced and dropped a lasso): kept as chosen, so that
            # execution refuses it with a clear message, not a form error
            try:
                source, count, _ = parse_selection_key(chosen)
            except ValueError:
                source, count = None, 0
            if source in SOURCE_LABELS:
                now = len(sources.get(source, (None, []))[1])
                scope.add_choice(chosen, label=f"The {count} map(s) {SOURCE_LABELS[source]} (changed: {now} now)")
                changed = (count, now)
        selections = [k for k in offered if not k.startswith("view:")]
        # the whole view is never the default: it must be chosen, count in sight
        default = selections[0] if selections else None
        inputs.enum(
            "scope", scope.values(), default=default, required=True, view=scope, label="Maps to name",
            description=None if selections else "Nothing is selected in the App (grid, patches, or a lasso in the Embeddings panel)",
        )
        if changed:
            inputs.view(
                "selection_changed",
                types.Warning(
                    label=f"The selection changed since this form opened: {changed[0]} map(s) then, "
                    f"{changed[1]} now. Close and reopen the form to name the new selection."
                ),
            )

        action = types.RadioGroup()
        action.add_choice("name", label="Name them")
        action.add_choice("not_nameable", label="Not nameable (no recognisable concept)")
        action.add_choice("clear", label="Clear their names")
        inputs.enum("action", action.values(), default="name", view=action, label="Action")
        if ctx.params.get("action", "name") == "name":
            inputs.str("concept", required=True, label="Concept", description="New or existing name (at most 100 characters)")
        return types.Property(inputs, view=types.View(label="Name maps"))

    def execute(self, ctx):
        p = ctx.params
        maps_field = p["maps_field"]
        scope = p.get("scope")
        if scope == "ids":
            ids = existing_map_ids(ctx.dataset, p.get("map_ids") or [], maps_field)
            if not ids or len(ids) != len(set(p.get("map_ids") or [])):
                raise ValueError("map_ids must name existing maps of the maps field (nothing was named)")
            label = SOURCE_LABELS["ids"]
        else:
            source, _, _ = parse_selection_key(scope)
            label, current = self._sources(ctx, maps_field).get(source, (SOURCE_LABELS.get(source, source), []))
            ids = check_unchanged(scope, current, label)
        action = p.get("action", "name")
        concept = {"name": p.get("concept"), "not_nameable": NOT_NAMEABLE, "clear": None}[action]
        result = fpl.assign_concept(ctx.dataset, ids, concept, p["annotator"], maps_field=maps_field)
        # the naming panel offers to undo it
        record_undo(
            ctx.dataset,
            {"kind": "assign", "annotator": p["annotator"], "previous": result["previous"], "concept": concept},
            maps_field,
        )
        ctx.ops.reload_dataset()
        return tidy({"assigned": result["assigned"], "concept": concept, "maps": f"{len(ids)} {label}"})

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        return types.Property(outputs)


class _ManageConcepts(RunOperator):
    """Rename, merge and delete share their form (maps field, a dropdown of
    the annotators, concept choice) and their execution (one store call,
    then reload): a :class:`RunOperator` on the dataset."""

    TARGET, DELEGABLE = None, False

    @property
    def config(self):
        return operator_config(self.NAME, f"{self.LABEL} (interactive naming)", self.DESCRIPTION, delegable=False)

    def form(self, ctx, form, maps_field, annotator):
        self.fields(ctx, form.inputs, maps_field, annotator)

    def run(self, ctx, p):
        return self.apply(ctx.dataset, p)


class RenameConcept(_ManageConcepts):
    NAME, LABEL, DESCRIPTION = "rename_concept", "Rename concept", "Rename one of an annotator's concepts"

    def fields(self, ctx, inputs, maps_field, annotator):
        concept_choice_input(ctx, inputs, maps_field, annotator, "concept", "Concept")
        inputs.str("new_name", required=True, label="New name")

    def apply(self, dataset, p):
        n = fpl.rename_concept(dataset, p["annotator"], p["concept"], p["new_name"], maps_field=p["maps_field"])
        return {"renamed_maps": n}


class MergeConcepts(_ManageConcepts):
    NAME, LABEL, DESCRIPTION = "merge_concepts", "Merge concepts", "Join several of an annotator's concepts into one"

    def fields(self, ctx, inputs, maps_field, annotator):
        concept_choice_input(ctx, inputs, maps_field, annotator, "concepts", "Concepts to merge", multiple=True)
        inputs.str("into", required=True, label="Merged name", description="New or existing")

    def apply(self, dataset, p):
        n = fpl.merge_concepts(dataset, p["annotator"], p["concepts"], p["into"], maps_field=p["maps_field"])
        return {"merged_maps": n}


class DeleteConcept(_ManageConcepts):
    NAME, LABEL, DESCRIPTION = "delete_concept", "Delete concept", "Unname all maps of one of an annotator's concepts"

    def fields(self, ctx, inputs, maps_field, annotator):
        concept_choice_input(ctx, inputs, maps_field, annotator, "concept", "Concept")

    def apply(self, dataset, p):
        return {"unnamed_maps": fpl.delete_concept(dataset, p["annotator"], p["concept"], maps_field=p["maps_field"])}


class ExportConcepts(foo.Operator):
    @property
    def config(self):
        return _config("export_concepts", "Export concepts (interactive naming)", "Download (or write) all concept names as JSON")

    def resolve_input(self, ctx):
        inputs = types.Object()
        maps_field_input(ctx, inputs)
        inputs.str("path", label="Write to path", description="Optional server-side path; empty = download in the browser")
        return types.Property(inputs, view=types.View(label="Export concepts"))

    def execute(self, ctx):
        path = ctx.params.get("path") or None
        document = fpl.export_concepts(ctx.dataset, path, maps_field=ctx.params["maps_field"])
        if path is None:
            payload = base64.b64encode(json.dumps(document, ensure_ascii=False).encode()).decode()
            ctx.ops.browser_download(
                f"data:application/json;base64,{payload}", filename=f"{ctx.dataset.name}-concepts.json"
            )
        return tidy({"assignments": len(document["assignments"]), "path": path})


class ImportConcepts(foo.Operator):
    @property
    def config(self):
        return _config("import_concepts", "Import concepts (interactive naming)", "Apply concept names from an exported JSON file")

    def resolve_input(self, ctx):
        inputs = types.Object()
        maps_field_input(ctx, inputs)
        mode = types.TabsView()
        mode.add_choice("UPLOAD", label="Upload")
        mode.add_choice("PATH", label="Server path")
        inputs.enum("mode", mode.values(), default="UPLOAD", view=mode)
        if ctx.params.get("mode", "UPLOAD") == "UPLOAD":
            inputs.obj("file", required=True, view=types.FileView(label="Concepts JSON", types=".json"))
        else:
            inputs.str("path", required=True, label="Path to the JSON file")
        return types.Property(inputs, view=types.View(label="Import concepts"))

    def execute(self, ctx):
        if ctx.params.get("mode", "UPLOAD") == "UPLOAD":
            upload = ctx.params["file"]
            content = upload.get("content") or upload.get("contents") or ""
            if content.startswith("data:"):
                content = content.split(",", 1)[1]
            try:
                source = json.loads(base64.b64decode(content))
            except (ValueError, TypeError) as e:
                raise ValueError(f"the uploaded file is not JSON: {e}") from None
        else:
            source = ctx.params["path"]
        report = fpl.import_concepts(ctx.dataset, source, maps_field=ctx.params["maps_field"])
        ctx.ops.reload_dataset()
        return {
            "assigned": report["assigned"],
            "unplaced": len(report["unplaced"]),
            "invalid": len(report["invalid"]),
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        return types.Property(outputs)
