"""The ``gancourse`` command (also ``python -m gancourse``).

Sub-commands:
  toy       train a NumPy GAN on a toy distribution and report its metrics
  demo      train the recommended recipe on grid25, compare with published rows, write figures
  dynamics  eigenvalues, verdict and a simulated run of a method on the Dirac-GAN or the xy game
  homework  list homework sets, write student or instructor versions, build a Gradescope autograder
  grade     grade a submission, or a folder of them, in a sandbox
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import signal
import sys
import threading
import typing
from collections.abc import Callable, Sequence
from pathlib import Path

from gancourse.io import json_dumps

__all__ = ["main", "build_parser"]

_HELP = {
    "data": "toy distribution",
    "seed": "random seed (runs are bit-identical for the same seed)",
    "steps": "generator iterations: the planned length of the run, over which --lr-schedule linear and "
             "--instance-noise are timed",
    "batch_size": "samples per batch, real and fake each",
    "z_dim": "latent dimension",
    "g_hidden": "generator hidden widths, comma-separated",
    "d_hidden": "discriminator hidden widths, comma-separated",
    "g_activation": "hidden activation of the generator",
    "d_activation": "hidden activation of the discriminator",
    "init": "weight initialisation of both networks",
    "loss": "adversarial loss",
    "penalty": "gradient penalty on the discriminator",
    "gamma": "penalty weight (gamma for R1/R2, lambda for WGAN-GP)",
    "penalty_every": "apply the penalty every k-th iteration with weight k*gamma (lazy regularization)",
    "optimizer": "optimizer of both players",
    "lr_g": "generator learning rate",
    "lr_d": "discriminator learning rate",
    "beta1": "Adam beta1",
    "beta2": "Adam beta2",
    "momentum": "SGD momentum (negative allowed)",
    "lr_schedule": "learning-rate schedule",
    "lr_final": "final learning rate as a fraction of the initial one (linear schedule)",
    "n_critic": "discriminator steps per generator step",
    "label_smoothing": "target for real samples (one-sided label smoothing, e.g. 0.9)",
    "feature_matching": "train G by feature matching",
    "minibatch_discrimination": "number of minibatch-discrimination kernels (0 = off)",
    "historical_averaging": "historical-averaging weight (0 = off)",
    "instance_noise": "initial instance-noise std, annealed to 0 (0 = off)",
    "unrolled_steps": "unrolled discriminator steps for the generator update (0 = off)",
    "weight_clip": "WGAN weight clipping bound (0 = off)",
    "spectral_norm": "spectral normalization in D",
    "ema": "generator EMA decay (0 = off)",
    "data_scale": "divide data by this for training (0 = automatic, about [-2, 2])",
    "eval_every": "evaluate metrics every N steps (0 = only at the end)",
    "n_eval": "samples used for the metrics",
    "dtype": "floating-point type of the networks",
    "threads": "BLAS threads while training (small matrices train fastest and steadiest on one)",
}


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 128,128, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths like 128,128, got {text!r}")
    return widths


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per ToyConfig field (``lr_g`` -> ``--lr-g``); defaults are None so presets show through."""
    from gancourse.nn import ACTIVATIONS, INITS, LOSSES, OPTIMIZERS, PENALTIES
    from gancourse.toy.config import LR_SCHEDULES, ToyConfig
    from gancourse.toy.distributions import DATASETS

    choices = {
        "data": list(DATASETS), "loss": list(LOSSES), "penalty": list(PENALTIES), "optimizer": list(OPTIMIZERS),
        "g_activation": list(ACTIVATIONS), "d_activation": list(ACTIVATIONS), "init": list(INITS), "lr_schedule": list(LR_SCHEDULES), "dtype": ["float32", "float64"],
    }
    hints = typing.get_type_hints(ToyConfig)
    defaults = ToyConfig()
    g = p.add_argument_group("config (defaults: the recommended recipe)")
    for f in dataclasses.fields(ToyConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_ = f"{_HELP.get(f.name, f.name)} (default: {default})"
        hint = hints[f.name]
        if hint is bool:
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_)
        elif hint == tuple[int, ...]:
            g.add_argument(flag, type=_int_tuple, default=None, metavar="W,W,...", help=help_)
        else:
            g.add_argument(flag, type=hint, default=None, choices=choices.get(f.name), help=help_)


