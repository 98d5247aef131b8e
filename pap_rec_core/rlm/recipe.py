"""The training recipe of the RLMs trained here: ``TrainConfig`` (every knob of a training run, frozen and
validated), the ``RECIPE`` the ablation ladder supports and the named ``PRESETS`` (``demo``, ``full``,
``tiny``). ``rlm.training`` runs a config; ``rlm.samples`` reads one to build samples."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pap_rec_core.configs import known_fields
from pap_rec_core.prompts.templates import Family, get_template
from pap_rec_core.rlm.item_init import ItemInit
from pap_rec_core.rlm.model import RLMConfig
from pap_rec_core.rlm.tokenizer import P5_ITEM_SEPARATOR


@dataclass(frozen=True)
class TrainConfig:
    """How to train an RLM. ``preset(name)`` gives the named presets; every field is saved with the model."""

    preset: str = "custom"
    seed: int = 0
    max_steps: int = 3000  # optimisation steps (deterministic budget)
    time_limit_s: float | None = None  # safety stop; a run stopped by it is resumable
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 200
    grad_clip: float = 1.0
    family_weights: tuple[tuple[str, float], ...] = (
        ("sequential", 0.5), ("history", 0.2), ("direct", 0.05), ("rating", 0.1), ("metadata", 0.15),
        ("explanation", 0.1))
    max_history: int = 20
    direct_candidates: int = 100  # 1 positive + 99 negatives, as P5
    sequential_candidates: int = 20  # for the candidate-list sequential templates (2-7 ... 2-10)
    sp_vocab_size: int = 2000
    item_tokens: bool = True
    user_tokens: bool = True
    d_model: int = 128
    d_ff: int = 512
    d_kv: int = 32
    num_heads: int = 4
    num_layers: int = 2
    num_decoder_layers: int = 2
    dropout_rate: float = 0.0  # on CPU, attention dropout (bernoulli) was ~40% of the forward time
    eval_every: int = 500  # steps between validation checks (template 2-3, exact first-token ranking)
    patience: int | None = None  # stop after this many validations without improvement (None: never)
    # sequential samples: the user's earlier items get no probability in the loss (the evaluation masks
    # them), so the model is not trained to spend its mass on items it will never be credited for
    mask_history_loss: bool = False
    label_smoothing: float = 0.0  # of the token cross-entropy (0: T5's loss)
    # the first keyinfo_steps steps train the key info alone (history -> next item, template B-1: no
    # words, short prompts, ~2x the samples/s on ml-100k), the rest the families and templates below;
    # with a time limit, the key-info phase also ends at its share of it (keyinfo_steps / max_steps)
    keyinfo_steps: int = 0
    # two_phase: the key-info phase is a training of its own (warm-up and cosine decay over keyinfo_steps,
    # its best weights chosen by the key info's validation, B-1); the word phase then starts from those
    # weights with a fresh AdamW state, word_learning_rate, word_warmup_steps and a cosine to max_steps, and
    # the model is chosen among its validations (select_prompt). False: one schedule over both phases.
    two_phase: bool = False
    # this share of the key-info phase's samples asks a bare conditional question instead (C-2: the key info
    # and a genre, C-7: the key info and a title word; those the dataset has): still short prompts, and a
    # word that changes the answer from the start. 0: the key info alone.
    keyinfo_conditional: float = 0.0
    word_learning_rate: float | None = None  # the word phase's learning rate (None: learning_rate)
    word_warmup_steps: int = 50
    # restrict training to these template ids (a family none of them belongs to: all its seen templates)
    templates: tuple[str, ...] = ()
    position_sampling: str = "position"  # position: every training position alike (SASRec) | user: users alike
    recency_half_life: float | None = None  # positions k steps before a sequence's end weigh 0.5**(k/h)
    item_separator: str = P5_ITEM_SEPARATOR  # between the items of a list ("" for none: ladder only)
    whole_word_embeddings: bool = True  # P5's encoder input; False: token embeddings alone
    whole_word_init_std: float = 1.0  # P5/T5: N(0, 1)
    item_init: str = ItemInit.TRANSITION_SVD.value  # item token embeddings at step 0 (rlm/item_init.py)
    lr_schedule: str = "cosine"  # after the warm-up: cosine decay to 0 at max_steps | constant
    select_prompt: str = "manual:2-3"  # the prompt whose validation NDCG@10 (first-token) selects the model
    keep: str = "best"  # the weights saved: best (by validation) | last
    eval_users: int = 2000  # model selection: a seeded sample of at most this many validation users
    checkpoint_every_s: float = 120.0
    device: str = "auto"
    threads: int | None = None  # torch intra-op threads (None: torch's default)

    def __post_init__(self) -> None:
        object.__setattr__(self, "family_weights", tuple((str(k), float(v)) for k, v in self.family_weights))
        known = {f.value for f in Family}
        for name, _ in self.family_weights:
            if name not in known:
                raise ValueError(f"unknown task family {name!r}; known: {sorted(known)}")
        if self.max_steps < 1 or self.batch_size < 1:
            raise ValueError("max_steps and batch_size must be >= 1")
        if not 0 <= self.keyinfo_steps <= self.max_steps:
            raise ValueError(f"keyinfo_steps must be in [0, max_steps={self.max_steps}]; got {self.keyinfo_steps}")
        if self.two_phase and not 0 < self.keyinfo_steps < self.max_steps:
            raise ValueError("two_phase needs 0 < keyinfo_steps < max_steps (steps in both phases); "
                             f"got keyinfo_steps={self.keyinfo_steps}, max_steps={self.max_steps}")
        if self.word_learning_rate is not None and not self.word_learning_rate > 0:
            raise ValueError(f"word_learning_rate must be > 0 (or None); got {self.word_learning_rate}")
        if not 0.0 <= self.keyinfo_conditional < 1.0:
            raise ValueError(f"keyinfo_conditional must be in [0, 1); got {self.keyinfo_conditional}")
        if self.word_warmup_steps < 0:
            raise ValueError(f"word_warmup_steps must be >= 0; got {self.word_warmup_steps}")
        if self.mask_history_loss and not self.item_tokens:
            raise ValueError("mask_history_loss needs single-token items (item_tokens=True)")
        object.__setattr__(self, "templates", tuple(str(t) for t in self.templates))
        for t in self.templates:
            if not get_template(t).seen and t != "B-1":  # (B-1: the key info alone, a diagnostic)
                raise ValueError(f"template {t} is held out as unseen (it measures generalisation); "
                                 "it cannot be trained on")
        kind, _, ident = self.select_prompt.partition(":")
        if kind != "manual" or not ident:
            raise ValueError(f"select_prompt must be manual:ID (e.g. manual:2-3); got {self.select_prompt!r}")
        get_template(ident)
        ItemInit(self.item_init)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); got {self.label_smoothing}")
        if self.label_smoothing and self.mask_history_loss:
            raise ValueError("label_smoothing cannot be combined with mask_history_loss (masked logits are -inf)")
        if self.recency_half_life is not None and not self.recency_half_life > 0:
            raise ValueError(f"recency_half_life must be > 0 (or None); got {self.recency_half_life}")
        choices = {"position_sampling": ("position", "user"), "lr_schedule": ("cosine", "constant"),
                   "keep": ("best", "last")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")

    def rlm_config(self, vocab_size: int) -> RLMConfig:
        return RLMConfig(vocab_size=vocab_size, d_model=self.d_model, d_ff=self.d_ff, d_kv=self.d_kv,
                         num_heads=self.num_heads, num_layers=self.num_layers,
                         num_decoder_layers=self.num_decoder_layers, dropout_rate=self.dropout_rate,
                         whole_word_embeddings=self.whole_word_embeddings)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["family_weights"] = [list(x) for x in self.family_weights]
        d["templates"] = list(self.templates)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = known_fields(cls, d)
        if "family_weights" in d:
            d["family_weights"] = tuple(tuple(x) for x in d["family_weights"])
        if "templates" in d:
            d["templates"] = tuple(d["templates"])
        return cls(**d)


# The recipe of the RLMs trained here (benchmarks/results/rlm_ladder_ml-100k.md and rlm_probes_ml-100k.json
# explain each part): item embeddings from training transitions; a small T5 (d_model 64, dropout 0.1); two
# phases. The key-info phase (history -> next item, template B-1: short prompts, fast) is a training of its
# own: AdamW 2e-3, warm-up and cosine decay over its steps, its best weights chosen by its own validation.
# The word phase starts from them: P5's sequential templates 2-1 ... 2-6, conditional questions whose
# answer depends on a word (C-1/C-2: the next item of a named genre; C-6/C-7: the next item with a named
# title word) and a little direct recommendation (5-5 ... 5-7), AdamW 5e-4 with its own warm-up and cosine;
# the model is its best validation checkpoint (manual 2-3). No user tokens, no whole-word embeddings, no
# " , " between items (each was neutral or a cost in the ladder; fewer parameters on large datasets).
RECIPE: dict[str, Any] = dict(
    batch_size=256, d_model=64, d_ff=256, d_kv=16, num_heads=4, num_layers=2, num_decoder_layers=2,
    dropout_rate=0.1, learning_rate=2e-3, warmup_steps=100, lr_schedule="cosine", keep="best",
    two_phase=True, word_learning_rate=5e-4, word_warmup_steps=50,
    family_weights=(("sequential", 0.35), ("conditional", 0.6), ("direct", 0.05)),
    templates=("2-1", "2-2", "2-3", "2-4", "2-5", "2-6", "C-1", "C-2", "C-6", "C-7", "5-5", "5-6", "5-7"),
    item_separator="", user_tokens=False, whole_word_embeddings=False, item_init=ItemInit.TRANSITION_SVD.value,
)

PRESETS: dict[str, dict[str, Any]] = {
    # The workbench's cold start: < 15 minutes on a 2-core CPU (see benchmarks/results/rlm_ml-100k_demo.md).
    "demo": dict(RECIPE, max_steps=3200, keyinfo_steps=2400, eval_every=200, time_limit_s=14 * 60),
    # The committed embedded model (models/ml-100k): ~35 minutes on one thread of the 2-core CPU.
    "full": dict(RECIPE, max_steps=9000, keyinfo_steps=8000, eval_every=200, time_limit_s=110 * 60),
    # For tests: seconds.
    "tiny": dict(max_steps=30, batch_size=8, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1,
                 num_decoder_layers=1, sp_vocab_size=200, eval_every=15, eval_users=20, warmup_steps=5,
                 checkpoint_every_s=0.0),
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """The named preset with ``overrides``. Overriding ``max_steps`` alone keeps the key-info phase's share
    of the steps (e.g. ``demo`` at 400 steps: 300 key-info steps), so that a shorter run still has both
    phases."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    fields = {**PRESETS[name], **overrides}
    base = PRESETS[name]
    if "max_steps" in overrides and "keyinfo_steps" not in overrides and base.get("keyinfo_steps"):
        steps = fields["max_steps"]
        keyinfo = int(round(base["keyinfo_steps"] / base["max_steps"] * steps))
        if fields.get("two_phase") and steps < 2:
            fields["two_phase"], keyinfo = False, 0  # (one step cannot have two phases)
        elif fields.get("two_phase"):
            keyinfo = min(max(keyinfo, 1), steps - 1)  # (steps in both phases)
        fields["keyinfo_steps"] = keyinfo
    return TrainConfig(preset=name, **fields)
