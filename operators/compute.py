"""Operators that compute: activation maps and their layout."""

import fiftyone.operators.types as types
import fiftyone.zoo as foz

import fiftyone_plugin as fpl
from fiftyone_plugin.concepts.store import list_annotators
from fiftyone_plugin.maps.display import label_maps_by_channel, label_maps_by_concept
from fiftyone_plugin.storage import MAPS_FIELD
from fiftyone_plugin.demo import load_model as load_demo_model

from ._common import report_progress
from ._forms import RunOperator

MODEL_SOURCES = {
    "demo": "Concept-world demo model",
    "torchvision": "torchvision architecture + weights",
    "zoo": "FiftyOne zoo model",
}


def load_model_from_params(params):
    """The model the form describes (see ``MODEL_SOURCES``)."""
    source = params.get("model_source", "demo")
    if source == "demo":
        return load_demo_model(), {}
    if source == "torchvision":
        return params["architecture"], {"weights": params["weights"]}
    if source == "zoo":
        return foz.load_zoo_model(params["zoo_model"]), {}
    raise ValueError(f"unknown model source {source!r}")


def model_source_input(ctx, inputs):
    """The form's model choice (``MODEL_SOURCES``) and what each source
    needs; :func:`load_model_from_params` reads it back."""
    sources = types.RadioGroup()
    for value, label in MODEL_SOURCES.items():
        sources.add_choice(value, label=label)
    inputs.enum("model_source", sources.values(), default="demo", view=sources, label="Model")
    source = ctx.params.get("model_source", "demo")
    if source == "torchvision":
        inputs.str("architecture", required=True, label="Architecture", description="e.g. resnet50")
        inputs.str(
            "weights",
            required=True,
            label="Weights",
            description="A state-dict file path, or a torchvision weights name such as ResNet50_Weights.IMAGENET1K_V2",
        )
    elif source == "zoo":
        inputs.str("zoo_model", required=True, label="Zoo model", description="e.g. resnet50-imagenet-torch")


def compute_maps_kwargs(params, *, delegated):
    """The keyword arguments of ``compute_activation_maps`` that the form's
    ``params`` describe.

    Run immediately, the operator computes inside the App server, which must
    not fork DataLoader worker processes: ``num_workers=0`` there (as
    Voxel51's brain plugin does); delegated runs decode images in workers
    (``num_workers=None``: the default from the CPU count).
    """
    return dict(
        layer=params.get("layer") or None,
        maps_field=params.get("maps_field") or MAPS_FIELD,
        top_k=params.get("top_k", 5),
        cumulative_share=params.get("cumulative_share") or None,
        batch_size=params.get("batch_size", 16),
        device=params.get("device") or None,
        overwrite=params.get("overwrite", False),
        discard_names=params.get("discard_names", False),
        num_workers=None if delegated else 0,
    )


class ComputeActivationMaps(RunOperator):
    NAME = "compute_activation_maps"
    LABEL = "Compute activation maps (interactive naming)"
    DESCRIPTION = "Find each image's significant activation maps for its prediction"
    TARGET, MAPS, ANNOTATOR, PREFER_DELEGATED = "view", False, False, True
    TITLE = "Activation maps"

    def form(self, ctx, form, maps_field, annotator):
        inputs = form.inputs
        model_source_input(ctx, inputs)
        inputs.str("layer", label="Layer", description="Module name; empty = the end of the convolutional trunk")
        inputs.int("top_k", default=5, label="Maps per image", min=1, max=64)
        inputs.float(
            "cumulative_share",
            label="Cumulative share cut-off",
            description="Optional: stop once the maps explain this fraction of the positive contribution",
            min=0.01,
            max=1.0,
        )
        inputs.str("maps_field", default=MAPS_FIELD, label="Maps field")
        inputs.int("batch_size", default=16, label="Batch size", min=1)
        inputs.str("device", label="Device", description="cpu, cuda, ...; empty = CUDA when available")
        inputs.bool("overwrite", default=False, label="Recompute samples that are already done")
        inputs.bool(
            "discard_names",
            default=False,
            label="Discard names of maps that cannot carry over",
            description="Names carry over to recomputed maps of the same model and layer; for another "
            "model or layer the run stops unless this is on (export the names first)",
        )

    def run(self, ctx, p):
        model, extra = load_model_from_params(p)
        results = fpl.compute_activation_maps(
            self.target(ctx),
            model,
            progress=report_progress(ctx, "computing activation maps"),
            **compute_maps_kwargs(p, delegated=ctx.delegated),
            **extra,
        )
        return dict(results.to_dict(), run_key=results.key)


class ComputeMapLayout(RunOperator):
    NAME = "compute_map_layout"
    LABEL = "Compute map layout (interactive naming)"
    DESCRIPTION = "Lay all maps out in 2-D (UMAP) for the Embeddings and naming panels"
    TARGET, ANNOTATOR = "view", False
    TITLE = "Map layout"

    def form(self, ctx, form, maps_field, annotator):
        inputs = form.inputs
        methods = types.DropdownView()
        for method in ("umap", "tsne", "pca"):
            methods.add_choice(method, label=method.upper())
        inputs.enum("method", methods.values(), default="umap", view=methods, label="Method")
        inputs.str("brain_key", label="Brain key", description="Default: <maps field>_layout")
        inputs.int("num_neighbors", default=15, label="UMAP neighbours", min=2)
        inputs.float("min_dist", default=0.1, label="UMAP minimum distance", min=0.0)

    def run(self, ctx, p):
        kwargs = {}
        if p.get("method", "umap") == "umap":
            kwargs = {"num_neighbors": p.get("num_neighbors", 15), "min_dist": p.get("min_dist", 0.1)}
        results = fpl.compute_map_visualization(
            self.target(ctx),
            maps_field=p["maps_field"],
            brain_key=p.get("brain_key") or None,
            method=p.get("method", "umap"),
            progress=report_progress(ctx, "laying out maps"),
            **kwargs,
        )
        return {"brain_key": results.key, "num_maps": results.num_maps}


#: The "labels" choice that restores the computed labels; annotator ids are
#: identifiers, so no annotator can be called this.
BY_CHANNEL = "(channel)"


class LabelMaps(RunOperator):
    """What a map's box says in the App: an annotator's concept or its
    channel (``fiftyone_plugin.maps.display``)."""

    NAME = "label_maps"
    LABEL = "Label maps by concept or channel (interactive naming)"
    DESCRIPTION = "Show an annotator's concept (or the channel) as each map's label in the App"
    TARGET, ANNOTATOR, DELEGABLE = None, False, False
    TITLE = "Label maps"

    def form(self, ctx, form, maps_field, annotator):
        choices = types.DropdownView()
        choices.add_choice(BY_CHANNEL, label="Channel (as computed)")
        for name in list_annotators(ctx.dataset, maps_field=maps_field):
            choices.add_choice(name, label=f"{name}'s concepts")
        form.inputs.enum(
            "labels", choices.values(), default=BY_CHANNEL, view=choices, label="Label each map by",
            description="Maps an annotator did not name are labelled 'unnamed'",
        )

    def run(self, ctx, p):
        maps_field = p.get("maps_field") or MAPS_FIELD
        labels = p.get("labels") or BY_CHANNEL
        if labels == BY_CHANNEL:
            count = label_maps_by_channel(ctx.dataset, maps_field=maps_field)
        else:
            count = label_maps_by_concept(ctx.dataset, labels, maps_field=maps_field)
        return {"maps_relabelled": count, "labels": labels}
