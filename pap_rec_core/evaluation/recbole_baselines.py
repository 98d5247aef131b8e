"""RecBole baselines (Pop, BPR, GRU4Rec, Caser, SASRec, BERT4Rec) trained on *our* split, scored by *our* evaluator.

RecBole only trains. The split, the early-stopping metric and every reported number are ours:

* The split is written as RecBole benchmark files (``<name>.train/valid/test.inter``, read with
  ``benchmark_filename: [train, valid, test]``), so RecBole trains on exactly our training items.
  General models (Pop, BPR) read the plain :func:`~pap_rec_core.data.export_recbole` files. Sequential
  models need pre-augmented files, because RecBole 1.2.1's ``SequentialDataset`` does **no**
  augmentation in benchmark mode (it expects an ``item_id_list`` column and fails on plain files):
  we write one row per training prefix (``history[-L:] -> next item``), one validation row
  (``train[-L:] -> valid``) and one test row (``(train + valid)[-L:] -> test``), ``L`` =
  ``MAX_ITEM_LIST_LENGTH``. After loading we check that RecBole's test rows hold exactly those
  histories (train + validation items).
* Training runs RecBole's own per-epoch step (``Trainer._train_epoch``: its losses, samplers and
  transforms). After every epoch *we* score all items for every evaluation user
  (``model.full_sort_predict``, RecBole ids mapped back to our item indices through
  ``dataset.field2id_token`` and :meth:`ItemIndex.item_of`) and evaluate validation with
  :func:`~pap_rec_core.evaluation.evaluate_scorer` (history masked, target never, pessimistic ties).
  Early stopping on validation NDCG@10: stop after ``stopping_step`` epochs without a strict
  improvement; the best epoch's weights (kept in memory) are restored and scored on test.
  RecBole's own evaluator is never called: in 1.2.1 its ``NDCG``/``MRR`` use ``np.float``, which
  numpy >= 1.24 removed; and it would use RecBole's masking and tie rule, not ours.
* ``Pop`` makes one pass over the training interactions (no negatives, so only positives are counted)
  and is scored like the others; it equals :func:`~pap_rec_core.evaluation.popularity_scores`.

RecBole's ``Pop`` increments ``item_cnt[items] += 1`` per batch, so an item occurring several times in
one training batch is counted once: with the default batch (2048) on ml-100k the counts saturate at the
number of batches and most items tie. We feed its ``calculate_loss`` duplicate-free sub-batches
(:func:`recbole_scoring.pop_exact_loss`), so it counts every training interaction, as a batch size of 1 would; its
scores then equal :func:`~pap_rec_core.evaluation.popularity_scores` (up to a constant factor).

RecBole's process-wide side effects are confined to the call (:func:`recbole_runtime.recbole_sandbox`): it reads
``sys.argv`` (replaced by a clean argv and restored), writes ``saved/`` and ``log_tensorboard/`` into the
current directory (we ``chdir`` into a private working directory and always change back; nothing is
written to the caller's directory), sets ``CUDA_VISIBLE_DEVICES`` (restored), reseeds the global
``random``/numpy/torch generators and cudnn flags (restored), and logs through the root logger (its
records are re-emitted under this module's logger at DEBUG, warnings at WARNING). Importing RecBole's
models switches autograd anomaly detection on for the whole process (``sine.py`` calls
``torch.autograd.set_detect_anomaly(True)`` at import time; SASRec steps were ~1.3x slower with it): we import
RecBole through :func:`recbole_runtime.import_recbole`, which restores the previous mode, and the sandbox runs
training with anomaly detection off and restores the caller's mode afterwards. No checkpoint is ever
written or read: ``trainer.fit``/``evaluate``/``resume_checkpoint`` (whose ``torch.load`` lacks
``weights_only``) are not used, so nothing is unpickled and ``torch`` is not patched. The dataset token
is ``paprec`` (never ``ml-100k``: RecBole would silently apply its bundled ``ml-100k.yaml`` and
quick-start settings to a dataset of that name).

Example::

    split = leave_one_out(data)
    index = build_item_index(data, "random", seed=0)
    res = train_baseline(split, index, BaselineConfig("SASRec", epochs=200))
    res.test.summary()["ndcg@10"], res.best_epoch, res.stop_reason
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from pap_rec_core.configs import known_fields
from pap_rec_core.data.export import export_recbole
from pap_rec_core.data.item_index import ItemIndex
from pap_rec_core.data.split import Split, Stage
from pap_rec_core.evaluation.evaluator import EvaluationConfig, EvaluationResult, evaluate_scorer
from pap_rec_core.evaluation.metrics import BASELINE_METRICS
from pap_rec_core.evaluation.recbole_runtime import (
    DATASET_TOKEN,
    import_recbole,
    recbole_sandbox,
    resolve_device,
    write_sequential_benchmark,
)
from pap_rec_core.evaluation.recbole_scoring import Scorer, check_sequential_inputs, pop_exact_loss

log = logging.getLogger(__name__)

SUPPORTED: tuple[str, ...] = ("Pop", "Markov", "BPR", "GRU4Rec", "Caser", "SASRec", "BERT4Rec")
COUNTING: frozenset[str] = frozenset({"Markov"})  # no RecBole: evaluation.baselines (k and decay chosen on validation)
SEQUENTIAL: frozenset[str] = frozenset({"GRU4Rec", "Caser", "SASRec", "BERT4Rec"})
DEVICES = ("auto", "cpu", "cuda")
VALID_METRIC = "ndcg@10"  # early stopping on our validation NDCG@10
DEFAULT_MAX_ITEM_LIST_LENGTH = 50  # RecBole's default history window for sequential models
# Caser's window is its Markov order L; its paper uses L=5. With RecBole's default (50) it convolves
# 50 horizontal filter heights and trains ~20x slower per epoch. Override with extra={"MAX_ITEM_LIST_LENGTH": n}.
MODEL_MAX_ITEM_LIST_LENGTH = {"Caser": 5}

# RecBole settings this module controls; set them through BaselineConfig fields, not ``extra``.
RESERVED_EXTRA = frozenset({
    "model", "dataset", "data_path", "checkpoint_dir", "benchmark_filename", "load_col", "unload_col",
    "alias_of_item_id", "alias_of_user_id", "seq_len", "save_dataset", "dataset_save_path", "save_dataloaders",
    "dataloaders_save_path", "log_wandb", "show_progress", "epochs", "stopping_step", "learning_rate",
    "train_batch_size", "seed", "use_gpu", "gpu_id", "device", "eval_args", "valid_metric", "metrics", "topk",
    "benchmark", "USER_ID_FIELD", "ITEM_ID_FIELD", "LIST_SUFFIX", "ITEM_LIST_LENGTH_FIELD", "nproc",
    "world_size", "local_rank",
})


@dataclass(frozen=True)
class BaselineConfig:
    """One RecBole baseline run.

    ``epochs`` is the cap; training stops earlier after ``stopping_step`` epochs without a strict
    improvement of validation NDCG@10 (our evaluator), and the best epoch's weights are tested.
    ``max_seconds`` optionally caps the training time as well: no epoch is started that would end past
    it at the mean epoch time so far (at least one epoch always runs).
    ``extra`` holds other RecBole parameters (e.g. ``{"hidden_size": 64, "MAX_ITEM_LIST_LENGTH": 50}``);
    the keys in ``RESERVED_EXTRA`` are set by this module and are refused there.
    """

    model: str
    epochs: int = 200
    stopping_step: int = 10
    learning_rate: float = 1e-3
    train_batch_size: int = 512  # RecBole's default is 2048; 512 is ~1.7x faster per sample on CPU
    seed: int = 0
    device: str = "auto"  # auto: CUDA when available, else CPU
    extra: Mapping[str, Any] = field(default_factory=dict)
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        by_lower = {m.lower(): m for m in SUPPORTED}
        model = by_lower.get(str(self.model).lower())
        if model is None:
            raise ValueError(f"unknown baseline model {self.model!r}; supported: {', '.join(SUPPORTED)}")
        object.__setattr__(self, "model", model)
        if int(self.epochs) < 1:
            raise ValueError("epochs must be >= 1")
        if int(self.stopping_step) < 1:
            raise ValueError("stopping_step must be >= 1")
        if not float(self.learning_rate) > 0:
            raise ValueError("learning_rate must be > 0")
        if int(self.train_batch_size) < 1:
            raise ValueError("train_batch_size must be >= 1")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.max_seconds is not None and not float(self.max_seconds) > 0:
            raise ValueError("max_seconds must be > 0 (or None)")
        extra = dict(self.extra or {})
        reserved = sorted(set(extra) & RESERVED_EXTRA)
        if reserved:
            raise ValueError(f"extra may not set {', '.join(reserved)}: these are controlled by BaselineConfig "
                             "fields or by the adapter")
        try:
            json.dumps(extra)
        except TypeError as err:
            raise ValueError(f"extra must be JSON-serializable: {err}") from None
        object.__setattr__(self, "extra", extra)
        for name in ("epochs", "stopping_step", "train_batch_size", "seed"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "learning_rate", float(self.learning_rate))

    @property
    def sequential(self) -> bool:
        return self.model in SEQUENTIAL

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "BaselineConfig":
        return cls(**known_fields(cls, dict(d)))


@dataclass(frozen=True, eq=False)
class BaselineResult:
    """A trained baseline's validation and test evaluation (per user, via our evaluator) and its run."""

    config: BaselineConfig
    valid: EvaluationResult  # best epoch, validation stage
    test: EvaluationResult  # best epoch, test stage
    best_epoch: int  # 0-based epoch whose weights were tested
    epochs_run: int
    wall_seconds: float  # the whole call: export, RecBole loading, training, scoring
    train_seconds: float = 0.0  # training epochs only (without per-epoch validation)
    stop_reason: str = "early_stopping"  # early_stopping | epoch_cap | time_limit | single_pass
    valid_curve: tuple[float, ...] = ()  # validation NDCG@10 after each epoch
    n_parameters: int = 0
    device: str = "cpu"
    recbole_settings: Mapping[str, Any] = field(default_factory=dict)  # effective values we chose

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def hit_epoch_cap(self) -> bool:
        """True when training ran into ``epochs`` while validation was still improving."""
        return self.stop_reason == "epoch_cap"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "config": self.config.to_dict(),
            "users": int(len(self.test.users)),
            "valid": self.valid.summary(),
            "test": self.test.summary(),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "stop_reason": self.stop_reason,
            "hit_epoch_cap": self.hit_epoch_cap,
            "wall_seconds": round(self.wall_seconds, 2),
            "train_seconds": round(self.train_seconds, 2),
            "valid_ndcg@10_curve": [round(v, 6) for v in self.valid_curve],
            "n_parameters": self.n_parameters,
            "device": self.device,
            "recbole_settings": dict(self.recbole_settings),
        }


