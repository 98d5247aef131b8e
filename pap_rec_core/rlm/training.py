"""Training the embedded RLM from scratch, P5-style: history in the encoder, the item generated.

The recipe (``rlm.recipe.RECIPE``, used by the ``demo`` and ``full`` presets) is the one the ablation ladder
(``benchmarks/rlm_ladder.py``) supports: item embeddings initialised from training transitions
(:mod:`pap_rec_core.rlm.item_init`) and two phases: most steps on the key info alone (short prompts: fast),
a training of its own with its own schedule and best checkpoint; then, from its best weights, P5's
sequential templates with conditional questions (words that change the answer) and a little direct
recommendation. Any other mixture of task families (rating, item metadata, explanation, history
questions) and templates is a ``TrainConfig`` away; unseen templates (2-13, 5-8) are never trained on.

Runs are seeded, checkpointed every few minutes (``train_state.pt``) and resumable: rerunning the same
command continues where it stopped; a finished run keeps only a small state and returns its model.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from pap_rec_core.data.interactions import InteractionData
from pap_rec_core.data.item_index import ItemIndex
from pap_rec_core.data.split import Split
from pap_rec_core.prompts.templates import TEMPLATES
from pap_rec_core.rlm.checkpoint import RLMBundle, pick_device, save_rlm
from pap_rec_core.rlm.item_init import ItemInit, transition_svd_embeddings
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.recipe import TrainConfig, preset
from pap_rec_core.rlm.samples import SampleBuilder, make_batch, tokenizer_corpus
from pap_rec_core.rlm.tokenizer import RecTokenizer, train_sentencepiece

log = logging.getLogger(__name__)

STATE_FILE = "train_state.pt"


# ----------------------------------------------------------------------------------------------------
# Tokenizer


def build_tokenizer(data: InteractionData, index: ItemIndex, config: TrainConfig) -> RecTokenizer:
    sp = train_sentencepiece(tokenizer_corpus(data), vocab_size=config.sp_vocab_size)
    return RecTokenizer(sp, index.texts, list(data.user_ids), item_tokens=config.item_tokens,
                        user_tokens=config.user_tokens, item_separator=config.item_separator)


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
    keyinfo_steps: int = 0  # steps trained on the key info alone (fewer than configured: time share reached)
    keyinfo_best: dict[str, float] | None = None  # two_phase: the key-info phase's best step and validation (B-1)

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
    init_embeddings(model, tok, split, config)
    builder = SampleBuilder(split, tok, config, rng)
    keyinfo = SampleBuilder(split, tok, keyinfo_config(config), rng) if config.keyinfo_steps else None
    keyinfo_end = config.keyinfo_steps  # (read by the schedule: the time limit may end the key-info phase early)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(config, s, keyinfo_end))
    custom_validate = validate
    users = selection_users(split, config) if validate is None else None

    def score(prompt: str) -> float:
        """Validation NDCG@10 of the current weights with ``prompt`` (or the caller's ``validate``)."""
        if custom_validate is not None:
            return custom_validate(model, tok)
        from pap_rec_core.rlm.evaluate import validation_ndcg10

        return validation_ndcg10(model, tok, split, users=users, max_history=config.max_history, template=prompt)

    state_path = out_dir / STATE_FILE
    step, elapsed, best, best_step, curve = 0, 0.0, -1.0, 0, []
    word_phase = False  # two_phase: the word phase has started (from the key-info phase's best weights)
    keyinfo_best: dict[str, float] | None = None  # two_phase: the key-info phase's chosen step and validation
    best_state: dict[str, torch.Tensor] | None = None
    if state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=True)
        if _resume_key(state["config"]) != _resume_key(config.to_dict()):
            saved = _resume_key(state["config"])
            diff = sorted(k for k, v in _resume_key(config.to_dict()).items() if saved.get(k) != v)
            raise ValueError(f"{state_path} was written with another configuration (differs in {', '.join(diff)}); "
                             "use another --out or delete it")
        if state.get("finished"):
            return _finished_run(out_dir, device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rng.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        step, elapsed, best, best_step, curve = state["step"], state["elapsed"], state["best"], state["best_step"], state["curve"]
        best_state = state["best_state"]
        keyinfo_end = state.get("keyinfo_end", config.keyinfo_steps)
        word_phase, keyinfo_best = state.get("word_phase", False), state.get("keyinfo_best")
        log.info("resuming from step %d (%.0f s already trained)", step, elapsed)

    def save_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"config": config.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "python_rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
                    "step": step, "elapsed": elapsed, "best": best, "best_step": best_step, "curve": curve,
                    "best_state": best_state, "keyinfo_end": keyinfo_end, "word_phase": word_phase,
                    "keyinfo_best": keyinfo_best}, tmp)
        tmp.replace(state_path)

    stopped_by = "max_steps"
    start_clock, last_ckpt = time.perf_counter() - elapsed, time.perf_counter()
    bar = tqdm(total=config.max_steps, initial=step, desc="train RLM", disable=not progress, unit="step")
    running = None
    model.train()

    def keyinfo_phase() -> bool:  # two_phase: still in the key-info phase (patience ends the phase, not the run)
        return config.two_phase and not word_phase

    def judge(keep: bool = False) -> None:
        """Validate the current weights: a point of the curve, and the best weights if they are best
        (or ``keep``)."""
        nonlocal best, best_step, best_state
        prompt = "manual:B-1" if keyinfo_phase() else config.select_prompt
        model.eval()
        value = score(prompt)
        model.train()
        curve.append({"step": step, "loss": running, "valid_ndcg@10": value, "elapsed_s": elapsed, "prompt": prompt})
        if keep or value > best:
            best, best_step = value, step
            best_state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}

    def start_word_phase() -> None:
        """two_phase: the key-info phase's last weights are judged, its best weights kept; the word phase
        starts from them with a fresh optimizer state (its own warm-up and cosine: ``lr_factor``) and
        chooses its model among its own validations."""
        nonlocal best, best_step, best_state, word_phase, keyinfo_best
        if not curve or curve[-1]["step"] != step:
            judge()
        keyinfo_best = {"step": best_step, "valid_ndcg@10": best}
        log.info("key-info phase: best validation (B-1) %.4f at step %d; word phase from there", best, best_step)
        model.load_state_dict(best_state)
        opt.state.clear()
        best, best_step, best_state, word_phase = -1.0, step, None, True

    def out_of_patience() -> bool:
        return bool(config.patience) and sum(c["step"] > best_step for c in curve) >= config.patience

    # a resumed run may have waited enough
    step_limit = step if out_of_patience() and not keyinfo_phase() else config.max_steps
    while step < step_limit:
        if step < keyinfo_end and config.time_limit_s and \
                time.perf_counter() - start_clock >= config.time_limit_s * config.keyinfo_steps / config.max_steps:
            # a slow machine or a large dataset: the key-info phase gets its share of the time limit, not more,
            # so that the steps with template words happen before the limit stops the run
            log.info("key-info phase ends at step %d (its share of the time limit)", step)
            keyinfo_end = step
        if keyinfo_phase() and step >= keyinfo_end:
            start_word_phase()
        source = keyinfo if step < keyinfo_end else builder
        samples = source.batch(config.batch_size)
        batch, labels = make_batch(samples, tok)
        batch, labels = batch.to(device), labels.to(device)
        with _autocast(device):
            out = model(batch.attention_mask, labels=labels, input_ids=batch.input_ids,
                        whole_word_ids=batch.whole_word_ids)
            if config.mask_history_loss:
                loss = history_masked_loss(out.logits, labels, source.batch_history, tok)
            elif config.label_smoothing:
                loss = torch.nn.functional.cross_entropy(out.logits.float().reshape(-1, out.logits.shape[-1]),
                                                         labels.reshape(-1), ignore_index=-100,
                                                         label_smoothing=config.label_smoothing)
            else:
                loss = out.loss
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
            judge()
            if out_of_patience() and keyinfo_phase():
                log.info("key-info phase ends at step %d (out of patience); on to the words", step)
                keyinfo_end = step
            elif out_of_patience():
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
    if best_state is None or (stopped_by == "time_limit" and curve[-1]["step"] != step):
        # stopped before the first validation, or between validations by the time limit: the last weights
        # are judged too (after save_state: a resumed run continues as if this validation had not happened)
        judge(keep=best_state is None)
    if config.keep == "best":
        model.load_state_dict(best_state)
    model.eval()
    report = TrainReport(steps=step, wall_s=elapsed, samples_per_s=step * config.batch_size / max(elapsed, 1e-9),
                         best_step=best_step, best_valid_ndcg10=best, curve=curve, stopped_by=stopped_by,
                         keyinfo_steps=min(step, keyinfo_end), keyinfo_best=keyinfo_best)
    trained = {t.id for b in (builder, keyinfo) if b is not None for f in b.families for t in b.templates[f]}
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
    if stopped_by == "max_steps":
        # Finished: the optimizer state and the best weights (already saved above) are not needed any more.
        # What is left says so, and a rerun returns the saved model (a few KB instead of ~5x the model).
        # (A run stopped by its time limit or its patience keeps everything: it may be continued.)
        tmp = state_path.with_suffix(".tmp")
        torch.save({"config": config.to_dict(), "finished": True, "step": step, "elapsed": elapsed,
                    "stopped_by": stopped_by}, tmp)
        tmp.replace(state_path)
    return RLMBundle(model=model, tokenizer=tok, metadata=metadata, path=str(out_dir)), report


