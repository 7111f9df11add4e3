"""Operators that evaluate an annotator's concepts: explanations, typical
reasons per class, untrustworthy example types, concept <-> neuron
correspondence and the HTML report. Thin wrappers: the work is done by
``fiftyone_plugin.evaluation.explanations``, ``.reasons``, ``.untrustworthy``,
``.neurons`` and ``.report``; each returns its run's results object, sent
back to the App as plain JSON."""

import base64
import math

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_plugin.evaluation.explanations import compute_explanations
from fiftyone_plugin.evaluation.maptable import prediction_field_of
from fiftyone_plugin.evaluation.neurons import neuron_correspondence
from fiftyone_plugin.evaluation.reasons import summarize_concepts
from fiftyone_plugin.evaluation.report import render_report, write_report
from fiftyone_plugin.evaluation.untrustworthy import untrustworthy_concepts

from ._common import annotator_input, maps_field_input, output_summary, target_images, target_images_notice

# rows sent back to the App at most (the full table is in the run results)
MAX_ROWS = 200


def _config(name, label, description):
    return foo.OperatorConfig(
        name=name,
        label=label,
        description=description,
        dynamic=True,
        allow_immediate_execution=True,
        allow_delegated_execution=True,
    )


def _gt_field_input(ctx, inputs, maps_field, required=False):
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


def _rounded(rows, digits=4):
    out = []
    for row in rows[:MAX_ROWS]:
        out.append(
            {
                k: (round(v, digits) if isinstance(v, float) and math.isfinite(v) else v)
                for k, v in row.items()
            }
        )
    return out


def _table_output(outputs, name, columns, label):
    table = types.TableView()
    for key, header in columns:
        table.add_column(key, label=header)
    outputs.list(name, types.Object(), view=table, label=label)