# ----------------------------------------------------------------------------------------------------
# Training


def train_baseline(split: Split, item_index: ItemIndex, config: BaselineConfig | str,
                   work_dir: str | Path | None = None, *, eval_config: EvaluationConfig = EvaluationConfig(),
                   progress: bool = False) -> BaselineResult:
    """Train one RecBole baseline on ``split`` and evaluate it on validation and test with our evaluator.

    Files go to a private temporary directory (removed afterwards) or to ``work_dir`` (kept):
    ``data/paprec/`` (what RecBole reads: the :func:`export_recbole` files for Pop/BPR, pre-augmented
    sequences for sequential models, whose plain export goes to ``export/paprec/``), ``saved/`` (created
    empty by RecBole's trainer) and ``log_tensorboard/`` (its tensorboard writer). Nothing is written to
    the current directory.
    """
    if isinstance(config, str):
        config = BaselineConfig(model=config)
    item_index.check_matches(split.data)
    if len(split.eval_users) == 0:
        raise ValueError("the split has no evaluation users")
    start = time.perf_counter()
    if config.model in COUNTING:
        return _markov_result(split, config, eval_config, start)
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pap-rec-recbole-")))
        else:
            root = Path(work_dir).resolve()
            root.mkdir(parents=True, exist_ok=True)
        # General models read the plain export; sequential ones read pre-augmented files written from
        # the same split (the plain export is kept beside them, in export/, for inspection).
        export_recbole(split, item_index, root / ("export" if config.sequential else "data"), name=DATASET_TOKEN)
        settings = _recbole_settings(config, root)
        window = None
        if config.sequential:
            requested = int(config.extra.get("MAX_ITEM_LIST_LENGTH",
                                             MODEL_MAX_ITEM_LIST_LENGTH.get(config.model, DEFAULT_MAX_ITEM_LIST_LENGTH)))
            window = write_sequential_benchmark(split, item_index, root / "data" / DATASET_TOKEN, requested)
            settings["MAX_ITEM_LIST_LENGTH"] = window
        stack.enter_context(recbole_sandbox(root))
        run = _run(split, item_index, config, settings, window, eval_config, progress)
    wall = time.perf_counter() - start
    chosen = {k: v for k, v in settings.items() if k in ("MAX_ITEM_LIST_LENGTH", "loss_type", "train_neg_sample_args")}
    chosen["device"] = run["device"]
    return BaselineResult(config=config, valid=run["valid"], test=run["test"], best_epoch=run["best_epoch"],
                          epochs_run=run["epochs_run"], wall_seconds=wall, train_seconds=run["train_seconds"],
                          stop_reason=run["stop_reason"], valid_curve=tuple(run["curve"]),
                          n_parameters=run["n_parameters"], device=run["device"], recbole_settings=chosen)


