"""`python -m mmaux COMMAND ...`: a thin layer over the library.

    data synth      write a SynthPosts dataset (CSV + images)
    data validate   check a CSV dataset without loading a model
    train           fine-tune one model, write its checkpoint folder
    sweep           CE / +ITC / +ITM / +ITC+ITM x seeds x architectures, resumable
    evaluate        metrics of a checkpoint on its recorded dataset
    predict         one image + text, or a CSV of posts, through a checkpoint
    embed           compute and cache PCA/UMAP layouts of checkpoints' test embeddings
    effects         each group's auxiliary-loss effects; --store ships them with the checkpoints
    claims          the paper's two claims as contrasts between slices, per group
    power           how many seeds an effect of a given size needs, per group
    reproduce       train a checkpoint again from its config.json and compare its outputs
    report          the findings, claims and every effect as one Markdown file (and CSV)
    tag             a relation checkpoint's image_adds / text_represented for every post of a dataset
    import          runs trained elsewhere (the authors' *preds.csv, any per-post predictions)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmaux.analysis.embeddings import add_embed_parser
from mmaux.analysis.group_results import add_claims_parser, add_effects_parser, add_power_parser
from mmaux.config import ARCHITECTURES, ITC_IMAGE_POOLS, TEXT_TUNING, ModelConfig, can_align
from mmaux.data import synthposts
from mmaux.data.csvdata import PRESETS, DatasetError, add_csv_options, add_validate_parser, spec_from_args
from mmaux.data.datasets import DatasetSpec
from mmaux.importing import add_import_parser
from mmaux.losses import LossConfig
from mmaux.probes import add_probe_parser
from mmaux.report import add_report_parser
from mmaux.tagging import add_tag_parser

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
    except (UsageError, DatasetError, FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    invoked_as = "mmaux" if Path(sys.argv[0]).name == "mmaux" else "python -m mmaux"  # the console script or -m
    parser = argparse.ArgumentParser(prog=invoked_as, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    data = commands.add_parser("data", help="write SynthPosts or check a CSV dataset")
    data_commands = data.add_subparsers(title="data commands", metavar="COMMAND")
    _add_synth_parser(data_commands)
    add_validate_parser(data_commands)
    _add_train_parser(commands)
    _add_sweep_parser(commands)
    _add_evaluate_parser(commands)
    _add_predict_parser(commands)
    add_probe_parser(commands)
    add_embed_parser(commands)
    add_effects_parser(commands)
    add_claims_parser(commands)
    add_power_parser(commands)
    _add_reproduce_parser(commands)
    add_report_parser(commands)
    add_tag_parser(commands)
    add_import_parser(commands)
    return parser


# --- data ---------------------------------------------------------------------------------------

def _add_synth_parser(commands):
    p = commands.add_parser("synth", help="write a SynthPosts dataset: DIR/posts.csv + DIR/images/")
    _add_synth_options(p, required_task=True)
    p.add_argument("--out", required=True, help="output folder (must be empty or new)")
    p.set_defaults(func=_run_synth)


def _add_synth_options(p, required_task=False):
    group = p.add_argument_group("SynthPosts (the built-in benchmark)")
    group.add_argument("--task", choices=sorted(synthposts.TASKS), required=required_task,
                       help="SynthPosts task: sentiment (3 classes), sarcasm (2) or relation (4 TIR classes)")
    group.add_argument("--synth-seed", "--seed-data", dest="synth_seed", type=int, default=7,
                       help="generation seed (default 7, the shipped checkpoints' data)")
    for split in ("train", "val", "test"):
        default = getattr(synthposts.SynthSpec, f"n_{split}")
        group.add_argument(f"--n-{split}", type=int, default=default, help=f"{split} posts (default {default})")
    group.add_argument("--label-noise", type=float, default=0.0, help="share of training labels flipped")


def _synth_spec(args) -> synthposts.SynthSpec:
    return synthposts.SynthSpec(task=args.task, seed=args.synth_seed, n_train=args.n_train, n_val=args.n_val,
                                n_test=args.n_test, label_noise=args.label_noise)


def _run_synth(args) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty; choose a new folder (nothing was overwritten)")
    frame = synthposts.generate(_synth_spec(args), out, progress=True)
    print(f"wrote {len(frame)} posts to {out / 'posts.csv'} and {out / 'images'}/")
    return 0


def _dataset_from_args(args) -> DatasetSpec:
    """SynthPosts when --task is given, else a CSV dataset (--preset/--root or --csv/--image-template)."""
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
    g.add_argument("--lora-rank", type=int, default=8, help="LoRA rank r (with --text-tuning lora)")
    g.add_argument("--adapter-dim", type=int,
                   help="bottleneck of the token adapter (with --text-tuning adapter)")
    g.add_argument("--max-text-length", type=int, help="tokens per text")
    g.add_argument("--normalize-tweets", action=argparse.BooleanOptionalAction,
                   help="normalise texts as BERTweet's normalizeTweet before tokenising (mentions -> @USER, "
                        "links -> HTTPURL, emoji -> :name:), as the authors' datasets do; on in the paper "
                        "recipe, off in the cpu recipe; recorded, and applied again at evaluation and prediction")
    g.add_argument("--hidden-dim", type=int, help="width of the fused vector")
    g.add_argument("--proj-dim", type=int, help="width of the shared ITC space")
    g.add_argument("--align-before-fuse", action=argparse.BooleanOptionalAction,
                   help="attention fusion attends in the ITC space (its queries and keys are the ITC "
                        "projections, ALBEF); applies to --arch attention only")
    g.add_argument("--itc-image-pool", choices=ITC_IMAGE_POOLS,
                   help="late fusion: ITC projects the image's mean-pooled vector (the paper) or a learned "
                        "attention pooling of its tokens")
    g.add_argument("--dropout", type=float, help="dropout of the new layers (default: the recipe's, 0.05)")
    g = p.add_argument_group("auxiliary losses")
    g.add_argument("--beta-itc", type=float, default=0.1, help="weight of ITC (default 0.1)")
    g.add_argument("--beta-itm", type=float, default=0.1, help="weight of ITM (default 0.1)")
    g.add_argument("--itm-negatives", choices=("random", "hard"), default="random",
                   help="mismatched ITM texts: uniform over the batch (the paper) or by ITC similarity")
    g.add_argument("--itm-reencode", action="store_true",
                   help="run the whole backbone again on the swapped ITM pairs, as the reference does "
                        "(default: fuse the sides already encoded for the batch)")
    g.add_argument("--itm-warmup-epochs", type=int,
                   help="ITM variants: the first N epochs train ITM alone (counted in --epochs); default: the "
                        "recipe's")
    g.add_argument("--itm-ramp-epochs", type=int,
                   help="ITM variants: then β_itm falls linearly from --itm-ramp-from to --beta-itm over N epochs")
    g.add_argument("--itm-ramp-from", type=float, help="ITM variants: β_itm at the start of the ramp")
    g.add_argument("--itm-lr-scale", type=float,
                   help="ITM variants: learning rate of the ITM head and the fusion's match layer, x --head-lr")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int,
                   help="default: the recipe's (paper recipe on a preset: the authors' 8 or 16 for that dataset)")
    g.add_argument("--lr", type=float, help="learning rate of encoder parameters")
    g.add_argument("--head-lr", type=float, help="learning rate of fusion and heads (default: --lr)")
    g.add_argument("--weight-decay", type=float, help="AdamW weight decay (default: the recipe's, 2.5e-4)")
    g.add_argument("--weights-dtype", choices=("float32", "float16"))
    g.add_argument("--on-bad-rows", choices=("fail", "skip"), default="fail",
                   help="CSV rows that fail validation: stop with the list (default) or skip them")
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
        return len(synthposts.TASKS[spec.synth.task])
    from mmaux.data.csvdata import load_posts

    return len(load_posts(spec.csv).attrs["classes"])


def _add_train_parser(commands):
    p = commands.add_parser("train", help="fine-tune one model and write its checkpoint folder",
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


def _add_sweep_parser(commands):
    p = commands.add_parser("sweep", help="the four loss variants x seeds x architectures, resumable",
                            description="Train CE, +ITC, +ITM and +ITC+ITM for every seed and architecture into "
                                        "OUT/<dataset>/<arch>/<variant>-seed<k>; existing checkpoints are skipped.")
    _add_dataset_options(p)
    p.add_argument("--archs", default="attention", help="comma-separated architectures")
    p.add_argument("--variants", default="ce,itc,itm,itc+itm", help=f"comma-separated of {', '.join(VARIANTS)}")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    p.add_argument("--out", required=True, help="root folder of the checkpoints")
    p.add_argument("--prepare-only", action="store_true",
                   help="only generate the data and fill the feature caches the runs need (then sweeps "
                        "of several groups can run side by side without computing them twice)")
    p.add_argument("--layouts", action="store_true",
                   help="also store each checkpoint's UMAP maps in its folder, so the dashboard opens them at "
                        "once (a few seconds per run; not for --predictions-only runs, which keep no embeddings)")
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
    from tqdm.auto import tqdm

    from mmaux.analysis.embeddings import SHIPPED_LAYOUTS, store_layouts
    from mmaux.checkpoint import CONFIG, read_info
    from mmaux.train import train

    args = _with_recipe(args)
    runs = sweep_runs(args)
    if args.prepare_only:
        from mmaux.data.datasets import load_dataset
        from mmaux.model import MultimodalClassifier
        from mmaux.train import split_inputs

        num_labels, posts = _num_labels(args), load_dataset(_dataset_from_args(args), progress=True)
        for arch in dict.fromkeys(run[0] for run in runs):
            split_inputs(MultimodalClassifier(_train_config(args, arch, "none", 0, Path(args.out), num_labels).model),
                         posts, progress=True)
        return 0
    todo = [run for run in runs if not (run[3] / CONFIG).exists()]
    print(f"sweep: {len(runs)} runs, {len(runs) - len(todo)} already done")
    num_labels = _num_labels(args)
    for arch, variant, seed, folder in tqdm(todo, desc="sweep"):
        train(_train_config(args, arch, VARIANTS[variant], seed, folder, num_labels), progress=False)
    if args.layouts:  # also for runs an interrupted sweep finished without them; none for predictions only
        for folder in [run[3] for run in runs if not (run[3] / SHIPPED_LAYOUTS).exists()
                       and read_info(run[3]).has_model]:
            store_layouts(folder)
    return 0


def _add_reproduce_parser(commands):
    p = commands.add_parser("reproduce", help="train a checkpoint again from its config.json and compare its outputs",
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

def _add_evaluate_parser(commands):
    p = commands.add_parser("evaluate", help="metrics of a checkpoint on its recorded dataset")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    add_csv_options(p)
    p.set_defaults(func=_run_evaluate, task=None)


def _run_evaluate(args) -> int:
    from mmaux.checkpoint import read_info
    from mmaux.evaluate import evaluate_checkpoint

    dataset = None
    if args.preset or args.csv:
        recorded = read_info(args.checkpoint).dataset
        dataset = DatasetSpec(csv=spec_from_args(args))
        if recorded.synth:
            raise UsageError("this checkpoint was trained on SynthPosts; --preset/--csv point at a CSV dataset")
    metrics = evaluate_checkpoint(args.checkpoint, args.split, dataset, progress=not args.json)
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


def _add_predict_parser(commands):
    p = commands.add_parser("predict", help="predict one image + text, or a CSV of posts",
                            description="One post: --image F --text T [--json]. Many: --csv FILE "
                                        "--image-template T [--image-root DIR] --out FILE.csv")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder")
    p.add_argument("--image", help="image file of one post")
    p.add_argument("--text", help="text of one post")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--csv", help="CSV of posts (id and text columns)")
    p.add_argument("--image-template", help="image path with {id}, relative to --image-root")
    p.add_argument("--image-root", help="folder the template is relative to (default: the CSV's folder)")
    p.add_argument("--id-column", default="tweet_id")
    p.add_argument("--text-column", default="text")
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
        print(f"{prediction.label}  " + "  ".join(f"{k} {v:.3f}" for k, v in prediction.probabilities.items())
              + f"  ITM match {match}  ITC cosine {prediction.itc_cosine:.3f}")
    return 0

