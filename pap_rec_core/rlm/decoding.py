"""Decoding items written as several tokens (P5's digit text) without ``generate``'s per-beam copies.

T5's decoder is applied by hand one position at a time (:func:`decoder_step`) on a regular
``(prompt, row)`` layout: every row of a prompt reads that prompt's cross-attention keys and values
(computed once, by transformers' own first step), and carries its own cached self-attention keys and
values. Its users:

- :func:`trie_item_scores`: the exact log-likelihood ``log p(item tokens, </s> | prompt)`` of every item,
  walking the item-id trie level by level, so an item prefix shared by many items runs once per prompt
  (teacher forcing runs every item's every position, with its own copy of the cross-attention keys).
- :func:`~pap_rec_core.rlm.beam_replay.beam_search_sequences`: transformers' beam search replayed
  (``generate``'s lists, tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.tokenizer import EOS_ID, PAD_ID

INVALID = -1  # the trie state of a prefix that is no item's prefix (only </s> allowed, as ItemTrie.allowed)


@dataclass(frozen=True)
class TrieTable:
    """The item-id trie as arrays. Node 0 is the root (the empty prefix); ``depth[n]`` tokens lead to node
    ``n``; ``token[n]``/``parent[n]`` the last of them and the node before. ``allowed(n)`` is what
    :meth:`~pap_rec_core.rlm.beams.ItemTrie.allowed` allows after that prefix (the children's tokens;
    ``[PAD]`` after an item's ``</s>``; ``[</s>]`` after an invalid prefix)."""

    parent: np.ndarray  # (N,) int64, -1 for the root
    token: np.ndarray  # (N,) int64, -1 for the root
    depth: np.ndarray  # (N,) int64
    item_leaf: np.ndarray  # (I,) int64: the node of each item's </s>
    child_ptr: np.ndarray  # (N + 1,) CSR offsets into child_tok / child_node
    child_tok: np.ndarray
    child_node: np.ndarray
    keys: np.ndarray  # sorted node * vocab + token of every edge
    key_child: np.ndarray  # the child of each key
    vocab: int

    @classmethod
    def build(cls, sequences: Sequence[tuple[int, ...]], vocab: int) -> "TrieTable":
        parent, token, depth, leaf = [-1], [-1], [0], []
        children: list[dict[int, int]] = [{}]
        for seq in sequences:
            node = 0
            for tok in seq:
                nxt = children[node].get(int(tok))
                if nxt is None:
                    nxt = len(parent)
                    children[node][int(tok)] = nxt
                    parent.append(node), token.append(int(tok)), depth.append(depth[node] + 1)
                    children.append({})
                node = nxt
            leaf.append(node)
        ptr, ctok, cnode = [0], [], []
        for kids in children:
            ctok.extend(kids.keys())
            cnode.extend(kids.values())
            ptr.append(len(ctok))
        edges = np.array([(n * vocab + t, c) for n, kids in enumerate(children) for t, c in kids.items()],
                         dtype=np.int64).reshape(-1, 2)
        order = np.argsort(edges[:, 0], kind="stable")
        as_i64 = lambda xs: np.asarray(xs, dtype=np.int64)  # noqa: E731
        return cls(as_i64(parent), as_i64(token), as_i64(depth), as_i64(leaf), as_i64(ptr), as_i64(ctok),
                   as_i64(cnode), edges[order, 0], edges[order, 1], int(vocab))

    def step(self, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The states after appending ``tokens`` to prefixes in states ``nodes`` (same shapes)."""
        keys = torch.as_tensor(self.keys, device=nodes.device)
        query = nodes.clamp(min=0) * self.vocab + tokens
        pos = torch.searchsorted(keys, query).clamp(max=max(len(self.keys) - 1, 0))
        found = (nodes >= 0) & (keys[pos] == query) if len(self.keys) else torch.zeros_like(nodes, dtype=torch.bool)
        return torch.where(found, torch.as_tensor(self.key_child, device=nodes.device)[pos], INVALID)

    def edges(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(index into nodes, token, child)`` of every edge leaving ``nodes`` (valid states), grouped by node."""
        starts, stops = self.child_ptr[nodes], self.child_ptr[nodes + 1]
        counts = stops - starts
        offsets = np.repeat(starts - np.cumsum(np.r_[0, counts[:-1]]), counts) + np.arange(counts.sum())
        return np.repeat(np.arange(len(nodes)), counts), self.child_tok[offsets], self.child_node[offsets]

    def allowed_mask(self, nodes: torch.Tensor, vocab: int) -> torch.Tensor:
        """(R, vocab) float: 0 on the tokens allowed after each state, -inf elsewhere (the constrained logits
        processor's mask)."""
        nodes_np = nodes.cpu().numpy()
        valid = nodes_np >= 0
        vrows = np.flatnonzero(valid)
        idx, tok, _ = self.edges(nodes_np[vrows])
        leaf = vrows[np.diff(self.child_ptr)[nodes_np[vrows]] == 0]
        rows, toks = [vrows[idx], leaf], [tok, np.full(len(leaf), PAD_ID)]
        invalid = np.flatnonzero(~valid)
        rows.append(invalid), toks.append(np.full(len(invalid), EOS_ID))
        mask = torch.full((len(nodes_np), vocab), -math.inf, device=nodes.device)
        mask[torch.as_tensor(np.concatenate(rows)), torch.as_tensor(np.concatenate(toks))] = 0.0
        return mask


def decoder_output_logits(model: RecLM, x: torch.Tensor) -> torch.Tensor:
    """Logits from the decoder's last-block states ``x`` (..., D): the final layer norm, the output rescaling
    of tied embeddings, the LM head — as transformers' T5 applies them after its decoder."""
    t5 = model.t5
    x = t5.decoder.final_layer_norm(x)
    if getattr(t5.config, "scale_decoder_outputs", t5.config.tie_word_embeddings):
        x = x * (t5.config.d_model ** -0.5)
    return t5.lm_head(x)


def first_step(model: RecLM, hidden: torch.Tensor, mask: torch.Tensor):
    """transformers' first decoder step (the start token) over the prompts: ``.logits`` (B, 1, V) and the
    ``.cache`` whose cross-attention keys/values and position-0 self-attention keys/values every later
    hand-applied step reads."""
    return model.t5(encoder_outputs=(hidden,), attention_mask=mask, use_cache=True,
                    decoder_input_ids=torch.full((hidden.shape[0], 1), PAD_ID, device=hidden.device))


KV = list[tuple[torch.Tensor, torch.Tensor]]  # per decoder layer (keys, values)


def start_caches(cache, rows: int) -> tuple[KV, KV]:
    """From a :func:`first_step`'s cache: per decoder layer, the start token's self-attention (keys,
    values) as (B, rows, H, 1, d), and the cross-attention (keys, values) as (B, H, T, d)."""
    self_kv = [(layer.keys[:, None].expand(-1, rows, -1, -1, -1), layer.values[:, None].expand(-1, rows, -1, -1, -1))
               for layer in cache.self_attention_cache.layers]
    return self_kv, [(layer.keys, layer.values) for layer in cache.cross_attention_cache.layers]


def decoder_step(model: RecLM, cross: KV, enc_pad: torch.Tensor, self_kv: KV,
                 tokens: torch.Tensor) -> tuple[torch.Tensor, KV]:
    """One decoder position for (B, R) rows: ``tokens`` (B, R) at position ``p`` = the cached length of
    ``self_kv`` (per layer (keys, values), each (B, R, H, p, d)). Returns the (B, R, V) next-token logits and
    the caches extended by the new position. Row ``(b, r)`` attends over prompt ``b``'s encoder states
    through ``cross`` (per layer (B, H, T, d) keys and values, shared by the prompt's rows) with ``enc_pad``
    (B, T) masked. T5's layers in eval mode as transformers computes them: RMS layer norms, unscaled
    attention, the first block's relative position bias, the output rescaling of tied embeddings."""
    t5 = model.t5
    dec = t5.decoder
    bsz, n_rows = tokens.shape
    pos = self_kv[0][0].shape[3]
    first_attn = dec.block[0].layer[0].SelfAttention
    n_heads, d_kv = first_attn.n_heads, first_attn.key_value_proj_dim
    bias = first_attn.compute_bias(1, pos + 1, device=tokens.device, past_seen_tokens=pos)[0, :, 0]  # (H, p+1)
    x = dec.embed_tokens(tokens)  # (B, R, D)
    new_kv = []
    for i, block in enumerate(dec.block):
        sa = block.layer[0]
        att = sa.SelfAttention
        h = sa.layer_norm(x)
        q = att.q(h).view(bsz, n_rows, n_heads, d_kv)
        k = torch.cat([self_kv[i][0], att.k(h).view(bsz, n_rows, n_heads, 1, d_kv)], dim=3)  # (B, R, H, p+1, d)
        v = torch.cat([self_kv[i][1], att.v(h).view(bsz, n_rows, n_heads, 1, d_kv)], dim=3)
        new_kv.append((k, v))
        w = torch.softmax(torch.einsum("brhd,brhpd->brhp", q, k) + bias, dim=-1)
        x = x + att.o(torch.einsum("brhp,brhpd->brhd", w, v).reshape(bsz, n_rows, n_heads * d_kv))
        ca = block.layer[1]
        att = ca.EncDecAttention
        q = att.q(ca.layer_norm(x)).view(bsz, n_rows, n_heads, d_kv)
        scores = torch.einsum("brhd,bhtd->brht", q, cross[i][0])
        scores = scores.masked_fill(enc_pad[:, None, None, :], torch.finfo(scores.dtype).min)
        o = torch.einsum("brht,bhtd->brhd", torch.softmax(scores, dim=-1), cross[i][1])
        x = x + att.o(o.reshape(bsz, n_rows, n_heads * d_kv))
        x = block.layer[-1](x)  # feed-forward with its layer norm and residual
    return decoder_output_logits(model, x), new_kv


@torch.no_grad()
def trie_item_scores(model: RecLM, hidden: torch.Tensor, mask: torch.Tensor, trie: TrieTable,
                     row_budget: int = 4096) -> torch.Tensor:
    """(B, I) ``log p(item tokens, </s> | prompt)`` of every item, on the trie: level ``d`` runs one decoder
    position per prompt and per trie node at depth ``d`` that has children, so shared prefixes run once.
    Prompts go in groups of at most ``row_budget`` (prompt, node) rows per level."""
    bsz = hidden.shape[0]
    out = torch.empty((bsz, len(trie.item_leaf)), device=hidden.device)
    levels = [np.flatnonzero((trie.depth == d) & (np.diff(trie.child_ptr) > 0)) for d in range(int(trie.depth.max()))]
    widest = max(len(level) for level in levels)
    group = max(1, row_budget // max(widest, 1))
    for b0 in range(0, bsz, group):
        sl = slice(b0, min(bsz, b0 + group))
        out[sl] = _trie_group(model, hidden[sl], mask[sl], trie, levels)
    return out


def _trie_group(model, hidden, mask, trie: TrieTable, levels) -> torch.Tensor:
    device = hidden.device
    step = first_step(model, hidden, mask)
    enc_pad = mask == 0
    bsz = hidden.shape[0]
    node_score = torch.zeros((bsz, len(trie.parent)), device=device)  # (B, N) log p(prefix)
    where = np.full(len(trie.parent), -1)  # a node's column in its level's cache
    logits = step.logits.float()
    kv, cross = start_caches(step.cache, 1)
    for d, level in enumerate(levels):
        if d > 0:
            cols = torch.as_tensor(where[trie.parent[level]], device=device)
            kv = [(k[:, cols], v[:, cols]) for k, v in kv]
            logits, kv = decoder_step(model, cross, enc_pad, kv, torch.as_tensor(
                trie.token[level], device=device).expand(bsz, -1))
            logits = logits.float()
        logp = F.log_softmax(logits, dim=-1)  # (B, n, V)
        col, tok, kid = (torch.as_tensor(a, device=device) for a in trie.edges(level))
        node_score[:, kid] = node_score[:, torch.as_tensor(level, device=device)[col]] + logp[:, col, tok]
        where[level] = np.arange(len(level))
    return node_score[:, torch.as_tensor(trie.item_leaf, device=device)]
