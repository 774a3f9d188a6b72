"""Command line: ``python -m big5chat COMMAND``.

stage NAME [--item X]     run a dvc.yaml stage's notebook (what dvc.yaml's cmd calls)
params [--profile NAME] [--check] [OVERRIDE ...]
                          compose params.yaml from configs/ (as `dvc exp run -S profile=NAME` does)
validate [--params FILE]  validate a params file and exit (non-zero, naming every bad key, on errors)
build-sample              rebuild data/sample/posts.csv and posts_heldout.csv from data/sample/{authored,heldout}/
train-sft --config RUN    one SFT run from a run file (what train_sft launches, also under `accelerate launch`)
train-dpo --config RUN    one DPO run from a run file
train-expert --config RUN one expert generator's run from a run file (train_experts; full FT under accelerate)
generate-shard            one process's share of generate_dialogues (under torchrun/accelerate: RANK of WORLD_SIZE),
                          settings from params.yaml; the stage merges the shards (generation.shards)
reason-shard              one process's share of evaluate_reasoning's units (under torchrun/accelerate), settings
                          from params.yaml; the stage reads every unit back (reasoning.shards)
sweep-figure PARAM METRIC a metric against a param across DVC experiments (reports/figures/sweeps/)
steer-sweep-figure        method steer across DVC experiments: gap, trait-specific gap, reply accuracy, fluency and
                          reasoning against steer.multiplier (reports/figures/sweeps/steer.png; `make steer-sweep`)
build-paper-reference DIR rebuild data/paper/ from the study's result files (../shared/data/paper_results)
results-table [--write-readme]
                          the headline results from results/ as a markdown table; --write-readme puts it into
                          README.md between <!-- results:start --> and <!-- results:end -->
plan --profile NAME       validate a profile without downloading; per-stage sizes, tokens, GPU memory and hours
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_generate_shard(args: argparse.Namespace) -> int:
    from big5chat.generation.dataset import worker_main

    return worker_main()


def _cmd_reason_shard(args: argparse.Namespace) -> int:
    from big5chat.reasoning.shards import worker_main

    return worker_main()


def _cmd_stage(args: argparse.Namespace) -> int:
    from big5chat.stage_runner import run_stage

    return run_stage(args.name, item=args.item)


def _cmd_params(args: argparse.Namespace) -> int:
    import tempfile

    from big5chat import paths, profiles
    from big5chat.config import ConfigError, load_params

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            out = profiles.compose(args.profile, args.overrides, Path(tmp) / "params.yaml")
            expected = out.read_text(encoding="utf-8")
        actual = paths.PARAMS_FILE.read_text(encoding="utf-8") if paths.PARAMS_FILE.is_file() else ""
        if actual != expected:
            print(
                f"params.yaml differs from configs/ composed with profile {args.profile!r}: edit configs/params.yaml "
                f"(or configs/profile/) and run `python -m big5chat params --profile {args.profile}`",
                file=sys.stderr,
            )
            return 1
        print(f"params.yaml matches configs/ (profile {args.profile})")
        return 0
    out = profiles.compose(args.profile, args.overrides)
    try:
        load_params(out)
    except ConfigError as exc:
        print(f"wrote {paths.relative(out)}, but it does not validate:\n{exc}", file=sys.stderr)
        return 2
    print(f"wrote {paths.relative(out)} (profile {args.profile})")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from big5chat.config import ConfigError, load_params
    from big5chat.data.check import check_inputs

    try:
        params = load_params(args.params)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    problems = [] if args.params_only else check_inputs(params)
    if problems:
        print(f"{len(problems)} input problem(s):\n" + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 2
    print(f"{args.params or 'params.yaml'}: valid (profile {params.profile}){'' if args.params_only else '; local input files load'}")
    return 0


def _cmd_build_sample(args: argparse.Namespace) -> int:
    from big5chat import paths
    from big5chat.data.sample_corpus import build_sample_posts
    from big5chat.data.tables import DataError

    try:
        written = build_sample_posts()
    except DataError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("wrote " + ", ".join(paths.relative(p) for p in written))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import json

    from big5chat.training_run import execute

    run = json.loads(Path(args.config).read_text(encoding="utf-8"))
    want = args.command.removeprefix("train-")
    if run.get("kind") != want:
        print(f"{args.config}: kind is {run.get('kind')!r}, but {args.command} runs {want!r}", file=sys.stderr)
        return 2
    execute(args.config)
    return 0


def _cmd_sweep_figure(args: argparse.Namespace) -> int:
    from big5chat import paths
    from big5chat.reporting.sweeps import sweep_figure

    out = paths.FIGURES / "sweeps" / f"{args.metric.replace('.', '_')}_vs_{args.param.replace('.', '_')}.png"
    print(f"wrote {paths.relative(sweep_figure(args.param, args.metric, out, args.metrics_file))}")
    return 0


def _cmd_steer_sweep_figure(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from big5chat import paths, storage
    from big5chat.reporting.sweeps import exp_show, steer_sweep_figure, steer_sweep_rows

    rows = steer_sweep_rows(exp_show(paths.ROOT))
    if not rows:
        print("no experiment ran method steer: run `make steer-sweep` first", file=sys.stderr)
        return 2
    import pandas as pd

    storage.write_csv(paths.REPORTS / "sweeps" / "steer.csv", pd.DataFrame(rows))
    out = storage.save_figure(steer_sweep_figure(rows), paths.FIGURES / "sweeps" / "steer.png")
    print(f"{len(rows)} runs; wrote {paths.relative(out)} and reports/sweeps/steer.csv")
    return 0


def _cmd_build_paper_reference(args: argparse.Namespace) -> int:
    from big5chat import paths
    from big5chat.reporting.paper_build import build

    for f in build(args.source):
        print(f"wrote {paths.relative(f)}")
    return 0


def _cmd_results_table(args: argparse.Namespace) -> int:
    from big5chat import paths
    from big5chat.reporting import results, results_table

    folder, readme = results.folder(), paths.ROOT / "README.md"
    try:
        table = results_table.render(folder)
    except FileNotFoundError as exc:
        print(f"results-table: {exc}", file=sys.stderr)
        return 1
    if not args.write_readme:
        print(table)
        return 0
    try:
        changed = results_table.write_readme(readme, folder)
    except (FileNotFoundError, results_table.MarkersMissing) as exc:
        print(f"{paths.relative(readme)}: {exc}", file=sys.stderr)
        return 1
    print(f"{paths.relative(readme)}: results table {'rewritten' if changed else 'already up to date'} from {paths.relative(folder)}/")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from big5chat.config import ConfigError
    from big5chat.plan import format_plan, plan

    try:
        print(format_plan(plan(args.profile)))
    except (ConfigError, ValueError, KeyError) as exc:
        print(f"profile {args.profile!r} does not plan: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_deps(args: argparse.Namespace) -> int:
    from big5chat import paths, stage_deps

    changed = stage_deps.sync(write=not args.check)
    for stage, (listed, derived) in changed.items():
        extra, missing = sorted(set(listed) - set(derived)), sorted(set(derived) - set(listed))
        print(f"{stage}: {'-' + ' -'.join(extra) if extra else ''} {'+' + ' +'.join(missing) if missing else ''}".rstrip())
    verb = "differ" if args.check else "rewritten"
    print(
        f"{paths.relative(paths.DVC_FILE)}: {len(changed)} stage(s) {verb}"
        if changed
        else f"{paths.relative(paths.DVC_FILE)}: every stage's deps are derived"
    )
    return 1 if changed and args.check else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m big5chat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stage", help="run a stage notebook")
    p.add_argument("name")
    p.add_argument("--item", default=None, help="the foreach item (e.g. a trait)")
    p.set_defaults(func=_cmd_stage)
    p = sub.add_parser("params", help="compose params.yaml from configs/")
    p.add_argument("--profile", default="default")
    p.add_argument("--check", action="store_true", help="only check that params.yaml matches the composition")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. prepare_data.n_scenarios=40")
    p.set_defaults(func=_cmd_params)
    p = sub.add_parser("validate", help="validate params.yaml and load every local input file it names")
    p.add_argument("--params", type=Path, default=None)
    p.add_argument("--params-only", action="store_true", help="skip loading the local input files")
    p.set_defaults(func=_cmd_validate)
    p = sub.add_parser("build-sample", help="rebuild data/sample/posts.csv and posts_heldout.csv")
    p.set_defaults(func=_cmd_build_sample)
    p = sub.add_parser("sweep-figure", help="a metric against a param across DVC experiments")
    p.add_argument("param")
    p.add_argument("metric")
    p.add_argument("--metrics-file", default="reports/metrics/eval_dialogues.json")
    p.set_defaults(func=_cmd_sweep_figure)
    p = sub.add_parser("steer-sweep-figure", help="method steer against steer.multiplier across DVC experiments")
    p.set_defaults(func=_cmd_steer_sweep_figure)
    p = sub.add_parser("build-paper-reference", help="rebuild data/paper/ from the study's result files")
    p.add_argument("source", type=Path)
    p.set_defaults(func=_cmd_build_paper_reference)
    p = sub.add_parser("results-table", help="the headline results from results/ as a markdown table")
    p.add_argument("--write-readme", action="store_true", help="rewrite README.md's section between the results markers")
    p.set_defaults(func=_cmd_results_table)
    p = sub.add_parser("deps", help="derive every stage's src/ deps in dvc.yaml from its notebook's imports")
    p.add_argument("--check", action="store_true", help="only report the stages whose deps differ (exit 1)")
    p.set_defaults(func=_cmd_deps)
    p = sub.add_parser("plan", help="plan a profile without downloading anything")
    p.add_argument("--profile", default="paper_8b")
    p.set_defaults(func=_cmd_plan)
    p = sub.add_parser("generate-shard", help="one process's share of generate_dialogues (under torchrun or accelerate)")
    p.set_defaults(func=_cmd_generate_shard)
    p = sub.add_parser("reason-shard", help="one process's share of evaluate_reasoning's units (under torchrun or accelerate)")
    p.set_defaults(func=_cmd_reason_shard)
    for name in ("train-sft", "train-dpo", "train-expert"):
        p = sub.add_parser(name, help=f"one {name[6:].upper()} run from a run file")
        p.add_argument("--config", required=True, type=Path)
        p.set_defaults(func=_cmd_train)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)
