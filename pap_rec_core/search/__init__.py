"""PAP-REC's prompt search: gradients to candidate tokens, surrogates, the alternating schedule, traces."""

from pap_rec_core.search.config import SearchConfig
from pap_rec_core.search.engine import PapRecSearch, SearchState
from pap_rec_core.search.events import SearchEvent, read_trace
from pap_rec_core.search.hotflip import candidate_scores, per_sample_loss, slot_gradients, top_candidates
from pap_rec_core.search.run import SearchResult, run_search

__all__ = ["PapRecSearch", "SearchConfig", "SearchEvent", "SearchResult", "SearchState", "candidate_scores",
           "per_sample_loss", "read_trace", "run_search", "slot_gradients", "top_candidates"]
