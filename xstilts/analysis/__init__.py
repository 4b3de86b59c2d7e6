"""Analyses for the research questions: typological distance from English (``typology``, standard
library only, so the controller can use it) and domain alignment vs transfer gain (``alignment``, which
needs numpy: import it as ``xstilts.analysis.alignment``). No torch in either."""

from xstilts.analysis.typology import (
    DISTANCE_KINDS,
    distances_from,
    languages,
    normalize_language,
    typological_distance,
    typology_table,
)

__all__ = [
    "DISTANCE_KINDS",
    "distances_from",
    "languages",
    "normalize_language",
    "typological_distance",
    "typology_table",
]
