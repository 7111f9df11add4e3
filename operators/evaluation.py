"""Operators that evaluate an annotator's concepts: explanations, typical
reasons per class, untrustworthy example types, concept <-> neuron
correspondence and the HTML report. Thin wrappers: the work is done by
``fiftyone_plugin.evaluation.explanations``, ``.reasons``, ``.untrustworthy``,
``.neurons`` and ``.report``; each returns its run's results object, sent
back to the App as plain JSON."""

import base64

import fiftyone as fo
import fiftyone.operators.types as types

from fiftyone_plugin.evaluation.explanations import compute_explanations
from fiftyone_plugin.evaluation.maptable import prediction_field_of
from fiftyone_plugin.evaluation.neurons import neuron_correspondence
from fiftyone_plugin.evaluation.reasons import summarize_concepts
from fiftyone_plugin.evaluation.report import render_report, write_report
from fiftyone_plugin.evaluation.sections import default_agreement_annotators
from fiftyone_plugin.evaluation.untrustworthy import untrustworthy_concepts
from fiftyone_plugin.evaluation.views import clear_saved_views, list_saved_views

from ._forms import RunOperator, annotators_choice, operator_config, rows_of


def gt_field_input(ctx, inputs, maps_field, required=False):
    """A dropdown of the Classification fields that can be ground truth."""
    schema = ctx.dataset.get_field_schema(embedded_doc_type=fo.Classification)
    prediction = prediction_field_of(ctx.dataset, maps_field) if maps_field else None
    names = [name for name in schema if name != prediction]
    if not names:
        inputs.view(
            "no_gt",
            types.Notice(label="No ground-truth Classification field: accuracies are left out"),
        )
        return None
    choices = types.DropdownView()
    for name in names:
        choices.add_choice(name, label=name)
    default = "ground_truth" if "ground_truth" in names else None
    inputs.enum(
        "gt_field",
        choices.values(),
        default=default,
        required=required,
        view=choices,
        label="Ground truth",
        description="A Classification field with the true labels",
    )
    return ctx.params.get("gt_field", default)


class ComputeExplanations(RunOperator):
    NAME = "compute_explanations"
    LABEL = "Explain predictions by concepts (interactive naming)"
    DESCRIPTION = "Per sample: its maps' concepts with their shares, coverage and whether every map is named"
    TITLE = "Explanations"

    def form(self, ctx, form, maps_field, annotator):
        inputs = form.inputs
        inputs.str("explanation_field", label="Explanation field", description=f"Default: explanation_{annotator}")
        coverage = types.RadioGroup()
        coverage.add_choice("positive", label="Share of the whole positive contribution")
        coverage.add_choice("maps", label="Share of what the significant maps explain")
        inputs.enum("coverage", coverage.values(), default="positive", view=coverage, label="Coverage")
        inputs.float("min_share", default=0.0, min=0.0, max=1.0, label="Ignore maps below this share for 'fully named'")

    def run(self, ctx, p):
        results = compute_explanations(
            self.target(ctx), p["annotator"], maps_field=p["maps_field"],
            explanation_field=p.get("explanation_field") or None, coverage=p.get("coverage", "positive"),
            min_share=p.get("min_share") or 0.0,
        )
        return {"run_key": results.key, **results.to_dict()}


SUMMARY_COLUMNS = [
    ("predicted_class", "Predicted class"),
    ("concept", "Concept"),
    ("n_with", "Samples"),
    ("frequency", "Frequency"),
    ("mean_share", "Mean share"),
    ("accuracy_with", "Accuracy with"),
    ("accuracy_without", "without"),
    ("view", "Saved view"),
]


class SummarizeConcepts(RunOperator):
    NAME = "summarize_concepts"
    LABEL = "Typical reasons per class (interactive naming)"
    DESCRIPTION = "Which concepts explain each predicted class, how often, and accuracy with and without them"
    TABLES = {"rows": (SUMMARY_COLUMNS, "Concepts per predicted class")}

    def form(self, ctx, form, maps_field, annotator):
        inputs = form.inputs
        gt_field_input(ctx, inputs, maps_field)
        inputs.int("min_count", default=1, min=1, label="Fewest samples per (class, concept)")
        inputs.bool("save_views", default=True, label="Save views 'class explained by concept'",
                    description="They replace the views of the previous run")
        inputs.int("max_views_per_class", default=5, min=0, label="Saved views per class at most")

    def run(self, ctx, p):
        results = summarize_concepts(
            self.target(ctx), p["annotator"], maps_field=p["maps_field"], gt_field=p.get("gt_field") or None,
            min_count=p.get("min_count", 1), save_views=p.get("save_views", True),
            max_views_per_class=p.get("max_views_per_class", 5),
        )
        return {"run_key": results.key, "num_pairs": len(results.rows), "num_saved_views": len(results.saved_views),
                "saved_views": results.saved_views, "rows": rows_of(results.rows)}