def _config_from_args(args: argparse.Namespace):
    from gancourse.toy.config import ToyConfig, plain_gan, recommended

    given = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(ToyConfig) if getattr(args, f.name) is not None
    }
    return (plain_gan if args.preset == "plain" else recommended)(**given)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _version() -> str:
    """The installed package's version (pyproject.toml's), or "unknown" when it is run from an uninstalled tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gancourse")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gancourse", description="A runnable course on Generative Adversarial Networks."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    toy = sub.add_parser("toy", help="train a NumPy GAN on a toy distribution and print its metrics")
    toy.add_argument("--preset", choices=["recommended", "plain"], default=None,
                     help="starting point for the config: the course's recommended recipe (the default), or the "
                          "plain non-saturating GAN with no regularization (flags below override it)")
    _add_config_flags(toy)
    toy.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    toy.add_argument("--samples-out", type=Path, metavar="FILE.npy",
                     help="write the evaluation samples here (exactly this name; a regular file, not a device)")
    toy.add_argument("--checkpoint", type=Path, metavar="FILE.npz",
                     help="write a checkpoint here at the end, and on Ctrl-C (at a step boundary, then exit 130)")
    toy.add_argument("--checkpoint-every", type=_positive_int, metavar="N",
                     help="also rewrite --checkpoint every N steps, so a killed run can be resumed")
    toy.add_argument("--resume", type=Path, metavar="FILE.npz",
                     help="continue a run from a checkpoint, exactly as if it had not stopped: the run keeps the "
                          "config saved in it, and config flags that contradict it are refused. --steps is the "
                          "planned total; it may change only when nothing is timed over it (--lr-schedule "
                          "constant, --instance-noise 0)")
    toy.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="show a progress bar (default: on, except in smoke mode)")

    demo = sub.add_parser("demo", help="train the recommended recipe on grid25 and write figures")
    demo.add_argument("--out", type=Path, default=Path("gancourse-out") / "demo", help="folder for the figures")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.add_argument("--steps", type=int, default=None, help="override the number of steps")
    demo.add_argument("--no-gif", action="store_true", help="skip the training animation")

    _add_dynamics_parser(sub)
    from gancourse.grading.commands import add_parsers

    add_parsers(sub)
    return parser


def _add_dynamics_parser(sub) -> None:
    from gancourse.dynamics import LOSSES, METHODS, REGULARIZERS

    dyn = sub.add_parser(
        "dynamics",
        help="eigenvalues, verdict and a simulated run of a method on the Dirac-GAN or the xy game",
        description="Linearize a training method at the equilibrium of a game (numeric Jacobians beside the "
                    "closed forms), give the verdict, and confirm it by simulating --steps updates.",
    )
    dyn.add_argument("--game", choices=["dirac", "xy"], default="dirac", help="the game (default: dirac)")
    dyn.add_argument("--method", choices=list(METHODS), default="simgd", help="the update rule (default: simgd)")
    dyn.add_argument("--loss", choices=list(LOSSES), default=None, help="Dirac-GAN loss (default: gan)")
    dyn.add_argument("--reg", choices=list(REGULARIZERS), default=None,
                     help="Dirac-GAN regularizer (default: none)")
    dyn.add_argument("--gamma", type=float, default=1.0,
                     help="penalty weight for r1/r2/wgan-gp, and the strength of --method consensus; > 0 "
                          "(default: 1)")
    dyn.add_argument("--sigma", type=float, default=1.0, help="instance-noise std; > 0 (default: 1)")
    dyn.add_argument("--clip", type=float, default=None, help="WGAN weight clipping |psi| <= CLIP (default: off)")
    dyn.add_argument("--h", "--eta", dest="h", type=float, default=0.1, metavar="STEP",
                     help="step size h (alias --eta); > 0 (default: 0.1)")
    dyn.add_argument("--steps", type=int, default=None,
                     help="simulated updates (default: 1000; 3000 per row with --table)")
    dyn.add_argument("--start", type=float, nargs=2, default=(1.0, 1.0), metavar=("X", "Y"),
                     help="start of the simulated run (default: 1 1)")
    dyn.add_argument("--n-d", type=int, default=1, help="discriminator steps per round for altgd (default: 1)")
    dyn.add_argument("--n-g", type=int, default=1, help="generator steps per round for altgd (default: 1)")
    dyn.add_argument("--beta", type=float, default=-0.5,
                     help="momentum coefficient for --method momentum, in (-1, 1), negative allowed "
                          "(default: -0.5)")
    dyn.add_argument("--table", action="store_true",
                     help="print the whole convergence table: every method on every game variant")
    dyn.add_argument("--json", action="store_true", help="print JSON instead of text")
    dyn.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="show a progress bar of the simulation on stderr (default: only for runs of more "
                          "than 100000 updates in all)")


def _same_file(a: Path, b: Path) -> bool:
    return a == b or (a.exists() and b.exists() and os.path.samefile(a, b))


def _check_toy_outputs(args: argparse.Namespace) -> None:
    """Refuse output paths that cannot be written, before any training (nothing is created here)."""
    from gancourse.errors import OutputPathError
    from gancourse.io import check_output_path

    if args.checkpoint_every is not None and args.checkpoint is None:
        raise OutputPathError("--checkpoint-every needs --checkpoint FILE.npz, the file it rewrites every N steps")
    real = {flag: check_output_path(path, what=flag)
            for flag, path in (("--checkpoint", args.checkpoint), ("--samples-out", args.samples_out)) if path}
    if len(real) == 2 and _same_file(real["--checkpoint"], real["--samples-out"]):
        raise OutputPathError(f"--samples-out and --checkpoint name the same file ({args.samples_out}); "
                              f"give them different names")
    if "--samples-out" in real and args.resume is not None and _same_file(real["--samples-out"],
                                                                          Path(os.path.realpath(args.resume))):
        raise OutputPathError(f"--samples-out and --resume name the same file ({args.samples_out}): the samples "
                              f"would overwrite the checkpoint")


def _as_flag(name: str, value) -> str:
    """A config value as it is written on the command line: ``--g-hidden 16,16``, ``--no-ema``..."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    return f"{flag} {','.join(map(str, value)) if isinstance(value, tuple) else value}"


