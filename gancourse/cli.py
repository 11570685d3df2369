"""The ``gancourse`` command (also ``python -m gancourse``).

Sub-commands:
  toy       train a NumPy GAN on a toy distribution and report its metrics
  demo      train a recipe on a toy dataset (grid25: beside the published rows) and write figures
  dynamics  eigenvalues, verdict and a simulated run of a method on the Dirac-GAN or the xy game
  train     train an image model (DCGAN, WGAN-GP, CycleGAN, conditional GAN, ...) into a run folder
  homework  list homework sets, write student or instructor versions, build a Gradescope autograder
  grade     grade a submission, or a folder of them, in a sandbox
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gancourse.io import json_dumps

__all__ = ["main", "build_parser"]

def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per ToyConfig field (``lr_g`` -> ``--lr-g``), with the help and choices declared on the field."""
    from gancourse.options import add_flags
    from gancourse.toy.config import ToyConfig

    add_flags(p.add_argument_group("config (defaults: the recommended recipe)"), ToyConfig)


def _config_from_args(args: argparse.Namespace):
    from gancourse.options import given
    from gancourse.toy.config import ToyConfig, plain_gan, recommended

    return (plain_gan if args.preset == "plain" else recommended)(**given(args, ToyConfig))


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
    many = toy.add_argument_group("several seeds at once")
    many.add_argument("--seeds", metavar="LIST",
                      help="train one run per seed, e.g. 0-4 or 0,2,5-6, in parallel processes with one BLAS thread "
                           "each, and print a table with their mean and std (results are identical to the runs done "
                           "one by one); --checkpoint and --samples-out then need {seed} in their names")
    many.add_argument("--jobs", type=_positive_int, metavar="N",
                      help="runs trained at once with --seeds (default: the number of CPUs, at most one per seed)")

    from gancourse.toy.distributions import DATASETS
    from gancourse.viz.demo import PRESETS

    demo = sub.add_parser("demo", help="train the recommended recipe (on grid25 by default) and write figures",
                          description="Train a recipe on a toy dataset, print its metrics (beside the published "
                                      "rows on grid25) and write samples.png, losses.png, training.gif and "
                                      "metrics.json.")
    demo.add_argument("--data", choices=list(DATASETS), default="grid25", help="toy dataset (default: grid25)")
    demo.add_argument("--preset", choices=list(PRESETS), default="recommended",
                      help="the course's recommended recipe, or the plain non-saturating GAN (default: recommended)")
    demo.add_argument("--out", type=Path, default=Path("gancourse-out") / "demo", help="folder for the figures")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.add_argument("--steps", type=int, default=None, help="override the number of steps")
    demo.add_argument("--no-gif", action="store_true", help="skip the training animation")

    _add_dynamics_parser(sub)
    from gancourse.grading.commands import add_parsers

    add_parsers(sub)
    from gancourse.deep.train_command import add_train_parser

    add_train_parser(sub)
    return parser


#: where ``gancourse dynamics`` departs from the dataclasses' defaults (the convergence table's noise level)
_DYNAMICS_DEFAULTS = {"sigma": 1.0}


def _add_dynamics_parser(sub) -> None:
    from gancourse.dynamics import DiracGAN, Method
    from gancourse.options import add_flags

    dyn = sub.add_parser(
        "dynamics",
        help="eigenvalues, verdict and a simulated run of a method on the Dirac-GAN or the xy game",
        description="Linearize a training method at the equilibrium of a game (numeric Jacobians beside the "
                    "closed forms), give the verdict, and confirm it by simulating --steps updates. A flag that "
                    "does not apply to the chosen game and method is refused, never ignored.",
    )
    dyn.add_argument("--game", choices=["dirac", "xy"], default=None, help="the game (default: dirac)")
    add_flags(dyn.add_argument_group("the Dirac-GAN (--game dirac)"), DiracGAN, defaults=_DYNAMICS_DEFAULTS)
    add_flags(dyn.add_argument_group("the update rule"), Method)
    dyn.add_argument("--steps", type=int, default=None,
                     help="simulated updates (default: 1000; 3000 per row with --table)")
    dyn.add_argument("--start", type=float, nargs=2, default=(1.0, 1.0), metavar=("X", "Y"),
                     help="start of the simulated run (default: 1 1)")
    dyn.add_argument("--table", action="store_true",
                     help="print the whole convergence table: every method on every game variant, with --h, "
                          "--gamma, --sigma, --consensus and --beta applied to the rows they concern")
    dyn.add_argument("--format", choices=["text", "markdown", "csv"], default="text",
                     help="layout of --table: text (one block per game, fits 100 columns), a markdown "
                          "table, or CSV (default: text)")
    dyn.add_argument("--trajectory", action="store_true",
                     help="also print every simulated state (the iterates), e.g. the 6-cycle of alternating GD "
                          "on the xy game at h = 1")
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


