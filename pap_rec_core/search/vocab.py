"""Which tokens a slot may hold.

Word-initial SentencePiece pieces only (no special tokens, no item or user tokens), as the paper. By
default also only pieces that occur in the RLM's training texts: a from-scratch RLM never updated the
embeddings of the others, and a search run on such a model picked those random vectors (calibration).
"""

from __future__ import annotations

import numpy as np

from pap_rec_core.data.interactions import InteractionData
from pap_rec_core.rlm.tokenizer import RecTokenizer


def trained_token_mask(tokenizer: RecTokenizer, data: InteractionData) -> np.ndarray:
    """(vocab,) True for pieces that occur in the training texts of an RLM trained here on ``data``."""
    from pap_rec_core.rlm.samples import tokenizer_corpus

    mask = np.zeros(tokenizer.vocab_size, dtype=bool)
    for text in set(tokenizer_corpus(data)):
        mask[tokenizer.encode_text(text)] = True
    return mask


def allowed_token_mask(tokenizer: RecTokenizer, data: InteractionData | None = None,
                       exclude_untrained: bool = True) -> np.ndarray:
    """(vocab,) bool mask of the tokens slots may hold."""
    mask = tokenizer.word_initial_mask()
    if exclude_untrained and data is not None:
        mask &= trained_token_mask(tokenizer, data)
    if not mask.any():
        raise ValueError("no token is allowed in the prompt slots")
    return mask
