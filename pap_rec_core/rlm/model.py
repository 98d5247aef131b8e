"""The recommendation language model: T5 encoder-decoder plus P5's whole-word embeddings.

We compose transformers' ``T5ForConditionalGeneration`` rather than fork it: the encoder input is
``shared(input_ids) + whole_word_embeddings(whole_word_ids)``, passed as ``inputs_embeds``, so that
gradients with respect to the input token embeddings (what PAP-REC's search needs) are natural.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from pap_rec_core.configs import known_fields
from pap_rec_core.rlm.tokenizer import MAX_WHOLE_WORDS, PAD_ID


@dataclass(frozen=True)
class RLMConfig:
    """Architecture of the RLM (a small T5). Saved inside every checkpoint (``config.json``).

    Example::

        model = RecLM(RLMConfig(vocab_size=tok.vocab_size))   # ~2M parameters with the defaults
    """

    vocab_size: int
    d_model: int = 128
    d_ff: int = 512
    d_kv: int = 32  # per-head dimension; num_heads * d_kv need not equal d_model in T5
    num_heads: int = 4
    num_layers: int = 2  # encoder
    num_decoder_layers: int = 2
    dropout_rate: float = 0.1
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    feed_forward_proj: str = "relu"  # t5-small (P5's backbone) uses relu
    tie_word_embeddings: bool = True  # t5-small: lm_head tied to the shared embeddings
    max_whole_words: int = MAX_WHOLE_WORDS
    whole_word_embeddings: bool = True  # add P5's whole-word embeddings to the encoder input

    def __post_init__(self) -> None:
        if self.vocab_size < 4:
            raise ValueError("vocab_size must be >= 4 (pad, eos, unk and at least one piece)")
        for name in ("d_model", "d_ff", "d_kv", "num_heads", "num_layers", "num_decoder_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RLMConfig":
        return cls(**known_fields(cls, d))

    def t5_config(self):
        from transformers import T5Config

        from pap_rec_core.rlm.attention import register

        return T5Config(
            attn_implementation=register(),  # transformers' SDPA (see pap_rec_core.rlm.attention)
            vocab_size=self.vocab_size, d_model=self.d_model, d_ff=self.d_ff, d_kv=self.d_kv,
            num_heads=self.num_heads, num_layers=self.num_layers, num_decoder_layers=self.num_decoder_layers,
            dropout_rate=self.dropout_rate, relative_attention_num_buckets=self.relative_attention_num_buckets,
            relative_attention_max_distance=self.relative_attention_max_distance,
            feed_forward_proj=self.feed_forward_proj, tie_word_embeddings=self.tie_word_embeddings,
            pad_token_id=PAD_ID, eos_token_id=1, decoder_start_token_id=PAD_ID,
        )


class RecLM(nn.Module):
    """T5 + whole-word embeddings. Tensors: ``input_ids``/``whole_word_ids``/``attention_mask`` (B, T).

    ``state_dict`` keys: ``t5.<T5ForConditionalGeneration key>`` and ``whole_word_embeddings.weight``
    (P5's ``encoder.whole_word_embeddings.weight``; see :mod:`pap_rec_core.rlm.checkpoint`).
    """

    def __init__(self, config: RLMConfig):
        super().__init__()
        from transformers import T5ForConditionalGeneration

        self.config = config
        self.t5 = T5ForConditionalGeneration(config.t5_config())
        self.whole_word_embeddings = nn.Embedding(config.max_whole_words, config.d_model)
        nn.init.normal_(self.whole_word_embeddings.weight, std=1.0)  # as T5's shared embeddings
        if config.feed_forward_proj == "relu":  # the same values, without a fresh (B, T, d_ff) output per layer
            for stack in (self.t5.encoder, self.t5.decoder):
                for block in stack.block:
                    block.layer[-1].DenseReluDense.act = nn.ReLU(inplace=True)

    @property
    def token_embeddings(self) -> nn.Embedding:
        return self.t5.shared

    def embed(self, input_ids: torch.Tensor, whole_word_ids: torch.Tensor | None) -> torch.Tensor:
        """(B, T, D) encoder input embeddings."""
        x = self.t5.shared(input_ids)  # (B, T, D)
        if whole_word_ids is not None and self.config.whole_word_embeddings:
            x = x + self.whole_word_embeddings(whole_word_ids.clamp(max=self.config.max_whole_words - 1))
        return x

    def encode(self, attention_mask: torch.Tensor, input_ids: torch.Tensor | None = None,
               whole_word_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) encoder hidden states; pass ``inputs_embeds`` to differentiate w.r.t. embeddings."""
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids, whole_word_ids)
        return self.t5.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state

    def encode_batch(self, batch) -> torch.Tensor:
        """(B, T, D) encoder states of an :class:`~pap_rec_core.rlm.batching.EncodedBatch` (its ``hidden``
        when the caller computed them)."""
        if batch.hidden is not None:
            return batch.hidden
        return self.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)

    def forward(self, attention_mask: torch.Tensor, labels: torch.Tensor | None = None,
                input_ids: torch.Tensor | None = None, whole_word_ids: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, decoder_input_ids: torch.Tensor | None = None):
        """Seq2seq forward; ``labels`` (B, L) with -100 on padding gives ``.loss`` (mean token CE)."""
        from transformers.modeling_outputs import BaseModelOutput

        hidden = self.encode(attention_mask, input_ids, whole_word_ids, inputs_embeds)
        return self.t5(encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=attention_mask,
                       labels=labels, decoder_input_ids=decoder_input_ids)

    def num_parameters(self) -> int:
        seen, total = set(), 0
        for p in self.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
        return total
