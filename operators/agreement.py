"""Operator for inter-annotator agreement (thin wrapper over the SDK)."""

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_plugin.agreement.compute import compute_agreement, write_consensus
from fiftyone_plugin.agreement.results import aligned_alpha_note
from fiftyone_plugin.concepts.store import list_annotators

from ._common import maps_field_input, output_summary


def _number(value):
    # undefined statistics are NaN; forms and JSON want None
    return None if value is None or value != value else round(float(value), 4)


class ComputeAgreement(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="compute_agreement",
            label="Interactive naming: inter-annotator agreement",
            description="Label-invariant Krippendorff's alpha across annotators, and a consensus naming",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        maps_field = maps_field_input(ctx, inputs)
        if maps_field:
            known = list_annotators(ctx.dataset, maps_field=maps_field)
            inputs.list(
                "annotators",
                types.String(),
                label="Annotators",
                description="Empty = all: " + ", ".join(known),
                view=types.AutocompleteView(choices=[types.Choice(a, label=a) for a in known]),
            )
            inputs.str("consensus", label="Write consensus as annotator", description="Optional, e.g. consensus")
        return types.Property(inputs, view=types.View(label="Inter-annotator agreement"))

    def execute(self, ctx):
        p = ctx.params
        results = compute_agreement(
            ctx.dataset, annotators=p.get("annotators") or None, maps_field=p["maps_field"]
        )
        summary = {
            "annotators": ", ".join(results.annotators),
            "maps_judged_by_two_or_more": int(results.n_overlap),
            "pair_alpha": _number(results.pair_alpha),
            "aligned_alpha": _number(results.aligned_alpha),
            "nameable_alpha": _number(results.nameable_alpha),
            # the aligned alpha is cross-fitted: say so next to the figure
            "aligned_alpha_design": aligned_alpha_note(results),
            "undefined": "; ".join(f"{k}: {v}" for k, v in (results.reasons or {}).items()),
        }
        if p.get("consensus"):
            written = write_consensus(ctx.dataset, results, annotator=p["consensus"])
            summary["consensus_maps"] = int(written["named"])
            ctx.ops.reload_dataset()
        return summary

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, {k: v for k, v in (ctx.results or {}).items() if v is not None})
        return types.Property(outputs, view=types.View(label="Agreement"))