def _finished_run(out_dir: Path, device: torch.device) -> tuple[RLMBundle, TrainReport]:
    """A finished run's saved model and report (a rerun of a finished ``train-rlm``)."""
    from pap_rec_core.rlm.checkpoint import load_rlm

    bundle = load_rlm(out_dir, device=device)
    log.info("%s: training already finished; loaded the saved model", out_dir)
    return bundle, TrainReport(**bundle.metadata["train_report"])


KEYINFO_CONDITIONAL = ("C-2", "C-7")  # the bare conditional questions of keyinfo_conditional


def keyinfo_config(config: TrainConfig) -> TrainConfig:
    """The key-info phase's samples: template B-1 (the history alone), and with ``keyinfo_conditional`` that
    share of bare conditional questions (``KEYINFO_CONDITIONAL``)."""
    mix = config.keyinfo_conditional
    if not mix:
        return replace(config, family_weights=(("sequential", 1.0),), templates=("B-1",))
    return replace(config, family_weights=(("sequential", 1.0 - mix), ("conditional", mix)),
                   templates=("B-1",) + KEYINFO_CONDITIONAL)


def lr_factor(config: TrainConfig, step: int, keyinfo_end: int | None = None) -> float:
    """Learning-rate multiplier (of ``learning_rate``) at ``step``: linear warm-up, then cosine decay to 0
    at ``max_steps`` (or constant). ``two_phase``: the same shape over the key-info phase (ending at
    ``keyinfo_end``, by default ``keyinfo_steps``), then again over the word phase, from
    ``word_learning_rate`` with ``word_warmup_steps``."""
    if not config.two_phase:
        return _warmup_decay(config.lr_schedule, step, config.warmup_steps, config.max_steps)
    end = config.keyinfo_steps if keyinfo_end is None else keyinfo_end
    if step < end:
        return _warmup_decay(config.lr_schedule, step, config.warmup_steps, end)
    scale = (config.word_learning_rate or config.learning_rate) / config.learning_rate
    return scale * _warmup_decay(config.lr_schedule, step - end, config.word_warmup_steps, config.max_steps - end)


