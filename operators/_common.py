"""Input and context helpers shared by the operators (UI plumbing only)."""

import fiftyone as fo
import fiftyone.operators.types as types

# the domain helpers (which maps fields, which maps the App selects) live in
# the SDK (fiftyone_plugin.concepts.selection)
from fiftyone_plugin.concepts.selection import images_of, map_ids_in, maps_fields
from fiftyone_plugin.concepts.store import list_annotators, list_concepts


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
    known = list_annotators(ctx.dataset, maps_field=maps_field) if maps_field else []
    description = "Letters, digits and underscores" + (
        f"; existing: {', '.join(known)}" if known else ""
    )
    inputs.str("annotator", required=True, label="Annotator", description=description)
    return ctx.params.get("annotator")


def concept_choice_input(ctx, inputs, maps_field, annotator, name, label, multiple=False):
    """A dropdown of the annotator's concepts with their counts."""
    try:
        concepts = list_concepts(ctx.dataset, annotator, maps_field=maps_field) if annotator else {}
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


def target_images(ctx, view=None):
    """What an evaluation runs on: the operator's target view, or, where
    that is a patches (frames, clips) view, the images under it, with all
    their maps. Returns ``(collection, note)``; ``note`` says what was
    substituted (``None`` if nothing)."""
    view = ctx.target_view() if view is None else view
    images = images_of(view)
    if images is view:
        return view, None
    return images, f"the {len(images)} image(s) under the current patches view, with all their maps"


def target_images_notice(ctx, inputs):
    """Say in the form when the evaluation will run on the images under a
    patches view rather than on the patches."""
    try:
        _, note = target_images(ctx)
    except Exception:  # the form must render whatever the view
        return
    if note:
        inputs.view("target_images", types.Notice(label=f"Runs on {note}"))


def map_ids_in_view(view, maps_field):
    """Every map in ``view`` (a samples or patches view, filtered or not)."""
    return map_ids_in(view, maps_field)


def output_summary(outputs, summary, labels=None):
    for key, value in summary.items():
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            label = (labels or {}).get(key, key.replace("_", " "))
            if isinstance(value, str):
                outputs.str(key, label=label)
            else:
                outputs.float(key, label=label) if isinstance(value, float) else outputs.int(key, label=label)
