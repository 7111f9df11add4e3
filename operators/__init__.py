"""The plugin's operators: thin wrappers over the ``fiftyone_plugin`` SDK."""

from .agreement import ComputeAgreement
from .assistance import (
    AcceptSuggestions,
    ConceptDeletion,
    SuggestConcepts,
    TransferConcepts,
    UndoSuggestions,
)
from .compute import ComputeActivationMaps, ComputeMapLayout, LabelMaps
from .evaluation import (
    ClearSavedViews,
    ComputeExplanations,
    FindUntrustworthyConcepts,
    NeuronCorrespondence,
    OpenSavedView,
    SummarizeConcepts,
    WriteReport,
)
from .concepts import (
    AssignConcept,
    DeleteConcept,
    ExportConcepts,
    ImportConcepts,
    MergeConcepts,
    RenameConcept,
)

OPERATORS = [
    ComputeActivationMaps,
    ComputeMapLayout,
    LabelMaps,
    AssignConcept,
    RenameConcept,
    MergeConcepts,
    DeleteConcept,
    ExportConcepts,
    ImportConcepts,
    ComputeExplanations,
    SummarizeConcepts,
    FindUntrustworthyConcepts,
    NeuronCorrespondence,
    WriteReport,
    OpenSavedView,
    ClearSavedViews,
    ComputeAgreement,
    SuggestConcepts,
    AcceptSuggestions,
    UndoSuggestions,
    TransferConcepts,
    ConceptDeletion,
]