def _toy_trainer(args: argparse.Namespace):
    """A new trainer from the flags, or the one saved in --resume (refusing flags that contradict it)."""
    from gancourse.options import contradictions, given
    from gancourse.toy.config import ToyConfig
    from gancourse.toy.trainer import ToyGAN

    if args.resume is None:
        return ToyGAN(_config_from_args(args))
    gan = ToyGAN.load(args.resume)
    cfg = gan.config
    conflicts = [f"--preset {args.preset} (a resumed run keeps the config it was started with)"] if args.preset else []
    conflicts += contradictions(ToyConfig, given(args, ToyConfig), cfg, may_change=("steps",))
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


def _cmd_toy_seeds(args: argparse.Namespace) -> int:
    """``toy --seeds LIST``: one run per seed, trained side by side by :func:`gancourse.toy.sweep.sweep`."""
    import numpy as np

    from gancourse.errors import OutputPathError
    from gancourse.io import atomic_write, check_output_path
    from gancourse.toy.sweep import format_sweep, parse_seeds, seed_configs, sweep

    clash = [flag for flag, v in (("--seed", args.seed), ("--resume", args.resume), ("--checkpoint-every",
                                                                                         args.checkpoint_every)) if v]
    if clash:
        raise ValueError(f"{', '.join(clash)} cannot be combined with --seeds (it trains one new run per seed); "
                         f"drop {'it' if len(clash) == 1 else 'them'} or leave out --seeds")
    seeds = parse_seeds(args.seeds)
    configs = seed_configs(_config_from_args(args), seeds)
    for flag, template in (("--checkpoint", args.checkpoint), ("--samples-out", args.samples_out)):
        if template is not None and len(seeds) > 1 and "{seed}" not in str(template):
            raise OutputPathError(f"{flag} {template} would be the same file for every seed; put {{seed}} in its "
                                  f"name, e.g. {flag} run_seed{{seed}}{Path(str(template)).suffix or '.npz'}")
    sample_paths = [] if args.samples_out is None else [Path(str(args.samples_out).format(seed=s)) for s in seeds]
    for p in sample_paths:
        check_output_path(p, what="--samples-out")
    results = sweep(configs, jobs=args.jobs, progress=args.progress, on_error="record",
                    samples=bool(sample_paths), checkpoints=args.checkpoint)
    for path, r in zip(sample_paths, results):
        if "samples" in r:
            samples = r.pop("samples")
            _write("samples", path, lambda: atomic_write(path, lambda fh: np.save(fh, samples)))
    for r in results:
        r.pop("traceback", None)
    print(json_dumps(results) if args.json else format_sweep(results))
    failed = [r for r in results if "error" in r]
    if failed:
        print(f"gancourse toy: error: {len(failed)} of {len(results)} runs failed: "
              + "; ".join(f"seed {r['seed']}: {r['error']}" for r in failed), file=sys.stderr)
        return 2
    return 0


def _cmd_toy(args: argparse.Namespace) -> int:
    import numpy as np

    from gancourse.interrupt import DeferSigint, Interrupted
    from gancourse.io import atomic_write
    from gancourse.toy.report import format_metrics

    if args.seeds is not None:
        return _cmd_toy_seeds(args)
    if args.jobs is not None:
        raise ValueError("--jobs sets how many runs of --seeds train at once; give --seeds too (e.g. --seeds 0-4)")
    _check_toy_outputs(args)
    gan = _toy_trainer(args)
    every = args.checkpoint_every

    def after_each_step(g) -> None:
        if every and g.step % every == 0 and g.step < g.config.steps:
            _write("checkpoint", args.checkpoint, lambda: g.save(args.checkpoint))
        if stop.requested:
            raise Interrupted

    with DeferSigint() as stop:
        try:
            result = gan.run(progress=args.progress, callbacks=[after_each_step], callback_every=1)
        except Interrupted:
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
        print(format_metrics(result, dim=gan.dim))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gancourse.viz.demo import run_demo

    run_demo(out=args.out, seed=args.seed, steps=args.steps, gif=not args.no_gif, data=args.data, preset=args.preset)
    return 0


#: update-rule flags and the method they belong to
_METHOD_ONLY = {"consensus": "consensus", "beta": "momentum", "alternating": "momentum", "n_d": "altgd",
                "n_g": "altgd"}
#: Dirac-GAN flags that need a regularizer, and which
_REG_ONLY = {"gamma": ("r1", "r2", "wgan-gp"), "sigma": ("instance-noise",)}
#: what --table reads; every other config flag picks one game or method, which the table does not
_TABLE_FLAGS = {"h", "gamma", "sigma", "consensus", "beta"}


