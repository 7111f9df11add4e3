"""The concept-name constants every room shares, with no dependency (no
FiftyOne), so that array kernels, the simulated annotators and the concept
store take them from one place.
"""

#: Longest concept name, in characters (after trimming).
MAX_NAME_LENGTH = 100

#: Recorded when an annotator looked at a map and found no recognisable
#: concept: it counts as "seen", unlike a map nobody named.
NOT_NAMEABLE = "__not_nameable__"
