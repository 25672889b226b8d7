"""`mmaux COMMAND ...` (or `python -m mmaux`): a thin layer over the library.

Parsing imports only light modules (the options' names, choices and defaults live apart from the
code that runs a command), so `--help`, `--version` and a refused argument answer at once; a
command's handler, and torch with it, is imported when the command runs (`_handler`).
`docs/cli.md` is generated from this parser (`python -m mmaux.cli > docs/cli.md`).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

import mmaux
from mmaux.analysis import MARGIN, POWER
from mmaux.analysis.layout_params import METHODS, SHIPPED_LAYOUTS, SPACES, LayoutParams
from mmaux.config import ARCHITECTURES, ITC_IMAGE_POOLS, TEXT_TUNING, LossConfig, ModelConfig, can_align
from mmaux.data.presets import BAD_ROW_POLICIES, MAX_EXAMPLES, PRESETS, add_csv_options
from mmaux.data.synthspec import TASKS, SynthSpec
from mmaux.paths import DASHBOARD_URL, SHIPPED_ANALYSIS, TAGS_FOLDER
from mmaux.sweeps import EXECUTORS

# Training recipes: defaults that flags override. "paper" follows the reference implementation;
# "cpu" is what rebuilds the shipped checkpoints on 2 CPU cores: the pretrained text stack is
# frozen and cached, and a token adapter on top of it trains (the text encoder's trained part,
# so ITC and ITM reach the text tokens that fusion reads); ITC aligns the unimodal sides before
# fusion, which reads the ITC space (align before fuse: attention, concat, MMBT); MMBT's joint
# pass is one new narrow layer; small heads and adapter, so that 100 checkpoints fit in 100 MB.
# The paper recipe normalises tweets as the authors' datasets do, and on a preset trains with the
# authors' batch size for that dataset (`DatasetPreset.paper_batch_size`: 8 or 16).
RECIPES = {
    "paper": dict(text_tuning="full", text_layers=0, adapter_dim=128, max_text_length=128, normalize_tweets=True,
                  hidden_dim=256, proj_dim=256, itc_image_pool="mean", align_before_fuse=False, epochs=3,
                  batch_size=16, lr=1e-5, head_lr=None, weights_dtype="float32", weight_decay=2.5e-4, dropout=0.05,
                  itm_warmup_epochs=0, itm_ramp_epochs=0, itm_ramp_from=0.8, itm_lr_scale=1.0),
    "cpu": dict(text_tuning="adapter", text_layers=0, adapter_dim=64, max_text_length=40, normalize_tweets=False,
                hidden_dim=64, proj_dim=64, itc_image_pool="attention", align_before_fuse=True, epochs=8,
                batch_size=64, lr=1e-3, head_lr=1e-3, weights_dtype="float16", weight_decay=2.5e-4, dropout=0.05,
                itm_warmup_epochs=0, itm_ramp_epochs=0, itm_ramp_from=0.8, itm_lr_scale=1.0),
}
VARIANTS = {"ce": "none", "itc": "itc", "itm": "itm", "itc+itm": "itc,itm"}


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except (UsageError, FileExistsError, FileNotFoundError, ValueError) as err:  # DatasetError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written, and every option's default at the end of its help (unless the
    help already says it, or there is none to say: a flag, or a value the recipe fills in)."""

    def _get_help_string(self, action):
        text, default = action.help or "", action.default
        if not action.option_strings or "default" in text or isinstance(action, argparse._VersionAction):
            return text
        if default is None and action.dest in RECIPES["cpu"]:  # filled in from --recipe (`_with_recipe`)
            return text + " (default: the recipe's: " + ", ".join(
                f"{name} {recipe[action.dest]}" for name, recipe in RECIPES.items()) + ")"
        if default is None or default is False or default is argparse.SUPPRESS or default == "":  # 0 is shown
            return text
        return text + f" (default: {','.join(map(str, default)) if isinstance(default, (list, tuple)) else default})"


def _handler(module: str, function: str):
    """The function that runs a command, imported only when the command runs."""
    def run(args):
        return getattr(importlib.import_module(module), function)(args)
    run.__qualname__ = f"{module}.{function}"
    return run