def _dynamics_misused(args: argparse.Namespace, dirac: dict, rule: dict) -> list[str]:
    """Why each given flag does not apply to the chosen game and method (empty when all apply)."""
    from gancourse.dynamics import DiracGAN, Method
    from gancourse.options import flag_of

    flags = {**{k: flag_of(DiracGAN, k) for k in dirac}, **{k: flag_of(Method, k) for k in rule}}
    if args.table:
        wrong = [flags[k] for k in (*dirac, *rule) if k not in _TABLE_FLAGS]
        wrong += [f for f, on in (("--game", args.game), ("--trajectory", args.trajectory)) if on]
        return [f"{', '.join(wrong)}: --table runs every game and every method (it reads only "
                f"{', '.join(sorted('--' + k for k in _TABLE_FLAGS))})"] if wrong else []
    problems = []
    if args.format != "text":
        problems.append("--format lays out --table; a single run prints text or --json")
    if args.game == "xy" and dirac:
        hint = " (the consensus strength is --consensus)" if "gamma" in dirac and rule.get("name") == "consensus" else ""
        verb = "applies" if len(dirac) == 1 else "apply"
        problems.append(f"{', '.join(flags[k] for k in dirac)} {verb} only to --game dirac; the xy game has no "
                        f"loss, regularizer or noise{hint}")
    else:
        reg = dirac.get("reg", "none")
        for k, regs in _REG_ONLY.items():
            if k in dirac and reg not in regs:
                problems.append(f"{flags[k]} applies only with --reg {' or '.join(regs)} (got --reg {reg})")
    method = rule.get("name", "simgd")
    for k, owner in _METHOD_ONLY.items():
        if k in rule and method != owner:
            problems.append(f"{flags[k]} applies only to --method {owner} (got --method {method})")
    return problems


def _cmd_dynamics(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from gancourse.dynamics import DiracGAN, Method, analyze, convergence_table, format_table, wants_progress, xy_game
    from gancourse.dynamics.analysis import table_cases
    from gancourse.errors import check_positive
    from gancourse.options import given

    dirac, rule = given(args, DiracGAN), given(args, Method)
    # values the maths needs in range, checked before whether they apply (the message names the range)
    for k in ("gamma", "sigma"):
        if k in dirac:
            check_positive(f"--{k}", dirac[k])
    if "consensus" in rule:
        check_positive("--consensus", rule["consensus"])
    if "beta" in rule and not -1 < rule["beta"] < 1:
        raise ValueError(f"--beta must lie in (-1, 1) (a momentum coefficient), got {rule['beta']!r}")
    problems = _dynamics_misused(args, dirac, rule)
    if problems:
        raise ValueError("; ".join(problems))

    def bar(total: int):
        return tqdm(total=total, desc="simulating", unit="step", file=sys.stderr, leave=False, mininterval=1.0,
                    disable=not wants_progress(total, args.progress))

    if args.table:
        steps = 3000 if args.steps is None else args.steps
        values = {**_DYNAMICS_DEFAULTS, **dirac, **rule}
        table = {k: values.get(k, getattr(Method(), k, None) or getattr(DiracGAN(), k, None))
                 for k in ("h", "gamma", "sigma", "consensus", "beta")}
        with bar(steps * len(table_cases(gamma=table["gamma"], sigma=table["sigma"]))) as pbar:
            rows = convergence_table(steps=steps, start=args.start, progress=pbar.update, **table)
        print(json_dumps([r.to_dict() for r in rows]) if args.json else format_table(rows, args.format))
        return 0
    game = xy_game() if args.game == "xy" else DiracGAN(**{**_DYNAMICS_DEFAULTS, **dirac})
    method = Method(**rule)
    steps = 1000 if args.steps is None else args.steps
    with bar(steps) as pbar:
        analysis = analyze(game, method, start=args.start, steps=steps, progress=pbar.update)
    result = analysis.to_dict()
    if args.trajectory:
        result["trajectory"] = analysis.trajectory.tolist()
    print(json_dumps(result) if args.json else _dynamics_text(result))
    return 0


def _dynamics_text(result: dict) -> str:
    from gancourse.dynamics import format_number

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
    if "trajectory" in result:
        coords = "(x, y)" if result["game"] == "xy" else "(theta, psi)"
        lines += ["", *_trajectory_lines(result["trajectory"], coords)]
    return "\n".join(lines)


def _trajectory_lines(states: list[list[float]], coords: str, shown: int = 100) -> list[str]:
    """The simulated states, one per line (the first and last ``shown`` of a long run)."""
    def line(k: int, z: list[float]) -> str:
        return f"{k:>8}  " + "  ".join(f"{v:+.6g}" for v in z)

    head = [f"{'step':>8}  state {coords}"]
    if len(states) <= 2 * shown:
        return head + [line(k, z) for k, z in enumerate(states)]
    n = len(states)
    return (head + [line(k, z) for k, z in enumerate(states[:shown])]
            + [f"{'...':>8}  ({n - 2 * shown} states not shown; --json --trajectory gives them all)"]
            + [line(n - shown + k, z) for k, z in enumerate(states[-shown:])])


def main(argv: Sequence[str] | None = None) -> int:
    from gancourse.errors import TrainingDiverged

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "toy":
            return _cmd_toy(args)
        if args.command == "dynamics":
            return _cmd_dynamics(args)
        if args.command == "train":
            from gancourse.deep.train_command import run_train

            return run_train(args)
        if args.command in ("homework", "grade"):
            from gancourse.grading.commands import run_grade, run_homework

            return (run_homework if args.command == "homework" else run_grade)(args)
        return _cmd_demo(args)
    except KeyboardInterrupt:
        print(f"gancourse {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``gancourse dynamics --table | head``): nothing to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the interpreter's final flush does not fail again
        return 141
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
