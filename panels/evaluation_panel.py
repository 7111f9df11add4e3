"""The evaluation panel: the study's findings for one annotator, read from
the stored evaluation runs (so they are there again after a reload), each
a click away from its samples, with a button that computes what is missing.

Rendering and event plumbing only: ``fiftyone_plugin.evaluation.findings``
reads the runs; the operators compute them.
"""

import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_plugin.evaluation.findings import SECTIONS, evaluation_annotators, read_findings, type_view

from ..operators._common import maps_fields

PLUGIN = "@interactive-naming/interactive-naming"

#: section -> (title, the operator that computes it, what it answers)
SECTION_INFO = {
    "reasons": ("Reasons per class", "summarize_concepts",
                "the concepts that explain each predicted class"),
    "coverage": ("Coverage per class", "compute_explanations",
                 "how much of each prediction named maps explain"),
    "untrustworthy": ("Untrustworthy example types", "untrustworthy_concepts",
                      "the concepts that go with errors"),
    "correspondence": ("Concepts and channels", "neuron_correspondence",
                       "whether a concept is one channel of the layer"),
    "agreement": ("Agreement between annotators", "compute_agreement",
                  "how far annotators name the same maps alike"),
}

# tables must fit a 650 px panel: MUI's table has a minimum width of 650 px
_NARROW = {"table": {"sx": {"minWidth": 0}}}
_DASH = "\u2013"


def _pct(value):
    return _DASH if value is None else f"{100 * value:.0f}%"


def _num(value, digits=2):
    return _DASH if value is None else f"{value:.{digits}f}"


def _rows(section, found):
    """The display rows (strings) of a section of ``read_findings``."""
    rows = found["rows"]
    if section == "reasons":
        out, last = [], None
        for r in rows:
            out.append({
                # the class on its first row only: the table reads as groups
                "class": r["class"] if r["class"] != last else "",
                "concept": r["concept"],
                "frequency": f"{_pct(r['frequency'])} ({r['samples']}/{r['class_samples']})",
                "share": _num(r["share"]),
            })
            last = r["class"]
        return out
    if section == "coverage":
        return [{"class": r["class"], "samples": str(r["samples"]), "coverage": _pct(r["coverage"]),
                 "fully_named": _pct(r["fully_named"])} for r in rows]
    if section == "untrustworthy":
        return [{"class": r["class"], "concept": r["concept"], "samples": str(r["samples"]),
                 "error_rate": f"{_pct(r['error_rate_with'])} vs {_pct(r['error_rate_without'])}",
                 "score": _num(r["score"], 1), "q": _q(r["q"])} for r in _shown_types(found)]
    if section == "correspondence":
        return [{"concept": r["concept"], "maps": str(r["maps"]), "top_channel": str(r["top_channel"]),
                 "top_share": _pct(r["top_share"]), "channels": str(r["channels"])} for r in rows]
    names = found.get("annotators") or []
    return [
        {"annotator": r["annotator"],
         **{f"a{j}": (_DASH if i == j else _num(v)) for j, v in enumerate(r["values"])}}
        for i, r in enumerate(rows)
    ] if names else []


def _q(value):
    if value is None:
        return _DASH
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _shown_types(found):
    # the flagged types; when none is flagged, the closest candidates
    flagged = [r for r in found["rows"] if r["flagged"]]
    return flagged or found["rows"][:5]


def _summary(section, found):
    """One line under a section's title."""
    if section == "reasons":
        classes = len({r["class"] for r in found["rows"]})
        return f"The most frequent concepts of {classes} predicted classes; share: of the prediction's positive contribution."
    if section == "coverage":
        return (f"{found['samples']} images; mean coverage {_pct(found['mean_coverage'])}, "
                f"{_pct(found['fully_named'])} fully named ({found['mode']} coverage).")
    if section == "untrustworthy":
        stat = found["statistic"]
        if found["flagged"]:
            head = f"{found['flagged']} of {found['tested']} tested types flagged, ranked by {stat}."
        else:
            head = f"No type flagged among {found['tested']} tested; the closest, by {stat}."
        return head + " Show opens a type's samples in the grid."
    if section == "correspondence":
        return (f"{found['total']} concepts; NMI {_num(found['nmi'])}, AMI {_num(found['ami'])}, "
                f"concept purity {_pct(found['concept_purity'])}, channel purity {_pct(found['channel_purity'])}.")
    return (f"Aligned \u03b1 per pair (names matched across annotators). Overall: aligned "
            f"{_num(found['aligned_alpha'])}, pair {_num(found['pair_alpha'])}, "
            f"nameable {_num(found['nameable_alpha'])}; {found['maps']} maps judged by two or more.")


