"""Write a split as RecBole atomic files (benchmark layout ``<name>.{train,valid,test}.inter``).

RecBole reads these with ``benchmark_filename: [train, valid, test]``, so baselines train and are
evaluated on exactly our split. Item ids are the textual ids of the given item index; timestamps are
the source's, or the position in the sequence when the source has none.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pap_rec_core.data.item_index import ItemIndex
from pap_rec_core.data.split import NO_TARGET, Split

SPLIT_SUFFIXES = ("train", "valid", "test")


def export_recbole(split: Split, index: ItemIndex, out_dir: str | Path, name: str | None = None) -> list[Path]:
    """Write ``<name>.train/valid/test.inter``, ``<name>.item`` (metadata), ``item_index.json`` and
    ``split.json`` (config, fingerprint, counts) into ``out_dir/<name>``; returns the written paths."""
    data = split.data
    index.check_matches(data)
    name = name or data.name
    out = Path(out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    header = "user_id:token\titem_id:token\ttimestamp:float\n"
    rows: dict[str, list[str]] = {s: [] for s in SPLIT_SUFFIXES}
    for u, seq in enumerate(data.sequences):
        times = data.timestamps[u] if data.timestamps is not None else np.arange(len(seq), dtype=np.float64)
        user = data.user_ids[u]
        n_train = len(split.train[u])
        for pos, (item, t) in enumerate(zip(seq, times)):
            part = "train" if pos < n_train or split.test_target[u] == NO_TARGET else (
                "valid" if pos == n_train else "test")
            rows[part].append(f"{user}\t{index.text_of(int(item))}\t{t:.0f}\n")
    written = []
    for part in SPLIT_SUFFIXES:
        path = out / f"{name}.{part}.inter"
        path.write_text(header + "".join(rows[part]), encoding="utf-8")
        written.append(path)
    if data.item_info is not None:
        written.append(_write_items(data.item_info, index, out / f"{name}.item"))
    index.save(out / "item_index.json")
    written.append(out / "item_index.json")
    meta = {
        "dataset": data.name,
        "source": data.source,
        "fingerprint": data.fingerprint(),
        "split": split.config.to_dict(),
        "counts": {part: len(rows[part]) for part in SPLIT_SUFFIXES},
        "item_index": {"mode": index.mode.value, "seed": index.seed, "leaky": index.mode.leaky},
        "notes": list(data.notes) + list(split.notes),
    }
    (out / "split.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    written.append(out / "split.json")
    neg_path = out / f"{name}.negatives.tsv"
    with neg_path.open("w", encoding="utf-8") as fh:
        for u in split.eval_users:
            fh.write(data.user_ids[u] + "\t" + " ".join(index.text_of(int(i)) for i in split.negatives[u]) + "\n")
    written.append(neg_path)
    return written


def _write_items(info, index: ItemIndex, path: Path) -> Path:
    cols = [c for c in info.columns if c != "item_id"]
    lines = ["item_id:token" + "".join(f"\t{c}:token_seq" for c in cols) + "\n"]
    for i, row in enumerate(info[cols].itertuples(index=False)):
        values = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).replace("\t", " ") for v in row]
        lines.append(index.text_of(i) + "".join("\t" + v for v in values) + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path