def _toy_trainer(args: argparse.Namespace):
    """A new trainer from the flags, or the one saved in --resume (refusing flags that contradict it)."""
    from gancourse.toy.config import ToyConfig
    from gancourse.toy.trainer import ToyGAN

    if args.resume is None:
        return ToyGAN(_config_from_args(args))
    gan = ToyGAN.load(args.resume)
    cfg = gan.config
    conflicts = [f"--preset {args.preset} (a resumed run keeps the config it was started with)"] if args.preset else []
    for f in dataclasses.fields(ToyConfig):
        given = getattr(args, f.name)
        if f.name != "steps" and given is not None and given != getattr(cfg, f.name):
            conflicts.append(f"{_as_flag(f.name, given)} (the checkpoint has {_as_flag(f.name, getattr(cfg, f.name))})")
    if conflicts:
        raise ValueError(f"--resume continues the run saved in {args.resume} with the config saved there; these "
                         f"flags contradict it: {'; '.join(conflicts)}. Leave them out (only --steps may be given, "
                         f"as the planned total), or start a new run without --resume.")
    if args.steps is not None and args.steps != cfg.steps and cfg.scheduled_over_steps():
        raise ValueError(
            f"--steps {args.steps} would change the schedule of the run saved in {args.resume}: it is planned for "
            f"{cfg.steps} steps ({'; '.join(cfg.scheduled_over_steps())}), and a resumed run continues the schedule "
            f"it started with. Resume without --steps (it runs to step {cfg.steps}), or start a new run with "
            f"--steps {args.steps}; runs meant to be extended use --lr-schedule constant and --instance-noise 0."
        )
    if args.steps is not None:
        gan.extend(args.steps)
    return gan


