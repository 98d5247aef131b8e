"""Saving and loading RLMs: our own directories, and P5 ``.pth`` state dicts.

Our directory layout (``save_rlm``)::

    model.safetensors     weights (RecLM.state_dict, tied tensors stored once)
    rlm_config.json       RLMConfig
    rlm_metadata.json     item index, dataset fingerprint/config, templates, training config, metrics
    tokenizer/            spiece.model + rec_tokenizer.json

P5 checkpoints are plain ``state_dict``s of ``T5ForConditionalGeneration`` plus
``encoder.whole_word_embeddings.weight`` (possibly prefixed ``module.`` by DataParallel), used with a
T5 SentencePiece tokenizer directory. They are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from pap_rec_core import PapRecError
from pap_rec_core.rlm.model import RecLM, RLMConfig
from pap_rec_core.rlm.tokenizer import RecTokenizer

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "rlm_config.json"
METADATA_FILE = "rlm_metadata.json"
TOKENIZER_DIR = "tokenizer"
P5_WWE_KEY = "encoder.whole_word_embeddings.weight"


class CheckpointMismatchError(PapRecError, ValueError):
    """A checkpoint does not fit its tokenizer or configuration; the message says what differs."""


@dataclass
class RLMBundle:
    """A model with the tokenizer and metadata it was trained with."""

    model: RecLM
    tokenizer: RecTokenizer
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str | None = None


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def save_rlm(directory: str | Path, model: RecLM, tokenizer: RecTokenizer, metadata: Mapping[str, Any] | None = None) -> Path:
    from safetensors.torch import save_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _check_vocab(model.config, tokenizer, str(directory))
    save_model(model, str(directory / WEIGHTS_FILE))
    (directory / CONFIG_FILE).write_text(json.dumps(model.config.to_dict(), indent=2), encoding="utf-8")
    (directory / METADATA_FILE).write_text(json.dumps(dict(metadata or {}), indent=2), encoding="utf-8")
    tokenizer.save(directory / TOKENIZER_DIR)
    return directory


def load_rlm(directory: str | Path, device: str | torch.device = "auto") -> RLMBundle:
    """Load a directory written by :func:`save_rlm` (eval mode, on ``device``)."""
    from safetensors.torch import load_model

    directory = Path(directory)
    for name in (WEIGHTS_FILE, CONFIG_FILE, TOKENIZER_DIR):
        if not (directory / name).exists():
            raise CheckpointMismatchError(f"{directory} is not an RLM directory: {name} is missing")
    config = RLMConfig.from_dict(json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8")))
    tokenizer = RecTokenizer.load(directory / TOKENIZER_DIR)
    _check_vocab(config, tokenizer, str(directory))
    model = RecLM(config)
    missing, unexpected = load_model(model, str(directory / WEIGHTS_FILE), strict=False)
    if missing or unexpected:
        raise CheckpointMismatchError(f"{directory / WEIGHTS_FILE}: missing keys {sorted(missing)[:5]}, "
                                      f"unexpected keys {sorted(unexpected)[:5]}")
    meta_path = directory / METADATA_FILE
    metadata = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    model.to(pick_device(device)).eval()
    return RLMBundle(model=model, tokenizer=tokenizer, metadata=metadata, path=str(directory))


EMBEDDED_MODEL_COMMAND = "pap-rec train-rlm --dataset ml-100k --preset full --seed 0 --threads 1 --out models/ml-100k"


def embedded_model_dir() -> Path:
    """The committed ml-100k RLM (``models/ml-100k`` in the repository checkout)."""
    path = Path(__file__).resolve().parents[2] / "models" / "ml-100k"
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"the embedded model is not at {path} (a checkout without models/?); "
                                f"regenerate it with: {EMBEDDED_MODEL_COMMAND}")
    return path


def load_rlm_with_split(directory: str | Path, dataset_config: Any = None, device: str | torch.device = "auto"):
    """``(bundle, split)``: the model directory's RLM with the dataset, split and item index it was
    trained on. ``dataset_config`` (a ``DatasetConfig``) overrides the recorded dataset location (data
    moved to another disk); the dataset fingerprint and the item index must still match."""
    from pap_rec_core.data import DatasetConfig, ItemIndex, SplitConfig, leave_one_out, load_dataset
    from pap_rec_core.data.errors import DataFormatError

    bundle = load_rlm(directory, device=device)
    meta = bundle.metadata
    if dataset_config is None:
        if not meta.get("dataset", {}).get("config"):
            raise DataFormatError(str(directory), "the model does not record its dataset; pass a dataset config")
        dataset_config = DatasetConfig.from_dict(meta["dataset"]["config"])
    data = load_dataset(dataset_config)
    want = meta.get("dataset", {}).get("fingerprint")
    if want and want != data.fingerprint():
        raise DataFormatError(str(directory), f"trained on dataset fingerprint {want}, but {dataset_config.path} "
                                              f"has {data.fingerprint()}")
    index_path = Path(directory) / "item_index.json"
    if index_path.is_file():
        ItemIndex.load(index_path, data)
    split = leave_one_out(data, SplitConfig.from_dict(meta["split"]) if "split" in meta else SplitConfig())
    return bundle, split


def _check_vocab(config: RLMConfig, tokenizer: RecTokenizer, where: str) -> None:
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointMismatchError(f"{where}: the tokenizer has {tokenizer.vocab_size} tokens but the model's "
                                      f"vocab_size is {config.vocab_size}")


# ----------------------------------------------------------------------------------------------------
# P5 checkpoints


def p5_to_reclm_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename P5 keys (``module.`` stripped) to RecLM keys."""
    out = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        out["whole_word_embeddings.weight" if key == P5_WWE_KEY else "t5." + key] = value
    return out


