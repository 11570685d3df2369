"""The ``gancourse train`` sub-command (wired into ``gancourse.cli``): train an image model into a run folder.

```
gancourse train MODEL --preset {smoke,lecture,full} [--seed S] [--device auto|cpu|cuda] [--out DIR]
                [--resume CKPT] [--progress/--no-progress] [--threads N] [config flags]
```
MODEL is a name in :data:`gancourse.deep.runs.registry.MODELS`. Each model has its own sub-parser whose
config flags are generated from its config class (:func:`gancourse.options.add_flags`) when the model is
chosen, so that the other commands never import torch. The run folder holds ``checkpoint.pt``,
``metrics.json``, ``samples.npz``, ``samples.png`` and ``snapshots/`` (:mod:`gancourse.deep.runs.folder`).
Ctrl-C stops at a step boundary, saves the checkpoint, prints how to resume and exits with status 130.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gancourse.deep.runs.registry import MODELS
from gancourse.interrupt import EXIT_INTERRUPTED, DeferSigint
from gancourse.tiers import TIERS

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from gancourse.deep.loop import TrainingLoop
    from gancourse.deep.runs.folder import RunFolder
    from gancourse.deep.runs.spec import ModelSpec

__all__ = ["add_train_parser", "run_train"]

_PRESETS_HELP = ("the run's size: smoke (seconds, for tests), lecture (meaningful results in a few minutes on a "
                 "2-core CPU), full (the papers' sizes, meant for a GPU); config flags override its values. "
                 "Needed for a new run; a resumed run keeps its own")


def _say(message: str) -> None:
    print(f"gancourse train: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- the parser
def _preset_in(rest: Sequence[str]) -> str | None:
    """The value of ``--preset`` among a model's arguments, if it is given (and valid)."""
    for i, arg in enumerate(rest):
        if arg == "--preset" and i + 1 < len(rest):
            value = rest[i + 1]
        elif arg.startswith("--preset="):
            value = arg.partition("=")[2]
        else:
            continue
        return value if value in TIERS else None
    return None


def _add_config_flags(parser: argparse.ArgumentParser, name: str, preset: str | None) -> None:
    """Add one flag per config field of model ``name``, its default shown for ``preset`` (or for each preset)."""
    from gancourse.options import add_flags, show_value

    try:
        spec = MODELS[name].load()
    except ImportError as exc:
        parser.error(f"training an image model needs PyTorch ({exc}); install it as the README says")
    shown: dict[str, Any] = {}
    for field, by_preset in spec.preset_values().items():
        if preset is not None:
            shown[field] = by_preset[preset]
        elif len(set(map(show_value, by_preset.values()))) == 1:
            shown[field] = by_preset["smoke"]  # the same in every preset
        else:
            shown[field] = ", ".join(f"{tier} {show_value(v)}" for tier, v in by_preset.items())
    from gancourse.deep.runtime import CudaRunOptions

    cls, defaults = spec.config_class, f"defaults: {'the ' + preset + ' preset' if preset else 'by preset'}"
    run = {f.name for f in dataclasses.fields(CudaRunOptions)}  # listed last, under a title of their own
    own = {f.name for f in dataclasses.fields(cls)} - run
    add_flags(parser.add_argument_group(f"config ({cls.__name__}; {defaults})"), cls, defaults=shown,
              exclude=(*spec.no_flag, *run))
    add_flags(parser.add_argument_group(f"run options ({defaults})"), cls, defaults=shown,
              exclude=(*spec.no_flag, *own))


class _ModelParsers(argparse._SubParsersAction):
    """The models of ``gancourse train``; a model's config flags are added only once it is chosen (they come
    from its config class, and importing that imports torch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._with_flags: set[str] = set()

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Sequence[str],
                 option_string: str | None = None) -> None:
        name = values[0]
        if name in self._name_parser_map and name not in self._with_flags:
            _add_config_flags(self._name_parser_map[name], name, _preset_in(values[1:]))
            self._with_flags.add(name)
        super().__call__(parser, namespace, values, option_string)


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=TIERS, default=None, help=_PRESETS_HELP)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to train: auto picks cuda when available, else the CPU (default: auto)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="the run folder (default: gancourse-out/train/MODEL-PRESET-seedS; with --resume, the "
                        "checkpoint's folder). A folder that already holds a run is refused, unless --resume "
                        "names its checkpoint")
    p.add_argument("--resume", type=Path, metavar="CKPT",
                   help="continue the run saved in CKPT exactly, as if it had not stopped: the run keeps the "
                        "config saved in it, and config flags that contradict it are refused; --steps (the "
                        "planned total), --log-every, --sample-every and --checkpoint-every may change")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar on stderr (default: on, except in smoke mode)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads torch may use (default: torch's choice, one per core; on a busy machine "
                        "1 can be much faster)")


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``gancourse train MODEL ...``: one sub-parser per model of the registry."""
    train = subparsers.add_parser(
        "train", help="train an image model (DCGAN, WGAN-GP, CycleGAN, conditional GAN, ...) into a run folder",
        description="Train an image model at a preset size, then evaluate it against a floor (real images) and "
                    "a ceiling (the untrained model). The run folder gets checkpoint.pt (every "
                    "--checkpoint-every steps, at the end, and on Ctrl-C), metrics.json, samples.npz, "
                    "samples.png and snapshots/. `gancourse train MODEL --help` lists the model's flags.")
    models = train.add_subparsers(dest="model", metavar="MODEL", action=_ModelParsers)
    models.required = True
    for name, entry in MODELS.items():
        p = models.add_parser(name, help=entry.summary,
                              description=f"Train {entry.summary} into a run folder. The config flags override "
                                          f"the values of --preset; their defaults are each preset's (give "
                                          f"--preset with --help to see one preset's).")
        _add_run_flags(p)


