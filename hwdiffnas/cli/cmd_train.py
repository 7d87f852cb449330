"""``hwdiffnas train``: train the conditional graph-diffusion generator from the benchmark store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hwdiffnas.cli.argtypes import add_space_argument


def register(subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "train", parents=parents, help="train the generator (CPU; resumable, seeded)",
        description="Train one generator for every device and budget from the benchmark store. Rerunning the same "
                    "command continues from the last periodic checkpoint.")
    p.add_argument("-o", "--output", required=True, metavar="CKPT",
                   help="checkpoint file (.safetensors); its folder is created and checked for writing first")
    p.add_argument("--dataset", action="append", metavar="NAME",
                   help="accuracy dataset (repeatable; default cifar100)")
    p.add_argument("--column", default="nats", help="accuracy column of the store (default nats)")
    p.add_argument("--devices", nargs="+", metavar="DEVICE",
                   help="training devices (default: every device in the store with the reference-cell latencies)")
    p.add_argument("--exclude-devices", nargs="+", default=[], metavar="DEVICE",
                   help="leave these devices out of training (to test unseen devices)")
    p.add_argument("--label-fraction", type=float, default=1.0, metavar="F",
                   help="fraction of cells whose accuracy is used (seeded random subset; default 1)")
    p.add_argument("--steps", type=int, default=6000, help="optimizer steps (default 6000)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=250, metavar="N")
    p.add_argument("--objective", action="append", metavar="NAME",
                   help="spaces without accuracy tables (FBNet): an objective to condition on (repeatable; default "
                        "flops and the space's default objective)")
    p.add_argument("--proxy-labels", type=int, default=1000, metavar="N",
                   help="spaces without accuracy tables: architectures on which a proxy objective is computed to fit "
                        "its surrogate (default 1000; cached beside the checkpoint, so a rerun resumes)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes computing proxy objectives (default: the usable CPUs)")
    add_space_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hwdiffnas.benchmark import open_store
    from hwdiffnas.cli.output import print_json, progress
    from hwdiffnas.cli.paths import check_output_file
    from hwdiffnas.generator.train import TrainConfig, TrainingTables, train

    check_output_file(args.output, "checkpoint")  # before training, not after it
    if args.space != "nb201":
        return _run_open(args)
    datasets = tuple(args.dataset or ["cifar100"])
    with open_store(args.data_dir, space=args.space) as store:
        names = list(args.devices) if args.devices else list(store.latency_devices())
        names = [d for d in names if d not in set(args.exclude_devices)]
        tables = TrainingTables.from_store(store, datasets, names, args.column)
    cfg = TrainConfig(datasets=datasets, devices=tuple(args.devices or ()) and tuple(names),
                      label_fraction=args.label_fraction, steps=args.steps, batch_size=args.batch_size,
                      lr=args.lr, seed=args.seed, checkpoint_every=args.checkpoint_every)
    gen = train(tables, Path(args.output), cfg, progress=lambda steps, total: progress(steps, total, desc="train"))
    summary = {"checkpoint": str(args.output), "steps": gen.meta.step, "devices": sorted(gen.meta.devices),
               "datasets": gen.meta.datasets, "label_fraction": args.label_fraction,
               "train_seconds": gen.meta.training.get("train_seconds"),
               "final_loss": gen.meta.training.get("final_loss")}
    if args.json:
        print_json(summary)
    else:
        print(f"trained {args.output}: {summary['steps']} steps, {len(summary['devices'])} devices, "
              f"{summary['train_seconds']} s, loss {summary['final_loss']}")
    return 0


def _run_open(args: argparse.Namespace) -> int:
    """Training in a space without accuracy tables: data the project produces (`hwdiffnas.search.open_training`)."""
    from hwdiffnas.cli.output import print_json, progress
    from hwdiffnas.errors import UserError
    from hwdiffnas.generator.train import TrainConfig
    from hwdiffnas.latency.space_device import served_devices
    from hwdiffnas.plugins import get_space
    from hwdiffnas.search.open_training import OpenDataConfig, train_open_generator

    space = get_space(args.space)
    if args.dataset and len(args.dataset) > 1:
        raise UserError(f"space {space.name!r} trains on one dataset setting's latencies; got {args.dataset}")
    setting = space.dataset(args.dataset[0] if args.dataset else next(iter(space.datasets))).name
    if args.label_fraction != 1.0:
        raise UserError("--label-fraction applies to accuracy tables (NB201); a space without them uses "
                        "--proxy-labels N")
    if args.proxy_labels < 20:
        raise UserError(f"--proxy-labels must be at least 20, got {args.proxy_labels}")
    objectives = tuple(dict.fromkeys(args.objective or ["flops", *([space.default_objective]
                                                                  if space.default_objective else [])]))
    served = served_devices(space, setting)
    if not served:
        from hwdiffnas.latency.lookup import no_latency_data

        raise no_latency_data(space, None, setting)
    names = list(args.devices) if args.devices else served
    unknown = [d for d in names if d not in served]
    if unknown:
        raise UserError(f"device(s) {unknown} have no latency data in space {space.name!r} ({setting}); devices "
                        f"with data: {', '.join(served) or 'none'}")
    names = [d for d in names if d not in set(args.exclude_devices)]
    cfg = OpenDataConfig(dataset=setting, objectives=objectives, labels=args.proxy_labels, seed=args.seed)
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                       checkpoint_every=args.checkpoint_every)
    gen, stats = train_open_generator(space, Path(args.output), cfg, tcfg, devices=names, workers=args.workers,
                                      log=lambda m: print(m, file=sys.stderr),
                                      progress=lambda steps, total: progress(steps, total, desc="train"))
    summary = {"checkpoint": str(args.output), "space": space.name, "setting": setting, "steps": gen.meta.step,
               "devices": sorted(gen.meta.devices), "objectives": gen.meta.datasets,
               "train_seconds": gen.meta.training.get("train_seconds"),
               "final_loss": gen.meta.training.get("final_loss"),
               "data": {k: v for k, v in stats.items() if k != "frontier_methods"}}
    if args.json:
        print_json(summary)
    else:
        print(f"trained {args.output}: {space.name}, {summary['steps']} steps, {len(summary['devices'])} devices, "
              f"objectives {', '.join(summary['objectives'])}, {summary['train_seconds']} s "
              f"(+ {stats.get('data_seconds')} s producing {stats.get('rows')} training rows)")
    return 0
