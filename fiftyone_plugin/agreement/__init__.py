"""Inter-annotator agreement: Krippendorff's alpha kernel (alpha), label
coding (codes), pair alpha (pairs), Hungarian alignment (alignment), the
cross-fitted aligned alpha (crossfit), every statistic of a labels array
(statistics), the run's config and results (results) and the run itself on a
dataset (compute). Only compute reads or writes FiftyOne data."""
