"""PAP-REC's alternating search of shared and personalised prompt tokens, as a stream of events.

One iteration = one shared round, then (with personal slots) one personal round:

- **Shared round.** Gradients of the training loss at the shared slots (averaged over the training
  samples of all searched users) give each slot's top-k candidates. Slots are tried in a random
  order; a slot's k candidates are scored with the surrogate on validation and the best is accepted
  only if it strictly improves the mean surrogate — the round then ends. A slot that does not improve
  is rejected and the next is tried; when every slot fails the shared tokens have converged.
- **Personal round.** One personal slot (random, the same for all users); per-user gradients give
  per-user top-k candidates; candidate c is evaluated for all users at once (each with its own c-th
  candidate) and every user keeps an improvement on its own surrogate value (``strict``, the paper)
  or, with ``likelihood-tiebreak``, also an equal value with a higher target likelihood.

Two engines take the same decisions: ``fast`` scores the k candidates of a slot in one batched pass
over prompts tokenised once (:mod:`pap_rec_core.search.slots`) and computes the beam surrogate of
single-token items without ``generate`` (:func:`~pap_rec_core.rlm.ranking.beam_top_items`);
``reference`` follows the paper's code step by step — every candidate is rendered, tokenised and
scored on its own, the beam surrogate by transformers' ``generate``. Randomness (initial
tokens, slot order, training samples) comes from generators seeded by (seed, iteration, purpose), so an
iteration depends only on the state before it: that is what makes ``resume`` exact.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Generator, Iterator

import numpy as np
import torch

from pap_rec_core.data.split import Split, Stage, item_mask
from pap_rec_core.rlm.batching import collate, pad_labels
from pap_rec_core.rlm.checkpoint import RLMBundle
from pap_rec_core.search.config import SearchConfig
from pap_rec_core.search.distributed import all_sum, rank_and_world
from pap_rec_core.search.events import (
    CandidatesScored,
    Evaluated,
    Finished,
    GradientComputed,
    IterationFinished,
    PersonalRound,
    Resumed,
    RunStarted,
    SearchEvent,
    SharedConverged,
    SlotRejected,
    TokenAccepted,
)
from pap_rec_core.search.hotflip import candidate_scores, slot_gradients, top_candidates
from pap_rec_core.search.slots import SlotPrompts
from pap_rec_core.search.surrogate import direct_values, explanation_values, surrogate_values
from pap_rec_core.search.vocab import allowed_token_mask

ENGINES = ("fast", "reference")


@dataclass
class SearchState:
    """Everything an iteration depends on (besides the config, model and data)."""

    iteration: int  # the next iteration to run
    shared: list[int]
    personal: np.ndarray  # (U, P) int64
    converged: bool = False  # the last iteration changed no token
    value: float = float("nan")  # mean surrogate of the current tokens


@dataclass(frozen=True)
class Judge:
    """Validation prompts a surrogate is computed on: one or more rows per searched user."""

    prompts: SlotPrompts
    histories: list  # (R,) history of each row (the reference engine renders from it)
    row_user: np.ndarray  # (R,) row -> index into the searched users
    mask: np.ndarray  # (R, I) items excluded from each row's ranking (its history)
    mine: np.ndarray  # rows this process scores
    rows_per_user: np.ndarray  # (U,)
    candidates: np.ndarray | None = None  # direct task: (R, C) candidate lists as shown
    target_col: np.ndarray | None = None  # direct task: (R,) column of the target in ``candidates``
    items: np.ndarray | None = None  # explanation task: (R,) the reviewed item of each row


@dataclass(frozen=True)
class Row:
    """One prompt to judge or to train on: the searched user's row and what the task shows and asks."""

    user_row: int
    history: np.ndarray | None = None  # sequential
    target: int = -1  # sequential / direct: the item asked for
    candidates: np.ndarray | None = None  # direct
    item: int | None = None  # explanation: the reviewed item
    text: str | None = None  # explanation: the reference explanation


