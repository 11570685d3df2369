"""Training speed (steps per second) of the image GAN loops on the chosen device; prints JSON.

    python benchmarks/deep_train_speed.py                 # full-size presets, best available device
    python benchmarks/deep_train_speed.py --smoke --device cpu
    python benchmarks/deep_train_speed.py --compile       # also time torch.compile (CUDA only)
    python benchmarks/deep_train_speed.py --models all    # every model of `gancourse train` (default: DCGAN,
                                                          # WGAN-GP, CycleGAN), each built as that command builds it
    python benchmarks/deep_train_speed.py --models r3gan --profile   # and the ten operators taking the most time

DCGAN, WGAN-GP and CycleGAN are timed on synthetic images of the right shape (the speed does not depend on the
pixels); the other models train on their own data, as `gancourse train` loads it. Each loop runs a few warm-up
steps first; on CUDA the device is synchronised before reading the clock. A "step" is one generator update (for
WGAN-GP it includes the five critic updates; PGGAN's steps are those of its first stage, 4x4). Results are
recorded in the docs, never asserted.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time

import torch

from gancourse.deep.device import select_device
from gancourse.deep.runs.registry import MODELS, get_spec
from gancourse.deep.train_cyclegan import CycleGANTrainer, cyclegan_preset
from gancourse.deep.train_gan import GANTrainer, dcgan_preset, wgan_gp_preset


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_trainer(trainer, warmup: int, steps: int) -> float:
    """Steps per second of ``trainer.train_step`` after ``warmup`` steps."""
    for _ in range(warmup):
        trainer.train_step()
    trainer.history.flush()
    _sync(trainer.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    trainer.history.flush()
    _sync(trainer.device)
    return steps / (time.perf_counter() - t0)


def profile_trainer(trainer, steps: int, top: int = 10) -> list[dict]:
    """The ``top`` operators by self time (on the GPU where there is one) over ``steps`` training steps."""
    from torch.profiler import ProfilerActivity, profile

    cuda = trainer.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            trainer.train_step()
        trainer.history.flush()
        _sync(trainer.device)
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:top]
    total = sum(getattr(e, key) for e in prof.key_averages()) or 1.0
    return [dict(op=e.key, calls=e.count, ms_per_step=round(getattr(e, key) / 1000 / steps, 3),
                 share=round(getattr(e, key) / total, 3)) for e in events]


SYNTHETIC = ("dcgan", "wgan-gp", "cyclegan")  # timed on random images (no data set to load)


def make_trainer(name: str, preset: str, compiled: bool, device: torch.device):
    """The trainer of model ``name`` at ``preset``: on random images for ``SYNTHETIC``, else as `gancourse train`."""
    if name in SYNTHETIC:
        smoke = preset == "smoke"
        images1 = torch.rand(2048, 1, 32, 32) * 2 - 1
        if name == "cyclegan":
            images3 = torch.rand(2048, 3, 32, 32) * 2 - 1
            return CycleGANTrainer(cyclegan_preset(smoke, compile=compiled), images1, images3, device)
        make_config = dcgan_preset if name == "dcgan" else wgan_gp_preset
        return GANTrainer(make_config(smoke, compile=compiled), images1, device)
    spec = get_spec(name)
    if compiled and "compile" not in {f.name for f in dataclasses.fields(spec.config_class)}:
        raise ValueError(f"{name} has no torch.compile option")
    return spec.build(spec.config(preset, **({"compile": True} if compiled else {})), device)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--smoke", action="store_true", help="time the small smoke-mode presets")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per loop")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time with torch.compile (CUDA only)")
    parser.add_argument("--models", nargs="+", default=list(SYNTHETIC), metavar="MODEL",
                        help=f"the loops to time: {', '.join(MODELS)}, or all (default: {' '.join(SYNTHETIC)})")
    parser.add_argument("--profile", action="store_true", help="also list each loop's ten slowest operators")
    args = parser.parse_args(argv)
    models = list(MODELS) if args.models == ["all"] else args.models
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}, or all")
    device = select_device(args.device, verbose=False)  # stdout carries only the JSON
    steps = args.steps or (20 if device.type == "cpu" else 200)
    preset = "smoke" if args.smoke else "full"
    results = []
    compile_options = [False, True] if args.compile and device.type == "cuda" else [False]
    for compiled in compile_options:
        for name in models:
            row = dict(loop=name, compile_requested=compiled)
            try:  # a compiler failure is recorded, not fatal: the other loops still get timed
                tr = make_trainer(name, preset, compiled, device)
                row.update(compile=getattr(tr, "compiled", False), amp=tr.amp, batch_size=tr.config.batch_size,
                           width=getattr(tr.config, "g_width", None),
                           steps_per_s=round(time_trainer(tr, args.warmup, steps), 3))
                if args.profile:
                    row["top_ops"] = profile_trainer(tr, min(steps, 20))
            except Exception as exc:  # noqa: BLE001
                row["error"] = f"{type(exc).__name__}: {exc}"[:500]
            results.append(row)
    out = dict(device=str(device), device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else
               platform.processor() or platform.machine(), torch=torch.__version__, threads=torch.get_num_threads(),
               smoke=args.smoke, timed_steps=steps, results=results)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
