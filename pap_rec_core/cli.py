"""``pap-rec``: the command-line client of the library.

Subcommands: ``data info`` (statistics table), ``data export`` (split as RecBole atomic files),
``train-rlm`` (train the embedded RLM), ``evaluate`` (metric table of an RLM with a prompt),
``search`` (PAP-REC's prompt search, resumable), ``baselines`` (RecBole models on our split, scored
by our evaluator). Every subcommand is a thin wrapper over ``pap_rec_core`` functions; bad input
exits with status 2 and a one-line message naming file, line and field.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from pap_rec_core import PapRecError, __version__

log = logging.getLogger("pap_rec_core.cli")


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose a dataset source (shared by every subcommand that reads data)."""
    group = parser.add_argument_group("dataset source (choose one; default: --dataset ml-100k)")
    src = group.add_mutually_exclusive_group()
    src.add_argument("--dataset", metavar="NAME|DIR",
                     help="builtin dataset (ml-100k, bundled with recbole) or a directory of RecBole atomic files")
    src.add_argument("--p5-dir", metavar="DIR", help="P5 preprocessed directory (sequential_data.txt, datamaps.json)")
    src.add_argument("--openp5-file", metavar="FILE", help="OpenP5 user_sequence.txt")
    src.add_argument("--csv", metavar="FILE", help="CSV/TSV/Parquet interactions (see --user-col ...)")
    group.add_argument("--user-col", default="user_id", help="user column/field (default: %(default)s)")
    group.add_argument("--item-col", default="item_id", help="item column/field (default: %(default)s)")
    group.add_argument("--time-col", default="timestamp", help="timestamp column, used if present (default: %(default)s)")
    group.add_argument("--rating-col", default="rating", help="rating column, used if present (default: %(default)s)")
    group.add_argument("--name", help="display name of the dataset (default: file/directory name)")
    group.add_argument("--trust-pickle", action="store_true",
                       help="allow loading P5 review pickles (review_splits.pkl/exp_splits.pkl); pickles can run code")


def dataset_config_from_args(args: argparse.Namespace):
    from pap_rec_core.data import DatasetConfig, SourceKind

    common = dict(name=args.name, user_col=args.user_col, item_col=args.item_col, time_col=args.time_col,
                  rating_col=args.rating_col, trust_pickle=args.trust_pickle)
    if args.p5_dir:
        return DatasetConfig(kind=SourceKind.P5, path=args.p5_dir, **common)
    if args.openp5_file:
        return DatasetConfig(kind=SourceKind.OPENP5, path=args.openp5_file, **common)
    if args.csv:
        return DatasetConfig(kind=SourceKind.TABLE, path=args.csv, **common)
    return DatasetConfig(kind=SourceKind.RECBOLE, path=args.dataset or "ml-100k", **common)


def cmd_data_info(args: argparse.Namespace) -> int:
    from pap_rec_core.data import dataset_stats, load_dataset

    data = load_dataset(dataset_config_from_args(args))
    stats = dataset_stats(data)
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2))
    else:
        print(stats.to_frame().to_string(index=False, header=False))
        for note in data.notes:
            print(f"note: {note}")
    return 0


def cmd_data_export(args: argparse.Namespace) -> int:
    from pap_rec_core.data import SplitConfig, build_item_index, export_recbole, leave_one_out, load_dataset

    data = load_dataset(dataset_config_from_args(args))
    split = leave_one_out(data, SplitConfig(n_negatives=args.negatives, seed=args.seed))
    index = build_item_index(data, args.item_index, seed=args.seed)
    if index.mode.leaky:
        log.warning("the sequential item index leaks the answer (P5's numbering); use it only to show the leak")
    paths = export_recbole(split, index, args.out, name=args.name)
    for p in paths:
        print(p)
    return 0


def _dataset_given(args: argparse.Namespace) -> bool:
    return any(getattr(args, a, None) for a in ("dataset", "p5_dir", "openp5_file", "csv"))