def build_parser() -> argparse.ArgumentParser:
    invoked_as = "mmaux" if Path(sys.argv[0]).name == "mmaux" else "python -m mmaux"  # the console script or -m
    parser = argparse.ArgumentParser(prog=invoked_as, formatter_class=HelpFormatter,
                                     description="Train multimodal classifiers of social media posts with and "
                                                 "without the auxiliary losses ITC and ITM, and read where each "
                                                 "one helps. `mmaux COMMAND --help` explains a command.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {mmaux.__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    add = _command_adder(commands)
    data = add("data", help="write SynthPosts or check a CSV dataset")
    data_commands = data.add_subparsers(title="data commands", metavar="COMMAND")
    _add_synth_parser(_command_adder(data_commands))
    _add_validate_parser(_command_adder(data_commands))
    for register in (_add_train_parser, _add_sweep_parser, _add_reproduce_parser, _add_evaluate_parser,
                     _add_predict_parser, _add_probe_parser, _add_embed_parser, _add_effects_parser,
                     _add_claims_parser, _add_power_parser, _add_report_parser, _add_tag_parser, _add_import_parser,
                     _add_cache_parser):
        register(add)
    return parser


def _command_adder(commands):
    """`commands.add_parser` with the formatter every command's help uses."""
    def add(name: str, **kwargs) -> argparse.ArgumentParser:
        return commands.add_parser(name, formatter_class=HelpFormatter, **kwargs)
    return add


# --- data ---------------------------------------------------------------------------------------

def _add_synth_parser(add):
    p = add("synth", help="write a SynthPosts dataset: DIR/posts.csv + DIR/images/")
    _add_synth_options(p, required_task=True)
    p.add_argument("--out", required=True, help="output folder (must be empty or new)")
    p.set_defaults(func=_run_synth)


def _add_synth_options(p, required_task=False):
    group = p.add_argument_group("SynthPosts (the built-in benchmark)")
    group.add_argument("--task", choices=sorted(TASKS), required=required_task,
                       help="SynthPosts task: sentiment (3 classes), sarcasm (2) or relation (4 TIR classes)")
    group.add_argument("--synth-seed", "--seed-data", dest="synth_seed", type=int, default=7,
                       help="generation seed (default 7, the shipped checkpoints' data)")
    for split in ("train", "val", "test"):
        default = getattr(SynthSpec, f"n_{split}")
        group.add_argument(f"--n-{split}", type=int, default=default, help=f"{split} posts (default {default})")
    group.add_argument("--label-noise", type=float, default=0.0, help="share of training labels flipped")


def _synth_spec(args) -> SynthSpec:
    return SynthSpec(task=args.task, seed=args.synth_seed, n_train=args.n_train, n_val=args.n_val,
                                n_test=args.n_test, label_noise=args.label_noise)


def _run_synth(args) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty; choose a new folder (nothing was overwritten)")
    from mmaux.data.synthposts import generate

    frame = generate(_synth_spec(args), out, progress=True)
    print(f"wrote {len(frame)} posts to {out / 'posts.csv'} and {out / 'images'}/")
    return 0


def _dataset_from_args(args):
    """SynthPosts when --task is given, else a CSV dataset (--preset/--root or --csv/--image-template):
    a `DatasetSpec`."""
    from mmaux.data.csvdata import spec_from_args
    from mmaux.data.datasets import DatasetSpec

    if args.task and (args.preset or args.csv):
        raise UsageError("give either --task (SynthPosts) or a CSV dataset (--preset/--csv), not both")
    if args.task:
        return DatasetSpec(synth=_synth_spec(args))
    if args.preset or args.csv:
        return DatasetSpec(csv=spec_from_args(args))
    raise UsageError("no dataset: give --task sentiment|sarcasm|relation (SynthPosts), "
                     "--preset NAME --root DIR, or --csv FILE --image-template T")


def _add_dataset_options(p):
    _add_synth_options(p)
    add_csv_options(p)


# --- train and sweep ----------------------------------------------------------------------------

def _add_model_options(p):
    g = p.add_argument_group("model")
    g.add_argument("--recipe", choices=sorted(RECIPES), default="paper",
                   help="defaults for the options below: 'paper' (reference settings, full fine-tuning; "
                        "GPU advised) or 'cpu' (cached frozen text stack with a trained token adapter; "
                        "small heads)")
    g.add_argument("--text-encoder", default="minilm", help="'minilm' (built in), a hub id or a local folder")
    g.add_argument("--image-encoder", default="efficientnet-lite0",
                   help="'efficientnet-lite0' (built in), a hub id or a local folder (ViT, BEiT, DeiT)")
    g.add_argument("--vilt-model", default="", help="ViltModel hub id or folder (with --arch vilt)")
    g.add_argument("--text-tuning", choices=TEXT_TUNING, help="how the text encoder is trained")
    g.add_argument("--text-layers", type=int, help="tune only the top k text layers (0: all)")
    g.add_argument("--lora-rank", type=int, default=ModelConfig.lora_rank, help="LoRA rank r (with --text-tuning lora)")
    g.add_argument("--adapter-dim", type=int,
                   help="bottleneck of the token adapter (with --text-tuning adapter)")
    g.add_argument("--max-text-length", type=int, help="tokens per text")
    g.add_argument("--normalize-tweets", action=argparse.BooleanOptionalAction,
                   help="normalise texts as BERTweet's normalizeTweet before tokenising (mentions -> @USER, "
                        "links -> HTTPURL, emoji -> :name:), as the authors' datasets do; recorded, and applied "
                        "again at evaluation and prediction")
    g.add_argument("--hidden-dim", type=int, help="width of the fused vector")
    g.add_argument("--proj-dim", type=int, help="width of the shared ITC space")
    g.add_argument("--align-before-fuse", action=argparse.BooleanOptionalAction,
                   help="attention fusion attends in the ITC space (its queries and keys are the ITC "
                        "projections, ALBEF); applies to --arch attention only")
    g.add_argument("--itc-image-pool", choices=ITC_IMAGE_POOLS,
                   help="late fusion: ITC projects the image's mean-pooled vector (the paper) or a learned "
                        "attention pooling of its tokens")
    g.add_argument("--dropout", type=float, help="dropout of the new layers")
    g = p.add_argument_group("auxiliary losses")
    losses = LossConfig()
    g.add_argument("--beta-itc", type=float, default=losses.beta_itc, help="weight of ITC")
    g.add_argument("--beta-itm", type=float, default=losses.beta_itm, help="weight of ITM")
    g.add_argument("--itm-negatives", choices=("random", "hard"), default="random",
                   help="mismatched ITM texts: uniform over the batch (the paper) or by ITC similarity")
    g.add_argument("--itm-reencode", action="store_true",
                   help="run the whole backbone again on the swapped ITM pairs, as the reference does "
                        "(default: fuse the sides already encoded for the batch)")
    g.add_argument("--itm-warmup-epochs", type=int,
                   help="ITM variants: the first N epochs train ITM alone (counted in --epochs)")
    g.add_argument("--itm-ramp-epochs", type=int,
                   help="ITM variants: then β_itm falls linearly from --itm-ramp-from to --beta-itm over N epochs")
    g.add_argument("--itm-ramp-from", type=float, help="ITM variants: β_itm at the start of the ramp")
    g.add_argument("--itm-lr-scale", type=float,
                   help="ITM variants: learning rate of the ITM head and the fusion's match layer, x --head-lr")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, help="training epochs; the best validation epoch is kept")
    g.add_argument("--batch-size", type=int,
                   help="posts per training step (the paper recipe on a preset: the authors' 8 or 16 for that "
                        "dataset)")
    g.add_argument("--lr", type=float, help="learning rate of encoder parameters")
    g.add_argument("--head-lr", type=float, help="learning rate of fusion and heads (default: --lr)")
    g.add_argument("--weight-decay", type=float, help="AdamW weight decay")
    g.add_argument("--weights-dtype", choices=("float32", "float16"),
                   help="storage dtype of model.safetensors; the stored metrics are those of the rounded weights")
    g.add_argument("--on-bad-rows", choices=BAD_ROW_POLICIES, default="fail",
                   help="CSV rows that fail validation: stop with the list ('fail') or skip them")
    g.add_argument("--no-feature-cache", action="store_true", help="do not cache frozen encoder outputs")
    g.add_argument("--predictions-only", action="store_true",
                   help="save metrics and per-post outputs but no weights or embeddings (about 70 kB a run "
                        "instead of 0.8 MB); `mmaux reproduce` trains the weights again when needed")