def _markov_result(split: Split, config: BaselineConfig, eval_config: EvaluationConfig, start: float) -> BaselineResult:
    """The last-k Markov chain (:func:`~pap_rec_core.evaluation.baselines.fit_markov`) as a baseline result:
    one counting pass, ``k`` and ``decay`` chosen on validation NDCG@10 (recorded in ``recbole_settings``)."""
    from pap_rec_core.evaluation.baselines import fit_markov

    chain, valid, grid = fit_markov(split, config=eval_config)
    trained = time.perf_counter() - start
    test = evaluate_scorer(split, Stage.TEST, chain.scorer(split, Stage.TEST), system=config.model, config=eval_config)
    valid = EvaluationResult(system=config.model, task=valid.task, stage=valid.stage, users=valid.users,
                             ranks=valid.ranks, per_user=valid.per_user, config=valid.config)
    return BaselineResult(config=config, valid=valid, test=test, best_epoch=0, epochs_run=1,
                          wall_seconds=time.perf_counter() - start, train_seconds=trained, stop_reason="single_pass",
                          valid_curve=(valid.summary()[VALID_METRIC],), n_parameters=int(chain.counts.nnz),
                          device="cpu", recbole_settings={"k": chain.k, "decay": chain.decay, "grid": grid})


def _recbole_settings(config: BaselineConfig, root: Path) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "data_path": str(root / "data"),
        "checkpoint_dir": str(root / "saved"),
        "benchmark_filename": ["train", "valid", "test"],
        "seed": config.seed,
        "reproducibility": True,
        "epochs": config.epochs,
        "stopping_step": config.stopping_step,
        "learning_rate": config.learning_rate,
        "train_batch_size": config.train_batch_size,
        "eval_args": {"group_by": "user", "order": "TO", "split": {"LS": "valid_and_test"}, "mode": "full"},
        "metrics": ["Hit", "NDCG", "MRR"],  # declared only: RecBole's evaluator is never run (np.float)
        "topk": [1, 5, 10],
        "valid_metric": "NDCG@10",
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
        "state": "WARNING",
        "use_gpu": config.device != "cpu",
        # Keep whatever GPUs the process already sees (RecBole writes gpu_id into CUDA_VISIBLE_DEVICES).
        "gpu_id": os.environ.get("CUDA_VISIBLE_DEVICES", "0"),
    }
    if config.sequential:
        settings.update({
            "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
            "alias_of_item_id": ["item_id_list"],  # history and target share one id space
            "loss_type": "CE",
            "train_neg_sample_args": None,
        })
    elif config.model == "BPR":
        settings.update({
            "load_col": {"inter": ["user_id", "item_id"]},
            "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False,
                                      "candidate_num": 0},
        })
    else:  # Pop: count positives only (with negative sampling its loader would feed negatives too)
        settings.update({"load_col": {"inter": ["user_id", "item_id"]}, "train_neg_sample_args": None})
    settings.update(config.extra)
    return settings


