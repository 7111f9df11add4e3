"""Operators for naming assistance, transfer and the causal check. Thin
wrappers: the work is done by ``fiftyone_plugin.assistance.suggestions``, ``.accept``,
``.transfer`` and ``.deletion``."""

import fiftyone.operators.types as types

from fiftyone_plugin.concepts.store import NOT_NAMEABLE, list_concepts
from fiftyone_plugin.evaluation.deletion import concept_deletion
from fiftyone_plugin.runs import jsonable
from fiftyone_plugin.assistance.accept import accept_suggestions, undo_accepted_suggestions
from fiftyone_plugin.assistance.suggestions import load_suggestions, suggest_concepts
from fiftyone_plugin.assistance.transfer import transfer_concepts

from ._forms import RunOperator, rows_of
from .compute import load_model_from_params, model_source_input
from .evaluation import gt_field_input

SUGGESTION_COLUMNS = [("map_id", "Map"), ("concept", "Suggested concept"), ("confidence", "Confidence")]


class SuggestConcepts(RunOperator):
    NAME = "suggest_concepts"
    LABEL = "Suggest concepts for unnamed maps (interactive naming)"
    DESCRIPTION = "Learn from the maps you named which of your concepts each unnamed map most likely shows"
    TARGET, RELOAD = "view", False
    TABLES = {"rows": (SUGGESTION_COLUMNS, "Most confident suggestions")}

    def run(self, ctx, p):
        results = suggest_concepts(self.target(ctx), p["annotator"], maps_field=p["maps_field"])
        df = results.table
        counts = {f"at_least_{t}": int((df["confidence"] >= t).sum()) for t in (0.5, 0.8, 0.9, 0.95)}
        return {"run_key": results.key, "num_suggestions": len(df), "num_taught": results.num_taught, **counts,
                "rows": rows_of(jsonable(df[["map_id", "concept", "confidence"]]))}


class AcceptSuggestions(RunOperator):
    NAME = "accept_suggestions"
    LABEL = "Accept suggestions above a confidence (interactive naming)"
    DESCRIPTION = "Name the unnamed maps by the stored suggestions whose confidence is at least the threshold"
    TARGET, DELEGABLE = None, False
    TITLE = "Suggestions accepted"

    def form(self, ctx, form, maps_field, annotator):
        form.inputs.float("min_confidence", default=0.9, min=0.0, max=1.0, label="Accept at or above this confidence")
        try:
            rows = load_suggestions(ctx.dataset, annotator).suggestions
        except ValueError:
            form.error("none", "No suggestions for this annotator: run 'suggest concepts' first")
            return
        t = ctx.params.get("min_confidence", 0.9) or 0.0
        n = sum(r["confidence"] >= t for r in rows)
        form.inputs.view("count", types.Notice(label=f"{n} of {len(rows)} suggestions would be accepted"))

    def run(self, ctx, p):
        # the stored suggestions; the run it registers is what undo reverts
        results = accept_suggestions(ctx.dataset, p["annotator"], min_confidence=p.get("min_confidence", 0.9),
                                     maps_field=p["maps_field"])
        return {"accepted": results.accepted, "skipped": len(results.skipped)}


class UndoSuggestions(RunOperator):
    NAME = "undo_suggestions"
    LABEL = "Undo the last accepted suggestions (interactive naming)"
    DESCRIPTION = "Unname the maps named by the last 'accept suggestions' (names changed by hand since are kept)"
    TARGET, DELEGABLE = None, False
    TITLE = "Undone"

    def run(self, ctx, p):
        return {"reverted": undo_accepted_suggestions(ctx.dataset, p["annotator"])}


class TransferConcepts(RunOperator):
    NAME = "transfer_concepts"
    LABEL = "Transfer concepts to unnamed maps (interactive naming)"
    DESCRIPTION = "Name the maps an annotator did not name, as the machine annotator '<annotator>__auto'"
    TARGET = "view"
    TITLE = "Concepts transferred"

    def form(self, ctx, form, maps_field, annotator):
        form.inputs.float("min_confidence", default=0.8, min=0.0, max=1.0, label="Name only at or above this confidence",
                          description="Below it a map gets the outcome 'not sure' and no name")

    def run(self, ctx, p):
        results = transfer_concepts(self.target(ctx), p["annotator"], source=ctx.dataset,
                                    maps_field=p["maps_field"], min_confidence=p.get("min_confidence", 0.8))
        return {"run_key": results.key, "machine_annotator": results.machine_annotator,
                "named": results.named, "not_sure": results.not_sure}


DELETION_COLUMNS = [
    ("concept", "Concept"),
    ("predicted_class", "Predicted class"),
    ("n", "Samples"),
    ("mean_drop", "Mean drop"),
    ("mean_control_drop", "Control drop"),
    ("wilcoxon_p", "p (Wilcoxon)"),
    ("flipped", "Flipped"),
    ("control_flipped", "Control flipped"),
    ("errors", "Errors"),
    ("fixed", "Fixed"),
    ("control_fixed", "Control fixed"),
]


class ConceptDeletion(RunOperator):
    NAME = "concept_deletion"
    LABEL = "Does the model use a concept? Deletion test (interactive naming)"
    DESCRIPTION = "Occlude each concept's map regions in the image, rerun the model, compare with a random-place control"
    TARGET, PREFER_DELEGATED, RELOAD = "view", True, False
    TABLES = {"rows": (DELETION_COLUMNS, "Deletion vs control per concept and class")}

    def form(self, ctx, form, maps_field, annotator):
        inputs = form.inputs
        model_source_input(ctx, inputs)
        try:
            concepts = list_concepts(ctx.dataset, annotator, maps_field=maps_field)
        except ValueError:
            concepts = {}
        choices = [types.Choice(c, label=f"{c} ({n})") for c, n in concepts.items() if c != NOT_NAMEABLE]
        inputs.list("concepts", types.String(), required=False, label="Concepts (empty: all)",
                    view=types.AutocompleteView(choices=choices))
        gt_field_input(ctx, inputs, maps_field)
        fills = types.RadioGroup()
        fills.add_choice("mean", label="The image's mean colour")
        fills.add_choice("blur", label="A strong blur")
        inputs.enum("fill", fills.values(), default="mean", view=fills, label="Fill")
        inputs.int("seed", default=0, label="Seed of the control places")
        inputs.bool("curves", default=False, label="Also deletion/insertion curves and completeness")

    def run(self, ctx, p):
        model, kwargs = load_model_from_params(p)
        results = concept_deletion(
            self.target(ctx), p["annotator"], model, concepts=p.get("concepts") or None,
            maps_field=p["maps_field"], gt_field=p.get("gt_field") or None, fill=p.get("fill", "mean"),
            seed=p.get("seed", 0), curves=bool(p.get("curves")), **kwargs,
        )
        sentences = [results.sentence(c) for c in results.fixes["concept"]] if not results.fixes.empty else []
        return {"run_key": results.run_key, "num_deletions": len(results.per_sample),
                "sentences": sentences, "rows": rows_of(jsonable(results.by_concept_class))}

    def resolve_output(self, ctx):
        prop = super().resolve_output(ctx)
        if (ctx.results or {}).get("sentences"):
            prop.type.list("sentences", types.String(), label="Errors fixed")
        return prop