def parse_families(text: str) -> tuple[tuple[str, float], ...]:
    """``sequential=1,history=0.2`` -> the training's family weights (unknown names are an error)."""
    from pap_rec_core.prompts.templates import Family

    known = [f.value for f in Family]
    out = []
    for item in text.split(","):
        name, sep, weight = item.strip().partition("=")
        if name not in known:
            raise PapRecError(f"--families: unknown family {name!r}; known: {', '.join(known)}")
        try:
            w = float(weight) if sep else 1.0
        except ValueError:
            raise PapRecError(f"--families: weight of {name} is not a number: {weight!r}") from None
        if w < 0:
            raise PapRecError(f"--families: weight of {name} must be >= 0")
        out.append((name, w))
    return tuple(out)


def parse_settings(specs: list[str]) -> dict:
    """``--set FIELD=VALUE`` pairs as TrainConfig overrides; VALUE is read as JSON when it parses (numbers,
    true/false, null, lists), else as a string."""
    import dataclasses
    import json

    from pap_rec_core.rlm.training import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    known = set(fields) - {"preset", "seed", "device"}  # (--seed and --device have their own options)
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise PapRecError(f"--set {spec!r}: expected FIELD=VALUE, e.g. --set dropout_rate=0.2")
        if name not in known:
            raise PapRecError(f"--set: unknown training field {name!r}; known: {', '.join(sorted(known))}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        if isinstance(parsed, str) and "tuple" in str(fields[name].type):  # comma lists: templates=2-3,C-1
            items = parsed.split(",") if parsed else []
            if name == "family_weights":  # family_weights=sequential:0.7,conditional:0.3
                try:
                    items = [[k, float(w)] for k, w in (x.split(":") for x in items)]
                except ValueError:
                    raise PapRecError(f"--set family_weights={value!r}: expected FAMILY:WEIGHT,... "
                                      "(e.g. sequential:0.7,conditional:0.3)") from None
            parsed = items
        out[name] = tuple(tuple(x) if isinstance(x, list) else x for x in parsed) if isinstance(parsed, list) else parsed
    return out


def cmd_train_rlm(args: argparse.Namespace) -> int:
    from pap_rec_core.rlm.training import train_preset

    overrides = {}
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    if args.time_limit is not None:
        overrides["time_limit_s"] = args.time_limit * 60
    if args.threads is not None:
        overrides["threads"] = args.threads
    if args.mask_history_loss:
        overrides["mask_history_loss"] = True
    if args.families:
        overrides["family_weights"] = parse_families(args.families)
    if args.item_init is not None:
        overrides["item_init"] = args.item_init
    overrides.update(parse_settings(args.set or []))
    bundle, report = train_preset(dataset_config_from_args(args), args.preset, args.out, seed=args.seed,
                                  item_index=args.item_index, negatives=args.negatives, progress=not args.quiet,
                                  device=args.device, **overrides)
    print(f"saved {args.out}: {bundle.model.num_parameters():,} parameters, {report.steps} steps in "
          f"{report.wall_s:.0f} s ({report.samples_per_s:.0f} samples/s), best validation NDCG@10 "
          f"{report.best_valid_ndcg10:.4f} at step {report.best_step} (stopped by {report.stopped_by})")
    return 0


def load_model_and_split(args: argparse.Namespace):
    """The model directory's RLM with the dataset, split and item index it was trained on."""
    from pap_rec_core.rlm.checkpoint import load_rlm_with_split

    return load_rlm_with_split(args.model, dataset_config_from_args(args) if _dataset_given(args) else None,
                               device=args.device)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pap_rec_core.evaluation import EvaluationConfig, results_table
    from pap_rec_core.scoring import evaluate_rlm

    from pap_rec_core.scoring import PromptSpec

    specs = []
    for p in args.prompt:  # every prompt is checked before any is scored
        try:
            specs.append(PromptSpec.parse(p))
        except (ValueError, KeyError) as err:  # KeyError: an unknown template id
            raise PapRecError(f"--prompt {p}: {err.args[0]}") from None
    bundle, split = load_model_and_split(args)
    for s in specs:
        s.check(bundle, split)
    explaining = [s.is_explanation for s in specs]
    if any(explaining):
        if not all(explaining):
            raise PapRecError("explanation prompts (manual:3-x, run:DIR of an explanation search) are judged by "
                              "BLEU/ROUGE and cannot be compared with ranking prompts in one table")
        return _evaluate_explanations(args, bundle, split, specs)
    tasks = {str(s): s.task.value for s in specs}
    if len(set(tasks.values())) > 1:
        raise PapRecError("prompts of different tasks cannot be compared in one table ("
                          + ", ".join(f"{k}: {v}" for k, v in tasks.items()) + "); evaluate them separately")
    runs = [s for s in specs if s.kind == "run"]
    users = runs[0].default_users(split) if runs else split.eval_users  # one user set: paired comparisons
    users = users[: args.users] if args.users else users
    config = EvaluationConfig(n_resamples=args.resamples, seed=args.seed)
    results = [evaluate_rlm(bundle, split, args.stage, p, method=args.method, users=users, config=config,
                            progress=not args.quiet, batch_size=args.batch_size) for p in specs]
    table = results_table(results, reference=results[0] if len(results) > 1 else None)
    if args.json:
        print(table.to_json(orient="records", indent=2))
    else:
        with_p = len(results) > 1
        print(f"{args.stage} split, {len(results[0].users)} users, method {args.method}; 95% bootstrap CIs"
              + ("; p = paired bootstrap vs the first prompt" if with_p else ""))
        cols = ["system", "users"] + [c for c in table.columns if c not in ("system", "users")]
        print(table[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if args.per_user:
        import pandas as pd

        frames = [r.per_user_frame(split.data.user_ids) for r in results]
        pd.concat(frames).to_csv(args.per_user, index=False)
        print(f"per-user metrics: {args.per_user}")
    return 0


def _evaluate_explanations(args: argparse.Namespace, bundle, split, specs) -> int:
    """``evaluate`` for explanation prompts: BLEU/ROUGE of greedy explanations on the held-out reviews
    (test; ``--stage valid``: the val reviews), paired bootstrap of the per-pair surrogate vs the first."""
    from pap_rec_core.scoring import compare_explanation_prompts

    if args.per_user:
        raise PapRecError("--per-user is for ranking prompts; explanation prompts have per-pair values")
    runs = [s for s in specs if s.kind == "run"]
    users = list(runs[0].search_result.users) if runs else None
    if args.users:
        if users is None:
            raise PapRecError("--users N with explanation prompts needs a run:DIR prompt (its searched users)")
        users = users[: args.users]
    prompts = {str(s): s.search_result if s.kind == "run" else s.value for s in specs}
    try:
        table = compare_explanation_prompts(bundle, split.data, prompts, users=users, stage=args.stage,
                                            seed=args.seed, n_resamples=args.resamples)
    except ValueError as err:
        raise PapRecError(str(err)) from None
    if args.json:
        print(table.to_json(orient="records", indent=2))
    else:
        print(f"explanation, {args.stage} reviews, {int(table['pairs'].iloc[0])} pairs; BLEU/ROUGE over all pairs; "
              "pair surrogate = smoothed sentence BLEU-4 + 0.1 ROUGE-L per pair"
              + ("; Δ, 95% CI and p = paired bootstrap vs the first prompt" if len(table) > 1 else ""))
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from pap_rec_core.search import SearchConfig, run_search
    from pap_rec_core.search.config import default_surrogate

    try:
        config = SearchConfig(task=args.task, n_shared=args.shared, n_personal=args.personal, position=args.position,
                              top_k=args.top_k, surrogate=args.surrogate or default_surrogate(args.task),
                              ranking=args.ranking, max_explanation_tokens=args.max_explanation_tokens,
                              iterations=args.iterations, samples_per_user=args.samples_per_user,
                              max_users=args.users, user_ids=_user_ids(args.user_ids), personal_rule=args.personal_rule,
                              personal_holdout=args.personal_holdout, shared_holdout=args.shared_holdout,
                              exclude_untrained=not args.allow_untrained, batch_size=args.batch_size, seed=args.seed)
    except ValueError as err:
        raise PapRecError(str(err)) from None
    from pap_rec_core.search.distributed import init_distributed, rank_and_world

    distributed = init_distributed(args.device)
    bundle, split = load_model_and_split(args)
    rank, _ = rank_and_world()
    bar = tqdm(total=config.iterations, desc="search", unit="iter", disable=args.quiet or rank != 0)

    def on_event(event) -> None:
        if event.event == "iteration_finished":
            bar.update(1)
            bar.set_postfix(value=f"{event.value:.4f}")
        elif event.event == "token_accepted":
            log.info("iteration %d: slot %d %r -> %r (surrogate %.4f -> %.4f)", event.iteration, event.slot,
                     event.before_text, event.after_text, event.value_before, event.value_after)
        elif event.event == "personal_round":
            log.info("iteration %d: %d users changed personal slot %d (surrogate %.4f -> %.4f)", event.iteration,
                     event.users_changed, event.slot, event.value_before, event.value_after)

    result = run_search(bundle, split, config, args.out, engine=args.engine, on_event=on_event)
    bar.close()
    if distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
        if rank != 0:
            return 0
    words = [bundle.tokenizer.token_text(t) for t in result.shared]
    print(f"shared tokens: {' '.join(words)}; validation surrogate {result.value:.4f} after {result.iterations} "
          f"iterations; trace: {args.out}/trace.jsonl (model recorded as {result.model.get('path')})")
    print(f"evaluate: pap-rec evaluate --model {args.model} --prompt manual:2-3 --prompt run:{args.out}")
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    from pap_rec_core.data import build_item_index, leave_one_out, load_dataset
    from pap_rec_core.evaluation.recbole_baselines import BaselineConfig, baselines_frame, train_baseline

    try:
        configs = [BaselineConfig(model=m.strip(), epochs=args.epochs, seed=args.seed, device=args.device)
                   for m in args.models.split(",") if m.strip()]
    except ValueError as err:
        raise PapRecError(str(err)) from None
    data = load_dataset(dataset_config_from_args(args))
    split = leave_one_out(data)
    index = build_item_index(data, args.item_index, seed=args.seed)
    results = [train_baseline(split, index, c, progress=not args.quiet) for c in configs]
    print(f"{data.name}, test split, {len(split.eval_users)} users, full ranking (history masked); "
          "early stopping on validation NDCG@10")
    print(baselines_frame(results).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"dataset": data.name, "fingerprint": data.fingerprint(),
                                              "item_index": index.mode.value,
                                              "models": [r.to_dict() for r in results]}, indent=2))
        print(f"results: {args.out}")
    return 0


def _user_ids(spec: str | None) -> tuple[str, ...] | None:
    """``--user-ids``: ``196,186`` or ``@users.txt`` (one id per line, blank lines ignored)."""
    if spec is None:
        return None
    if spec.startswith("@"):
        path = Path(spec[1:])
        if not path.is_file():
            raise PapRecError(f"--user-ids {spec}: {path} does not exist")
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        ids = [x.strip() for x in spec.split(",") if x.strip()]
    if not ids:
        raise PapRecError(f"--user-ids {spec!r}: no user id given")
    return tuple(ids)


def cmd_export_plots(args: argparse.Namespace) -> int:
    from pap_rec_core.exports import export_run_report, run_report
    from pap_rec_core.search.events import RunTrace
    from pap_rec_core.search.timeline import Timeline

    trace = RunTrace.read(args.run)
    timeline = Timeline.from_events(trace.events, where=args.run)
    start = trace.started
    model_dir = args.model or start.model.get("path")
    comparison, token_text, user_ids, user = None, None, None, None
    if not args.no_compare or args.model or args.user is not None:
        if not model_dir:
            raise PapRecError(f"{args.run}: the trace does not name its model; pass --model DIR (or --no-compare)")
        from pap_rec_core.comparison import compare_run, resolve_user
        from pap_rec_core.rlm.checkpoint import load_rlm_with_split

        bundle, split = load_rlm_with_split(model_dir, device=args.device)
        token_text, user_ids = bundle.tokenizer.token_text, split.data.user_ids
        if args.user is not None:
            user = resolve_user(split, args.user)
            timeline.row(user)  # a clear error when the run did not search this user
        if not args.no_compare:
            if not timeline.finished:
                raise PapRecError(f"{args.run}: the search has not finished; resume it, or pass --no-compare")
            try:
                comparison = compare_run(bundle, split, args.run, stage=args.stage, method=args.method)
            except ValueError as err:  # e.g. an explanation search, which compare_run refuses
                raise PapRecError(f"{err}; export the search plots alone with --no-compare") from None
    figures, tables = run_report(timeline, comparison, token_text=token_text, user=user, user_ids=user_ids)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    report = export_run_report(figures, tables, args.out, formats,
                               user_id=None if user is None else str(user_ids[user]))
    print(f"wrote {len(report.written)} files to {args.out}")
    if report.errors:
        print(f"pap-rec: warning: {report.problem()}", file=sys.stderr)
    return 1 if report.errors else 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from pap_rec_core.reproduce import NOTEBOOKS, Target, prepare_p5_target, reproduce

    out = Path(args.out)
    targets = [] if args.no_embedded else [Target("ml-100k", args.model)]
    for p5 in args.p5_dir or []:
        targets.append(prepare_p5_target(p5, out, seed=args.seed, progress=not args.quiet))
    if not targets:
        raise PapRecError("nothing to reproduce: --no-embedded without --p5-dir")
    notebooks = [n.strip() for n in args.notebooks.split(",")] if args.notebooks else list(NOTEBOOKS)
    try:
        reproduce(out, args.budget, targets, notebooks, seed=args.seed, kernel_name=args.kernel,
                  log=(lambda m: None) if args.quiet else (lambda m: print(m, flush=True)))
    except ValueError as err:
        raise PapRecError(str(err)) from None
    print(f"results: {out / 'README.md'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pap-rec", description="PAP-REC Workbench: personalized automatic prompts "
                                     "for P5-style recommendation language models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="inspect and export datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    info = data_sub.add_parser("info", help="print dataset statistics (users, items, interactions, density, lengths)")
    add_dataset_arguments(info)
    info.add_argument("--json", action="store_true", help="print the statistics as JSON")
    info.set_defaults(func=cmd_data_info)

    export = data_sub.add_parser("export", help="write the leave-one-out split as RecBole atomic files")
    add_dataset_arguments(export)
    export.add_argument("--format", choices=["recbole"], default="recbole", help="output format (default: %(default)s)")
    export.add_argument("--out", required=True, metavar="DIR", help="output directory (files go to DIR/<name>/)")
    export.add_argument("--item-index", choices=["random", "sequential", "given"], default="random",
                        help="textual item ids: random (default), sequential (P5's, leaky), given (file ids)")
    export.add_argument("--seed", type=int, default=0, help="seed of the item index and negatives (default: 0)")
    export.add_argument("--negatives", type=int, default=99, help="negatives per user for the direct task (default: 99)")
    export.set_defaults(func=cmd_data_export)

    train = sub.add_parser("train-rlm", help="train an RLM from scratch (the presets' recipe: README, \"The recommendation language model\")")
    add_dataset_arguments(train)
    train.add_argument("--preset", choices=["demo", "full", "tiny"], default="demo",
                       help="demo: < 15 min on a 2-core CPU; full: ~35 min on one thread (the committed model); tiny: seconds (tests)")
    train.add_argument("--out", required=True, metavar="DIR", help="model directory (rerun to resume)")
    train.add_argument("--seed", type=int, default=0, help="seed of split, item index, sampling and init (default: 0)")
    train.add_argument("--item-index", choices=["random", "sequential", "given"], default="random",
                       help="textual item ids (default: random; sequential is P5's leaky numbering)")
    train.add_argument("--negatives", type=int, default=99,
                       help="fixed negatives per user for the direct task's evaluation (default: 99)")
    train.add_argument("--max-steps", type=int, help="override the preset's number of steps (the key-info phase keeps its share)")
    train.add_argument("--time-limit", type=float, metavar="MIN", help="override the preset's time limit (minutes)")
    train.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    train.add_argument("--mask-history-loss", action="store_true",
                       help="sequential samples: no probability for the user's earlier items in the loss "
                            "(the evaluation masks them)")
    train.add_argument("--families", metavar="SPEC",
                       help="task families and weights, e.g. sequential=1 (the sequential family only; see "
                            "benchmarks/results/rlm_diagnostics_ml-100k.md); default: the preset's mixture")
    train.add_argument("--item-init", choices=["transition-svd", "random"],
                       help="item token embeddings at step 0: transition-svd (default: the SVD of the training "
                            "split's item-to-next-item counts) or random (T5's)")
    train.add_argument("--set", action="append", metavar="FIELD=VALUE",
                       help="override any training field (TrainConfig), e.g. --set dropout_rate=0.2, --set templates=2-3,C-1, "
                            "--set family_weights=sequential:0.7,conditional:0.3 (values parsed as JSON where "
                            "they parse); repeatable")
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    train.set_defaults(func=cmd_train_rlm)

    ev = sub.add_parser("evaluate", help="evaluate an RLM with one or more prompts (metrics with 95%% CIs)")
    ev.add_argument("--model", required=True, metavar="DIR", help="model directory (from train-rlm)")
    ev.add_argument("--prompt", action="append", required=True, metavar="SPEC",
                    help="manual:ID (e.g. manual:2-3, manual:2-13, manual:5-7; manual:3-1 for explanations), keyinfo, "
                         "random:SEED, run:DIR (a search's prompt; evaluated on the users it searched); repeat to "
                         "compare (paired tests against the first). Explanation prompts (manual:3-x, runs of an "
                         "explanation search) print BLEU/ROUGE of generated explanations on the held-out reviews")
    ev.add_argument("--stage", choices=["valid", "test"], default="test")
    ev.add_argument("--method", choices=["exact", "first-token", "beam"], default="exact",
                    help="exact full ranking by sequence log-likelihood (default), first-token (fast, single-token "
                         "items) or 20-beam search top-10 (the paper's protocol)")
    ev.add_argument("--users", type=int, help="evaluate only the first N users")
    ev.add_argument("--batch-size", type=int, default=64)
    ev.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    ev.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    ev.add_argument("--json", action="store_true", help="print the table as JSON")
    ev.add_argument("--per-user", metavar="CSV", help="also write per-user metrics to this CSV")
    ev.add_argument("--device", default="auto")
    add_dataset_arguments(ev)
    ev.set_defaults(func=cmd_evaluate)

    se = sub.add_parser("search", help="search shared and personalised prompt tokens for a frozen RLM (PAP-REC)")
    se.add_argument("--model", required=True, metavar="DIR", help="model directory (from train-rlm)")
    se.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (trace.jsonl); rerun to resume")
    se.add_argument("--task", choices=["sequential", "direct", "explanation"], default="sequential",
                    help="sequential (full ranking), direct (the fixed 1+99 candidates, listed in the prompt) or "
                         "explanation (generate the user's review of an item; needs review text: --trust-pickle)")
    se.add_argument("--shared", type=int, default=5, help="shared slots (default: %(default)s)")
    se.add_argument("--personal", type=int, default=0, help="personalised slots per user (default: %(default)s)")
    se.add_argument("--position", choices=["suffix", "prefix"], default="suffix",
                    help="slots after the key info (the paper) or before it")
    se.add_argument("--top-k", type=int, default=5, help="candidates per slot (default: %(default)s)")
    se.add_argument("--surrogate", choices=["exact", "ndcg", "beam", "likelihood", "bleu-rouge"],
                    help="validation judge: exact (NDCG@5+HR@5 from full ranks; the default), ndcg (NDCG of the full "
                         "ranking, no cut-off), beam (the paper's), likelihood; explanation: bleu-rouge (BLEU-4 + "
                         "0.1 ROUGE-L, the default) or likelihood")
    se.add_argument("--max-explanation-tokens", type=int, default=32,
                    help="explanation task: greedy tokens generated per prompt (default: %(default)s)")
    se.add_argument("--ranking", choices=["first-token", "exact"], default="first-token",
                    help="how the exact surrogate ranks items (default: %(default)s)")
    se.add_argument("--iterations", type=int, default=10, help="shared+personal rounds (default: %(default)s)")
    se.add_argument("--samples-per-user", type=int, default=1, help="training samples per user per gradient")
    se.add_argument("--users", type=int, help="search on the first N validation users (default: all)")
    se.add_argument("--user-ids", metavar="ID,ID,...|@FILE",
                    help="search exactly these users (raw dataset ids, comma-separated, or @FILE with one id per "
                         "line); recorded in the trace, checked on resume")
    se.add_argument("--personal-rule", choices=["strict", "likelihood-tiebreak"], default="strict")
    se.add_argument("--personal-holdout", type=int, default=0, metavar="N",
                    help="personal rounds also judge on each user's last N training items (kept out of gradients)")
    se.add_argument("--shared-holdout", type=int, default=0, metavar="N",
                    help="shared rounds also judge on each user's last N training items (kept out of gradients)")
    se.add_argument("--allow-untrained", action="store_true",
                    help="allow tokens that never occurred in the RLM's training texts")
    se.add_argument("--engine", choices=["fast", "reference"], default="fast")
    se.add_argument("--batch-size", type=int, default=128)
    se.add_argument("--seed", type=int, default=0)
    se.add_argument("--device", default="auto")
    add_dataset_arguments(se)
    se.set_defaults(func=cmd_search)

    bl = sub.add_parser("baselines", help="baselines (RecBole models, a Markov chain) on our split, scored by our evaluator")
    add_dataset_arguments(bl)
    bl.add_argument("--models", default="Pop,Markov,BPR,SASRec",
                    help="comma-separated: Pop, Markov (last-k transition counts, k and decay chosen on validation), "
                         "BPR, GRU4Rec, Caser, SASRec, BERT4Rec (default: %(default)s)")
    bl.add_argument("--epochs", type=int, default=200, help="epoch cap; early stopping on validation NDCG@10")
    bl.add_argument("--seed", type=int, default=0, help="seed of the item index and of training (default: 0)")
    bl.add_argument("--item-index", choices=["random", "sequential", "given"], default="random")
    bl.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    bl.add_argument("--out", metavar="JSON", help="also write the results (summaries, epochs, seconds) as JSON")
    bl.set_defaults(func=cmd_baselines)

    xp = sub.add_parser("export-plots", help="write a run's figures (HTML, PNG, SVG, PDF) and tables (CSV)")
    xp.add_argument("--run", required=True, metavar="RUN_DIR", help="search run directory (trace.jsonl)")
    xp.add_argument("--out", required=True, metavar="DIR", help="output directory")
    xp.add_argument("--model", metavar="DIR", help="model directory (default: the one the trace records)")
    xp.add_argument("--stage", choices=["valid", "test"], default="test", help="comparison split (default: test)")
    xp.add_argument("--method", choices=["first-token", "exact"], default="first-token",
                    help="ranking of the comparison (default: %(default)s)")
    xp.add_argument("--user", metavar="USER_ID", help="show this user's personal slots in the token grid")
    xp.add_argument("--formats", default="html,png,svg,pdf", help="comma-separated (default: %(default)s)")
    xp.add_argument("--no-compare", action="store_true",
                    help="only the search figures (no model needed; token texts as the trace names them)")
    xp.add_argument("--device", default="auto")
    xp.set_defaults(func=cmd_export_plots)

    rp = sub.add_parser("reproduce", help="run every notebook with papermill (tables, figures, results/README.md)")
    rp.add_argument("--budget", choices=["smoke", "full"], default="full", help="(default: %(default)s)")
    rp.add_argument("--out", default="results", metavar="DIR", help="results directory (default: %(default)s); "
                    "rerun to resume")
    rp.add_argument("--model", metavar="DIR", help="RLM for the ml-100k target (default: the embedded one)")
    rp.add_argument("--p5-dir", action="append", metavar="DIR",
                    help="also reproduce on a P5-format dataset (an RLM is trained on it first; repeatable)")
    rp.add_argument("--no-embedded", action="store_true", help="skip the embedded ml-100k target")
    rp.add_argument("--notebooks", help="comma-separated subset, e.g. 01_data_and_rlm,02_sequential")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: %(default)s)")
    rp.set_defaults(func=cmd_reproduce)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (PapRecError, FileNotFoundError) as err:
        print(f"pap-rec: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
