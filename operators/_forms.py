"""The skeleton every run operator shares: :class:`RunOperator` (the form's
target, maps field and annotator; execute = one SDK call, reload, a tidy
summary; the output = that summary, its tables and its saved views as
buttons), and the pieces it is made of (:class:`Form`, :func:`annotator_choice`,
:func:`tidy`, :func:`table_output`). UI plumbing only: the work is in the SDK.
"""

import math
import numbers

import numpy as np

import fiftyone.operators as foo
import fiftyone.operators.types as types
from fiftyone.operators.store import ExecutionStore

from fiftyone_plugin.concepts.store import list_annotators

from ._common import maps_field_input, target_images, target_images_notice

PLUGIN = "@interactive-naming/interactive-naming"
#: rows sent back to the App at most (the full table is in the run results)
MAX_ROWS = 200
#: significant digits of the numbers an operator shows
DIGITS = 4
#: saved views offered as buttons in an output at most
MAX_VIEW_BUTTONS = 10
# the plugin's execution store (the naming panel's memory lives there too)
_STORE = "interactive_naming"


def uri(name):
    """The full URI of one of this plugin's operators."""
    return f"{PLUGIN}/{name}"


def operator_config(name, label, description, *, delegable=True, prefer_delegated=False, unlisted=False):
    """An operator's config: dynamic forms, immediate execution, delegation
    where the work can take long."""
    return foo.OperatorConfig(
        name=name,
        label=label,
        description=description,
        dynamic=True,
        unlisted=unlisted,
        allow_immediate_execution=True,
        allow_delegated_execution=delegable,
        default_choice_to_delegated=prefer_delegated,
    )


# ---- numbers and outputs -------------------------------------------------------


def significant(value, digits=DIGITS):
    """``value`` rounded to ``digits`` significant digits; ``None`` for NaN
    and infinities (forms and JSON have no NaN).

    Examples
    --------
    >>> significant(0.123456), significant(12345.6), significant(-0.000123456), significant(0.0)
    (0.1235, 12350.0, -0.0001235, 0.0)
    >>> significant(float("nan")) is None
    True
    """
    value = float(value)
    if not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def _empty(value):
    return value is None or (isinstance(value, (str, list, tuple, dict)) and len(value) == 0)


