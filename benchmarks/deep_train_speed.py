"""Training speed (steps per second) of the image GAN loops on the chosen device; prints JSON.

    python benchmarks/deep_train_speed.py                 # full-size presets, best available device
    python benchmarks/deep_train_speed.py --smoke --device cpu
    python benchmarks/deep_train_speed.py --compile       # also time torch.compile (CUDA only)

Each loop is timed on synthetic images of the right shape (the speed does not depend on the pixels) after a
few warm-up steps; on CUDA the device is synchronised before reading the clock. A "step" is one generator
update (for WGAN-GP it includes the five critic updates). Results are recorded in the docs, never asserted.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from gancourse.deep.device import select_device
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--smoke", action="store_true", help="time the small smoke-mode presets")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per loop")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time with torch.compile (CUDA only)")
    args = parser.parse_args(argv)
    device = select_device(args.device, verbose=False)  # stdout carries only the JSON
    steps = args.steps or (20 if device.type == "cpu" else 200)
    n = 2048
    images1 = torch.rand(n, 1, 32, 32) * 2 - 1
    images3 = torch.rand(n, 3, 32, 32) * 2 - 1
    results = []
    compile_options = [False, True] if args.compile and device.type == "cuda" else [False]
    loops = (("dcgan", lambda c: GANTrainer(dcgan_preset(args.smoke, compile=c), images1, device)),
             ("wgan-gp", lambda c: GANTrainer(wgan_gp_preset(args.smoke, compile=c), images1, device)),
             ("cyclegan", lambda c: CycleGANTrainer(cyclegan_preset(args.smoke, compile=c), images1, images3, device)))
    for compiled in compile_options:
        for name, make in loops:
            row = dict(loop=name, compile_requested=compiled)
            try:  # a compiler failure is recorded, not fatal: the other loops still get timed
                tr = make(compiled)
                row.update(compile=tr.compiled, amp=tr.amp, batch_size=tr.config.batch_size, width=tr.config.g_width,
                           steps_per_s=round(time_trainer(tr, args.warmup, steps), 3))
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