def review_users(data) -> tuple[np.ndarray, dict[int, list[tuple[int, str]]], dict[int, list[tuple[int, str]]]]:
    """Users with at least one ``train`` and one ``val`` review (sorted) and, per user, the (item, text)
    pairs of each of the two splits: the explanation task's search population."""
    if data.reviews is None:
        raise ValueError(f"{data.name} has no review text: the explanation task needs P5's review_splits.pkl / "
                         "exp_splits.pkl (loaded with trust_pickle=True)")
    by: dict[str, dict[int, list[tuple[int, str]]]] = {"train": {}, "val": {}}
    for r in data.reviews.itertuples():
        if r.split in by:
            by[r.split].setdefault(int(r.user), []).append((int(r.item), str(r.text)))
    users = np.array(sorted(set(by["train"]) & set(by["val"])), dtype=np.int64)
    if not len(users):
        raise ValueError(f"{data.name}: no user has both a train and a val review to search explanations on")
    return users, by["train"], by["val"]


def searchable_users(split: Split, population: np.ndarray, user_ids) -> np.ndarray:
    """Dense indices of raw ``user_ids`` (in their order); each must be a user the task can search
    (``population``: e.g. users with a validation item). Unknown or unsearchable ids are an error that
    names them."""
    from pap_rec_core.data.errors import UnknownUserError

    out = [split.data.user_index(uid) for uid in user_ids]  # an unknown id: UnknownUserError naming it
    searchable = set(int(u) for u in population)
    bad = [uid for uid, u in zip(user_ids, out) if u not in searchable]
    if bad:
        raise UnknownUserError(f"user(s) {', '.join(map(str, bad[:5]))} of {split.data.name} cannot be searched: "
                               "no validation item (fewer than 3 interactions) or nothing this task needs")
    return np.asarray(out, dtype=np.int64)


def _resolved(path: str | None) -> str | None:
    """The model path as an absolute path (a trace read from another directory still finds its model)."""
    from pathlib import Path

    return None if path is None else str(Path(path).resolve())


def _rng(seed: int, iteration: int, purpose: str) -> random.Random:
    return random.Random(f"{seed}:{iteration}:{purpose}")


