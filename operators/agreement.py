"""Operator for inter-annotator agreement (thin wrapper over the SDK)."""

from fiftyone_plugin.agreement.compute import compute_agreement, write_consensus
from fiftyone_plugin.agreement.results import aligned_alpha_note

from ._forms import RunOperator, annotators_choice


class ComputeAgreement(RunOperator):
    NAME = "compute_agreement"
    LABEL = "Inter-annotator agreement (interactive naming)"
    DESCRIPTION = "Label-invariant Krippendorff's alpha across annotators, and a consensus naming"
    TARGET, ANNOTATOR, DELEGABLE = None, False, False
    LABELS = {"maps_judged_by_two_or_more": "maps judged by two or more"}

    def form(self, ctx, form, maps_field, annotator):
        chosen = annotators_choice(form, maps_field, fewest=2, description="Empty = all of them")
        if chosen is not None:
            # a new annotator: free text
            form.inputs.str("consensus", label="Write consensus as annotator", description="Optional, e.g. consensus")

    def run(self, ctx, p):
        results = compute_agreement(ctx.dataset, annotators=p.get("annotators") or None, maps_field=p["maps_field"])
        summary = {
            "annotators": ", ".join(results.annotators),
            "maps_judged_by_two_or_more": int(results.n_overlap),
            "pair_alpha": results.pair_alpha,
            "aligned_alpha": results.aligned_alpha,
            "nameable_alpha": results.nameable_alpha,
            # the aligned alpha is cross-fitted: say so next to the figure
            "aligned_alpha_design": aligned_alpha_note(results),
            "undefined": "; ".join(f"{k}: {v}" for k, v in (results.reasons or {}).items()),
        }
        if p.get("consensus"):
            written = write_consensus(ctx.dataset, results, annotator=p["consensus"])
            summary["consensus_maps"] = int(written["named"])
        return summary