class ComputeExplanations(foo.Operator):
    @property
    def config(self):
        return _config(
            "compute_explanations",
            "Interactive naming: explain predictions by concepts",
            "Per sample: its maps' concepts with their shares, coverage and whether every map is named",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        ctx.target_view()
        target_images_notice(ctx, inputs)
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is None:
            return types.Property(inputs)
        annotator = annotator_input(ctx, inputs, maps_field)
        inputs.str(
            "explanation_field",
            label="Explanation field",
            description=f"Default: explanation_{annotator or '<annotator>'}",
        )
        coverage = types.RadioGroup()
        coverage.add_choice("positive", label="Share of the whole positive contribution")
        coverage.add_choice("maps", label="Share of what the significant maps explain")
        inputs.enum("coverage", coverage.values(), default="positive", view=coverage, label="Coverage")
        inputs.float("min_share", default=0.0, min=0.0, max=1.0, label="Ignore maps below this share for 'fully named'")
        return types.Property(inputs, view=types.View(label="Explain predictions by concepts"))

    def execute(self, ctx):
        p = ctx.params
        results = compute_explanations(
            target_images(ctx)[0],
            p["annotator"],
            maps_field=p["maps_field"],
            explanation_field=p.get("explanation_field") or None,
            coverage=p.get("coverage", "positive"),
            min_share=p.get("min_share") or 0.0,
        )
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        return {"run_key": results.key, **results.to_dict()}

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        return types.Property(outputs, view=types.View(label="Explanations written"))


SUMMARY_COLUMNS = [
    ("predicted_class", "Predicted class"),
    ("concept", "Concept"),
    ("n_with", "Samples"),
    ("frequency", "Frequency"),
    ("mean_share", "Mean share"),
    ("confidence_with", "Confidence with"),
    ("confidence_without", "without"),
    ("accuracy_with", "Accuracy with"),
    ("accuracy_without", "without"),
    ("view", "Saved view"),
]


class SummarizeConcepts(foo.Operator):
    @property
    def config(self):
        return _config(
            "summarize_concepts",
            "Interactive naming: typical reasons per class",
            "Which concepts explain each predicted class, how often, and accuracy with and without them",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        ctx.target_view()
        target_images_notice(ctx, inputs)
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is None:
            return types.Property(inputs)
        annotator_input(ctx, inputs, maps_field)
        _gt_field_input(ctx, inputs, maps_field)
        inputs.int("min_count", default=1, min=1, label="Fewest samples per (class, concept)")
        inputs.bool("save_views", default=True, label="Save views 'class explained by concept'")
        inputs.int("max_views_per_class", default=5, min=0, label="Saved views per class at most")
        return types.Property(inputs, view=types.View(label="Typical reasons per class"))

    def execute(self, ctx):
        p = ctx.params
        results = summarize_concepts(
            target_images(ctx)[0],
            p["annotator"],
            maps_field=p["maps_field"],
            gt_field=p.get("gt_field") or None,
            min_count=p.get("min_count", 1),
            save_views=p.get("save_views", True),
            max_views_per_class=p.get("max_views_per_class", 5),
        )
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        return {
            "run_key": results.key,
            "num_pairs": len(results.rows),
            "saved_views": len(results.saved_views),
            "rows": _rounded(results.rows),
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        _table_output(outputs, "rows", SUMMARY_COLUMNS, "Concepts per predicted class")
        return types.Property(outputs, view=types.View(label="Typical reasons per class"))


UNTRUSTWORTHY_COLUMNS = [
    ("predicted_class", "Predicted class"),
    ("concept", "Concept"),
    ("n_with", "Samples with"),
    ("errors_with", "Errors with"),
    ("error_rate_with", "Error rate with"),
    ("error_rate_without", "without"),
    ("risk_difference_low", "Difference (95% low)"),
    ("excess_errors", "Excess errors"),
    ("q_value", "q"),
    ("confidence_with", "Confidence with"),
    ("confidence_without", "without"),
    ("flagged", "Flagged"),
    ("view", "Saved view"),
]


class FindUntrustworthyConcepts(foo.Operator):
    @property
    def config(self):
        return _config(
            "untrustworthy_concepts",
            "Interactive naming: untrustworthy example types",
            "Concepts whose presence goes with errors or low confidence, with views that show them",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        ctx.target_view()
        target_images_notice(ctx, inputs)
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is None:
            return types.Property(inputs)
        annotator_input(ctx, inputs, maps_field)
        gt_field = _gt_field_input(ctx, inputs, maps_field)
        by = types.RadioGroup()
        if gt_field:
            by.add_choice("error", label="Errors (needs ground truth)")
        by.add_choice("confidence", label="Low confidence")
        inputs.enum("by", by.values(), default=by.values()[0], view=by, label="Rank by")
        inputs.int("min_support", default=5, min=1, label="Fewest samples with the concept")
        inputs.float("alpha", default=0.05, min=0.0001, max=1.0, label="Significance level (FDR)")
        inputs.bool("save_views", default=True, label="Save a view per flagged type")
        inputs.bool("open_top", default=True, label="Open the top type in the App")
        return types.Property(inputs, view=types.View(label="Untrustworthy example types"))

    def execute(self, ctx):
        p = ctx.params
        gt_field = p.get("gt_field") or None
        results = untrustworthy_concepts(
            target_images(ctx)[0],
            p["annotator"],
            gt_field,
            maps_field=p["maps_field"],
            by=p.get("by") or None,
            min_support=p.get("min_support", 5),
            alpha=p.get("alpha", 0.05),
            save_views=p.get("save_views", True),
        )
        top_view = results.top_view
        if not ctx.delegated:
            ctx.ops.reload_dataset()
            if top_view and p.get("open_top", True):
                # the view itself, not its name: the App's list of saved
                # views is not refreshed yet, and set_view(name=...) fails
                # there with "Saved view ... does not exist"
                ctx.ops.set_view(view=ctx.dataset.load_saved_view(top_view))
        return {
            "run_key": results.key,
            "ranked_by": results.config.by,
            "num_tested": results.num_tested,
            "num_flagged": results.num_flagged,
            "top_view": top_view or "",
            "rows": _rounded(results.rows),
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        _table_output(outputs, "rows", UNTRUSTWORTHY_COLUMNS, "(class, concept) pairs, flagged first")
        return types.Property(outputs, view=types.View(label="Untrustworthy example types"))


NEURON_COLUMNS = [
    ("concept", "Concept"),
    ("num_maps", "Maps"),
    ("num_channels", "Channels"),
    ("top_channel", "Top channel"),
    ("top_channel_share", "Top-channel share"),
    ("normalized_entropy", "Normalised entropy"),
    ("effective_channels", "Effective channels"),
]


class NeuronCorrespondence(foo.Operator):
    @property
    def config(self):
        return _config(
            "neuron_correspondence",
            "Interactive naming: concepts vs neurons",
            "Does a concept correspond to an individual channel? Per concept, per channel, and mutual information",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        ctx.target_view()
        target_images_notice(ctx, inputs)
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is not None:
            annotator_input(ctx, inputs, maps_field)
        return types.Property(inputs, view=types.View(label="Concepts vs neurons"))

    def execute(self, ctx):
        p = ctx.params
        result = neuron_correspondence(target_images(ctx)[0], p["annotator"], maps_field=p["maps_field"])
        return {
            "run_key": result.key,
            "nmi": result.nmi,
            "ami": result.ami,
            "concept_purity": result.concept_purity,
            "channel_purity": result.channel_purity,
            "num_maps": result.num_maps,
            "num_concepts": result.num_concepts,
            "num_channels": result.num_channels,
            "concepts": _rounded(result.concept_rows),
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(
            outputs,
            ctx.results or {},
            labels={"nmi": "normalised mutual information", "ami": "adjusted mutual information"},
        )
        _table_output(outputs, "concepts", NEURON_COLUMNS, "Per concept")
        return types.Property(outputs, view=types.View(label="Concepts vs neurons"))


class WriteReport(foo.Operator):
    @property
    def config(self):
        return _config(
            "write_report",
            "Interactive naming: write report",
            "A self-contained HTML report to share: coverage, concepts per class, untrustworthy types, neurons, agreement",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        ctx.target_view()
        target_images_notice(ctx, inputs)
        maps_field = maps_field_input(ctx, inputs)
        if maps_field is None:
            return types.Property(inputs)
        annotator_input(ctx, inputs, maps_field)
        _gt_field_input(ctx, inputs, maps_field)
        inputs.str("title", label="Title", description="Optional")
        inputs.str(
            "path",
            label="Write to path",
            description="Optional server-side .html path; empty = download in the browser",
        )
        return types.Property(inputs, view=types.View(label="Write report"))

    def execute(self, ctx):
        p = ctx.params
        kwargs = dict(
            gt_field=p.get("gt_field") or None,
            maps_field=p["maps_field"],
            title=p.get("title") or None,
        )
        path = p.get("path") or None
        if path is not None:
            result = write_report(target_images(ctx)[0], p["annotator"], path, **kwargs)
            return {"path": result.path, "bytes": result.bytes, **_sections(result.sections)}
        if ctx.delegated:
            raise ValueError("a delegated report needs a server-side path")
        document, sections = render_report(target_images(ctx)[0], p["annotator"], **kwargs)
        data = document.encode("utf-8")
        ctx.ops.browser_download(
            "data:text/html;base64," + base64.b64encode(data).decode("ascii"),
            filename=f"{ctx.dataset.name}-{p['annotator']}-report.html",
        )
        return {"path": "", "bytes": len(data), **_sections(sections)}

    def resolve_output(self, ctx):
        outputs = types.Object()
        output_summary(outputs, ctx.results or {})
        return types.Property(outputs, view=types.View(label="Report written"))


def _sections(sections):
    return {f"section_{name}": status for name, status in sections.items()}
