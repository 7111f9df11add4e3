"""Input and context helpers shared by the operators (UI plumbing only)."""

import fiftyone as fo
import fiftyone.operators.types as types

from fiftyone_plugin.activation_maps import MAPS_RUN_TYPE
from fiftyone_plugin.concepts import list_annotators, list_concepts


def maps_fields(dataset):
    """Fields that hold maps: those with an activation-maps run."""
    fields = []
    for key in dataset.list_runs():
        config = dataset.get_run_info(key).config
        if getattr(config, "run_type", None) == MAPS_RUN_TYPE:
            fields.append(config.maps_field)
    return fields


def maps_field_input(ctx, inputs, required=True):
    """A dropdown of the maps fields on the dataset (or a message if none);
    returns the chosen field."""
    fields = maps_fields(ctx.dataset)
    if not fields:
        inputs.view(
            "no_maps",
            types.Warning(label="No activation maps yet: run 'compute activation maps' first"),
        )
        if required:
            inputs.str("maps_field", required=True, view=types.HiddenView())
        return None
    choices = types.DropdownView()
    for name in fields:
        choices.add_choice(name, label=name)
    inputs.enum("maps_field", choices.values(), default=fields[0], view=choices, label="Maps field")
    return ctx.params.get("maps_field", fields[0])


def annotator_input(ctx, inputs, maps_field):
    """Annotator id: free text, with the known ones offered."""
    known = list_annotators(ctx.dataset, maps_field) if maps_field else []
    description = "Letters, digits and underscores" + (
        f"; existing: {', '.join(known)}" if known else ""
    )
    inputs.str("annotator", required=True, label="Annotator", description=description)
    return ctx.params.get("annotator")


def concept_choice_input(ctx, inputs, maps_field, annotator, name, label, multiple=False):
    """A dropdown of the annotator's concepts with their counts."""
    try:
        concepts = list_concepts(ctx.dataset, annotator, maps_field) if annotator else {}
    except ValueError:
        concepts = {}
    if not concepts:
        inputs.view(f"{name}_none", types.Notice(label="This annotator has no concepts yet"))
        return None
    if multiple:
        inputs.list(name, types.String(), required=True, label=label,
                    view=types.AutocompleteView(choices=[types.Choice(c, label=f"{c} ({n})") for c, n in concepts.items()]))
        return ctx.params.get(name)
    choices = types.DropdownView()
    for concept, count in concepts.items():
        choices.add_choice(concept, label=f"{concept} ({count})")
    inputs.enum(name, choices.values(), required=True, label=label, view=choices)
    return ctx.params.get(name)


def report_progress(ctx, label):
    """A FiftyOne progress callback that reports to the operator's context
    (the App's progress display, or the delegated run's status)."""
    return fo.report_progress(
        lambda pb: ctx.set_progress(progress=pb.progress, label=label), dt=1.0
    )


def selected_map_ids(ctx, maps_field):
    """Maps the user selected in the App: labels selected in the grid or
    modal, or patches selected in a patches view of ``maps_field``."""
    ids = [
        label["label_id"]
        for label in (ctx.selected_labels or [])
        if label.get("field") == maps_field
    ]
    view = ctx.view
    if ctx.selected and getattr(view, "_is_patches", False) and view._label_fields == [maps_field]:
        # in a patches view, a patch's id is its map's id
        ids.extend(ctx.selected)
    return list(dict.fromkeys(ids))


def map_ids_in_view(view, maps_field):
    """Every map in ``view`` (a samples or patches view, filtered or not)."""
    _, path = view._get_label_field_path(maps_field, "id")
    return view.values(path, unwind=True)


def output_summary(outputs, summary, labels=None):
    for key, value in summary.items():
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            label = (labels or {}).get(key, key.replace("_", " "))
            if isinstance(value, str):
                outputs.str(key, label=label)
            else:
                outputs.float(key, label=label) if isinstance(value, float) else outputs.int(key, label=label)