def _with_recipe(args) -> argparse.Namespace:
    """Fill every option the user left unset from the chosen recipe."""
    values = vars(args).copy()
    recipe = dict(RECIPES[args.recipe])
    if args.recipe == "paper" and args.preset:
        recipe["batch_size"] = PRESETS[args.preset].paper_batch_size
    for key, default in recipe.items():
        if values.get(key) is None:
            values[key] = default
    return argparse.Namespace(**values)


def _train_config(args, arch: str, aux: str, seed: int, out_dir: Path, num_labels: int):
    from mmaux.train import TrainConfig

    loss = LossConfig.from_aux(aux, beta_itc=args.beta_itc, beta_itm=args.beta_itm,
                               itm_negatives=args.itm_negatives, itm_reencode=args.itm_reencode,
                               itm_warmup_epochs=args.itm_warmup_epochs, itm_ramp_epochs=args.itm_ramp_epochs,
                               itm_ramp_from=args.itm_ramp_from, itm_lr_scale=args.itm_lr_scale)
    model = ModelConfig(num_labels=num_labels, architecture=arch, text_encoder=args.text_encoder,
                        image_encoder=args.image_encoder, vilt_model=args.vilt_model,
                        text_tuning=args.text_tuning, text_trainable_layers=args.text_layers,
                        lora_rank=args.lora_rank, adapter_dim=args.adapter_dim, max_text_length=args.max_text_length,
                        normalize_tweets=args.normalize_tweets,
                        hidden_dim=args.hidden_dim, proj_dim=args.proj_dim, itc_image_pool=args.itc_image_pool,
                        align_before_fuse=args.align_before_fuse and can_align(arch, args.text_tuning),
                        dropout=args.dropout, loss=loss)
    return TrainConfig(model=model, dataset=_dataset_from_args(args), out_dir=str(out_dir), epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, head_lr=args.head_lr,
                       weight_decay=args.weight_decay, seed=seed,
                       weights_dtype=args.weights_dtype, on_bad_rows=args.on_bad_rows,
                       feature_cache=not args.no_feature_cache, save_weights=not args.predictions_only)


def _num_labels(args) -> int:
    spec = _dataset_from_args(args)
    if spec.synth:
        return len(TASKS[spec.synth.task])
    from mmaux.data.csvdata import load_posts

    return len(load_posts(spec.csv).attrs["classes"])


