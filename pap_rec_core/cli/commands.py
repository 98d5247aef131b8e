"""The subcommands of ``pap-rec``, one ``cmd_*`` function each: a thin wrapper over ``pap_rec_core``
functions (imported inside, so that ``--help`` stays fast)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pap_rec_core import PapRecError
from pap_rec_core.cli.args import dataset_config_from_args, dataset_given, parse_families, parse_settings, user_ids

log = logging.getLogger("pap_rec_core.cli")


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

    return load_rlm_with_split(args.model, dataset_config_from_args(args) if dataset_given(args) else None,
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
    paper = args.protocol == "paper"
    if paper:
        from pap_rec_core.search.config import PROTOCOLS

        if any(s.task.value not in ("sequential", "direct") for s in specs):  # explanation went above
            raise PapRecError("--protocol paper replays the public code's sequential- and direct-task judge")
        if args.method not in (None, "beam"):
            raise PapRecError(f"--protocol paper judges with plain beam search; --method {args.method} contradicts it")
    args.method = args.method or ("beam" if paper else "exact")
    config = EvaluationConfig(n_resamples=args.resamples, seed=args.seed, mask_history=not paper)
    extra = dict(beam_constrained=False, max_history=PROTOCOLS["paper"]["max_history"]) if paper else {}
    results = [evaluate_rlm(bundle, split, args.stage, p, method=args.method, users=users, config=config,
                            progress=not args.quiet, batch_size=args.batch_size, **extra) for p in specs]
    table = results_table(results, reference=results[0] if len(results) > 1 else None)
    if args.json:
        print(table.to_json(orient="records", indent=2))
    else:
        with_p = len(results) > 1
        print(f"{args.stage} split, {len(results[0].users)} users, method {args.method}"
              + (" (the paper protocol: plain generate, history items kept)" if paper else "") + "; 95% bootstrap CIs"
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


def evaluate_command(model: str, run_dir: str, config) -> str:
    """The ``pap-rec evaluate`` command that compares a finished search with the paper's manual prompt of its
    task, ranked the way the search judged (the beam surrogate: beam; otherwise its ``ranking``)."""
    from pap_rec_core.prompts.templates import paper_templates

    if config.task == "explanation":
        return f"pap-rec evaluate --model {model} --prompt manual:3-1 --prompt run:{run_dir}"
    method = "beam" if config.surrogate == "beam" else str(config.ranking)
    command = (f"pap-rec evaluate --model {model} --prompt manual:{paper_templates(config.task)[0]} "
               f"--prompt run:{run_dir} --method {method}")
    if config.surrogate == "beam" and not config.beam_constrained and not config.mask_history:
        return command + " --protocol paper"  # plain generate, history items kept: the judge it searched with
    if not (config.beam_constrained and config.mask_history):
        command += "  # the evaluator's protocol: item-constrained beams, history masked (not this search's judge)"
    return command


def cmd_search(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from pap_rec_core.search import SearchConfig, run_search
    from pap_rec_core.search.config import default_surrogate

    try:
        fields = dict(task=args.task, n_shared=args.shared, n_personal=args.personal, position=args.position,
                      top_k=args.top_k, ranking=args.ranking, max_explanation_tokens=args.max_explanation_tokens,
                      iterations=args.iterations, max_users=args.users, user_ids=user_ids(args.user_ids),
                      personal_rule=args.personal_rule, personal_holdout=args.personal_holdout,
                      shared_holdout=args.shared_holdout, exclude_untrained=not args.allow_untrained,
                      batch_size=args.batch_size, seed=args.seed)
        if args.surrogate or args.protocol == "ours":  # the protocol's surrogate unless one is named
            fields["surrogate"] = args.surrogate or default_surrogate(args.task)
        if args.samples_per_user is not None:
            fields["samples_per_user"] = args.samples_per_user
        config = SearchConfig.preset(args.protocol, **fields)
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
    print(f"evaluate: {evaluate_command(args.model, args.out, config)}")
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