def reclm_to_p5_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`p5_to_reclm_state_dict` (for exporting to P5's format)."""
    out = {}
    for key, value in state.items():
        out[P5_WWE_KEY if key == "whole_word_embeddings.weight" else key.removeprefix("t5.")] = value
    return out


def infer_p5_config(state: Mapping[str, torch.Tensor]) -> RLMConfig:
    """Architecture from a P5 state dict's shapes (t5-small: d_model 512, 6+6 layers, 8 heads)."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if "shared.weight" not in state:
        raise CheckpointMismatchError("not a T5 state dict: 'shared.weight' is missing")
    vocab, d_model = state["shared.weight"].shape

    def count(prefix: str) -> int:
        ids = {int(m.group(1)) for k in state if (m := re.match(prefix + r"\.block\.(\d+)\.", k))}
        return max(ids) + 1 if ids else 0

    bias = state.get("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
    if bias is None:
        raise CheckpointMismatchError("not a T5 state dict: encoder relative_attention_bias is missing")
    buckets, heads = bias.shape
    q = state["encoder.block.0.layer.0.SelfAttention.q.weight"]
    gated = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in state
    wi = state["encoder.block.0.layer.1.DenseReluDense.wi_0.weight" if gated else "encoder.block.0.layer.1.DenseReluDense.wi.weight"]
    wwe = state.get(P5_WWE_KEY)
    return RLMConfig(
        vocab_size=int(vocab), d_model=int(d_model), d_ff=int(wi.shape[0]), d_kv=int(q.shape[0] // heads),
        num_heads=int(heads), num_layers=count("encoder"), num_decoder_layers=count("decoder"),
        relative_attention_num_buckets=int(buckets), feed_forward_proj="gated-gelu" if gated else "relu",
        tie_word_embeddings="lm_head.weight" not in state or torch.equal(state["lm_head.weight"], state["shared.weight"]),
        max_whole_words=int(wwe.shape[0]) if wwe is not None else 512,
    )


def load_p5_checkpoint(pth: str | Path, tokenizer_dir: str | Path, *, item_texts=None, user_texts=None,
                       config: RLMConfig | None = None, device: str | torch.device = "auto") -> RLMBundle:
    """Load a P5 ``.pth`` with a T5 tokenizer directory (``spiece.model``); ids are rendered as digit text.

    The model's vocabulary may be larger than the tokenizer's (T5 pads 32,100 to 32,128), never smaller.
    """
    pth = Path(pth)
    try:
        state = torch.load(pth, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 — report any unreadable file the same way
        raise CheckpointMismatchError(f"{pth}: cannot be read as a weights-only torch state dict ({err})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if P5_WWE_KEY not in {k.removeprefix("module.") for k in state}:
        raise CheckpointMismatchError(f"{pth}: no '{P5_WWE_KEY}' — not a P5 checkpoint (plain T5?)")
    config = config or infer_p5_config(state)
    tokenizer = RecTokenizer.load(tokenizer_dir, item_texts=item_texts, user_texts=user_texts)
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointMismatchError(f"tokenizer {tokenizer_dir} has {tokenizer.vocab_size} tokens but the checkpoint "
                                      f"{pth.name} has only {config.vocab_size} embeddings")
    model = RecLM(config)
    ours = p5_to_reclm_state_dict(state)
    own = model.state_dict()
    # Tied copies (encoder/decoder embed_tokens, lm_head) may be absent from a P5 file: they alias shared.
    tied = {"t5.encoder.embed_tokens.weight", "t5.decoder.embed_tokens.weight"}
    if config.tie_word_embeddings:
        tied.add("t5.lm_head.weight")
    missing = sorted(k for k in own if k not in ours and k not in tied)
    unexpected = sorted(k for k in ours if k not in own)
    shape_errors = [f"{k}: checkpoint {tuple(ours[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in own if k in ours and ours[k].shape != own[k].shape]
    if missing or unexpected or shape_errors:
        raise CheckpointMismatchError(
            f"{pth} does not match the configuration: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, shapes {shape_errors[:3]}")
    model.load_state_dict({k: v for k, v in ours.items() if k in own}, strict=False)
    model.t5.tie_weights()
    model.to(pick_device(device)).eval()
    meta = {"source": "p5", "checkpoint": str(pth), "tokenizer": str(tokenizer_dir),
            "model_vocab_size": config.vocab_size, "tokenizer_vocab_size": tokenizer.vocab_size}
    return RLMBundle(model=model, tokenizer=tokenizer, metadata=meta, path=str(pth))