def _add_train_parser(add):
    p = add("train", help="fine-tune one model and write its checkpoint folder",
                            description="Fine-tune one model with CE and the chosen auxiliary losses; the "
                                        "epoch with the best validation macro-F1 is kept and tested.")
    _add_dataset_options(p)
    p.add_argument("--arch", choices=ARCHITECTURES, default="attention", help="fusion or early-fusion model")
    p.add_argument("--aux", default="itc,itm", help="auxiliary losses: none, itc, itm or itc,itm")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--out", required=True, help="checkpoint folder to write (must not hold one)")
    _add_model_options(p)
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from mmaux.train import train

    args = _with_recipe(args)
    train(_train_config(args, args.arch, args.aux, args.seed, Path(args.out), _num_labels(args)))
    return 0


def _add_sweep_parser(add):
    p = add("sweep", help="the four loss variants x seeds x architectures as jobs (local or Slurm), resumable",
            description="Train CE, +ITC, +ITM and +ITC+ITM for every seed and architecture into "
                        "OUT/<dataset>/<arch>/<variant>-seed<k>, one job per run through submitit: on Slurm where "
                        "`srun` exists (one job array), else as local processes. Caches are filled once before "
                        "the jobs start; a run's folder appears whole or not at all; finished runs are skipped, "
                        "so the same command again runs exactly the failed and unfinished ones. --status says "
                        "where every run stands, from the files alone.")
    _add_dataset_options(p)
    p.add_argument("--archs", default="attention", help="comma-separated architectures")
    p.add_argument("--variants", default="ce,itc,itm,itc+itm", help=f"comma-separated of {', '.join(VARIANTS)}")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    p.add_argument("--out", required=True, help="root folder of the checkpoints")
    p.add_argument("--status", action="store_true",
                   help="only say which runs are done, running, failed (with the end of their log) or to do")
    p.add_argument("--prepare-only", action="store_true",
                   help="only generate the data and fill the feature caches the runs need")
    p.add_argument("--layouts", action="store_true",
                   help="also store each checkpoint's UMAP maps in its folder, so the dashboard opens them at "
                        "once (a few seconds per run; not for --predictions-only runs, which keep no embeddings)")
    g = p.add_argument_group("jobs")
    g.add_argument("--executor", choices=EXECUTORS, default="auto",
                   help="where jobs run: 'auto' (Slurm where its controller answers, else local processes), 'local', "
                        "'slurm', or 'debug' (one after another in this process)")
    g.add_argument("--parallel", type=int,
                   help="jobs at once (Slurm: the array's limit); default: this machine's cores / --threads "
                        "locally, 32 on Slurm")
    g.add_argument("--threads", type=int, default=1,
                   help="torch threads (and Slurm CPUs) per job; recorded, as results depend on it")
    g.add_argument("--logs", help="folder of the jobs' logs and submission files (default: OUT/.sweep-logs)")
    g.add_argument("--time-limit", type=int, default=240, help="minutes a job may run")
    g.add_argument("--slurm-partition", default="", help="Slurm partition")
    g.add_argument("--gpus-per-job", type=int, default=0, help="GPUs per job")
    g.add_argument("--mem-gb", type=float, default=0.0, help="memory per job in GB (0: the cluster's default)")
    g.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="any other sbatch option, e.g. --slurm account=nlp --slurm qos=high (repeatable)")
    _add_model_options(p)
    p.set_defaults(func=_run_sweep)


