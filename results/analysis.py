"""The analysis in one import: per-trial results and per-study tables (``frames``), the sweep's studies
(``studies``), the paper's claims measured (``measures``) and worded (``claims``), and markdown tables (``tables``)."""
from results.claims import Claim, claims
from results.frames import epoch_curves, incomplete_trials, study_table, trial_results
from results.studies import DIMS, KINDS, Study, find_studies, study_kind
from results.tables import markdown_table, table_markdown

__all__ = ["Claim", "claims", "epoch_curves", "incomplete_trials", "study_table", "trial_results", "DIMS",
           "KINDS", "Study", "find_studies", "study_kind", "markdown_table", "table_markdown"]