class PapRecSearch:
    """The search over one RLM and split. ``events()`` runs it and yields :mod:`events` as they happen.

    Example::

        search = PapRecSearch(bundle, split, SearchConfig(n_personal=1, iterations=5))
        for event in search.events():
            print(event.event)
    """

    def __init__(self, bundle: RLMBundle, split: Split, config: SearchConfig = SearchConfig(), *,
                 engine: str = "fast"):
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; use {' or '.join(ENGINES)}")
        self.bundle, self.split, self.config, self.engine = bundle, split, config, engine
        self.model, self.tok = bundle.model.eval(), bundle.tokenizer
        for p in self.model.parameters():
            p.requires_grad_(False)  # only input-embedding gradients are needed
        self.device = next(self.model.parameters()).device
        self.layout = config.layout
        explanation = config.task == "explanation"
        if explanation:
            users, self._train_reviews, valid_reviews = review_users(split.data)
            titles = split.data.item_titles()
            self._titles = None if titles is None else [str(t) for t in titles]
        else:
            users = split.eval_users
        if config.user_ids is not None:
            self.users = searchable_users(split, users, config.user_ids)
        else:
            self.users = users[: config.max_users] if config.max_users else users
        trained_here = "train_config" in (bundle.metadata or {})
        self.allowed = torch.as_tensor(allowed_token_mask(self.tok, split.data, config.exclude_untrained and trained_here))
        self.allowed_ids = [int(i) for i in torch.nonzero(self.allowed).flatten()]
        self.embedding = self.model.token_embeddings.weight.detach()
        self.rank, self.world = rank_and_world()
        self.mine = np.arange(len(self.users))[self.rank :: self.world]  # this process's users
        if explanation:  # every validation review of the user
            valid_rows = [Row(r, item=item, text=text) for r, u in enumerate(self.users)
                          for item, text in valid_reviews[int(u)]]
        elif config.task == "direct":  # fixed negatives of the split, shown in a seeded order per user
            targets = split.targets(Stage.VALID)[self.users]
            cands = split.candidates(Stage.VALID, self.users)  # target in column 0
            order_rng = np.random.default_rng(config.seed)
            shown = [row[order_rng.permutation(len(row))] for row in cands]
            valid_rows = [Row(r, target=int(targets[r]), candidates=shown[r]) for r in range(len(self.users))]
        else:
            targets = split.targets(Stage.VALID)[self.users]
            valid_rows = [Row(r, split.history(int(u), Stage.VALID), int(targets[r]))
                          for r, u in enumerate(self.users)]
        self.valid = self._judge(valid_rows)  # the paper's: each user's validation item (or reviews)
        # personal / shared rounds may also judge on each user's last N training items (kept out of gradients)
        self.personal_valid = self._with_holdout(valid_rows, config.personal_holdout)
        self.shared_valid = (self.personal_valid if config.shared_holdout == config.personal_holdout
                             else self._with_holdout(valid_rows, config.shared_holdout))
        self._clock0 = time.perf_counter()

    def _with_holdout(self, valid_rows: list[Row], n: int) -> Judge:
        """The validation judge, plus a row per held-out training position (each user's last ``n`` training
        items, keeping at least one item of history)."""
        holdout = [Row(r, train[: len(train) - j], int(train[len(train) - j]))
                   for r, u in enumerate(self.users) for train in [self.split.train[int(u)]]
                   for j in range(1, min(n, len(train) - 1) + 1)]
        return self._judge(valid_rows + holdout) if holdout else self.valid

    def _prompts(self, rows: list[Row]) -> SlotPrompts:
        """The rows' prompts with placeholder slots (the task's key info from each row)."""
        users = self.users[[r.user_row for r in rows]]
        histories, targets = [r.history for r in rows], [r.target for r in rows]
        if self.config.task == "explanation":
            items = [r.item for r in rows]
            titles = [None if self._titles is None else self._titles[i] for i in items]
            return SlotPrompts.build(self.tok, self.layout, users, histories, targets, items=items, titles=titles,
                                     texts=[r.text for r in rows])
        cands = [r.candidates for r in rows] if self.config.task == "direct" else None
        return SlotPrompts.build(self.tok, self.layout, users, histories, targets, candidates=cands)

    def _judge(self, rows: list[Row]) -> Judge:
        """Validation rows: history for the sequential task, candidate list (containing the target) for
        the direct task, item and reference text for the explanation task."""
        rows = sorted(rows, key=lambda x: x.user_row)  # user-major (stable)
        row_user = np.array([r.user_row for r in rows], dtype=np.int64)
        histories = [r.history for r in rows]
        direct = self.config.task == "direct"
        cands = np.stack([r.candidates for r in rows]) if direct else None
        prompts = self._prompts(rows)
        mask = item_mask(histories, self.split.data.n_items)
        target_col = (np.array([int(np.flatnonzero(r.candidates == r.target)[0]) for r in rows]) if direct
                      else None)
        items = np.array([r.item for r in rows], dtype=np.int64) if self.config.task == "explanation" else None
        return Judge(prompts, histories, row_user, mask, np.flatnonzero(np.isin(row_user, self.mine)),
                     np.bincount(row_user, minlength=len(self.users)), cands, target_col, items)

    # -- state ------------------------------------------------------------------------------------
    def initial_state(self) -> SearchState:
        rng = _rng(self.config.seed, -1, "init")
        shared = [rng.choice(self.allowed_ids) for _ in range(self.layout.n_shared)]
        personal = np.array([[rng.choice(self.allowed_ids) for _ in range(self.layout.n_personal)]
                             for _ in self.users], dtype=np.int64).reshape(len(self.users), self.layout.n_personal)
        return SearchState(0, shared, personal)

    def _tokens(self, shared: list[int], personal: np.ndarray) -> torch.Tensor:
        """(U, S) slot tokens of every searched user."""
        shared_t = torch.tensor(shared, dtype=torch.long).expand(len(self.users), -1)
        return torch.cat([shared_t, torch.as_tensor(personal, dtype=torch.long)], dim=1)

    def _now(self) -> float:
        return round(time.perf_counter() - self._clock0, 4)

    # -- surrogate --------------------------------------------------------------------------------
    def _score_rows(self, judge: Judge, tokens_rows: torch.Tensor, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Surrogate and likelihood of ``judge``'s ``rows`` with slot tokens ``tokens_rows`` (R, S)."""
        if self.engine == "reference":  # render and tokenise every prompt, as the paper's code
            n_shared = self.layout.n_shared
            cands, items = judge.candidates, judge.items
            batch = collate([self.tok.encode_parts(self.layout.parts(
                int(judge.prompts.users[r]), judge.histories[r], None if cands is None else cands[r],
                shared=t[:n_shared].tolist(), personal=t[n_shared:].tolist(),
                item=None if items is None else int(items[r]),
                title=None if items is None or self._titles is None else self._titles[int(items[r])]))
                for r, t in zip(rows, tokens_rows)])
        else:
            batch = judge.prompts.fill(tokens_rows, rows)
        if judge.items is not None:
            return explanation_values(self.config.surrogate, self.model, self.tok, batch,
                                      [judge.prompts.texts[r] for r in rows], self.config.max_explanation_tokens)
        if judge.candidates is not None:
            return direct_values(self.config.surrogate, self.model, self.tok, batch, judge.candidates[rows],
                                 judge.target_col[rows], self.config.ranking)
        return surrogate_values(self.config.surrogate, self.model, self.tok, batch, judge.prompts.targets[rows],
                                judge.mask[rows], self.config.ranking, generate=self.engine == "reference")

    def values(self, tokens: torch.Tensor, judge: Judge | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-user (surrogate, target log-likelihood), means over the user's rows of ``judge`` (default:
        the validation item), with slot ``tokens`` (U, S)."""
        judge = judge or self.valid
        vals, liks = np.zeros(len(self.users)), np.zeros(len(self.users))
        bs = self.config.batch_size
        for s in range(0, len(judge.mine), bs):
            rows = judge.mine[s : s + bs]
            v, l_ = self._score_rows(judge, tokens[judge.row_user[rows]], rows)
            np.add.at(vals, judge.row_user[rows], v)
            np.add.at(liks, judge.row_user[rows], l_)
        all_sum(vals, liks)
        return vals / judge.rows_per_user, liks / judge.rows_per_user

    def values_of_candidates(self, tokens: torch.Tensor, slot: int, candidates: torch.Tensor,
                             judge: Judge | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(C, U) surrogate values and likelihoods with slot ``slot`` set to each candidate column
        (``candidates`` (U, C): per-user candidates; shared slots give the same one to every user)."""
        judge = judge or self.valid
        n_c = candidates.shape[1]
        out_v, out_l = np.zeros((n_c, len(self.users))), np.zeros((n_c, len(self.users)))
        if self.engine == "reference":  # one candidate per pass, as the paper's code
            for c in range(n_c):
                t = tokens.clone()
                t[:, slot] = candidates[:, c]
                out_v[c], out_l[c] = self.values(t, judge)
            return out_v, out_l
        # fast: all candidates of the slot in the same passes (candidate-major blocks of this process's rows)
        mine = judge.mine
        users_of = judge.row_user[mine]
        all_tokens = tokens[users_of].repeat(n_c, 1)
        all_tokens[:, slot] = candidates[users_of].T.reshape(-1)
        all_rows = np.tile(mine, n_c)
        all_cand = np.repeat(np.arange(n_c), len(mine))
        bs = self.config.batch_size
        for s in range(0, len(all_rows), bs):
            idx = np.arange(s, min(len(all_rows), s + bs))
            v, l_ = self._score_rows(judge, all_tokens[idx], all_rows[idx])
            np.add.at(out_v, (all_cand[idx], judge.row_user[all_rows[idx]]), v)
            np.add.at(out_l, (all_cand[idx], judge.row_user[all_rows[idx]]), l_)
        all_sum(out_v, out_l)
        return out_v / judge.rows_per_user, out_l / judge.rows_per_user

    # -- gradients --------------------------------------------------------------------------------
    def training_prompts(self, iteration: int, kind: str) -> SlotPrompts:
        """``samples_per_user`` training samples (history prefix -> next training item; explanation: one of
        the user's training reviews) per user."""
        rng = _rng(self.config.seed, iteration, f"samples-{kind}")
        mine = set(self.mine.tolist())
        task = self.config.task
        n_neg = self.split.negatives.shape[1] if task == "direct" else 0
        rows = []
        for row, u in enumerate(self.users):  # every process draws every sample: the same stream
            train = self.split.train[int(u)]
            usable = max(1, len(train) - self.config.holdout)  # held-out positions stay out
            for _ in range(self.config.samples_per_user):
                if task == "explanation":
                    reviews = self._train_reviews[int(u)]
                    item, text = reviews[rng.randrange(len(reviews))]
                    sample = Row(row, item=item, text=text)
                else:
                    t = rng.randrange(1, usable) if usable > 1 else 0
                    target = int(train[t]) if len(train) else int(self.split.targets(Stage.VALID)[int(u)])
                    sample = (Row(row, target=target, candidates=self._direct_candidates(int(u), target, n_neg, rng))
                              if task == "direct" else Row(row, train[:t], target))
                if row in mine:
                    rows.append(sample)
        return self._prompts(rows)

    def _direct_candidates(self, user: int, target: int, n_neg: int, rng: random.Random) -> np.ndarray:
        """A training candidate list: the target and ``n_neg`` items the user never interacted with."""
        seen = set(self.split.data.sequences[user].tolist())
        pool_size = self.split.data.n_items - len(seen)
        negatives: list[int] = []
        while len(negatives) < min(n_neg, pool_size):
            j = rng.randrange(self.split.data.n_items)
            if j not in seen and j not in negatives:
                negatives.append(j)
        shown = negatives + [target]
        rng.shuffle(shown)
        return np.asarray(shown, dtype=np.int64)

    def gradients(self, prompts: SlotPrompts, tokens: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(U, S, D) per-user gradient at every slot (mean over the user's samples) and the mean loss."""
        spu = self.config.samples_per_user
        grads = torch.zeros(len(self.users), self.layout.n_slots, self.embedding.shape[1], dtype=torch.float64)
        loss_sum = torch.zeros(1, dtype=torch.float64)
        row_of_sample = np.repeat(self.mine, spu)  # this process's samples are user-major
        row_tokens = tokens[row_of_sample]
        bs = self.config.batch_size
        for s in range(0, len(prompts), bs):
            idx = np.arange(s, min(len(prompts), s + bs))
            batch = prompts.fill(row_tokens[idx], idx)
            labels = pad_labels([self.tok.text_target_ids(prompts.texts[i]) for i in idx] if prompts.texts is not None
                                else [self.tok.item_target_ids(int(t)) for t in prompts.targets[idx]])
            g, losses = slot_gradients(self.model, batch, labels)
            grads.index_add_(0, torch.as_tensor(row_of_sample[idx]), g.double().cpu())
            loss_sum += losses.double().sum().cpu()
        all_sum(grads, loss_sum)
        return grads / spu, float(loss_sum) / (len(self.users) * spu)

    # -- rounds -----------------------------------------------------------------------------------
    def shared_round(self, state: SearchState) -> Generator[SearchEvent, None, bool]:
        """Yields the round's events; returns whether a token was accepted."""
        it, n_shared = state.iteration, self.layout.n_shared
        t0 = time.perf_counter()
        tokens = self._tokens(state.shared, state.personal)
        current, _ = self.values(tokens, self.shared_valid)
        grads, loss = self.gradients(self.training_prompts(it, "shared"), tokens)
        yield GradientComputed(time=self._now(), iteration=it, kind="shared", slots=list(range(n_shared)),
                               samples=len(self.users) * self.config.samples_per_user, loss=loss,
                               seconds=time.perf_counter() - t0)
        mean_grad = grads[:, :n_shared].mean(0)  # (S_shared, D)
        order = list(range(n_shared))
        _rng(self.config.seed, it, "slot-order").shuffle(order)
        value = float(current.mean())
        for slot in order:
            t0 = time.perf_counter()
            scores = candidate_scores(mean_grad[slot], self.embedding, self.allowed, torch.tensor(state.shared[slot]))
            cands = top_candidates(scores, self.config.top_k)
            vals, _ = self.values_of_candidates(tokens, slot, cands.expand(len(self.users), -1), self.shared_valid)
            means = vals.mean(1)
            yield CandidatesScored(time=self._now(), iteration=it, slot=slot, current=state.shared[slot],
                                   current_value=value, candidates=cands.tolist(),
                                   candidates_text=[self.tok.token_text(int(c)) for c in cands],
                                   gradient_scores=[float(scores[c]) for c in cands], values=means.tolist(),
                                   seconds=time.perf_counter() - t0)
            best = int(np.argmax(means))  # first of equal bests
            if means[best] > value:
                before = state.shared[slot]
                state.shared[slot] = int(cands[best])
                state.value = self._validation_value(state, float(means[best]), self.shared_valid)
                yield TokenAccepted(time=self._now(), iteration=it, slot=slot, before=before, after=state.shared[slot],
                                    before_text=self.tok.token_text(before),
                                    after_text=self.tok.token_text(state.shared[slot]), value_before=value,
                                    value_after=float(means[best]), shared=list(state.shared))
                return True
            yield SlotRejected(time=self._now(), iteration=it, slot=slot, best_value=float(means[best]),
                               current_value=value)
        yield SharedConverged(time=self._now(), iteration=it)
        return False

    def personal_round(self, state: SearchState) -> Generator[SearchEvent, None, bool]:
        """Yields the round's event; returns whether any user's token changed."""
        it, n_shared = state.iteration, self.layout.n_shared
        t0 = time.perf_counter()
        p = _rng(self.config.seed, it, "personal-slot").randrange(self.layout.n_personal)
        slot = n_shared + p
        tokens = self._tokens(state.shared, state.personal)
        current, lik = self.values(tokens, self.personal_valid)
        grads, loss = self.gradients(self.training_prompts(it, "personal"), tokens)
        yield GradientComputed(time=self._now(), iteration=it, kind="personal", slots=[slot],
                               samples=len(self.users) * self.config.samples_per_user, loss=loss,
                               seconds=time.perf_counter() - t0)
        scores = candidate_scores(grads[:, slot], self.embedding, self.allowed,
                                  torch.as_tensor(state.personal[:, p]))  # (U, V)
        cands = top_candidates(scores, self.config.top_k)  # (U, k)
        vals, liks = self.values_of_candidates(tokens, slot, cands, self.personal_valid)  # (k, U)
        before_value = float(current.mean())
        best_v, best_l = current.copy(), lik.copy()
        choice = np.full(len(self.users), -1)
        for c in range(cands.shape[1]):
            better = vals[c] > best_v
            if self.config.personal_rule == "likelihood-tiebreak":
                better |= (vals[c] == best_v) & (liks[c] > best_l)
            choice[better] = c
            best_v[better], best_l[better] = vals[c][better], liks[c][better]
        changed = {}
        for r in np.flatnonzero(choice >= 0):
            new = int(cands[r, choice[r]])
            changed[str(int(self.users[r]))] = [int(state.personal[r, p]), new]
            state.personal[r, p] = new
        state.value = self._validation_value(state, float(best_v.mean()), self.personal_valid)
        yield PersonalRound(time=self._now(), iteration=it, slot=slot, users_changed=len(changed),
                            value_before=before_value, value_after=float(best_v.mean()), changed=changed,
                            seconds=time.perf_counter() - t0)
        return bool(changed)

    def _validation_value(self, state: SearchState, judged: float, judge: Judge) -> float:
        """The state's value on the validation items alone (``judged`` when the round's judge was that)."""
        if judge is self.valid:
            return judged
        return float(self.values(self._tokens(state.shared, state.personal))[0].mean())

    # -- the run ----------------------------------------------------------------------------------
    def events(self, resume_from: SearchState | None = None) -> Iterator[SearchEvent]:
        """Run the search (from the start, or from a state recorded by ``IterationFinished``)."""
        t_start = time.perf_counter()
        if resume_from is None:
            state = self.initial_state()
            yield RunStarted(time=self._now(), config=self.config.to_dict(),
                             dataset={"name": self.split.data.name, "fingerprint": self.split.data.fingerprint()},
                             model={"path": _resolved(self.bundle.path), "parameters": self.model.num_parameters()},
                             users=[int(u) for u in self.users], shared=list(state.shared),
                             personal=state.personal.tolist(), allowed_tokens=len(self.allowed_ids))
            state.value = float(self.values(self._tokens(state.shared, state.personal))[0].mean())
            yield Evaluated(time=self._now(), label="initial", metrics={"surrogate": state.value})
        else:
            state = resume_from
            yield Resumed(time=self._now(), after_iteration=state.iteration - 1)
        while state.iteration < self.config.iterations and not state.converged:
            changed = False
            if self.layout.n_shared:
                changed |= yield from self.shared_round(state)
            if self.layout.n_personal:
                changed |= yield from self.personal_round(state)
            state.converged = not changed
            yield IterationFinished(time=self._now(), iteration=state.iteration, shared=list(state.shared),
                                    personal=state.personal.tolist(), value=state.value, converged=state.converged)
            state.iteration += 1
        yield Finished(time=self._now(), shared=list(state.shared),
                       shared_text=[self.tok.token_text(t) for t in state.shared], personal=state.personal.tolist(),
                       value=state.value, iterations=state.iteration, seconds=time.perf_counter() - t_start)
