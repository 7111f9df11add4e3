"""The concept world: demo dataset, its small CNN and SIMULATED annotators.

See docs/design.md, "The concept world". Nothing here downloads anything.
"""

from .annotators import (
    CONCEPTS,
    NOT_NAMEABLE,
    SYNONYMS,
    SimulatedAnnotator,
    default_annotators,
    part_under_point,
    true_concept,
)
from .model import (
    WEIGHTS_PATH,
    ConceptNet,
    ConceptNetTransform,
    evaluate,
    images_to_tensor,
    load_model,
    predict,
    train_model,
)
from .world import (
    BODY_PATTERNS,
    CLASSES,
    CUE_CLASS,
    HEAD_SHAPES,
    PART_IDS,
    PART_NAMES,
    WorldSplit,
    build_dataset,
    generate_split,
    iter_split,
    render_creature,
)

__all__ = [
    "BODY_PATTERNS",
    "CLASSES",
    "CONCEPTS",
    "CUE_CLASS",
    "ConceptNet",
    "ConceptNetTransform",
    "HEAD_SHAPES",
    "NOT_NAMEABLE",
    "PART_IDS",
    "PART_NAMES",
    "SYNONYMS",
    "SimulatedAnnotator",
    "WEIGHTS_PATH",
    "WorldSplit",
    "build_dataset",
    "default_annotators",
    "evaluate",
    "generate_split",
    "images_to_tensor",
    "iter_split",
    "load_model",
    "part_under_point",
    "predict",
    "render_creature",
    "train_model",
    "true_concept",
]