def _warmup_decay(schedule: str, step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def init_embeddings(model: RecLM, tok: RecTokenizer, split: Split, config: TrainConfig) -> None:
    """Step-0 embeddings beyond T5's own: whole-word embeddings at ``whole_word_init_std`` and, with
    ``item_init="transition-svd"`` and single-token items, the item tokens from training transitions
    (:mod:`pap_rec_core.rlm.item_init`; training split only)."""
    with torch.no_grad():
        torch.nn.init.normal_(model.whole_word_embeddings.weight, std=config.whole_word_init_std)
        if ItemInit(config.item_init) is ItemInit.TRANSITION_SVD and tok.item_tokens:
            start, stop = tok.item_token_range()
            emb = transition_svd_embeddings(split.train, split.data.n_items, config.d_model, seed=config.seed)
            model.token_embeddings.weight[start:stop] = torch.from_numpy(emb).to(model.token_embeddings.weight)


def selection_users(split: Split, config: TrainConfig) -> "np.ndarray":
    """The validation users of model selection: all of them, or a seeded sample of ``eval_users`` (sorted)."""
    import numpy as np

    users = split.eval_users
    if len(users) <= config.eval_users:
        return users
    rng = np.random.default_rng(config.seed)
    return np.sort(rng.choice(users, size=config.eval_users, replace=False))


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