# ---------------------------------------------------------------------------------------------- the run
def _device(name: str) -> torch.device:
    from gancourse.deep.device import device_available, select_device

    if name == "cuda" and not device_available("cuda"):
        raise ValueError("--device cuda: torch reports no CUDA device here (no GPU, or a CPU build of torch); "
                         "use --device auto or --device cpu")
    return select_device(None if name == "auto" else name, verbose=False)


def _resume(spec: ModelSpec, args: argparse.Namespace, fields: dict[str, Any],
            device: torch.device) -> tuple[TrainingLoop, dict[str, Any]]:
    """The trainer restored from ``--resume`` and the run's record; flags that contradict it are refused."""
    from gancourse.deep.checkpoint import CheckpointError, load_checkpoint
    from gancourse.deep.loop import RESUMABLE_FIELDS
    from gancourse.deep.runs.registry import model_of_checkpoint
    from gancourse.options import contradictions

    ckpt = args.resume
    state = load_checkpoint(ckpt)
    owner = model_of_checkpoint(state)
    if owner is None:
        raise CheckpointError(ckpt, f"no model of `gancourse train` wrote it (its kind is {state.get('kind')!r}; "
                                    f"the models are {', '.join(MODELS)})")
    if owner != args.model:
        raise ValueError(f"--resume {ckpt} holds a {owner} run, not {args.model}; continue it with "
                         f"`gancourse train {owner} --resume {ckpt}`")
    run = state.get("run") if isinstance(state.get("run"), dict) else {}
    saved = spec.resumed_config(state["config"], {})
    conflicts = contradictions(spec.config_class, fields, saved, may_change=RESUMABLE_FIELDS)
    if args.preset and run.get("preset") not in (None, args.preset):
        conflicts.insert(0, f"--preset {args.preset} (the run was started with --preset {run['preset']})")
    if conflicts:
        raise ValueError(f"--resume continues the run saved in {ckpt} with the config saved there; these flags "
                         f"contradict it: {'; '.join(conflicts)}. Leave them out (only --steps, --log-every, "
                         f"--sample-every and --checkpoint-every may change), or start a new run without --resume.")
    config = spec.resumed_config(state["config"], fields)
    why = spec.scheduled(saved)
    if config.steps != saved.steps and why:
        raise ValueError(f"--steps {config.steps} would change the schedule of the run saved in {ckpt}: it is "
                         f"planned for {saved.steps} steps and {why}. Resume without --steps, or start a new run.")
    trainer = spec.build(config, device).load(ckpt)
    if config.steps < trainer.step:
        raise ValueError(f"--steps {config.steps} is below step {trainer.step}, which the run saved in {ckpt} "
                         f"has already reached")
    info = {"model": args.model, "preset": run.get("preset", args.preset), "seconds": float(run.get("seconds", 0.0))}
    return trainer, info


def _save(trainer: TrainingLoop, folder: RunFolder, info: dict[str, Any]) -> None:
    """The trainer's checkpoint, with the run's record (model, preset, training seconds so far) under "run"."""
    from gancourse.deep.checkpoint import save_checkpoint

    save_checkpoint(folder.checkpoint, {**trainer.state_dict(), "run": info})


def _write_snapshot(spec: ModelSpec, trainer: TrainingLoop, folder: RunFolder, snapshot: tuple) -> None:
    """``snapshots/step-NNNNNNN.png`` of one of ``trainer.snapshots`` (the step comes first)."""
    from gancourse.deep.runs.folder import write_png

    grid = spec.snapshot_grid(trainer, snapshot)
    write_png(folder.snapshot_png(snapshot[0]), grid.images, grid.nrow)