def sweep_runs(args) -> list[tuple[str, str, int, Path]]:
    """(architecture, variant, seed, folder) of every run a sweep asks for."""
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [a for a in archs if a not in ARCHITECTURES] + [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UsageError(f"unknown architecture or variant {unknown}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    dataset = _dataset_from_args(args).name.replace("/", "-")
    return [(arch, variant, seed, Path(args.out) / dataset / arch / f"{variant}-seed{seed}")
            for arch in archs for variant in variants for seed in seeds]


def _run_sweep(args) -> int:
    from mmaux import sweeps

    args = _with_recipe(args)
    runs = [sweeps.SweepRun(*run) for run in sweep_runs(args)]
    if args.status:
        return 1 if sweeps.report_status(runs)["failed"] else 0
    options = _job_options(args)
    num_labels = _prepare_caches(args, runs)
    if args.prepare_only:
        return 0
    states = {run: sweeps.status(run)[0] for run in runs}
    todo = [run for run in runs if states[run] in ("to do", "failed")]
    elsewhere = sum(state == "running" for state in states.values())
    print(f"sweep: {len(runs)} runs: {sum(s == 'done' for s in states.values())} done, {len(todo)} to run"
          + (f", {elsewhere} running in another job (left alone)" if elsewhere else ""))
    configs = [_train_config(args, run.arch, VARIANTS[run.variant], run.seed, run.folder, num_labels) for run in todo]
    logs = Path(args.logs) if args.logs else Path(args.out) / ".sweep-logs"
    failed = sweeps.run_jobs(configs, todo, options, args.layouts, logs) if todo else []
    if args.layouts:  # runs an older sweep finished without their maps (none for predictions only)
        from mmaux.analysis.embeddings import SHIPPED_LAYOUTS, store_layouts
        from mmaux.checkpoint import CONFIG, read_info

        for run in runs:
            if (run.folder / CONFIG).exists() and not (run.folder / SHIPPED_LAYOUTS).exists() \
                    and read_info(run.folder).has_model:
                store_layouts(run.folder)
    if failed:
        print(f"{len(failed)} of {len(todo)} runs failed (listed above, their logs in {logs}); the same command "
              "again runs them, and only them")
        return 1
    return 0


def _job_options(args):
    from mmaux import sweeps

    if args.parallel is not None and args.parallel < 1 or args.threads < 1:
        raise UsageError("--parallel and --threads must be at least 1")
    slurm = []
    for item in args.slurm:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--slurm {item!r}: give KEY=VALUE, e.g. --slurm account=nlp")
        slurm.append((key.strip().replace("-", "_"), value.strip()))
    executor = sweeps.chosen_executor(args.executor)
    parallel = args.parallel or (32 if executor == "slurm" else max(1, (os.cpu_count() or 1) // args.threads))
    return sweeps.JobOptions(executor=executor, parallel=parallel, threads=args.threads,
                             time_limit_min=args.time_limit, partition=args.slurm_partition,
                             gpus_per_job=args.gpus_per_job, mem_gb=args.mem_gb, slurm=tuple(slurm))


def _prepare_caches(args, runs) -> int:
    """Generate the data and fill the frozen-feature caches every run reads, once, here: the jobs
    then only read them (no two jobs compute one cache). Returns the dataset's number of classes."""
    from mmaux.data.datasets import load_dataset
    from mmaux.model import MultimodalClassifier
    from mmaux.train import split_inputs

    posts = load_dataset(_dataset_from_args(args), progress=True)
    num_labels = len(posts.label_names)
    if not args.no_feature_cache:
        for arch in dict.fromkeys(run.arch for run in runs):
            model = MultimodalClassifier(_train_config(args, arch, "none", 0, Path(args.out), num_labels).model)
            split_inputs(model, posts, progress=True)
    return num_labels


def _add_reproduce_parser(add):
    p = add("reproduce", help="train a checkpoint again from its config.json and compare its outputs",
                            description="Train the run in --checkpoint again, with the settings, seed and thread "
                                        "count it records, into --out (with weights, so a predictions-only run "
                                        "gets them back), then compare every stored prediction and probability "
                                        "with the new run's. Exit status 1 when they differ.")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (with or without weights)")
    p.add_argument("--out", required=True, help="folder to write the new run into (must not hold a checkpoint)")
    p.add_argument("--predictions-only", action="store_true", help="write the new run without its weights")
    p.set_defaults(func=_run_reproduce)


def _run_reproduce(args) -> int:
    from mmaux.reproduce import reproduce

    comparisons = reproduce(args.checkpoint, args.out, save_weights=not args.predictions_only, progress=True)
    for comparison in comparisons:
        print(comparison.line())
    return 0 if all(c.identical for c in comparisons) else 1


# --- evaluate and predict -----------------------------------------------------------------------

def _add_evaluate_parser(add):
    p = add("evaluate", help="metrics of a checkpoint on its recorded dataset")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder")
    p.add_argument("--split", choices=("train", "val", "test"), default="test", help="the split to score")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    add_csv_options(p)
    p.set_defaults(func=_run_evaluate, task=None)


def _run_evaluate(args) -> int:
    from mmaux.checkpoint import read_info
    from mmaux.data.csvdata import spec_from_args
    from mmaux.data.datasets import DatasetSpec
    from mmaux.evaluate import evaluate_checkpoint

    from mmaux.checkpoint import read_metrics

    info, dataset = read_info(args.checkpoint), None
    if args.preset or args.csv:
        dataset = DatasetSpec(csv=spec_from_args(args))
        if info.dataset.synth:
            raise UsageError("this checkpoint was trained on SynthPosts; --preset/--csv point at a CSV dataset")
    if info.has_model:
        metrics = evaluate_checkpoint(args.checkpoint, args.split, dataset, progress=not args.json)
    elif dataset is not None:
        raise UsageError(f"{args.checkpoint} holds predictions only (no weights): it cannot be run on another "
                         "dataset")
    else:  # predictions only: the metrics stored from its predictions are all there is
        metrics = read_metrics(args.checkpoint).get(args.split)
        if metrics is None:
            raise UsageError(f"{args.checkpoint} holds predictions only and stores no {args.split} metrics")
        if not args.json:
            print(f"(stored metrics: {args.checkpoint} holds predictions only, no weights to run)")
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{args.split}: accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
              f"weighted-F1 {metrics['weighted_f1']:.4f}  precision {metrics['macro_precision']:.4f}  "
              f"recall {metrics['macro_recall']:.4f}  (n={metrics['n']})")
        for name, scores in metrics["per_class"].items():
            print(f"  {name:32s} F1 {scores['f1']:.4f}  (support {scores['support']})")
        for column, values in metrics.get("per_slice", {}).items():
            print(f"  by {column}: " + ", ".join(f"{v} {s['macro_f1']:.3f}" for v, s in values.items()))
    return 0


def _add_predict_parser(add):
    p = add("predict", help="predict one image + text, or a CSV of posts",
                            description="One post: --image F --text T [--json]. Many: --csv FILE "
                                        "--image-template T [--image-root DIR] --out FILE.csv")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder")
    p.add_argument("--image", help="image file of one post")
    p.add_argument("--text", help="text of one post")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--csv", help="CSV of posts (id and text columns)")
    p.add_argument("--image-template", help="image path with {id}, relative to --image-root")
    p.add_argument("--image-root", help="folder the template is relative to (default: the CSV's folder)")
    p.add_argument("--id-column", default="tweet_id", help="the CSV's post id column (with --csv)")
    p.add_argument("--text-column", default="text", help="the CSV's text column (with --csv)")
    p.add_argument("--out", help="output CSV (with --csv); refuses to overwrite an existing file")
    p.set_defaults(func=_run_predict)


def _run_predict(args) -> int:
    from mmaux.checkpoint import CheckpointError
    from mmaux.data.images import ImageLoadError, load_image
    from mmaux.predict import Predictor, predict_table

    try:
        if args.csv:
            if not (args.image_template and args.out):
                raise UsageError("--csv needs --image-template and --out")
            if Path(args.out).exists():
                raise UsageError(f"{args.out} exists; choose another --out (nothing was overwritten)")
            table = predict_table(Predictor(args.checkpoint), args.csv, args.image_template,
                                  args.image_root, args.id_column, args.text_column)
            table.to_csv(args.out, index=False)
            print(f"wrote {len(table)} predictions to {args.out}")
            return 0
        if not args.image or args.text is None:
            raise UsageError("give --image FILE and --text TEXT (or --csv ... for many posts)")
        image = load_image(args.image)
        prediction = Predictor(args.checkpoint).predict([image], [args.text])[0]
    except (ImageLoadError, CheckpointError) as err:
        raise UsageError(str(err).splitlines()[0]) from None
    if args.json:
        print(json.dumps(prediction.to_dict()))
    else:
        match = "n/a (no ITM head)" if prediction.itm_match is None else f"{prediction.itm_match:.3f}"
        cosine = "n/a (not trained with ITC)" if prediction.itc_cosine is None else f"{prediction.itc_cosine:.3f}"
        print(f"{prediction.label}  " + "  ".join(f"{k} {v:.3f}" for k, v in prediction.probabilities.items())
              + f"  ITM match {match}  ITC cosine {cosine}")
    return 0



# --- data validate, probe, embed, tag ----------------------------------------------------------

def _add_validate_parser(add):
    p = add("validate", help="check a CSV dataset (columns, labels, splits, images) and report",
            description="Check a dataset without loading a model; every image is decoded in full. Give --preset "
                        "and --root for one of the paper's datasets, or --csv and --image-template for your own. "
                        "Exits 0 exactly when `train` with the same --on-bad-rows would accept the dataset, 1 "
                        "when it would refuse it.")
    add_csv_options(p)
    p.add_argument("--no-images", action="store_true", help="skip the image checks (the verdict then ignores images)")
    p.add_argument("--on-bad-rows", "--bad-rows", dest="on_bad_rows", choices=BAD_ROW_POLICIES, default="fail",
                   help="as for train: 'fail' refuses a dataset with any bad row, 'skip' drops the bad rows")
    p.add_argument("--all", action="store_true", help=f"list every bad row, not the first {MAX_EXAMPLES} of each kind")
    p.add_argument("--workers", type=int, help="image decoding threads (default: one per CPU)")
    p.add_argument("--no-cache", action="store_true",
                   help="decode every image again, also those that decoded before unchanged")
    p.set_defaults(func=_handler("mmaux.data.csvdata", "run_validate"))


def _add_probe_parser(add):
    p = add("probe", help="run a saved probe set through checkpoints",
            description="Predictions of every checkpoint for every probe of a set saved by the dashboard's 'Your "
                        "post' page (a folder with probes.csv + images/).")
    p.add_argument("--set", required=True, dest="probe_set", help="probe set folder")
    p.add_argument("--checkpoint", required=True, action="append", help="checkpoint folder (repeatable)")
    p.add_argument("--out", help="write the table to this CSV (refuses to overwrite); default: print it")
    p.set_defaults(func=_handler("mmaux.probes", "run_probe_command"))


def _add_embed_parser(add):
    p = add("embed", help="compute and cache PCA/UMAP layouts of checkpoints' test embeddings",
            description="Lay out the test posts' ITC embeddings of each checkpoint (both modalities) and cache "
                        "them, so the dashboard's Embeddings page opens instantly.")
    p.add_argument("--checkpoint", action="append", required=True, help="checkpoint folder (repeatable)")
    p.add_argument("--method", choices=(*METHODS, "both"), default="both", help="layout method")
    defaults = LayoutParams()
    p.add_argument("--n-posts", type=int, default=defaults.n_posts, help="posts sampled, stratified by label")
    p.add_argument("--n-neighbors", type=int, default=defaults.n_neighbors, help="UMAP: size of the neighbourhood")
    p.add_argument("--min-dist", type=float, default=defaults.min_dist, help="UMAP: how tightly points may pack")
    p.add_argument("--seed", type=int, default=defaults.seed, help="sampling and UMAP seed")
    p.add_argument("--space", choices=(*SPACES, "trained"), default="trained",
                   help="fused, itc, or every space the checkpoint trained (fused, and ITC when trained with it)")
    p.add_argument("--store", action="store_true",
                   help=f"also write the UMAP layouts into the checkpoint folder ({SHIPPED_LAYOUTS}), so they "
                        "travel with it")
    p.set_defaults(func=_handler("mmaux.analysis.embeddings", "run_embed"))


def _add_tag_parser(add):
    p = add("tag", help="predict image_adds and text_represented for a dataset's posts",
            description="Run a checkpoint trained on the 4-class relation task (TIR, or the shipped SynthPosts "
                        "relation runs) over every post of a dataset and store the predicted relation, image_adds "
                        f"and text_represented (with probabilities) in {TAGS_FOLDER}/ beside the dataset's CSV, "
                        "keyed by the dataset's fingerprint and the checkpoint. Every page then slices the "
                        "dataset's runs by them, and the paper's claims use them, marked 'predicted by' the "
                        "checkpoint. The dataset's own files are never written.")
    p.add_argument("--relation-checkpoint", required=True, metavar="DIR", help="a relation checkpoint folder")
    add_csv_options(p)
    p.set_defaults(func=_handler("mmaux.tagging", "run_tag"))


# --- effects, claims, power, report --------------------------------------------------------------

def _roots_command(add, name: str, module: str, function: str, **texts) -> argparse.ArgumentParser:
    """A command over every group of checkpoints under ROOT ... (default: MMAUX_CHECKPOINTS, else
    the shipped checkpoints), run by `module.function`."""
    p = add(name, **texts)
    p.add_argument("roots", nargs="*", help="checkpoint roots (default: MMAUX_CHECKPOINTS, else the shipped checkpoints)")
    p.set_defaults(func=_handler(module, function))
    return p


def _add_margin(p) -> None:
    p.add_argument("--margin", type=float, default=MARGIN,
                   help="equivalence margin in points: an effect or contrast whose corrected CI lies within "
                        "±MARGIN is 'equivalent' (no difference larger than it)")


def _add_effects_parser(add):
    p = _roots_command(add, "effects", "mmaux.analysis.group_results", "run_effects",
                       help="estimate each group's auxiliary-loss effects; --store ships them",
                       description="Estimate the effects of ITC and ITM, and the paper's claims, in every group of "
                                   "checkpoints under the roots (as the home page does) and print how many are "
                                   f"supported. With --store, also write them to ROOT/{SHIPPED_ANALYSIS}/, so that "
                                   "the dashboard reads them instead of recomputing them on a fresh clone.")
    p.add_argument("--store", action="store_true", help=f"write the results to ROOT/{SHIPPED_ANALYSIS}/ (replaced; "
                   "with the default --margin, which the dashboard reads)")
    _add_margin(p)


def _add_claims_parser(add):
    p = _roots_command(add, "claims", "mmaux.analysis.group_results", "run_claims",
                       help="test the paper's two claims (contrasts between slices) in every group",
                       description="Does each auxiliary loss help more where the paper says it does? For every group "
                                   "under the roots, one line per claim × operationalisation × effect: the two "
                                   "slices, both Δs, the contrast with its corrected CI, the validation contrast and "
                                   "the verdict (with the contrast the design would detect when inconclusive); then "
                                   "each claim pooled over the groups (a random-effects meta-analysis, with the "
                                   "heterogeneity between groups) and one sentence per claim.")
    _add_margin(p)


def _add_power_parser(add):
    p = _roots_command(add, "power", "mmaux.analysis.group_results", "run_power",
                       help="how many seeds an effect of a given size needs, per group",
                       description="For every group under the roots and each effect on all posts: the seeds it has, "
                                   "the spread of its per-seed Δ, the smallest effect it detects now, and how many "
                                   "seeds would detect EFFECT points, at the level of the first Benjamini–Hochberg "
                                   "discovery in its family (α / family size).")
    p.add_argument("--effect", type=float, default=3.0, help="effect size to detect, in macro-F1 points")
    p.add_argument("--power", type=float, default=POWER, help="the power to detect it with")


def _add_report_parser(add):
    p = _roots_command(add, "report", "mmaux.report", "run_report",
                       help="write the findings, claims and every effect as one Markdown file",
                       description="Write one self-contained Markdown report of the checkpoints under the roots: the "
                                   "findings, the paper's claims, every effect with its CI, verdict and detectable "
                                   "effect, the checkpoints' folders, config hashes and seeds, and the dashboard link "
                                   "that reopens the view; with --csv, every effect as CSV too. An existing file is "
                                   "not overwritten.")
    p.add_argument("--out", required=True, help="the Markdown file to write (must not exist)")
    p.add_argument("--csv", help="also write every effect to this CSV file (must not exist)")
    p.add_argument("--url", default=DASHBOARD_URL, help="the dashboard's address for the link")
    _add_margin(p)


# --- import --------------------------------------------------------------------------------------

def _add_import_parser(add):
    p = add("import", help="open runs trained elsewhere (the authors' code, any framework)",
            description="Import per-post predictions of runs trained elsewhere as predictions-only run folders "
                        "(no weights) that the dashboard's effects, findings and Predictions page read.")
    sub = _command_adder(p.add_subparsers(title="import commands", metavar="COMMAND"))
    a = sub("authors", help="every *preds.csv of the authors' code under RESULTS_DIR",
            description="Import every {txt}-{img}-{fusion}_task{N}_seed{S}_{loss}_{n}preds.csv under RESULTS_DIR "
                        "(columns data_id,label,prediction: class indices on the test split), joined to the task's "
                        "data_key_*.csv in DATA_DIR. A file that fails a check stops the import with its rows "
                        "listed; nothing is written.")
    a.add_argument("results", metavar="RESULTS_DIR", help="the authors' results folder (searched recursively)")
    a.add_argument("--root", required=True, metavar="DATA_DIR", help="folder with the data_key_*.csv files and images")
    a.add_argument("--out", required=True, metavar="OUT_DIR",
                   help="where the run folders go (existing ones are never replaced)")
    a.add_argument("--skip-unparsed", action="store_true",
                   help="import the other files when some names do not parse (they are listed)")
    a.set_defaults(func=_handler("mmaux.importing", "run_authors"))
    q = sub("predictions", help="one file of per-post predictions from any framework",
            description="Import one run's test predictions: columns post_id, pred (class index or name) and "
                        "optional p_<class> probabilities, one per class (then the confidence views work too). "
                        "--val gives the validation predictions in the same format, so that effects can be "
                        "checked on them.")
    q.add_argument("file", metavar="FILE.csv", help="the test predictions")
    add_csv_options(q)
    q.add_argument("--arch", required=True, help="the model's name: runs of one dataset and name form a group")
    q.add_argument("--variant", required=True, help="CE, CE+ITC, CE+ITM or CE+ITC+ITM (or ce, itc, itm, itc+itm)")
    q.add_argument("--seed", type=int, required=True, help="its training seed (runs of a seed are paired)")
    defaults = LossConfig()
    q.add_argument("--beta-itc", type=float, default=defaults.beta_itc, help="weight of ITC it was trained with")
    q.add_argument("--beta-itm", type=float, default=defaults.beta_itm, help="weight of ITM it was trained with")
    q.add_argument("--val", metavar="FILE.csv", help="its validation predictions (same columns)")
    q.add_argument("--out", required=True, metavar="OUT_DIR",
                   help="where the run folder goes (an existing one is never replaced)")
    q.set_defaults(func=_handler("mmaux.importing", "run_predictions"))


def _add_cache_parser(add):
    p = add("cache", help="where the caches are and what they hold; --clear empties them",
            description="mmaux caches what is expensive to compute (SynthPosts data, frozen-encoder features, "
                        "decoded images, UMAP layouts, the dashboard's estimates) in the platform's user cache "
                        "folder, or in MMAUX_CACHE when set. Everything there is recomputed when missing.")
    p.add_argument("--clear", metavar="KIND", help="remove one kind of cache (a folder listed) or 'all'")
    p.set_defaults(func=_handler("mmaux.paths", "run_cache"))


# --- the command reference (docs/cli.md) ---------------------------------------------------------

REFERENCE_WIDTH = 100  # columns the reference's help text is wrapped at (not the terminal's)


def reference_markdown() -> str:
    """Every command's `--help`, as the Markdown page docs/cli.md (written by `python -m mmaux.cli`;
    a test checks that the page matches this parser, so it cannot drift)."""
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, {"COLUMNS": str(REFERENCE_WIDTH)}), mock.patch.object(sys, "argv", ["mmaux"]):
        parser = build_parser()
        sections = ["# Command reference", "",
                    "Generated from the command line's own parser by `python -m mmaux.cli > docs/cli.md`; "
                    "`tests/test_cli.py` checks that it matches. Every command prints the same with `--help`.", "",
                    "```text", parser.format_help().rstrip(), "```"]
        for name, sub in _subcommands(parser):
            sections += ["", f"## mmaux {name}", "", "```text", sub.format_help().rstrip(), "```"]
    return "\n".join(sections) + "\n"


def _subcommands(parser: argparse.ArgumentParser, prefix: str = ""):
    """(name, parser) of every command and nested command, in the order they are listed."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from _subcommands(sub, f"{prefix}{name} ")


if __name__ == "__main__":  # python -m mmaux.cli > docs/cli.md
    sys.stdout.write(reference_markdown())
