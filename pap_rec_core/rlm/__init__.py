"""The recommendation language model: tokenizer, T5 + whole-word embeddings, checkpoints, ranking, training."""

from pap_rec_core.rlm.checkpoint import (
    CheckpointMismatchError,
    RLMBundle,
    embedded_model_dir,
    load_p5_checkpoint,
    load_rlm,
    load_rlm_with_split,
    pick_device,
    save_rlm,
)
from pap_rec_core.prompts.parts import ItemRef, TokenRef, UserRef
from pap_rec_core.rlm.model import RecLM, RLMConfig
from pap_rec_core.rlm.tokenizer import EOS_ID, PAD_ID, UNK_ID, RecTokenizer, train_sentencepiece

__all__ = [
    "CheckpointMismatchError", "EOS_ID", "ItemRef", "PAD_ID", "RLMBundle", "RLMConfig", "RecLM", "RecTokenizer",
    "TokenRef", "UNK_ID", "UserRef", "embedded_model_dir", "load_p5_checkpoint", "load_rlm", "load_rlm_with_split",
    "pick_device", "save_rlm", "train_sentencepiece",
]
