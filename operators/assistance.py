"""Operators for naming assistance, transfer and the causal check. Thin
wrappers: the work is done by ``fiftyone_plugin.assistance.suggestions``, ``.accept``,
``.transfer`` and ``.deletion``."""

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_plugin.concepts.store import NOT_NAMEABLE, list_concepts
from fiftyone_plugin.evaluation.deletion import concept_deletion
from fiftyone_plugin.runs import jsonable
from fiftyone_plugin.assistance.accept import accept_suggestions, undo_accepted_suggestions
from fiftyone_plugin.assistance.suggestions import load_suggestions, suggest_concepts
from fiftyone_plugin.assistance.transfer import transfer_concepts

from ._common import annotator_input, maps_field_input, output_summary
from .compute import load_model_from_params, model_source_input
from .evaluation import _gt_field_input, _rounded, _table_output

def _config(name, label, description, delegated=True, prefer_delegated=False):
    return foo.OperatorConfig(
        name=name,
        label=label,
        description=description,
        dynamic=True,
        allow_immediate_execution=True,
        allow_delegated_execution=delegated,
        default_choice_to_delegated=prefer_delegated,
    )


class SuggestConcepts(foo.Operator):
    @property
    def config(self):
        return _config(
            "suggest_concepts",
            "Interactive naming: suggest concepts for unnamed maps",
            "Learn from the maps you named which of your concepts each unnamed map most likely shows",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        ctx.target_view()
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is None:
            return types.Property(inputs)
        annotator_input(ctx, inputs, maps_field)
        return types.Property(inputs, view=types.View(label="Suggest concepts"))

    def execute(self, ctx):
        p = ctx.params
        results = suggest_concepts(ctx.target_view(), p["annotator"], maps_field=p["maps_field"])
        df = results.table
        counts = {f"at_least_{t}": int((df["confidence"] >= t).sum()) for t in (0.5, 0.8, 0.9, 0.95)}
        return {"run_key": results.key, "num_suggestions": len(df),
                "num_taught": results.num_taught, **counts,
                "rows": _rounded(jsonable(df[["map_id", "concept", "confidence"]]))}

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        _table_output(outputs, "rows", [("map_id", "Map"), ("concept", "Suggested concept"),
                                        ("confidence", "Confidence")], "Most confident suggestions")
        return types.Property(outputs, view=types.View(label="Suggestions"))


class AcceptSuggestions(foo.Operator):
    @property
    def config(self):
        return _config(
            "accept_suggestions",
            "Interactive naming: accept suggestions above a confidence",
            "Name the unnamed maps by the stored suggestions whose confidence is at least the threshold",
            delegated=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is None:
            return types.Property(inputs)
        annotator = annotator_input(ctx, inputs, maps_field)
        inputs.float("min_confidence", default=0.9, min=0.0, max=1.0, label="Accept at or above this confidence")
        try:
            rows = load_suggestions(ctx.dataset, annotator).suggestions if annotator else None
        except ValueError:
            rows = None
            inputs.view("none", types.Warning(label="No suggestions for this annotator: run 'suggest concepts' first"))
        if rows is not None:
            t = ctx.params.get("min_confidence", 0.9) or 0.0
            n = sum(r["confidence"] >= t for r in rows)
            inputs.view("count", types.Notice(label=f"{n} of {len(rows)} suggestions would be accepted"))
        return types.Property(inputs, view=types.View(label="Accept suggestions"))

    def execute(self, ctx):
        p = ctx.params
        # the stored suggestions; the run it registers is what undo reverts
        results = accept_suggestions(ctx.dataset, p["annotator"], min_confidence=p.get("min_confidence", 0.9),
                                     maps_field=p["maps_field"])
        ctx.ops.reload_dataset()
        return {"accepted": results.accepted, "skipped": len(results.skipped)}

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        return types.Property(outputs, view=types.View(label="Suggestions accepted"))


class UndoSuggestions(foo.Operator):
    @property
    def config(self):
        return _config(
            "undo_suggestions",
            "Interactive naming: undo the last accepted suggestions",
            "Unname the maps named by the last 'accept suggestions' (names changed by hand since are kept)",
            delegated=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is None:
            return types.Property(inputs)
        annotator_input(ctx, inputs, maps_field)
        return types.Property(inputs, view=types.View(label="Undo accepted suggestions"))

    def execute(self, ctx):
        reverted = undo_accepted_suggestions(ctx.dataset, ctx.params["annotator"])
        ctx.ops.reload_dataset()
        return {"reverted": reverted}

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        return types.Property(outputs, view=types.View(label="Undone"))


class TransferConcepts(foo.Operator):
    @property
    def config(self):
        return _config(
            "transfer_concepts",
            "Interactive naming: transfer concepts to unnamed maps",
            "Name the maps an annotator did not name, as the machine annotator '<annotator>__auto'",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        ctx.target_view()
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is None:
            return types.Property(inputs)
        annotator_input(ctx, inputs, maps_field)
        inputs.float("min_confidence", default=0.8, min=0.0, max=1.0, label="Name only at or above this confidence",
                     description="Below it a map gets the outcome 'not sure' and no name")
        return types.Property(inputs, view=types.View(label="Transfer concepts"))

    def execute(self, ctx):
        p = ctx.params
        results = transfer_concepts(ctx.target_view(), p["annotator"], source=ctx.dataset,
                                    maps_field=p["maps_field"], min_confidence=p.get("min_confidence", 0.8))
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        return {"run_key": results.key, "machine_annotator": results.machine_annotator,
                "named": results.named, "not_sure": results.not_sure}

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        return types.Property(outputs, view=types.View(label="Concepts transferred"))


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


def _concepts_input(ctx, inputs, maps_field, annotator):
    """An optional multi-choice of the annotator's concepts (empty: all)."""
    try:
        concepts = list_concepts(ctx.dataset, annotator, maps_field=maps_field) if annotator else {}
    except ValueError:
        concepts = {}
    choices = [types.Choice(c, label=f"{c} ({n})") for c, n in concepts.items() if c != NOT_NAMEABLE]
    inputs.list("concepts", types.String(), required=False, label="Concepts (empty: all)",
                view=types.AutocompleteView(choices=choices))


class ConceptDeletion(foo.Operator):
    @property
    def config(self):
        return _config(
            "concept_deletion",
            "Interactive naming: does the model use a concept? (deletion test)",
            "Occlude each concept's map regions in the image, rerun the model, compare with a random-place control",
            prefer_delegated=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        ctx.target_view()
        model_source_input(ctx, inputs)
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is None:
            return types.Property(inputs)
        annotator = annotator_input(ctx, inputs, maps_field)
        _concepts_input(ctx, inputs, maps_field, annotator)
        _gt_field_input(ctx, inputs, maps_field)
        fills = types.RadioGroup()
        fills.add_choice("mean", label="The image's mean colour")
        fills.add_choice("blur", label="A strong blur")
        inputs.enum("fill", fills.values(), default="mean", view=fills, label="Fill")
        inputs.int("seed", default=0, label="Seed of the control places")
        inputs.bool("curves", default=False, label="Also deletion/insertion curves and completeness")
        return types.Property(inputs, view=types.View(label="Concept deletion"))

    def execute(self, ctx):
        p = ctx.params
        model, kwargs = load_model_from_params(p)
        results = concept_deletion(
            ctx.target_view(), p["annotator"], model, concepts=p.get("concepts") or None,
            maps_field=p["maps_field"], gt_field=p.get("gt_field") or None, fill=p.get("fill", "mean"),
            seed=p.get("seed", 0), curves=bool(p.get("curves")), **kwargs,
        )
        sentences = [results.sentence(c) for c in results.fixes["concept"]] if not results.fixes.empty else []
        return {"run_key": results.run_key, "num_deletions": len(results.per_sample),
                "sentences": sentences, "rows": _rounded(jsonable(results.by_concept_class))}

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        outputs.list("sentences", types.String(), label="Errors fixed")
        _table_output(outputs, "rows", DELETION_COLUMNS, "Deletion vs control per concept and class")
        return types.Property(outputs, view=types.View(label="Concept deletion"))