def tidy(value):
    """A result fit to show: floats to :data:`DIGITS` significant digits,
    NaN as missing, and the empty entries (None, ``""``, ``[]``, ``{}``) of
    every mapping dropped, so that the App shows no blank line.

    Examples
    --------
    >>> tidy({"alpha": 0.987654, "note": "", "why": None, "rows": [{"q": 1/3, "view": None}], "n": 3})
    {'alpha': 0.9877, 'rows': [{'q': 0.3333}], 'n': 3}
    """
    if isinstance(value, dict):
        cleaned = {key: tidy(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if not _empty(item)}
    if isinstance(value, (list, tuple)):
        return [tidy(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if not isinstance(value, numbers.Real):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return significant(value)


def summary_output(outputs, results, labels=None):
    """One line per scalar entry of ``results`` (``labels``: key -> label;
    default: the key with spaces); lists and tables are left to the caller."""
    for key, value in results.items():
        if _empty(value) or not isinstance(value, (int, float, str)):
            continue
        label = (labels or {}).get(key, key.replace("_", " "))
        if isinstance(value, str):
            outputs.str(key, label=label)
        elif isinstance(value, bool):
            outputs.bool(key, label=label)
        elif isinstance(value, float):
            outputs.float(key, label=label)
        else:
            outputs.int(key, label=label)


def table_output(outputs, name, columns, rows, label):
    """A table of ``rows`` with those of ``columns`` (``(key, header)``)
    that some row fills: no empty column."""
    filled = [(key, header) for key, header in columns if any(not _empty(row.get(key)) for row in rows or [])]
    if not filled:
        return
    table = types.TableView()
    for key, header in filled:
        table.add_column(key, label=header)
    outputs.list(name, types.Object(), view=table, label=label)


def views_output(outputs, names):
    """A button per saved view (the first :data:`MAX_VIEW_BUTTONS`) that
    opens it in the App (operator ``open_saved_view``)."""
    for i, name in enumerate(list(names or [])[:MAX_VIEW_BUTTONS]):
        outputs.view(f"open_view_{i}", types.Button(label=f"Open {name}", operator=uri("open_saved_view"),
                                                     params={"name": name}))


# ---- forms ---------------------------------------------------------------------


class Form:
    """An operator's inputs and the problems found while building them:
    a problem is shown as an error in the form and makes the form invalid
    (the App disables its Execute button), instead of a traceback later."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.inputs = types.Object()
        self.errors = []

    def error(self, name, message):
        self.inputs.view(name, types.Error(label=message))
        self.errors.append(message)

    def property(self, label):
        return types.Property(self.inputs, view=types.View(label=label), invalid=bool(self.errors),
                              error_message="; ".join(self.errors))


def _store(dataset):
    return ExecutionStore.create(_STORE, dataset._doc.id)


def _annotator_key(maps_field):
    return f"annotator:{maps_field}"


def remember_annotator(dataset, annotator, maps_field):
    """Remember the annotator last worked as on ``maps_field`` (the default
    of the next form; the naming panel may set it too)."""
    _store(dataset).set(_annotator_key(maps_field), annotator)


def preferred_annotator(dataset, maps_field, known):
    """The remembered annotator where it is one of ``known``, else the
    first of ``known`` (``None`` if there is none)."""
    remembered = _store(dataset).get(_annotator_key(maps_field))
    if remembered in known:
        return remembered
    return known[0] if known else None


def annotator_choice(form, maps_field, *, name="annotator", label="Annotator"):
    """A dropdown of the annotators who named maps in ``maps_field``
    (default: :func:`preferred_annotator`); with none, a form error.
    Returns the chosen annotator, or ``None``."""
    ctx = form.ctx
    known = list_annotators(ctx.dataset, maps_field=maps_field)
    if not known:
        form.error(f"{name}_none", "No annotator has named maps yet: name some maps first")
        return None
    default = preferred_annotator(ctx.dataset, maps_field, known)
    choices = types.DropdownView()
    for annotator in known:
        choices.add_choice(annotator, label=annotator)
    form.inputs.enum(name, known, default=default, required=True, view=choices, label=label)
    chosen = ctx.params.get(name)
    return chosen if chosen in known else default


def annotators_choice(form, maps_field, *, name="annotators", label="Annotators", default=None, fewest=1,
                      description=None):
    """A multi-choice of the annotators who named maps in ``maps_field``
    (``default``: all of them); fewer than ``fewest`` known or chosen is a
    form error. Returns the chosen list, or ``None``."""
    ctx = form.ctx
    known = list_annotators(ctx.dataset, maps_field=maps_field)
    if len(known) < fewest:
        form.error(f"{name}_few", f"Needs at least {fewest} annotators who named maps; "
                   f"{len(known)} did here ({', '.join(known) or 'none'})")
        return None
    default = list(known if default is None else default)
    form.inputs.list(name, types.String(), default=default, label=label, description=description,
                     view=types.AutocompleteView(choices=[types.Choice(a, label=a) for a in known]))
    chosen = ctx.params.get(name)
    # empty means the default where the run needs annotators
    chosen = default if chosen is None or (not chosen and fewest > 0) else list(chosen)
    unknown = [a for a in chosen if a not in known]
    if unknown:
        form.error(f"{name}_unknown", f"Not annotators of {maps_field}: {', '.join(unknown)}")
        return None
    if len(chosen) < fewest:
        form.error(f"{name}_few", f"Choose at least {fewest} annotators ({len(chosen)} chosen)")
        return None
    return chosen


# ---- the run operator ----------------------------------------------------------


class RunOperator(foo.Operator):
    """An operator that runs one SDK function on the App's target.

    A subclass sets its name, a label that starts with its capability (the
    App's operator search matches labels), and where it runs, then writes
    ``form`` (its own fields) and ``run`` (the SDK call, returning a
    summary dict); the base builds the shared fields, reloads the dataset,
    tidies the summary and shows it with its tables (``TABLES``: result key
    -> ``(columns, label)``) and its saved views as buttons.
    """

    NAME = LABEL = DESCRIPTION = TITLE = None
    #: None: the dataset; "view": the App's target view; "images": the
    #: images under it (the underlying images of a patches view)
    TARGET = "images"
    MAPS = True  # a dropdown of the maps fields
    ANNOTATOR = True  # a dropdown of the annotators
    DELEGABLE = True
    PREFER_DELEGATED = False
    RELOAD = True
    TABLES = {}
    LABELS = {}

    @property
    def config(self):
        return operator_config(self.NAME, self.LABEL, self.DESCRIPTION, delegable=self.DELEGABLE,
                               prefer_delegated=self.PREFER_DELEGATED)

    def resolve_input(self, ctx):
        form = Form(ctx)
        if self.TARGET is not None:
            ctx.target_view()  # the dataset / current view / selected samples choice
        if self.TARGET == "images":
            target_images_notice(ctx, form.inputs)
        maps_field = maps_field_input(ctx, form.inputs) if self.MAPS else None
        if maps_field is not None or not self.MAPS:
            annotator = annotator_choice(form, maps_field) if self.ANNOTATOR else None
            if annotator is not None or not self.ANNOTATOR:
                self.form(ctx, form, maps_field, annotator)
        return form.property(self.TITLE or self.LABEL)

    def form(self, ctx, form, maps_field, annotator):
        """Add the operator's own fields to ``form.inputs``."""

    def target(self, ctx):
        """What the run reads: see ``TARGET``."""
        if self.TARGET == "images":
            return target_images(ctx)[0]
        if self.TARGET == "view":
            return ctx.target_view()
        return ctx.dataset

    def run(self, ctx, params):
        """Call the SDK; return a summary dict (tidied by ``execute``)."""
        raise NotImplementedError

    def tables(self, results):
        """``{result key: (columns, label)}`` of the tables to show."""
        return self.TABLES

    def execute(self, ctx):
        summary = self.run(ctx, ctx.params)
        if self.RELOAD and not ctx.delegated:
            ctx.ops.reload_dataset()
        if self.ANNOTATOR and ctx.params.get("annotator") and ctx.params.get("maps_field"):
            remember_annotator(ctx.dataset, ctx.params["annotator"], ctx.params["maps_field"])
        return tidy(summary)

    def resolve_output(self, ctx):
        outputs = types.Object()
        results = ctx.results or {}
        summary_output(outputs, results, self.LABELS)
        for name, (columns, label) in self.tables(results).items():
            table_output(outputs, name, columns, results.get(name), label)
        views_output(outputs, results.get("saved_views"))
        return types.Property(outputs, view=types.View(label=self.TITLE or self.LABEL))


def rows_of(records):
    """At most :data:`MAX_ROWS` records of a table, for an output."""
    return list(records)[:MAX_ROWS]
