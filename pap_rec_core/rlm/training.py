"""Training the embedded RLM from scratch, P5-style: multitask and multi-template.

A model trained on one template learns to ignore its prompt (our calibration: removing every template
word scored the same), which leaves PAP-REC nothing to find. So, as P5 does, every step mixes task
families (sequential, direct, rating, item metadata, explanation where reviews exist) and, within a
family, all *seen* templates; unseen templates (2-13, 5-8) are held out to measure generalisation.

Runs are seeded, checkpointed every few minutes (``train_state.pt``) and resumable: rerunning the same
command continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from pap_rec_core.configs import known_fields
from pap_rec_core.data.interactions import InteractionData
from pap_rec_core.data.item_index import ItemIndex
from pap_rec_core.data.split import Split
from pap_rec_core.prompts.render import render_text, truncate_history
from pap_rec_core.prompts.templates import TEMPLATES, Family, Template, templates_of
from pap_rec_core.rlm.checkpoint import RLMBundle, pick_device, save_rlm
from pap_rec_core.rlm.model import RecLM, RLMConfig
from pap_rec_core.rlm.ranking import EncodedBatch, collate, pad_labels
from pap_rec_core.rlm.tokenizer import RecTokenizer, train_sentencepiece

log = logging.getLogger(__name__)

STATE_FILE = "train_state.pt"
FUTURE_WINDOW = 10  # "some time in the future" (template H-4): one of the next 10 training items


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
    eval_users: int = 943  # validation users used for model selection
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
        if self.mask_history_loss and not self.item_tokens:
            raise ValueError("mask_history_loss needs single-token items (item_tokens=True)")

    def rlm_config(self, vocab_size: int) -> RLMConfig:
        return RLMConfig(vocab_size=vocab_size, d_model=self.d_model, d_ff=self.d_ff, d_kv=self.d_kv,
                         num_heads=self.num_heads, num_layers=self.num_layers,
                         num_decoder_layers=self.num_decoder_layers, dropout_rate=self.dropout_rate)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["family_weights"] = [list(x) for x in self.family_weights]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = known_fields(cls, d)
        if "family_weights" in d:
            d["family_weights"] = tuple(tuple(x) for x in d["family_weights"])
        return cls(**d)


PRESETS: dict[str, dict[str, Any]] = {
    # Fits in 15 minutes on a 2-core CPU for ml-100k (see benchmarks/results/rlm_*.md).
    "demo": dict(max_steps=2000, time_limit_s=14 * 60, eval_every=400),
    # The committed embedded model (models/ml-100k): 128 samples per step, dropout 0.2, early stopping
    # after 3 validations (750 steps) without improvement — measured, validation NDCG@10 peaks after
    # ~64k samples and then falls while the training loss keeps falling (without dropout too: 0.0383
    # at step 500, 0.0276 at step 2000). About 30 minutes on the 2-core CPU; at most ~70.
    "full": dict(max_steps=3000, batch_size=128, learning_rate=3e-3, dropout_rate=0.2, time_limit_s=110 * 60,
                 eval_every=250, patience=3),
    # For tests: seconds.
    "tiny": dict(max_steps=30, batch_size=8, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1,
                 num_decoder_layers=1, sp_vocab_size=200, eval_every=15, eval_users=20, warmup_steps=5,
                 checkpoint_every_s=0.0),
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return TrainConfig(preset=name, **{**PRESETS[name], **overrides})


# ----------------------------------------------------------------------------------------------------
# Tokenizer and training samples


def tokenizer_corpus(data: InteractionData) -> list[str]:
    """Text the demo SentencePiece model is trained on: template words, titles, genres, numbers."""
    corpus = []
    for t in TEMPLATES:
        text = t.source
        for name in t.fields:
            text = text.replace("{" + name + "}", " ")
        corpus.extend([text] * 20)
    corpus.extend(str(r) for r in range(0, 11))
    if data.item_info is not None:
        for col in ("title", "genres"):
            if col in data.item_info:
                corpus.extend(str(v) for v in data.item_info[col].dropna().tolist())
    reviews = train_reviews(data.reviews)
    if reviews is not None:
        corpus.extend(str(t) for t in reviews["text"].dropna().tolist()[:200_000])
    return corpus


def build_tokenizer(data: InteractionData, index: ItemIndex, config: TrainConfig) -> RecTokenizer:
    sp = train_sentencepiece(tokenizer_corpus(data), vocab_size=config.sp_vocab_size)
    return RecTokenizer(sp, index.texts, list(data.user_ids), item_tokens=config.item_tokens,
                        user_tokens=config.user_tokens)


class SampleBuilder:
    """Draws (prompt parts, target token ids) training samples from the *training* split only."""

    def __init__(self, split: Split, tokenizer: RecTokenizer, config: TrainConfig, rng: random.Random):
        self.split, self.tok, self.config, self.rng = split, tokenizer, config, rng
        data = split.data
        self.n_items = data.n_items
        self.titles = data.item_titles()
        self.genres = None if data.item_info is None or "genres" not in data.item_info else data.item_info["genres"].to_numpy()
        self.users = [u for u, items in enumerate(split.train) if len(items) >= 2]
        self.users_any = [u for u, items in enumerate(split.train) if len(items) >= 1]
        self.users_later = [u for u, items in enumerate(split.train) if len(items) >= 3]
        self.seen_items = [set(split.data.sequences[u].tolist()) for u in range(data.n_users)]
        self.ratings = data.ratings
        families = dict(config.family_weights)
        self.reviews = train_reviews(data.reviews)
        available = {
            Family.SEQUENTIAL: bool(self.users),
            Family.HISTORY: bool(self.users),
            Family.DIRECT: bool(self.users_any),
            Family.RATING: data.ratings is not None,
            Family.METADATA: self.titles is not None,
            Family.EXPLANATION: self.reviews is not None,  # without titles the {title} field is empty
        }
        self.families = [Family(f) for f, w in families.items() if w > 0 and available[Family(f)]]
        self.templates = {f: [t for t in templates_of(f, seen=True) if self._usable(t)] for f in self.families}
        self.families = [f for f in self.families if self.templates[f]]
        self.weights = [families[f.value] for f in self.families]
        if not self.families:
            raise ValueError("no task family can be trained on this dataset")

    def _usable(self, t: Template) -> bool:
        needs = set(t.fields) | {f for f in ("title", "genres") if "{" + f + "}" in t.target}
        if "title" in needs and self.titles is None and t.family is not Family.EXPLANATION:
            return False  # (an explanation prompt without titles shows an empty title: the review is the point)
        if t.target in ("{after_next}", "{future}") and not self.users_later:
            return False
        return not ("genres" in needs and self.genres is None)

    def _negatives(self, user: int, n: int, exclude_item: int) -> list[int]:
        """``n`` distinct items the user never interacted with (fewer when fewer exist)."""
        seen, out = self.seen_items[user], set()
        unseen = self.n_items - len(seen | {exclude_item})
        if n >= unseen // 2:  # small catalogue: draw from the explicit pool (never loops forever)
            pool = [j for j in range(self.n_items) if j not in seen and j != exclude_item]
            return self.rng.sample(pool, min(n, len(pool)))
        while len(out) < n:
            j = self.rng.randrange(self.n_items)
            if j not in seen and j != exclude_item:
                out.add(j)
        return list(out)

    def sample_family(self) -> Family:
        return self.rng.choices(self.families, weights=self.weights)[0]

    def batch(self, size: int) -> list[tuple[list, tuple[int, ...], str]]:
        """One family and template per batch: prompts of one template have similar lengths, so padding
        stays small (direct prompts list 100 candidates; plain sequential ones 20 history items).
        ``self.batch_history`` then holds, per sample, the items before a sequential target (else None)."""
        family = self.sample_family()
        template = self.rng.choice(self.templates[family])
        out, self.batch_history = [], []
        for _ in range(size):
            out.append(self.sample(family, template))
            self.batch_history.append(self._history)
        return out

    def sample(self, family: Family | None = None, template: Template | None = None) -> tuple[list, tuple[int, ...], str]:
        family = family or self.sample_family()
        template = template or self.rng.choice(self.templates[family])
        values: dict[str, Any] = {}
        target_item: int | None = None
        target_text: str | None = None
        self._history = None
        if family is Family.SEQUENTIAL:
            user = self.rng.choice(self.users)
            train = self.split.train[user]
            t = self.rng.randrange(1, len(train))
            target_item = int(train[t])
            self._history = train[:t]
            values.update(user=user, history=truncate_history(train[:t], self.config.max_history))
            if "candidates" in template.fields:
                cands = self._negatives(user, self.config.sequential_candidates - 1, target_item) + [target_item]
                self.rng.shuffle(cands)
                values["candidates"] = cands
        elif family is Family.HISTORY:
            user = self.rng.choice(self.users)
            train = self.split.train[user]
            if template.target in ("{first}", "{last}"):  # about the shown history (at least 2 items)
                history = truncate_history(train[: self.rng.randrange(2, len(train) + 1)], self.config.max_history)
                target_item = int(history[0] if template.target == "{first}" else history[-1])
            else:  # about a later item: the one after next, or any of the next FUTURE_WINDOW
                user = self.rng.choice(self.users_later)
                train = self.split.train[user]
                t = self.rng.randrange(1, len(train) - 1)
                history = truncate_history(train[:t], self.config.max_history)
                target_item = int(train[t + 1] if template.target == "{after_next}"
                                  else self.rng.choice(list(train[t : t + FUTURE_WINDOW])))
            values.update(user=user, history=history)
        elif family is Family.DIRECT:
            user = self.rng.choice(self.users_any)
            target_item = int(self.rng.choice(list(self.split.train[user])))
            cands = self._negatives(user, self.config.direct_candidates - 1, target_item) + [target_item]
            self.rng.shuffle(cands)
            values.update(user=user, candidates=cands)
        elif family is Family.RATING:
            user = self.rng.choice(self.users_any)
            pos = self.rng.randrange(len(self.split.train[user]))
            item = int(self.split.train[user][pos])
            rating = self.ratings[user][pos]
            values.update(user=user, item=item, title=self._title(item))
            target_text = f"{rating:g}"
        elif family is Family.METADATA:
            item = self.rng.randrange(self.n_items)
            values.update(item=item, title=self._title(item), genres=self._genres(item))
            if template.target == "{item}":
                target_item = item
            else:
                target_text = values[template.target.strip("{}")]
        else:  # explanation
            reviews = self.reviews
            row = reviews.iloc[self.rng.randrange(len(reviews))]
            values.update(user=int(row["user"]), item=int(row["item"]), title=self._title(int(row["item"])),
                          rating=f"{row['rating']:g}")
            target_text = str(row["text"])
        parts = render_text(template.source, **{k: v for k, v in values.items() if k in template.fields})
        if target_item is not None:
            target = self.tok.item_target_ids(target_item)
        else:
            target = self.tok.text_target_ids(target_text or "")
        return parts, target, template.id

    def _title(self, item: int) -> str:
        return "" if self.titles is None else str(self.titles[item])

    def _genres(self, item: int) -> str:
        return "" if self.genres is None else str(self.genres[item])


def train_reviews(reviews):
    """The reviews the explanation family trains on: P5's ``train`` split (never validation/test, which
    the explanation evaluation holds out); None when there are none."""
    if reviews is None:
        return None
    rows = reviews[reviews["split"] == "train"] if "split" in reviews else reviews
    return rows if len(rows) else None


def history_masked_loss(logits: torch.Tensor, labels: torch.Tensor, histories: list, tok: RecTokenizer) -> torch.Tensor:
    """Mean token cross-entropy (as T5's) with the first decoder step's logits of each sample's history
    items (``histories[row]``, item indices; None: no mask) set to -inf; the target itself is never in
    its own history prefix."""
    first = logits[:, 0, :].float()  # (B, V)
    mask = torch.zeros_like(first, dtype=torch.bool)
    for row, hist in enumerate(histories):
        if hist is not None and len(hist):
            ids = torch.as_tensor([tok.item_token(int(i)) for i in hist], device=first.device)
            mask[row, ids] = True
            mask[row, labels[row, 0]] = False  # never mask the answer (a repeated item)
    logits = torch.cat([first.masked_fill(mask, float("-inf"))[:, None], logits[:, 1:].float()], dim=1)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                             ignore_index=-100)


def make_batch(samples: list[tuple[list, tuple[int, ...], str]], tok: RecTokenizer) -> tuple[EncodedBatch, torch.Tensor]:
    return collate([tok.encode_parts(p) for p, _, _ in samples]), pad_labels([t for _, t, _ in samples])


# ----------------------------------------------------------------------------------------------------
# The training loop


@dataclass
class TrainReport:
    steps: int
    wall_s: float
    samples_per_s: float
    best_step: int
    best_valid_ndcg10: float
    curve: list[dict[str, float]] = field(default_factory=list)
    stopped_by: str = "max_steps"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _autocast(device: torch.device):
    """bf16 autocast where the hardware has native bf16 (CUDA with bf16, CPUs with AVX512-BF16/AMX)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    cap = torch.backends.cpu.get_cpu_capability()
    if device.type == "cpu" and ("AMX" in cap or "BF16" in cap):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    import contextlib

    return contextlib.nullcontext()


# May change on resume: they decide where a run stops or where it runs, not what it computes before.
RUNTIME_FIELDS = ("time_limit_s", "checkpoint_every_s", "device", "threads", "patience")


def _resume_key(config: dict[str, Any]) -> dict[str, Any]:
    config = TrainConfig.from_dict(config).to_dict()  # fields added later take their defaults
    return {k: v for k, v in config.items() if k not in RUNTIME_FIELDS}


def train_rlm(split: Split, index: ItemIndex, config: TrainConfig, out_dir: str | Path, *,
              dataset_config: dict[str, Any] | None = None, progress: bool = True,
              validate: Callable[[RecLM, RecTokenizer], float] | None = None,
              on_step: Callable[[int, int, float], None] | None = None) -> tuple[RLMBundle, TrainReport]:
    """Train (or resume) an RLM on ``split``'s training items; save the best model (by validation
    NDCG@10 of ``validate``) to ``out_dir``. Returns the saved bundle and a report. ``on_step(step,
    max_steps, running_loss)`` is called after every step (a progress bar in the app)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index.check_matches(split.data)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    tok = build_tokenizer(split.data, index, config)
    model = RecLM(config.rlm_config(tok.vocab_size)).to(device)
    builder = SampleBuilder(split, tok, config, rng)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)

    def lr_at(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress_ = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress_)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    if validate is None:
        from pap_rec_core.rlm.evaluate import validation_ndcg10

        def validate(m: RecLM, t: RecTokenizer) -> float:
            return validation_ndcg10(m, t, split, n_users=config.eval_users, max_history=config.max_history)

    state_path = out_dir / STATE_FILE
    step, elapsed, best, best_step, curve = 0, 0.0, -1.0, 0, []
    best_state: dict[str, torch.Tensor] | None = None
    if state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=True)
        if _resume_key(state["config"]) != _resume_key(config.to_dict()):
            diff = sorted(k for k, v in _resume_key(config.to_dict()).items() if state["config"].get(k) != v)
            raise ValueError(f"{state_path} was written with another configuration (differs in {', '.join(diff)}); "
                             "use another --out or delete it")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rng.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        step, elapsed, best, best_step, curve = state["step"], state["elapsed"], state["best"], state["best_step"], state["curve"]
        best_state = state["best_state"]
        log.info("resuming from step %d (%.0f s already trained)", step, elapsed)

    def save_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"config": config.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "python_rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
                    "step": step, "elapsed": elapsed, "best": best, "best_step": best_step, "curve": curve,
                    "best_state": best_state}, tmp)
        tmp.replace(state_path)

    stopped_by = "max_steps"
    start_clock, last_ckpt = time.perf_counter() - elapsed, time.perf_counter()
    bar = tqdm(total=config.max_steps, initial=step, desc="train RLM", disable=not progress, unit="step")
    running = None
    model.train()

    def out_of_patience() -> bool:
        return bool(config.patience) and sum(c["step"] > best_step for c in curve) >= config.patience

    step_limit = step if out_of_patience() else config.max_steps  # a resumed run may have waited enough
    while step < step_limit:
        samples = builder.batch(config.batch_size)
        batch, labels = make_batch(samples, tok)
        batch, labels = batch.to(device), labels.to(device)
        with _autocast(device):
            out = model(batch.attention_mask, labels=labels, input_ids=batch.input_ids,
                        whole_word_ids=batch.whole_word_ids)
            loss = out.loss if not config.mask_history_loss else history_masked_loss(
                out.logits, labels, builder.batch_history, tok)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        sched.step()
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.3f}", best=f"{best:.4f}")
        if on_step is not None:
            on_step(step, config.max_steps, running)
        elapsed = time.perf_counter() - start_clock
        if step % config.eval_every == 0 or step == config.max_steps:
            model.eval()
            score = validate(model, tok)
            model.train()
            curve.append({"step": step, "loss": running, "valid_ndcg@10": score, "elapsed_s": elapsed})
            if score > best:
                best, best_step = score, step
                best_state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
            if out_of_patience():
                stopped_by = "patience"
                break
        if config.checkpoint_every_s and time.perf_counter() - last_ckpt > config.checkpoint_every_s:
            save_state()
            last_ckpt = time.perf_counter()
        if config.time_limit_s is not None and elapsed > config.time_limit_s:
            stopped_by = "time_limit"
            break
    bar.close()
    if step_limit < config.max_steps:
        stopped_by = "patience"
    save_state()  # before any fallback below, so that a resumed run continues exactly
    if best_state is None:  # stopped before the first validation: save the current weights
        model.eval()
        best, best_step = validate(model, tok), step
        best_state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    report = TrainReport(steps=step, wall_s=elapsed, samples_per_s=step * config.batch_size / max(elapsed, 1e-9),
                         best_step=best_step, best_valid_ndcg10=best, curve=curve, stopped_by=stopped_by)
    trained = {t.id for f in builder.families for t in builder.templates[f]}
    metadata = {
        "dataset": {"name": split.data.name, "fingerprint": split.data.fingerprint(), "config": dataset_config},
        "split": split.config.to_dict(),
        "item_index": {"mode": index.mode.value, "seed": index.seed, "leaky": index.mode.leaky},
        "train_config": config.to_dict(),
        "templates_seen": [t.id for t in TEMPLATES if t.id in trained],  # the templates trained on
        "templates_unseen": [t.id for t in TEMPLATES if not t.seen],
        "train_report": report.to_dict(),
        "parameters": model.num_parameters(),
    }
    save_rlm(out_dir, model, tok, metadata)
    index.save(out_dir / "item_index.json")
    (out_dir / "train_report.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return RLMBundle(model=model, tokenizer=tok, metadata=metadata, path=str(out_dir)), report


def train_preset(dataset_config, preset_name: str, out_dir: str | Path, *, seed: int = 0, item_index: str = "random",
                 negatives: int = 99, progress: bool = True, on_step: Callable[[int, int, float], None] | None = None,
                 **overrides: Any) -> tuple[RLMBundle, TrainReport]:
    """Load a dataset (a ``DatasetConfig``), split it (leave-one-out, ``negatives`` per user), index its
    items and train a preset into ``out_dir`` (resumable): what ``pap-rec train-rlm`` and the
    workbench's cold start do."""
    from pap_rec_core.data import SplitConfig, build_item_index, leave_one_out, load_dataset

    data = load_dataset(dataset_config)
    split = leave_one_out(data, SplitConfig(n_negatives=negatives, seed=seed))
    index = build_item_index(data, item_index, seed=seed)
    config = preset(preset_name, seed=seed, **overrides)
    return train_rlm(split, index, config, out_dir, dataset_config=dataset_config.to_dict(), progress=progress,
                     on_step=on_step)
