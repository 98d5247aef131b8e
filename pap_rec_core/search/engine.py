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

What differs between the tasks (sequential, direct, explanation) — their users, rows, key info and
surrogate — comes from one :class:`~pap_rec_core.search.tasks.SearchTask`; this module only runs rounds.

Two engines take the same decisions: ``fast`` scores the k candidates of a slot in one batched pass
over prompts tokenised once (:mod:`pap_rec_core.search.slots`), computes the beam surrogate without
``generate`` (:func:`~pap_rec_core.rlm.beams.beam_top_items`, same lists), scores digit-text items
on the item trie, batches prompts of similar length, runs the encoder with the padding in the attention
keys (:mod:`pap_rec_core.rlm.attention`), computes a gradient sample drawn twice once, reuses a judge's
values of unchanged tokens and encoded prompts, and on CPU shares the encoder's first-layer attention
among a prompt's candidates and differentiates it at the slots alone (:mod:`pap_rec_core.rlm.slot_encoder`,
:func:`~pap_rec_core.search.hotflip.slot_gradients_sharing_first_layer`), with a decoder that never
projects the encoder states (:mod:`pap_rec_core.rlm.cross_attention`); ``reference`` follows the paper's
code step by step — every candidate is rendered,
tokenised and scored on its own, the beam surrogate by transformers' ``generate``, exact scores by
teacher forcing every item. Randomness (initial
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

from pap_rec_core.data.split import Split, item_mask
from pap_rec_core.rlm.attention import padded_keys_attention
from pap_rec_core.rlm.batching import EncodedBatch, collate, pad_labels
from pap_rec_core.rlm.checkpoint import RLMBundle
from pap_rec_core.rlm.slot_encoder import encode_slot_candidates, shares_first_layer
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
from pap_rec_core.search.hotflip import (
    candidate_scores,
    slot_gradients,
    slot_gradients_sharing_first_layer,
    top_candidates,
)
from pap_rec_core.search.slots import SlotPrompts
from pap_rec_core.search.tasks import Judge, Row, search_task
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
        self.task = search_task(split, config)
        users = self.task.population()
        if config.user_ids is not None:
            self.users = searchable_users(split, users, config.user_ids)
        else:
            self.users = users[: config.max_users] if config.max_users else users
        trained_here = "train_config" in (bundle.metadata or {})
        self.embedding = self.model.token_embeddings.weight.detach()
        allowed = allowed_token_mask(self.tok, split.data, config.exclude_untrained and trained_here)
        # a P5 checkpoint has more embedding rows than its tokenizer has pieces (T5: 32,128 for 32,100)
        self.allowed = torch.zeros(len(self.embedding), dtype=torch.bool)
        self.allowed[: len(allowed)] = torch.as_tensor(allowed)
        self.allowed_ids = [int(i) for i in torch.nonzero(self.allowed).flatten()]
        self._encoded: dict = {}  # fast: prompts encoded once (SlotPrompts.build's memo)
        self.rank, self.world = rank_and_world()
        self.mine = np.arange(len(self.users))[self.rank :: self.world]  # this process's users
        valid_rows = self.task.validation_rows(self.users)
        self.valid = self._judge(valid_rows)  # the paper's: each user's validation item (or reviews)
        # personal / shared rounds may also judge on each user's last N training items (kept out of gradients)
        self.personal_valid = self._with_holdout(valid_rows, config.personal_holdout)
        self.shared_valid = (self.personal_valid if config.shared_holdout == config.personal_holdout
                             else self._with_holdout(valid_rows, config.shared_holdout))
        self._judged: list[tuple[Judge, torch.Tensor, tuple[np.ndarray, np.ndarray]]] = []  # fast: see values()
        self._clock0 = time.perf_counter()

    def _with_holdout(self, valid_rows: list[Row], n: int) -> Judge:
        """The validation judge, plus a row per held-out training position (each user's last ``n`` training
        items, keeping at least one item of history)."""
        holdout = self.task.holdout_rows(self.users, n) if n else []
        return self._judge(valid_rows + holdout) if holdout else self.valid

    def _judge(self, rows: list[Row]) -> Judge:
        """Validation rows as a judge: their prompts, history masks and the task's own fields."""
        rows = sorted(rows, key=lambda x: x.user_row)  # user-major (stable)
        row_user = np.array([r.user_row for r in rows], dtype=np.int64)
        histories = [r.history for r in rows]
        mask = item_mask(histories if self.config.mask_history else [None] * len(rows), self.split.data.n_items)
        return Judge(self._prompts(rows), histories, row_user, mask,
                     np.flatnonzero(np.isin(row_user, self.mine)), np.bincount(row_user, minlength=len(self.users)),
                     **self.task.judge_fields(rows))

    def _prompts(self, rows: list[Row]) -> SlotPrompts:
        """The rows' prompts with placeholder slots (the task's key info from each row)."""
        if len(self._encoded) > 50_000:  # a bound on the memo (long searches draw ever new training prompts)
            self._encoded.clear()
        return self.task.prompts(self.tok, self.layout, self.users[[r.user_row for r in rows]], rows,
                                 memo=self._encoded if self.engine == "fast" else None)

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
            batch = collate([self.task.render(self.tok, self.layout, judge, int(r), t[:n_shared].tolist(),
                                              t[n_shared:].tolist()) for r, t in zip(rows, tokens_rows)])
            return self.task.values(self.model, self.tok, batch, judge, rows, generate=True)
        with padded_keys_attention():  # fast: the encoder's padding in its keys (the same outputs)
            return self.task.values(self.model, self.tok, judge.prompts.fill(tokens_rows, rows), judge, rows,
                                    generate=False)

    def _batches(self, judge: Judge, rows: np.ndarray) -> list[np.ndarray]:
        """Positions into ``rows`` (of ``judge``'s prompts) in batches: see :meth:`_length_batches`."""
        return self._length_batches(judge.prompts.lengths()[rows])

    def _length_batches(self, lengths: np.ndarray, size: int | None = None) -> list[np.ndarray]:
        """Positions into ``lengths`` (each prompt's tokens) in batches of at most ``batch_size``. The
        reference engine takes them in order; the fast one sorts them by prompt length and also starts a
        batch where padding would pass 5% of it (at least 16 rows a batch), so that trimmed batches carry
        little padding."""
        bs = size or self.config.batch_size
        if self.engine == "reference":
            return [np.arange(s, min(len(lengths), s + bs)) for s in range(0, len(lengths), bs)]
        order = np.argsort(lengths, kind="stable")
        out, start, total = [], 0, 0
        for k, pos in enumerate(order):
            n, total = k - start, total + int(lengths[pos])
            if n and (n == bs or (n >= 16 and (n + 1) * int(lengths[pos]) - total > 0.05 * (n + 1) * int(lengths[pos]))):
                out.append(order[start:k])
                start, total = k, int(lengths[pos])
        if start < len(order):
            out.append(order[start:])
        return out

    def values(self, tokens: torch.Tensor, judge: Judge | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-user (surrogate, target log-likelihood), means over the user's rows of ``judge`` (default:
        the validation item), with slot ``tokens`` (U, S)."""
        judge = judge or self.valid
        if self.engine == "fast":  # the same judge of the same tokens again (a round starting where the
            # last one left off, the initial value): the values computed then, not a second pass
            for seen, seen_tokens, (v, l_) in self._judged:
                if seen is judge and torch.equal(seen_tokens, tokens):
                    return v.copy(), l_.copy()
        vals, liks = np.zeros(len(self.users)), np.zeros(len(self.users))
        for idx in self._batches(judge, judge.mine):
            rows = judge.mine[idx]
            v, l_ = self._score_rows(judge, tokens[judge.row_user[rows]], rows)
            np.add.at(vals, judge.row_user[rows], v)
            np.add.at(liks, judge.row_user[rows], l_)
        all_sum(vals, liks)
        vals, liks = vals / judge.rows_per_user, liks / judge.rows_per_user
        if self.engine == "fast":
            self._judged = [(judge, tokens.clone(), (vals.copy(), liks.copy()))] + self._judged[:3]
        return vals, liks

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
        if shares_first_layer(self.model):
            return self._candidates_sharing_first_layer(tokens, slot, candidates, judge)
        # fast: all candidates of the slot in the same passes (candidate-major blocks of this process's rows)
        mine = judge.mine
        users_of = judge.row_user[mine]
        all_tokens = tokens[users_of].repeat(n_c, 1)
        all_tokens[:, slot] = candidates[users_of].T.reshape(-1)
        all_rows = np.tile(mine, n_c)
        all_cand = np.repeat(np.arange(n_c), len(mine))
        for idx in self._batches(judge, all_rows):
            v, l_ = self._score_rows(judge, all_tokens[idx], all_rows[idx])
            np.add.at(out_v, (all_cand[idx], judge.row_user[all_rows[idx]]), v)
            np.add.at(out_l, (all_cand[idx], judge.row_user[all_rows[idx]]), l_)
        all_sum(out_v, out_l)
        return out_v / judge.rows_per_user, out_l / judge.rows_per_user

    def _candidates_sharing_first_layer(self, tokens: torch.Tensor, slot: int, candidates: torch.Tensor,
                                        judge: Judge) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`values_of_candidates` with a prompt's candidates in one pass that shares the encoder's
        first-layer attention (:func:`~pap_rec_core.rlm.slot_encoder.encode_slot_candidates`): batches of
        ``batch_size / C`` prompts of similar length, each with its C candidates."""
        n_c = candidates.shape[1]
        out_v, out_l = np.zeros((n_c, len(self.users))), np.zeros((n_c, len(self.users)))
        mine = judge.mine
        for idx in self._length_batches(judge.prompts.lengths()[mine], max(1, self.config.batch_size // n_c)):
            rows = mine[idx]
            users_of = judge.row_user[rows]
            base = judge.prompts.fill(tokens[users_of], rows)
            cands = candidates[users_of]  # (R, C)
            with padded_keys_attention():
                hidden = encode_slot_candidates(self.model, base.to(self.device), slot, cands.to(self.device))
            filled = tokens[users_of].repeat_interleave(n_c, 0)
            filled[:, slot] = cands.reshape(-1)
            batch = judge.prompts.fill(filled, np.repeat(rows, n_c))
            batch = EncodedBatch(batch.input_ids, batch.whole_word_ids, batch.attention_mask, batch.slots, hidden)
            v, l_ = self.task.values(self.model, self.tok, batch, judge, np.repeat(rows, n_c), generate=False)
            at = (np.tile(np.arange(n_c), len(rows)), np.repeat(users_of, n_c))
            np.add.at(out_v, at, v)
            np.add.at(out_l, at, l_)
        all_sum(out_v, out_l)
        return out_v / judge.rows_per_user, out_l / judge.rows_per_user

    # -- gradients --------------------------------------------------------------------------------
    def training_prompts(self, iteration: int, kind: str) -> SlotPrompts:
        """``samples_per_user`` training samples (history prefix -> next training item; explanation: one of
        the user's training reviews) per user."""
        rng = _rng(self.config.seed, iteration, f"samples-{kind}")
        mine = set(self.mine.tolist())
        rows = []
        for row, u in enumerate(self.users):  # every process draws every sample: the same stream
            usable = max(1, len(self.split.train[int(u)]) - self.config.holdout)  # held-out positions stay out
            for _ in range(self.config.samples_per_user):
                sample = self.task.training_row(row, int(u), usable, rng)
                if row in mine:
                    rows.append(sample)
        return self._prompts(rows)

    def gradients(self, prompts: SlotPrompts, tokens: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(U, S, D) per-user gradient at every slot (mean over the user's samples) and the mean loss."""
        spu = self.config.samples_per_user
        grads = torch.zeros(len(self.users), self.layout.n_slots, self.embedding.shape[1], dtype=torch.float64)
        loss_sum = torch.zeros(1, dtype=torch.float64)
        row_of_sample = np.repeat(self.mine, spu)  # this process's samples are user-major
        row_tokens = tokens[row_of_sample]
        keep, counts = self._distinct_samples(prompts, row_of_sample)
        for part in self._length_batches(prompts.lengths()[keep]):  # fast: similar lengths together, as the judge
            idx = keep[part]
            batch = prompts.fill(row_tokens[idx], idx)
            labels = pad_labels([self.tok.text_target_ids(prompts.texts[i]) for i in idx] if prompts.texts is not None
                                else [self.tok.item_target_ids(int(t)) for t in prompts.targets[idx]])
            if self.engine == "fast":  # similar lengths together; the first layer's backward at the slots alone
                with padded_keys_attention():
                    g, losses = (slot_gradients_sharing_first_layer if shares_first_layer(self.model)
                                 else slot_gradients)(self.model, batch.to(self.device), labels)
            else:
                g, losses = slot_gradients(self.model, batch, labels)
            weight = torch.as_tensor(counts[part], dtype=torch.float64)  # a repeated sample counts as often as drawn
            grads.index_add_(0, torch.as_tensor(row_of_sample[idx]), g.double().cpu() * weight[:, None, None])
            loss_sum += (losses.double().cpu() * weight).sum()
        all_sum(grads, loss_sum)
        return grads / spu, float(loss_sum) / (len(self.users) * spu)

    def _distinct_samples(self, prompts: SlotPrompts, row_of_sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(keep, counts)``: the samples whose gradient is computed and how many drawn samples each stands for.
        The reference engine computes every sample; the fast one computes a sample drawn twice for the same user
        (the same prompt and target: the paper protocol draws 5 targets from each user's last 4 training
        items) once and counts it twice — the same sum."""
        n = len(prompts)
        if self.engine == "reference":
            return np.arange(n), np.ones(n, dtype=np.int64)
        ids, words, lengths = prompts.base.input_ids.numpy(), prompts.base.whole_word_ids.numpy(), prompts.lengths()
        first: dict[tuple, int] = {}
        keep, counts = [], []
        for i in range(n):
            answer = prompts.texts[i] if prompts.texts is not None else int(prompts.targets[i])
            key = (int(row_of_sample[i]), answer, ids[i, : lengths[i]].tobytes(), words[i, : lengths[i]].tobytes())
            if key in first:
                counts[first[key]] += 1
            else:
                first[key] = len(keep)
                keep.append(i)
                counts.append(1)
        return np.asarray(keep, dtype=np.int64), np.asarray(counts, dtype=np.int64)

    # -- rounds -----------------------------------------------------------------------------------
    def shared_round(self, state: SearchState) -> Generator[SearchEvent, None, bool]:
        """Yields the round's events; returns whether a token was accepted."""
        it, n_shared = state.iteration, self.layout.n_shared
        t0 = time.perf_counter()
        tokens = self._tokens(state.shared, state.personal)
        current, _ = self.values(tokens, self.shared_valid)
        judge_s = time.perf_counter() - t0
        grads, loss = self.gradients(self.training_prompts(it, "shared"), tokens)
        yield GradientComputed(time=self._now(), iteration=it, kind="shared", slots=list(range(n_shared)),
                               samples=len(self.users) * self.config.samples_per_user, loss=loss,
                               seconds=time.perf_counter() - t0, judge_seconds=judge_s)
        mean_grad = grads[:, :n_shared].mean(0)  # (S_shared, D)
        order = list(range(n_shared))
        _rng(self.config.seed, it, "slot-order").shuffle(order)
        value = float(current.mean())
        for slot in order:
            t0 = time.perf_counter()
            scores = candidate_scores(mean_grad[slot], self.embedding, self.allowed,
                                      None if self.config.allow_current else torch.tensor(state.shared[slot]))
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
        judge_s = time.perf_counter() - t0
        grads, loss = self.gradients(self.training_prompts(it, "personal"), tokens)
        yield GradientComputed(time=self._now(), iteration=it, kind="personal", slots=[slot],
                               samples=len(self.users) * self.config.samples_per_user, loss=loss,
                               seconds=time.perf_counter() - t0, judge_seconds=judge_s)
        scores = candidate_scores(grads[:, slot], self.embedding, self.allowed,
                                  None if self.config.allow_current else torch.as_tensor(state.personal[:, p]))  # (U, V)
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
        seconds = time.perf_counter() - t0  # the round's work; re-judging on validation alone is not in it
        state.value = self._validation_value(state, float(best_v.mean()), self.personal_valid)
        yield PersonalRound(time=self._now(), iteration=it, slot=slot, users_changed=len(changed),
                            value_before=before_value, value_after=float(best_v.mean()), changed=changed,
                            seconds=seconds)
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