def _resume_command(args: argparse.Namespace, folder: RunFolder) -> str:
    again = ["gancourse", "train", args.model, "--resume", str(folder.checkpoint)]
    again += ["--device", args.device] if args.device != "auto" else []
    again += ["--threads", str(args.threads)] if args.threads else []
    again += ["--no-progress"] if args.progress is False else []
    return shlex.join(again)


def _train(spec: ModelSpec, trainer: TrainingLoop, folder: RunFolder, info: dict[str, Any],
           args: argparse.Namespace) -> int:
    """Train to ``config.steps`` (saving as it goes), evaluate, write the run folder; 130 after Ctrl-C."""
    from gancourse.tiers import smoke_mode

    c = trainer.config
    progress = not smoke_mode() if args.progress is None else args.progress
    _say(f"{info['model']}, preset {info['preset']}, seed {c.seed}, on {trainer.device}: step {trainer.step} of "
         f"{c.steps}; run folder {folder.path}")
    start = time.perf_counter()

    def seconds() -> float:
        return info["seconds"] + time.perf_counter() - start

    def after_step() -> bool:
        if trainer.snapshots and trainer.snapshots[-1][0] == trainer.step:  # one was just taken
            _write_snapshot(spec, trainer, folder, trainer.snapshots[-1])
        if c.checkpoint_every and trainer.step % c.checkpoint_every == 0 and trainer.step < c.steps:
            _save(trainer, folder, {**info, "seconds": seconds()})
        return stop.requested

    with DeferSigint() as stop:
        trainer.train(progress=progress, should_stop=after_step)
    info = {**info, "seconds": seconds()}
    _save(trainer, folder, info)
    if stop.requested:
        _say(f"interrupted at step {trainer.step} of {c.steps}; checkpoint saved to {folder.checkpoint}. "
             f"Continue the run with:\n  {_resume_command(args, folder)}")
        return EXIT_INTERRUPTED
    try:
        return _finish(spec, trainer, folder, info)
    except KeyboardInterrupt:
        _say(f"interrupted while evaluating; the trained run is saved in {folder.checkpoint}, and "
             f"`{_resume_command(args, folder)}` evaluates it")
        return EXIT_INTERRUPTED


def _finish(spec: ModelSpec, trainer: TrainingLoop, folder: RunFolder, info: dict[str, Any]) -> int:
    """Evaluate the trained model and write samples.npz, samples.png, the snapshots and metrics.json (last)."""
    import torch

    from gancourse.deep.metrics import format_report
    from gancourse.deep.runs.folder import write_png

    _say("evaluating (metrics beside a floor of real images and a ceiling of the untrained model)")
    start = time.perf_counter()
    evaluation = spec.evaluate(trainer, info["preset"] or "full")
    folder.write_npz(evaluation.arrays)
    write_png(folder.samples_png, evaluation.grid.images, evaluation.grid.nrow)
    for snapshot in trainer.snapshots:  # those of a run resumed into another folder too
        _write_snapshot(spec, trainer, folder, snapshot)
    c = trainer.config
    folder.write_json({
        **info, **evaluation.summary, "seed": c.seed, "steps": trainer.step, "eval_seconds": time.perf_counter() - start,
        "device": str(trainer.device), "threads": torch.get_num_threads(), "config": dataclasses.asdict(c),
        "report": evaluation.report, "final_losses": trainer.history.last(),
        "samples": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in evaluation.arrays.items()},
    })
    print(format_report(evaluation.report))
    print(f"run folder: {folder.path} (checkpoint.pt, metrics.json, samples.npz, samples.png, snapshots/)")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """``gancourse train``: check the run folder, build or resume the trainer, train, evaluate, write."""
    import torch

    from gancourse.deep.device import seed_everything
    from gancourse.deep.runs.folder import check_run_folder, default_out
    from gancourse.deep.runs.registry import get_spec
    from gancourse.errors import check_positive_int
    from gancourse.options import given

    spec = get_spec(args.model)
    if args.threads is not None:
        torch.set_num_threads(check_positive_int("--threads", args.threads))
    fields = given(args, spec.config_class)
    if args.resume is not None:
        folder = check_run_folder(args.out or args.resume.parent, args.resume)
        trainer, info = _resume(spec, args, fields, _device(args.device))
        return _train(spec, trainer, folder, info, args)
    if args.preset is None:
        raise ValueError(f"choose the run's size with --preset ({', '.join(TIERS)}): smoke runs in seconds, "
                         f"lecture in minutes on a CPU, full is meant for a GPU")
    config = spec.config(args.preset, **fields)
    folder = check_run_folder(args.out or default_out(args.model, args.preset, config.seed), None)
    device = _device(args.device)
    seed_everything(config.seed)
    trainer = spec.build(config, device)
    return _train(spec, trainer, folder, {"model": args.model, "preset": args.preset, "seconds": 0.0}, args)