_COLUMNS = {
    "reasons": [("class", "Class"), ("concept", "Concept"), ("frequency", "Frequency"), ("share", "Share")],
    "coverage": [("class", "Class"), ("samples", "Images"), ("coverage", "Coverage"), ("fully_named", "Fully named")],
    "untrustworthy": [("class", "Class"), ("concept", "Concept"), ("samples", "Images"),
                      ("error_rate", "Errors with vs without"), ("score", "Excess errors"), ("q", "q")],
    "correspondence": [("concept", "Concept"), ("maps", "Maps"), ("top_channel", "Top channel"),
                       ("top_share", "Its share"), ("channels", "Channels")],
}


class EvaluationPanel(foo.Panel):
    @property
    def config(self):
        return foo.PanelConfig(
            name="evaluation_panel",
            label="Interactive naming: evaluation",
            description="The study's findings: reasons per class, untrustworthy types, channels, agreement",
            icon="insights",
            surfaces="grid",
        )

    # ---- reading -------------------------------------------------------------

    def _maps_field(self, ctx):
        fields = maps_fields(ctx.dataset)
        field = ctx.panel.state.maps_field
        return field if field in fields else (fields[0] if fields else None)

    def _load(self, ctx):
        """Everything again from the stored runs."""
        maps_field = ctx.panel.state.maps_field = self._maps_field(ctx)
        annotators, default = evaluation_annotators(ctx.dataset, maps_field=maps_field) if maps_field else ([], None)
        annotator = ctx.panel.state.annotator
        if annotator not in annotators:
            annotator = default
        ctx.panel.state.annotators = annotators
        ctx.panel.state.annotator = annotator
        findings = read_findings(ctx.dataset, annotator, maps_field=maps_field) if maps_field else {
            s: {"run_key": None, "rows": []} for s in SECTIONS
        }
        # small lines in state (render reads them); the tables as panel data
        ctx.panel.state.sections = {
            s: {"run_key": f["run_key"], "summary": _summary(s, f) if f["run_key"] else None,
                "by": f.get("by"), "annotators": f.get("annotators") or [], "empty": not f["rows"]}
            for s, f in findings.items()
        }
        for section, found in findings.items():
            ctx.panel.data.set(f"{section}_table", _rows(section, found))

    def on_load(self, ctx):
        self._load(ctx)

    def on_change_dataset(self, ctx):
        ctx.panel.state.maps_field = None
        ctx.panel.state.annotator = None
        ctx.panel.state.message = None
        self._load(ctx)

    def refresh(self, ctx):
        ctx.panel.state.message = None
        self._load(ctx)

    def set_annotator(self, ctx):
        ctx.panel.state.annotator = ctx.params.get("value") or None
        ctx.panel.state.message = None
        self._load(ctx)

    def set_maps_field(self, ctx):
        ctx.panel.state.maps_field = ctx.params.get("value") or None
        ctx.panel.state.annotator = None
        self._load(ctx)

    # ---- actions -------------------------------------------------------------

    def open_type(self, ctx):
        """A row's Show: the untrustworthy type's samples in the grid."""
        annotator, maps_field = ctx.panel.state.annotator, ctx.panel.state.maps_field
        found = read_findings(ctx.dataset, annotator, maps_field=maps_field)["untrustworthy"]
        shown = _shown_types(found) if found["run_key"] else []
        row = ctx.params.get("row")
        if not isinstance(row, int) or not 0 <= row < len(shown):
            # the runs changed since the table was drawn
            ctx.panel.state.message = "The types changed: the table is read again"
            self._load(ctx)
            return
        chosen = shown[row]
        view = type_view(ctx.dataset, annotator, chosen, run_key=found["run_key"], maps_field=maps_field)
        # the view itself, not a saved view's name: the App's list of saved
        # views may not know a view saved since it loaded the dataset
        ctx.ops.set_view(view=view)
        ctx.panel.state.message = (
            f"Showing {chosen['class']} with {chosen['concept']}: {len(view)} images"
        )

    def _compute(self, ctx, section):
        operator = SECTION_INFO[section][1]
        params = {"maps_field": ctx.panel.state.maps_field}
        if section != "agreement" and ctx.panel.state.annotator:
            params["annotator"] = ctx.panel.state.annotator
        ctx.prompt(f"{PLUGIN}/{operator}", params=params, on_success=self.refresh)

    def compute_reasons(self, ctx):
        self._compute(ctx, "reasons")

    def compute_coverage(self, ctx):
        self._compute(ctx, "coverage")

    def compute_untrustworthy(self, ctx):
        self._compute(ctx, "untrustworthy")

    def compute_correspondence(self, ctx):
        self._compute(ctx, "correspondence")

    def compute_agreement(self, ctx):
        self._compute(ctx, "agreement")

    # ---- rendering -----------------------------------------------------------

    def _table(self, panel, section, state):
        # the row actions' column is headed "Images" (MUI's default: "Actions")
        table = types.TableView(componentsProps=_NARROW, actions_label="Images")
        if section == "agreement":
            columns = [("annotator", "")] + [
                (f"a{j}", name) for j, name in enumerate(state.sections[section]["annotators"])
            ]
        else:
            columns = _COLUMNS[section]
            if section == "untrustworthy" and state.sections[section]["by"] == "confidence":
                columns = [c for c in columns if c[0] != "error_rate"]
                columns = [(k, "Confidence lost" if k == "score" else label) for k, label in columns]
        for key, label in columns:
            table.add_column(key, label=label)
        if section == "untrustworthy":
            table.add_row_action("show", self.open_type, label="Show", tooltip="Open these images in the grid")
        panel.list(f"{section}_table", types.Object(), view=table)

    def render(self, ctx):
        panel = types.Object()
        state = ctx.panel.state
        top = panel.h_stack("top", align_y="center", gap=2)
        annotators = state.annotators or []
        if annotators:
            choices = types.DropdownView()
            for name in annotators:
                choices.add_choice(name, label=name)
            top.enum("annotator", choices.values(), view=choices, label="Annotator",
                     default=state.annotator, on_change=self.set_annotator)
        fields = maps_fields(ctx.dataset)
        if len(fields) > 1:
            picker = types.DropdownView()
            for name in fields:
                picker.add_choice(name, label=name)
            top.enum("maps_field", picker.values(), view=picker, label="Maps",
                     default=state.maps_field, on_change=self.set_maps_field)
        top.btn("refresh", label="Refresh", icon="refresh", on_click=self.refresh)

        # one fixed place for messages
        panel.md(state.message or " ", name="status")
        if not state.maps_field:
            panel.view("no_maps", types.Notice(
                label="No activation maps on this dataset yet: run 'compute activation maps' first."))
            return types.Property(panel, view=types.GridView(orientation="vertical", gap=2, padding=1))
        if not annotators:
            panel.view("no_annotators", types.Notice(
                label="Nobody has named maps yet: name some in the naming panel first."))

        sections = state.sections or {}
        for section in SECTIONS:
            title, operator, question = SECTION_INFO[section]
            info = sections.get(section) or {}
            panel.md(f"##### {title}", name=f"{section}_title")
            if info.get("run_key"):
                panel.md(info["summary"], name=f"{section}_summary")
                if not info.get("empty"):
                    self._table(panel, section, state)
            else:
                row = panel.h_stack(f"{section}_missing", align_y="center", gap=1)
                row.md(f"Not computed yet: {question}.", name="text")
                row.btn("compute", label=f"Compute ({operator.replace('_', ' ')})",
                        on_click=getattr(self, f"compute_{section}"),
                        disabled=not (annotators or section == "agreement"))
        return types.Property(panel, view=types.GridView(orientation="vertical", gap=2, padding=1))