def _run(split: Split, index: ItemIndex, config: BaselineConfig, settings: dict[str, Any], window: int | None,
         eval_config: EvaluationConfig, progress: bool) -> dict[str, Any]:
    import torch

    import_recbole()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    device = resolve_device(config.device)
    rb_config = Config(model=config.model, dataset=DATASET_TOKEN, config_dict=dict(settings))
    rb_config["device"] = device
    init_seed(rb_config["seed"], rb_config["reproducibility"])
    dataset = create_dataset(rb_config)
    train_data, _, test_data = data_preparation(rb_config, dataset)
    init_seed(rb_config["seed"], rb_config["reproducibility"])
    model = get_model(rb_config["model"])(rb_config, train_data._dataset).to(device)
    trainer = get_trainer(rb_config["MODEL_TYPE"], rb_config["model"])(rb_config, model)
    try:
        scorer = Scorer(model, dataset, split, index, device, window)
        if window is not None:
            check_sequential_inputs(scorer, test_data._dataset, Stage.TEST)
        users = split.eval_users

        def evaluate(stage: Stage) -> EvaluationResult:
            return evaluate_scorer(split, stage, lambda b: scorer(b, stage), system=config.model,
                                   config=eval_config, users=users)

        curve: list[float] = []
        train_seconds = 0.0
        if config.model == "Pop":  # one counting pass; nothing to stop early
            t = time.perf_counter()
            trainer._train_epoch(train_data, 0, loss_func=pop_exact_loss(model), show_progress=False)
            train_seconds = time.perf_counter() - t
            valid = evaluate(Stage.VALID)
            curve.append(valid.summary()[VALID_METRIC])
            best_epoch, epochs_run, stop_reason = 0, 1, "single_pass"
        else:
            best_score, best_epoch, best_state, valid, bad = -math.inf, -1, None, None, 0
            stop_reason = "epoch_cap"
            bar = tqdm(range(config.epochs), desc=config.model, unit="epoch", disable=not progress, leave=False)
            epochs_run = 0
            for epoch in bar:
                t = time.perf_counter()
                loss = trainer._train_epoch(train_data, epoch, show_progress=False)
                train_seconds += time.perf_counter() - t
                epochs_run = epoch + 1
                result = evaluate(Stage.VALID)
                score = result.summary()[VALID_METRIC]
                curve.append(score)
                loss_value = sum(loss) if isinstance(loss, tuple) else loss
                log.debug("%s epoch %d: loss %.4f, valid %s %.5f", config.model, epoch, loss_value, VALID_METRIC,
                          score)
                if score > best_score:
                    best_score, best_epoch, valid, bad = score, epoch, result, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    bad += 1
                bar.set_postfix({"valid ndcg@10": f"{score:.4f}", "best": best_epoch})
                if bad >= config.stopping_step:
                    stop_reason = "early_stopping"
                    break
                # Do not start an epoch that would end past max_seconds (at the mean epoch time so far).
                if (config.max_seconds is not None and epochs_run < config.epochs
                        and train_seconds * (epochs_run + 1) / epochs_run > config.max_seconds):
                    stop_reason = "time_limit"
                    break
            bar.close()
            model.load_state_dict(best_state)  # best weights were kept in memory: no checkpoint file
        test = evaluate(Stage.TEST)
        n_parameters = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
        if config.model == "Pop":
            n_parameters = int(model.item_cnt.numel())
        return {"valid": valid, "test": test, "best_epoch": best_epoch, "epochs_run": epochs_run,
                "stop_reason": stop_reason, "curve": curve, "train_seconds": train_seconds,
                "n_parameters": n_parameters, "device": str(device)}
    finally:
        trainer.tensorboard.close()
        del trainer, model, dataset, train_data, test_data
        if device.type == "cuda":
            torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------------
