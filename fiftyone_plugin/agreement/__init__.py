"""Inter-annotator agreement: Krippendorff's alpha kernels (alpha) and the
agreement run over annotators' concepts (compute)."""
