"""Scoring RecBole models with our evaluator: RecBole ids <-> our item indices, full-ranking scores in
user batches, and RecBole's Pop counted once per interaction."""

from __future__ import annotations

import numpy as np

from pap_rec_core.data.item_index import ItemIndex
from pap_rec_core.data.split import Split, Stage

SCORE_BATCH_USERS = 256  # users per full_sort_predict call


class Scorer:
    """``score(users, stage) -> (B, n_items)`` scores in our item order from ``model.full_sort_predict``."""

    def __init__(self, model, dataset, split: Split, index: ItemIndex, device, window: int | None):
        self.model, self.split, self.device, self.window = model, split, device, window
        self.uid_field, self.iid_field = dataset.uid_field, dataset.iid_field
        item_tokens = dataset.field2id_token[self.iid_field]  # RecBole id -> textual id ([PAD] at 0)
        self.our_of_rb = np.full(len(item_tokens), -1, dtype=np.int64)
        for rb, token in enumerate(item_tokens[1:], start=1):
            self.our_of_rb[rb] = index.item_of(str(token))
        n_items = split.data.n_items
        self.rb_of_our = np.zeros(n_items, dtype=np.int64)
        self.rb_of_our[self.our_of_rb[1:]] = np.arange(1, len(item_tokens))
        missing = np.setdiff1d(np.arange(n_items), self.our_of_rb[1:])
        if missing.size:
            raise RuntimeError(f"{missing.size} items have no RecBole id (e.g. {index.text_of(int(missing[0]))!r})")
        token_id = dataset.field2token_id[self.uid_field]
        self.rb_user = np.zeros(split.data.n_users, dtype=np.int64)
        for u in split.eval_users:
            rb = token_id.get(str(split.data.user_ids[u]))
            if rb is None:
                raise RuntimeError(f"user {split.data.user_ids[u]!r} has no RecBole id")
            self.rb_user[u] = rb

    def histories(self, users: np.ndarray, stage: Stage) -> tuple[np.ndarray, np.ndarray]:
        """(B, window) RecBole ids of each user's last ``window`` history items (right-padded), (B,) lengths."""
        seqs = np.zeros((len(users), self.window), dtype=np.int64)
        lens = np.zeros(len(users), dtype=np.int64)
        for row, u in enumerate(users):
            hist = self.split.history(int(u), stage)[-self.window:]
            seqs[row, : len(hist)] = self.rb_of_our[hist]
            lens[row] = len(hist)
        return seqs, lens

    def __call__(self, users: np.ndarray, stage: Stage) -> np.ndarray:
        import torch
        from recbole.data.interaction import Interaction

        users = np.asarray(users, dtype=np.int64)
        out = np.empty((len(users), self.split.data.n_items), dtype=np.float64)
        self.model.eval()
        with torch.no_grad():
            for start in range(0, len(users), SCORE_BATCH_USERS):
                batch = users[start:start + SCORE_BATCH_USERS]
                inter = {self.uid_field: torch.as_tensor(self.rb_user[batch])}
                if self.window is not None:
                    seqs, lens = self.histories(batch, stage)
                    inter[self.iid_field + "_list"] = torch.as_tensor(seqs)
                    inter["item_length"] = torch.as_tensor(lens)
                scores = self.model.full_sort_predict(Interaction(inter).to(self.device))
                scores = scores.view(len(batch), -1).double().cpu().numpy()
                scores = np.where(np.isnan(scores), -np.inf, scores)
                out[start:start + len(batch)][:, self.our_of_rb[1:]] = scores[:, 1:]
        return out


def pop_exact_loss(model):
    """``loss_func`` for RecBole's Pop that splits each batch into duplicate-free sub-batches.

    ``Pop.calculate_loss`` does ``item_cnt[items] = item_cnt[items] + 1``: repeated indices in one batch
    are written once. Sub-batch ``r`` holds each item's ``r``-th occurrence in the batch, so every
    interaction is counted (what RecBole's Pop computes with a batch size of 1).
    """

    def loss_func(interaction):
        items = interaction[model.ITEM_ID].cpu().numpy()
        order = np.argsort(items, kind="stable")
        sorted_items = items[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_items)) + 1]
        sizes = np.diff(np.r_[starts, len(items)])
        occurrence = np.empty(len(items), dtype=np.int64)
        occurrence[order] = np.arange(len(items)) - np.repeat(starts, sizes)
        loss = None
        for r in range(int(occurrence.max()) + 1 if len(items) else 0):
            loss = model.calculate_loss(interaction[np.flatnonzero(occurrence == r)])
        return loss

    return loss_func


def check_sequential_inputs(scorer: Scorer, part, stage: Stage) -> None:
    """RecBole's loaded rows of a stage must hold exactly our (windowed) histories and targets."""
    inter = part.inter_feat
    uid = inter[scorer.uid_field].numpy()
    seqs = inter[scorer.iid_field + "_list"].numpy()
    lens = inter["item_length"].numpy()
    targets = inter[scorer.iid_field].numpy()
    users = scorer.split.eval_users
    if len(uid) != len(users):
        raise RuntimeError(f"RecBole's {stage.value} part has {len(uid)} rows for {len(users)} users")
    row_of = {int(r): i for i, r in enumerate(uid)}
    ours, our_lens = scorer.histories(users, stage)
    for k, u in enumerate(users):
        i = row_of.get(int(scorer.rb_user[u]))
        width = min(seqs.shape[1], ours.shape[1])
        if (i is None or lens[i] != our_lens[k] or not np.array_equal(seqs[i, :width], ours[k, :width])
                or scorer.our_of_rb[targets[i]] != scorer.split.targets(stage)[u]):
            raise RuntimeError(f"RecBole's {stage.value} input for user {scorer.split.data.user_ids[u]!r} differs "
                               "from the split's history")
