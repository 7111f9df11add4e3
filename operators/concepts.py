"""Operators over the concept store: name the selected maps, manage an
annotator's concepts, export and import."""

import base64
import json

import fiftyone.operators as foo
import fiftyone.operators.types as types

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts import NOT_NAMEABLE

from ._common import (
    annotator_input,
    concept_choice_input,
    map_ids_in_view,
    maps_field_input,
    output_summary,
    selected_map_ids,
)


def _config(name, label, description):
    return foo.OperatorConfig(name=name, label=label, description=description, dynamic=True)


class AssignConcept(foo.Operator):
    @property
    def config(self):
        return _config(
            "assign_concept",
            "Interactive naming: name selected maps",
            "Assign the selected maps (or all maps in the current view) to a concept",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is None:
            return types.Property(inputs)
        annotator_input(ctx, inputs, maps_field)

        selected = selected_map_ids(ctx, maps_field)
        scope = types.RadioGroup()
        if selected:
            scope.add_choice("selected", label=f"The {len(selected)} selected map(s)")
        scope.add_choice("view", label="All maps in the current view")
        inputs.enum("scope", scope.values(), default=scope.values()[0], view=scope, label="Maps")

        action = types.RadioGroup()
        action.add_choice("name", label="Name them")
        action.add_choice("not_nameable", label="Not nameable (no recognisable concept)")
        action.add_choice("clear", label="Clear their names")
        inputs.enum("action", action.values(), default="name", view=action, label="Action")
        if ctx.params.get("action", "name") == "name":
            inputs.str("concept", required=True, label="Concept", description="New or existing name (at most 100 characters)")
        return types.Property(inputs, view=types.View(label="Name maps"))

    def execute(self, ctx):
        maps_field = ctx.params["maps_field"]
        if ctx.params.get("scope", "selected") == "selected":
            ids = selected_map_ids(ctx, maps_field)
        else:
            ids = map_ids_in_view(ctx.view, maps_field)
        if not ids:
            raise ValueError("no maps selected")
        action = ctx.params.get("action", "name")
        concept = {"name": ctx.params.get("concept"), "not_nameable": NOT_NAMEABLE, "clear": None}[action]
        result = fpl.assign_concept(ctx.dataset, ids, concept, ctx.params["annotator"], maps_field=maps_field)
        ctx.ops.reload_dataset()
        return {"assigned": result["assigned"], "concept": concept or ""}

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        return types.Property(outputs)


class _ManageConcepts(foo.Operator):
    """Rename, merge and delete share their form (maps field, annotator,
    concept choice) and their execution (one store call, then reload)."""

    NAME = LABEL = DESCRIPTION = None

    @property
    def config(self):
        return _config(self.NAME, f"Interactive naming: {self.LABEL.lower()}", self.DESCRIPTION)

    def resolve_input(self, ctx):
        inputs = types.Object()
        maps_field = maps_field_input(ctx, inputs)
        if maps_field:
            annotator = annotator_input(ctx, inputs, maps_field)
            self.form(ctx, inputs, maps_field, annotator)
        return types.Property(inputs, view=types.View(label=self.LABEL))

    def execute(self, ctx):
        result = self.apply(ctx.dataset, ctx.params)
        ctx.ops.reload_dataset()
        return result


class RenameConcept(_ManageConcepts):
    NAME, LABEL, DESCRIPTION = "rename_concept", "Rename concept", "Rename one of an annotator's concepts"

    def form(self, ctx, inputs, maps_field, annotator):
        concept_choice_input(ctx, inputs, maps_field, annotator, "concept", "Concept")
        inputs.str("new_name", required=True, label="New name")

    def apply(self, dataset, p):
        n = fpl.rename_concept(dataset, p["annotator"], p["concept"], p["new_name"], maps_field=p["maps_field"])
        return {"renamed_maps": n}


class MergeConcepts(_ManageConcepts):
    NAME, LABEL, DESCRIPTION = "merge_concepts", "Merge concepts", "Join several of an annotator's concepts into one"

    def form(self, ctx, inputs, maps_field, annotator):
        concept_choice_input(ctx, inputs, maps_field, annotator, "concepts", "Concepts to merge", multiple=True)
        inputs.str("into", required=True, label="Merged name", description="New or existing")

    def apply(self, dataset, p):
        n = fpl.merge_concepts(dataset, p["annotator"], p["concepts"], p["into"], maps_field=p["maps_field"])
        return {"merged_maps": n}


class DeleteConcept(_ManageConcepts):
    NAME, LABEL, DESCRIPTION = "delete_concept", "Delete concept", "Unname all maps of one of an annotator's concepts"

    def form(self, ctx, inputs, maps_field, annotator):
        concept_choice_input(ctx, inputs, maps_field, annotator, "concept", "Concept")

    def apply(self, dataset, p):
        return {"unnamed_maps": fpl.delete_concept(dataset, p["annotator"], p["concept"], maps_field=p["maps_field"])}


class ExportConcepts(foo.Operator):
    @property
    def config(self):
        return _config("export_concepts", "Interactive naming: export concepts", "Download (or write) all concept names as JSON")

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
        return {"assignments": len(document["assignments"]), "path": path or ""}


class ImportConcepts(foo.Operator):
    @property
    def config(self):
        return _config("import_concepts", "Interactive naming: import concepts", "Apply concept names from an exported JSON file")

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
