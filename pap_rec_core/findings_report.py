"""The findings report as text and tables: markdown (``benchmarks/results/findings_<dataset>.md``) and
the frames the notebooks show, all from a report dict of :func:`pap_rec_core.findings.compute_findings`
(or its stored JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pap_rec_core.findings import KEYS, FindingsConfig


def fmt_diff(d: list[float] | None) -> str:
    return f"{d[0]:+.4f} [{d[1]:+.4f}, {d[2]:+.4f}], p = {d[3]:.3f}" if d else "—"



def findings_markdown(report: dict[str, Any]) -> str:
    """The report as markdown: the claims, every row, each search, the judges (all from ``report``)."""
    cfg = FindingsConfig.from_dict(report["search"])
    n_users, n_candidates = report["users"], len(report["surrogate_vs_test"].get("test_ndcg@10", []))
    seeds = ",".join(map(str, cfg.seeds))
    variants = ",".join(r + (f":h{h}" if h else "") for r, h in cfg.variants)
    lines = [f"# PAP-REC findings: {report['dataset']}, {n_users} users, test", "",
             f"Searches: {cfg.n_shared} shared slots, surrogate `{cfg.surrogate}`, {cfg.iterations} iterations, "
             f"personal rule `{cfg.personal_rule}`, personal holdout {cfg.personal_holdout}, shared holdout "
             f"{cfg.shared_holdout}" + (f", more personal rules `{variants}` (1 slot)" if variants else "") +
             f", search seeds {seeds}; model `{report['model']}`; first-token ranking over all items, history masked"
             + ("; direct task: exact scores over the fixed 1+99 candidates" if cfg.direct else "") +
             f"; paired bootstrap 95% CIs ({cfg.resamples:,} resamples) over users. RecBole rows are unpaired (their "
             "per-user values are not stored; trained on the same split)."
             + (f" Regenerate: `{report['command']}`." if report.get("command") else ""), "", "## The paper's claims", "",
             "| claim | row | against | Δndcg@10 [95% CI], p | answer |", "|---|---|---|---|---|"]
    for c in report["claims"]:
        if "diff" in c:
            extra = ""
            if "best_recbole" in c:
                b = c["best_recbole"]
                extra = f"; vs {b['model'].split(' (')[0]}'s recorded {b['ndcg@10']:.4f}: {b['diff (unpaired)']:+.4f} (unpaired)"
            lines.append(f"| {c['claim']} | {c['row']} | {c['vs']} | {fmt_diff(c['diff'])}{extra} | {c['answer']} |")
        else:
            rho = ", ".join(f"{k} {v:+.2f}" for k, v in c["judge_spearman"].items())
            lines.append(f"| {c['claim']} | every search | — | judge vs test Spearman: {rho or '—'} | {c['answer']} |")
    lines += ["", "## Every row", "",
              "| prompt / system | hit@5 | ndcg@5 | hit@10 | ndcg@10 | Δndcg@10 vs manual (2-3; direct: 5-7) [95% CI], p | "
              "vs Markov | vs shared-only |", "|---|---:|---:|---:|---:|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['prompt']} | " + " | ".join(f"{r[k]:.4f}" for k in KEYS) +
                     f" | {fmt_diff(r.get('ndcg@10 diff'))} | {fmt_diff(r.get('ndcg@10 diff vs Markov'))} | "
                     f"{fmt_diff(r.get('ndcg@10 diff vs shared-only'))} |")
    lines.append("")
    for name, info in report["runs"].items():
        changed = info["users_changed_per_personal_round"]
        lines.append(f"- {name}: shared tokens `{' '.join(info['shared_text'])}`, validation "
                     f"surrogate {info['valid_value']:.4f}, {info['iterations']} iterations, {info['seconds']:.0f} s "
                     f"({info['seconds_per_iteration']:.0f} s per iteration)" +
                     (f"; users changed per personal round: {', '.join(map(str, changed))} of {n_users}"
                      if changed else "") + ".")
    corr = report["surrogate_vs_test"]
    if corr:
        lines += ["", "## Judges on validation vs test", "",
                  f"Spearman correlation with test NDCG@10 over {n_candidates} candidate prompts of the shared-only "
                  f"searches (seeds {seeds}, pooled), bootstrap 95% CI over the candidates; `+hN`: judged on the "
                  "validation item and each user's last N training items (the judge of `--shared-holdout N`). The "
                  f"searches above used `{cfg.surrogate}`" + (f"+h{cfg.shared_holdout}" if cfg.shared_holdout else "")
                  + ".", "", "| judge | Spearman | 95% CI |", "|---|---:|---|"]
        for k, v in corr.items():
            if isinstance(v, dict):
                lines.append(f"| {k} | {v['spearman']:+.3f} | [{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}] |")
        rel = (corr.get("test_reliability") or [None])[0]
        if rel and rel.get("splits"):
            lines += ["", f"How reliably test NDCG@10 itself orders these candidates (split-half over users, "
                      f"{rel['splits']} random halves, Spearman-Brown corrected): r = {rel['r']:+.2f} "
                      f"[{rel['low']:+.2f}, {rel['high']:+.2f}]; no judge can correlate with the observed test "
                      f"metric much above sqrt(r) = {rel['ceiling']:.2f} — the rest is the test items' own noise."]
    return "\n".join(lines) + "\n"


def claims_frame(report: dict[str, Any]) -> pd.DataFrame:
    """The claims as a table (notebooks): claim, row, against, Δndcg@10 with CI and p, answer."""
    rows = []
    for c in report["claims"]:
        d = c.get("diff")
        rows.append({"claim": c["claim"], "row": c.get("row", "every search"), "against": c.get("vs", "—"),
                     "ndcg@10 diff": d[0] if d else np.nan, "low": d[1] if d else np.nan,
                     "high": d[2] if d else np.nan, "p": d[3] if d else np.nan, "answer": c["answer"]})
    return pd.DataFrame(rows)


def rows_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Every prompt and baseline row: metrics and the paired differences (diff, low, high, p) as columns."""
    out = []
    for r in report["rows"]:
        row = {"prompt / system": r["prompt"], "task": r["task"], **{k: r[k] for k in KEYS}}
        for col, name in (("ndcg@10 diff", "vs manual"), ("ndcg@10 diff vs Markov", "vs Markov"),
                          ("ndcg@10 diff vs shared-only", "vs shared-only")):
            d = r.get(col)
            row[f"{name} diff"], row[f"{name} low"], row[f"{name} high"], row[f"{name} p"] = d or [np.nan] * 4
        out.append(row)
    return pd.DataFrame(out)


def judges_frame(report: dict[str, Any]) -> pd.DataFrame:
    """Each judge's Spearman correlation with test NDCG@10 over the candidate prompts, with its CI."""
    corr = report["surrogate_vs_test"]
    return pd.DataFrame([{"judge": k, "spearman": v["spearman"], "low": v["ci"][0], "high": v["ci"][1],
                          "candidates": len(corr.get("test_ndcg@10", []))}
                         for k, v in corr.items() if isinstance(v, dict)])


def load_report(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