# Several models


def run_baselines(split: Split, item_index: ItemIndex, models: Sequence[str] = SUPPORTED, epochs: int = 200,
                  seed: int = 0, progress: bool = True, *, stopping_step: int = 10, device: str = "auto",
                  max_seconds: float | None = None, extra: Mapping[str, Mapping[str, Any]] | None = None,
                  eval_config: EvaluationConfig = EvaluationConfig()) -> list[BaselineResult]:
    """Train and evaluate each model in turn (same split, item index, seed); ``extra`` maps a model name to
    its RecBole parameters. With ``progress``, a bar per model and one summary line per finished model."""
    configs = [BaselineConfig(model=m, epochs=epochs, seed=seed, stopping_step=stopping_step, device=device,
                              max_seconds=max_seconds, extra=dict((extra or {}).get(m, {})))
               for m in models]  # validate every name before training anything
    results = []
    for cfg in configs:
        res = train_baseline(split, item_index, cfg, eval_config=eval_config, progress=progress)
        results.append(res)
        line = (f"{cfg.model}: test ndcg@10 {res.test.summary()['ndcg@10']:.4f}, hit@10 "
                f"{res.test.summary()['hit@10']:.4f}; {res.epochs_run} epochs (best {res.best_epoch}, "
                f"{res.stop_reason}), {res.wall_seconds:.0f} s")
        if progress:
            tqdm.write(line, file=sys.stderr)
        log.info(line)
    return results


TABLE_METRICS = BASELINE_METRICS


def baselines_frame(results: Sequence[BaselineResult], stage: Stage | str = Stage.TEST) -> pd.DataFrame:
    """One row per model: the stage's metrics, validation NDCG@10, epochs, best epoch, stop reason, seconds."""
    stage = Stage(stage)
    rows = []
    for res in results:
        ev = res.test if stage is Stage.TEST else res.valid
        summary = ev.summary()
        row: dict[str, Any] = {"model": res.model, "users": len(ev.users)}
        row.update({m: summary[m] for m in TABLE_METRICS if m in summary})
        row["valid ndcg@10"] = res.valid.summary()[VALID_METRIC]
        row.update({"epochs": res.epochs_run, "best epoch": res.best_epoch, "stop": res.stop_reason,
                    "seconds": int(round(res.wall_seconds))})
        rows.append(row)
    return pd.DataFrame(rows)
