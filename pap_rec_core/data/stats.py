"""Dataset statistics: the analogue of P5's Table 1, plus the sequence-length distribution."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from pap_rec_core.data.interactions import InteractionData


@dataclass(frozen=True)
class DatasetStats:
    name: str
    fingerprint: str
    users: int
    items: int
    interactions: int
    density: float  # interactions / (users * items)
    seq_len_min: int
    seq_len_p25: float
    seq_len_median: float
    seq_len_mean: float
    seq_len_p75: float
    seq_len_max: int
    users_under_3: int  # get no validation/test target under leave-one-out
    interactions_per_item: float
    has_timestamps: bool
    has_ratings: bool
    has_item_titles: bool
    reviews: int
    # leave-one-out targets that repeat an item of their own history (with the history masked, as in our
    # evaluation, such a target cannot be ranked: a fixed miss for every system)
    test_repeats: int = 0
    valid_repeats: int = 0

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    def to_dict(self) -> dict:
        return asdict(self)

    def to_frame(self) -> pd.DataFrame:
        """Two columns (statistic, value), formatted for printing."""
        rows = [
            ("dataset", self.name),
            ("fingerprint", self.fingerprint),
            ("users", f"{self.users:,}"),
            ("items", f"{self.items:,}"),
            ("interactions", f"{self.interactions:,}"),
            ("density", f"{self.density:.4%}"),
            ("sparsity", f"{self.sparsity:.4%}"),
            ("interactions / user (mean)", f"{self.seq_len_mean:.2f}"),
            ("sequence length min / p25 / median / p75 / max",
             f"{self.seq_len_min} / {self.seq_len_p25:g} / {self.seq_len_median:g} / {self.seq_len_p75:g} / "
             f"{self.seq_len_max}"),
            ("users with < 3 interactions", f"{self.users_under_3:,}"),
            ("interactions / item (mean)", f"{self.interactions_per_item:.2f}"),
            ("timestamps", "yes" if self.has_timestamps else "no (file order)"),
            ("ratings", "yes" if self.has_ratings else "no"),
            ("item titles", "yes" if self.has_item_titles else "no"),
            ("reviews", f"{self.reviews:,}" if self.reviews else "none loaded"),
            ("test / validation targets repeating a history item",
             f"{self.test_repeats:,} / {self.valid_repeats:,} users (history masked: a miss for every system)"),
        ]
        return pd.DataFrame(rows, columns=["statistic", "value"])


def dataset_stats(data: InteractionData) -> DatasetStats:
    lengths = np.array([len(s) for s in data.sequences], dtype=np.int64)
    if lengths.size == 0:
        raise ValueError(f"dataset {data.name!r} has no users")
    p25, med, p75 = np.percentile(lengths, [25, 50, 75])
    n = int(lengths.sum())
    return DatasetStats(
        name=data.name,
        fingerprint=data.fingerprint(),
        users=data.n_users,
        items=data.n_items,
        interactions=n,
        density=n / (data.n_users * data.n_items),
        seq_len_min=int(lengths.min()),
        seq_len_p25=float(p25),
        seq_len_median=float(med),
        seq_len_mean=float(lengths.mean()),
        seq_len_p75=float(p75),
        seq_len_max=int(lengths.max()),
        users_under_3=int((lengths < 3).sum()),
        interactions_per_item=n / data.n_items,
        has_timestamps=data.timestamps is not None,
        has_ratings=data.ratings is not None,
        has_item_titles=data.item_titles() is not None,
        reviews=0 if data.reviews is None else len(data.reviews),
        test_repeats=sum(1 for seq in data.sequences if len(seq) >= 3 and seq[-1] in set(seq[:-1].tolist())),
        valid_repeats=sum(1 for seq in data.sequences if len(seq) >= 3 and seq[-2] in set(seq[:-2].tolist())),
    )


def sequence_length_histogram(data: InteractionData, bins: int = 20) -> pd.DataFrame:
    """Counts of users per sequence-length bin (log-spaced), for plots."""
    lengths = np.array([len(s) for s in data.sequences])
    edges = np.unique(np.geomspace(max(1, lengths.min()), lengths.max() + 1, bins + 1).astype(int))
    counts, edges = np.histogram(lengths, bins=edges)
    return pd.DataFrame({"length_from": edges[:-1], "length_to": edges[1:] - 1, "users": counts})