# what a reader needs to judge a type; the run results keep every statistic
UNTRUSTWORTHY_COLUMNS = {
    "error": [
        ("predicted_class", "Predicted class"), ("concept", "Concept"), ("n_with", "Samples with"),
        ("error_rate_with", "Error rate with"), ("error_rate_without", "without"),
        ("excess_errors", "Excess errors"), ("q_value", "q"), ("flagged", "Flagged"), ("view", "Saved view"),
    ],
    "confidence": [
        ("predicted_class", "Predicted class"), ("concept", "Concept"), ("n_with", "Samples with"),
        ("confidence_with", "Confidence with"), ("confidence_without", "without"),
        ("confidence_lost", "Confidence lost"), ("confidence_q", "q"), ("flagged", "Flagged"), ("view", "Saved view"),
    ],
}


class FindUntrustworthyConcepts(RunOperator):
    NAME = "untrustworthy_concepts"
    LABEL = "Untrustworthy example types (interactive naming)"
    DESCRIPTION = "Concepts whose presence goes with errors or low confidence, with views that show them"

    def form(self, ctx, form, maps_field, annotator):
        inputs = form.inputs
        gt_field = gt_field_input(ctx, inputs, maps_field)
        by = types.RadioGroup()
        if gt_field:
            by.add_choice("error", label="Errors (needs ground truth)")
        by.add_choice("confidence", label="Low confidence")
        inputs.enum("by", by.values(), default=by.values()[0], view=by, label="Rank by")
        inputs.int("min_support", default=5, min=1, label="Fewest samples with the concept")
        inputs.float("alpha", default=0.05, min=0.0001, max=1.0, label="Significance level (FDR)")
        inputs.bool("save_views", default=True, label="Save a view per flagged type",
                    description="They replace the views of the previous run")
        inputs.bool("open_top", default=True, label="Open the top type in the App")

    def run(self, ctx, p):
        results = untrustworthy_concepts(
            self.target(ctx), p["annotator"], p.get("gt_field") or None, maps_field=p["maps_field"],
            by=p.get("by") or None, min_support=p.get("min_support", 5), alpha=p.get("alpha", 0.05),
            save_views=p.get("save_views", True),
        )
        top_view = results.top_view
        if not ctx.delegated and top_view and p.get("open_top", True):
            # the view itself, not its name: the App's list of saved views
            # is not refreshed yet, and set_view(name=...) fails there with
            # "Saved view ... does not exist"
            ctx.ops.set_view(view=ctx.dataset.load_saved_view(top_view))
        return {"run_key": results.key, "ranked_by": results.config.by, "num_tested": results.num_tested,
                "num_flagged": results.num_flagged, "top_view": top_view, "saved_views": results.saved_views,
                "rows": rows_of(results.rows)}

    def tables(self, results):
        # the columns of the statistic the run ranked by
        return {"rows": (UNTRUSTWORTHY_COLUMNS[results.get("ranked_by", "error")], "(class, concept) pairs, flagged first")}


NEURON_COLUMNS = [
    ("concept", "Concept"),
    ("num_maps", "Maps"),
    ("num_channels", "Channels"),
    ("top_channel", "Top channel"),
    ("top_channel_share", "Top-channel share"),
    ("effective_channels", "Effective channels"),
]


