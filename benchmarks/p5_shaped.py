"""A P5-small-shaped RLM built at random, for speed benchmarks of the path real P5 checkpoints take.

t5-small's shape (d_model 512, 6 + 6 layers, 8 heads, d_ff 2048, relu, tied embeddings, 32,128
embeddings as T5 pads its 32,100 pieces), P5's whole-word embeddings (512), items and users written as
digit text. No T5 tokenizer can be downloaded here, so the SentencePiece model is trained on the
dataset's words and on numbers with a falling frequency (so that, as in T5's vocabulary, short numbers are
one piece and longer ones two or three); its piece count is reported, and the model keeps 32,128 output
rows whatever it is (the softmax over them is the cost that matters). The checkpoint is written in P5's
key names and read back with :func:`~pap_rec_core.rlm.load_p5_checkpoint`, the loader users call.

    from benchmarks.p5_shaped import load_p5_shaped
    bundle, split = load_p5_shaped("runs/p5-shaped")    # builds it on first use (seeded)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

T5_SMALL = dict(d_model=512, d_ff=2048, d_kv=64, num_heads=8, num_layers=6, num_decoder_layers=6,
                feed_forward_proj="relu", tie_word_embeddings=True, dropout_rate=0.0)
T5_EMBEDDINGS = 32128


def number_corpus(seed: int = 0) -> list[str]:
    """Numbers as web text has them: 0-99 often, 100-999 less, 1000-99999 rarely."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = [str(n) for n in range(100) for _ in range(30)]
    out += [str(n) for n in range(100, 1000) for _ in range(2)]
    out += [str(int(n)) for n in rng.integers(1000, 100_000, size=4000)]
    rng.shuffle(out)
    return [" ".join(out[i : i + 20]) for i in range(0, len(out), 20)]


def build_p5_shaped(directory: str | Path, data, seed: int = 0) -> tuple[Path, Path]:
    """Write ``model.pth`` (P5 key names) and ``tokenizer/spiece.model`` under ``directory``; returns both."""
    from pap_rec_core.rlm import RecLM, RLMConfig
    from pap_rec_core.rlm.checkpoint import reclm_to_p5_state_dict
    from pap_rec_core.rlm.samples import tokenizer_corpus
    from pap_rec_core.rlm.tokenizer import SPIECE_FILE, train_sentencepiece

    directory = Path(directory)
    tok_dir = directory / "tokenizer"
    tok_dir.mkdir(parents=True, exist_ok=True)
    (tok_dir / SPIECE_FILE).write_bytes(train_sentencepiece(tokenizer_corpus(data) + number_corpus(seed),
                                                            vocab_size=32000))
    torch.manual_seed(seed)
    model = RecLM(RLMConfig(vocab_size=T5_EMBEDDINGS, max_whole_words=512, **T5_SMALL))
    pth = directory / "model.pth"
    torch.save(reclm_to_p5_state_dict(model.state_dict()), pth)
    (directory / "built.json").write_text(json.dumps({"seed": seed, "dataset": data.name, **T5_SMALL,
                                                      "embeddings": T5_EMBEDDINGS}, indent=2))
    return pth, tok_dir


def load_p5_shaped(directory: str | Path, dataset: str = "ml-100k", seed: int = 0, device: str = "auto"):
    """``(bundle, split)``: the random P5-shaped model (built under ``directory`` if absent) on the dataset's
    leave-one-out split, its items and users written as their ids."""
    from pap_rec_core.data import DatasetConfig, SplitConfig, leave_one_out, load_dataset
    from pap_rec_core.rlm import load_p5_checkpoint

    data = load_dataset(DatasetConfig(path=dataset))
    directory = Path(directory)
    if not (directory / "model.pth").is_file():
        build_p5_shaped(directory, data, seed)
    bundle = load_p5_checkpoint(directory / "model.pth", directory / "tokenizer", item_texts=list(data.item_ids),
                                user_texts=list(data.user_ids), device=device)
    return bundle, leave_one_out(data, SplitConfig(seed=seed))
