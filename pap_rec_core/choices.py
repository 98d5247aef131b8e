"""The named choices of the configs, each a string enum: a member equals, hashes, prints, formats and
serialises (JSON) as its value, so ``config.task == "direct"`` holds, traces written before these enums
read back unchanged, and a typo fails at construction with the valid values named. One module, imported
by every layer (it imports nothing of the package)."""

from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum as _StrEnum
else:  # Python 3.10: the same behaviour by hand (str() and format() give the value)
    class _StrEnum(str, Enum):
        __str__ = str.__str__
        __format__ = str.__format__


class Choice(_StrEnum):
    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class Task(Choice):
    SEQUENTIAL = "sequential"  # next item over the full catalogue
    DIRECT = "direct"  # the next item among 1 positive + n fixed negatives
    EXPLANATION = "explanation"  # a review sentence for a user and an item (datasets with review text)


class Surrogate(Choice):
    BEAM = "beam"  # the paper: NDCG@5 + HR@5 of a 20-beam list
    EXACT = "exact"  # NDCG@5 + HR@5 from exact ranks
    NDCG = "ndcg"  # NDCG of the full ranking, no cut-off
    LIKELIHOOD = "likelihood"  # the target's log-likelihood
    BLEU_ROUGE = "bleu-rouge"  # explanation: smoothed BLEU-4 + 0.1 ROUGE-L per pair


class Ranking(Choice):
    FIRST_TOKEN = "first-token"  # one decoder step (single-token items)
    EXACT = "exact"  # the whole item's sequence likelihood


class PersonalRule(Choice):
    STRICT = "strict"  # the paper: a user's token changes only when their surrogate improves
    LIKELIHOOD_TIEBREAK = "likelihood-tiebreak"  # ours: among equal surrogate values the higher likelihood wins