class NeuronCorrespondence(RunOperator):
    NAME = "neuron_correspondence"
    LABEL = "Neurons vs concepts: one channel per concept? (interactive naming)"
    DESCRIPTION = "Does a concept correspond to an individual channel? Per concept, per channel, and mutual information"
    RELOAD = False  # writes no field
    TABLES = {"concepts": (NEURON_COLUMNS, "Per concept")}
    LABELS = {"nmi": "normalised mutual information", "ami": "adjusted mutual information"}

    def run(self, ctx, p):
        result = neuron_correspondence(self.target(ctx), p["annotator"], maps_field=p["maps_field"])
        names = ("nmi", "ami", "concept_purity", "channel_purity", "num_maps", "num_concepts", "num_channels")
        return {"run_key": result.key, **{name: getattr(result, name) for name in names},
                "concepts": rows_of(result.concept_rows)}


class WriteReport(RunOperator):
    NAME = "write_report"
    LABEL = "Write report (interactive naming)"
    # its sections are not listed: the App's operator search would find the
    # report for the words of the operators that compute them
    DESCRIPTION = "One self-contained HTML file of the study's findings, to share with people who don't run FiftyOne"
    RELOAD = False

    def form(self, ctx, form, maps_field, annotator):
        inputs = form.inputs
        gt_field_input(ctx, inputs, maps_field)
        default = default_agreement_annotators(ctx.dataset, maps_field)
        annotators_choice(form, maps_field, name="agreement_annotators", label="Annotators compared",
                          default=default, fewest=0,
                          description="Default: those who named at least half as many maps as the most prolific; "
                          "fewer than two leaves the comparison out")
        inputs.str("title", label="Title", description="Optional")
        inputs.str("path", label="Write to path",
                   description="Optional server-side .html path; empty = download in the browser")

    def run(self, ctx, p):
        kwargs = dict(gt_field=p.get("gt_field") or None, maps_field=p["maps_field"], title=p.get("title") or None,
                      agreement_annotators=p.get("agreement_annotators"))
        path = p.get("path") or None
        if path is not None:
            result = write_report(self.target(ctx), p["annotator"], path, **kwargs)
            return {"path": result.path, "bytes": result.bytes, **_sections(result.sections)}
        if ctx.delegated:
            raise ValueError("a delegated report needs a server-side path")
        document, sections = render_report(self.target(ctx), p["annotator"], **kwargs)
        data = document.encode("utf-8")
        ctx.ops.browser_download(
            "data:text/html;base64," + base64.b64encode(data).decode("ascii"),
            filename=f"{ctx.dataset.name}-{p['annotator']}-report.html",
        )
        return {"bytes": len(data), **_sections(sections)}


def _sections(sections):
    return {f"section_{name}": status for name, status in sections.items()}


class OpenSavedView(RunOperator):
    """The buttons of the outputs call it: sets the App's view to one of
    the plugin's saved views."""

    NAME = "open_saved_view"
    LABEL = "Open a saved view (interactive naming)"
    DESCRIPTION = "Show one of the views the evaluation runs saved"
    TARGET, MAPS, ANNOTATOR, DELEGABLE, RELOAD = None, False, False, False, False

    @property
    def config(self):
        return operator_config(self.NAME, self.LABEL, self.DESCRIPTION, delegable=False, unlisted=True)

    def form(self, ctx, form, maps_field, annotator):
        name = ctx.params.get("name")
        form.inputs.str("name", required=True, label="Saved view")
        if name and name not in ctx.dataset.list_saved_views():
            form.error("missing", f"No saved view {name!r} (deleted since?): rerun the evaluation to save it again")

    def run(self, ctx, p):
        # the view itself: the App may not list a newly saved name yet
        ctx.ops.set_view(view=ctx.dataset.load_saved_view(p["name"]))
        return {"opened": p["name"]}


class ClearSavedViews(RunOperator):
    NAME = "clear_saved_views"
    LABEL = "Clear saved views (interactive naming)"
    DESCRIPTION = "Delete the views the evaluation runs saved (their names start with 'naming: '); yours are kept"
    TARGET, MAPS, ANNOTATOR, DELEGABLE = None, False, False, False
    TITLE = "Saved views cleared"

    def form(self, ctx, form, maps_field, annotator):
        names = list_saved_views(ctx.dataset)
        if not names:
            form.error("none", "There are no saved views of this plugin")
        else:
            form.inputs.view("count", types.Notice(label=f"{len(names)} saved view(s) will be deleted"))

    def run(self, ctx, p):
        deleted = clear_saved_views(ctx.dataset)
        return {"num_deleted": len(deleted)}