class _Interrupted(Exception):
    """Raised between two training steps after Ctrl-C, so that a run stops on a whole step."""


class _DeferSigint:
    """While active, a first SIGINT (Ctrl-C) only sets ``requested``; a second one interrupts at once.

    Training checks ``requested`` after every step, so an interrupted run stops between two whole steps
    and its checkpoint is consistent. Outside the main thread (where signals cannot be caught), or where
    SIGINT is ignored (a background job, ``nohup``), it does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: object = None

    def __enter__(self) -> "_DeferSigint":
        main_thread = threading.current_thread() is threading.main_thread()
        if main_thread and signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._handle) or signal.default_int_handler
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _write(what: str, path: Path, write: Callable[[], object], saved: Path | None = None) -> None:
    """Run ``write()``; an OSError (disk full, permissions...) becomes one message naming the file."""
    from gancourse.errors import OutputPathError

    try:
        write()
    except OSError as exc:
        also = f" (the checkpoint was saved to {saved})" if saved is not None else ""
        raise OutputPathError(f"could not write the {what} to {path}: {exc.strerror or exc}{also}") from None


def _toy_interrupted(args: argparse.Namespace, gan) -> int:
    """Save the interrupted run (at a step boundary) if --checkpoint was given, say how to resume, return 130."""
    where = f"gancourse toy: interrupted at step {gan.step} of {gan.config.steps}"
    if args.checkpoint is None:
        print(f"{where}; nothing was saved (give --checkpoint FILE.npz to keep a run that you may interrupt)",
              file=sys.stderr)
        return 130
    try:
        _write("checkpoint", args.checkpoint, lambda: gan.save(args.checkpoint))
    except ValueError as exc:
        print(f"{where}; {exc}", file=sys.stderr)
        return 130
    again = ["gancourse", "toy", "--resume", args.checkpoint, "--checkpoint", args.checkpoint]
    if args.checkpoint_every:
        again += ["--checkpoint-every", args.checkpoint_every]
    if args.samples_out is not None:
        again += ["--samples-out", args.samples_out]
    again += ["--json"] if args.json else []
    print(f"{where}; checkpoint saved to {args.checkpoint}. Continue the run with:\n  "
          f"{shlex.join(map(str, again))}", file=sys.stderr)
    return 130


def _cmd_toy(args: argparse.Namespace) -> int:
    import numpy as np

    from gancourse.io import atomic_write
    from gancourse.toy.report import format_metrics

    _check_toy_outputs(args)
    gan = _toy_trainer(args)
    every = args.checkpoint_every

    def after_each_step(g) -> None:
        if every and g.step % every == 0 and g.step < g.config.steps:
            _write("checkpoint", args.checkpoint, lambda: g.save(args.checkpoint))
        if stop.requested:
            raise _Interrupted

    with _DeferSigint() as stop:
        try:
            result = gan.run(progress=args.progress, callbacks=[after_each_step], callback_every=1)
        except _Interrupted:
            pass
    if stop.requested:
        return _toy_interrupted(args, gan)
    result = {"data": gan.config.data, "seed": gan.config.seed, **result}
    if args.checkpoint is not None:  # first: a failure to write the samples then loses nothing
        _write("checkpoint", args.checkpoint, lambda: gan.save(args.checkpoint))
    if args.samples_out is not None:
        samples = gan.sample(gan.config.n_eval)
        _write("samples", args.samples_out,
               lambda: atomic_write(args.samples_out, lambda fh: np.save(fh, samples)), saved=args.checkpoint)
    if args.json:
        print(json_dumps(result))
    else:
        print(format_metrics(result))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gancourse.viz.demo import run_demo

    run_demo(out=args.out, seed=args.seed, steps=args.steps, gif=not args.no_gif)
    return 0


def _cmd_dynamics(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tqdm.auto import tqdm

    from gancourse.dynamics import (
        DiracGAN,
        Method,
        analyze,
        convergence_table,
        format_number,
        format_table,
        wants_progress,
        xy_game,
    )
    from gancourse.dynamics.analysis import table_cases
    from gancourse.errors import check_positive

    # values the maths needs in range, whether or not the chosen game and method use them
    check_positive("--gamma", args.gamma)
    check_positive("--sigma", args.sigma)
    if not -1 < args.beta < 1:
        raise ValueError(f"--beta must lie in (-1, 1) (a momentum coefficient), got {args.beta!r}")

    def bar(total: int):
        return tqdm(total=total, desc="simulating", unit="step", file=sys.stderr, leave=False, mininterval=1.0,
                    disable=not wants_progress(total, args.progress))

    if args.table:
        steps = 3000 if args.steps is None else args.steps
        with bar(steps * len(table_cases(gamma=args.gamma, sigma=args.sigma))) as pbar:
            rows = convergence_table(h=args.h, steps=steps, gamma=args.gamma, sigma=args.sigma, beta=args.beta,
                                     start=args.start, progress=pbar.update)
        print(json_dumps([r.to_dict() for r in rows]) if args.json else format_table(rows))
        return 0
    if args.game == "xy":
        given = [f"--{k}" for k in ("loss", "reg", "clip") if getattr(args, k) is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            parser.error(f"{', '.join(given)} {verb} only to --game dirac; the xy game has no loss or regularizer")
        game = xy_game()
    else:
        game = DiracGAN(args.loss or "gan", args.reg or "none", gamma=args.gamma, sigma=args.sigma, clip=args.clip)
    method = Method(args.method, h=args.h, n_d=args.n_d, n_g=args.n_g, gamma=args.gamma, beta=args.beta)
    steps = 1000 if args.steps is None else args.steps
    with bar(steps) as pbar:
        result = analyze(game, method, start=args.start, steps=steps, progress=pbar.update).to_dict()
    if args.json:
        print(json_dumps(result))
        return 0

    def eigs(pairs):
        return "-" if pairs is None else ", ".join(
            f"{format_number(re, signed=True)}{format_number(im, signed=True)}i" for re, im in pairs)

    lines = [
        f"game:    {result['game']}",
        f"method:  {result['method']}",
        f"v' eigenvalues at the equilibrium:    {eigs(result['continuous_eigenvalues'])}",
        f"                         closed form: {eigs(result['continuous_eigenvalues_closed_form'])}",
        f"F_h' eigenvalues at the equilibrium:  {eigs(result['discrete_eigenvalues'])}",
        f"                         closed form: {eigs(result['discrete_eigenvalues_closed_form'])}",
        f"spectral radius of F_h': {format_number(result['spectral_radius'])}"
        + ("" if result["spectral_radius_closed_form"] is None
           else f" (closed form {format_number(result['spectral_radius_closed_form'])})"),
        f"verdict: {result['verdict']}",
        f"simulated: {result['simulated_verdict']} (distance {result['final_distance']:.4g} after "
        f"{result['steps']} steps from {tuple(result['start'])})",
    ]
    if result["note"]:
        lines.append(f"note: {result['note']}")
    print("\n".join(lines))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from gancourse.errors import TrainingDiverged

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "toy":
            return _cmd_toy(args)
        if args.command == "dynamics":
            return _cmd_dynamics(args, parser)
        if args.command in ("homework", "grade"):
            from gancourse.grading.commands import run_grade, run_homework

            return (run_homework if args.command == "homework" else run_grade)(args)
        return _cmd_demo(args)
    except KeyboardInterrupt:
        print(f"gancourse {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, TrainingDiverged) as exc:
        print(f"gancourse {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        print(f"gancourse {args.command}: error: out of memory ({exc}); choose smaller sizes", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"gancourse {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
