"""Time one full GAN iteration (D step + G step) of the NumPy engine and of torch eager, side by side.

Both sides use the same sizes, the same loss (non-saturating, with R1 on the
reals: every iteration in the recipe, every ``penalty_every``-th with lazy
regularization), Adam, generator EMA when the config has it, float32 and the
same real batches. The NumPy side is the
course's own trainer step (``ToyGAN.train_step``), the torch side idiomatic
eager code with ``torch.autograd.grad(..., create_graph=True)`` for the
penalty. Each side is timed with one thread and with all cores, interleaved,
and compared at its faster setting. Prints one JSON object.

    python benchmarks/engine_vs_torch.py            # recipe size and batch 512 / width 512
    python benchmarks/engine_vs_torch.py --quick    # fewer iterations
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from threadpoolctl import threadpool_limits


def _torch_iteration_fn(cfg, dim: int, real_batches: np.ndarray):
    import torch
    from torch import nn

    torch.manual_seed(cfg.seed)

    def mlp(sizes):
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.LeakyReLU(0.2))
        return nn.Sequential(*layers)

    G = mlp([cfg.z_dim, *cfg.g_hidden, dim])
    D = mlp([dim, *cfg.d_hidden, 1])
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    softplus = nn.functional.softplus
    ema = [p.detach().clone() for p in G.parameters()] if cfg.ema > 0 else None
    reals = torch.from_numpy(real_batches)
    B, state = cfg.batch_size, {"i": 0}

    def iteration():
        regularize = cfg.penalty == "r1" and state["i"] % cfg.penalty_every == 0  # lazy R1, as the recipe
        real = reals[state["i"] % len(reals)]
        state["i"] += 1
        # discriminator step
        fake_g = G(torch.randn(B, cfg.z_dim))
        fake = fake_g.detach()
        if regularize:
            real = real.clone().requires_grad_(True)
        d_real, d_fake = D(real), D(fake)
        loss = softplus(-d_real).mean() + softplus(d_fake).mean()
        if regularize:
            (g,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            loss = loss + 0.5 * cfg.gamma * cfg.penalty_every * g.pow(2).sum(dim=1).mean()
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        # generator step on the same fake batch (as the PyTorch DCGAN example does)
        g_loss = softplus(-D(fake_g)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if ema is not None:  # generator weight average with the recipe's warm-up
            t = state["i"]
            beta = min(cfg.ema, (1 + t) / (10 + t))
            with torch.no_grad():
                for avg, p in zip(ema, G.parameters()):
                    avg.lerp_(p, 1 - beta)

    return iteration


def _numpy_iteration_fn(cfg, real_batches: np.ndarray):
    from gancourse.toy.trainer import ToyGAN

    gan = ToyGAN(cfg)
    state = {"i": 0}

    def real_batch(n):
        state["i"] += 1
        return real_batches[state["i"] % len(real_batches)][:n]

    gan.real_batch = real_batch  # same real data as the torch side; no sampling cost inside the timing
    return gan.train_step


def _time(fn, iters: int, repeats: int) -> float:
    """Best-of-``repeats`` iterations per second."""
    for _ in range(max(iters // 10, 3)):
        fn()
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        best = max(best, iters / (time.perf_counter() - t0))
    return best


def compare(cfg, iters: int, repeats: int) -> dict:
    import torch

    from gancourse.toy.trainer import ToyGAN

    dim = ToyGAN(cfg.replace(steps=1)).dim
    rng = np.random.default_rng(0)
    real_batches = rng.standard_normal((16, cfg.batch_size, dim)).astype(np.float32)
    np_fn = _numpy_iteration_fn(cfg, real_batches)
    th_fn = _torch_iteration_fn(cfg, dim, real_batches)
    # interleave the two sides so that machine noise hits both alike; each side runs with 1 thread and
    # with all cores, and the comparison takes each side's faster setting
    counts = sorted({1, os.cpu_count() or 1})
    np_ips: dict[int, list[float]] = {n: [] for n in counts}
    th_ips: dict[int, list[float]] = {n: [] for n in counts}
    default_threads = torch.get_num_threads()
    for _ in range(repeats):
        for n in counts:
            with threadpool_limits(limits=n, user_api="blas"):
                np_ips[n].append(_time(np_fn, iters, 1))
            torch.set_num_threads(n)
            th_ips[n].append(_time(th_fn, iters, 1))
    torch.set_num_threads(default_threads)
    np_best = max(counts, key=lambda n: max(np_ips[n]))
    th_best = max(counts, key=lambda n: max(th_ips[n]))
    numpy_ips, torch_ips = max(np_ips[np_best]), max(th_ips[th_best])
    return {
        "batch_size": cfg.batch_size,
        "g_hidden": list(cfg.g_hidden),
        "d_hidden": list(cfg.d_hidden),
        "z_dim": cfg.z_dim,
        "penalty": cfg.penalty,
        "penalty_every": cfg.penalty_every,
        "numpy_it_per_s": round(numpy_ips, 1),
        "torch_it_per_s": round(torch_ips, 1),
        "speedup": round(numpy_ips / torch_ips, 2),
        "numpy_threads": np_best,
        "torch_threads": th_best,
        "numpy_it_per_s_by_threads": {str(n): round(max(v), 1) for n, v in np_ips.items()},
        "torch_it_per_s_by_threads": {str(n): round(max(v), 1) for n, v in th_ips.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a rough number)")
    args = parser.parse_args()
    import torch

    from gancourse.toy.config import recommended

    iters, repeats = (50, 3) if args.quick else (300, 5)
    recipe = recommended("grid25")
    large = recipe.replace(batch_size=512, g_hidden=(512, 512, 512), d_hidden=(512, 512, 512))
    result = {
        "benchmark": "engine_vs_torch",
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
        },
        "recipe": compare(recipe, iters, repeats),
        "batch512_width512": compare(large, max(iters // 10, 10), repeats),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
