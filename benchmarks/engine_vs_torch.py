"""Time one full GAN iteration (D step + G step) of the NumPy engine, of torch eager and of a jitted JAX step.

One iteration is the recipe's (see ``gancourse/toy/trainer.py``, ``d_step`` and ``g_step``):

- discriminator step: draw one noise batch ``z``, ``fake = G(z)``; D on the real and the fake batch;
  non-saturating loss ``softplus(-D(real)) + softplus(D(fake))`` plus R1 on the reals,
  ``gamma/2 * mean ||grad_x D(real)||^2`` (every iteration in the recipe; with lazy regularization
  every ``penalty_every``-th, weighted by ``penalty_every``); Adam on D;
- generator step: on the *same* fake batch (the engine draws no new noise for G: it reuses the D step's
  batch and G's forward pass), loss ``softplus(-D(fake))`` through the updated D, gradients for G's
  weights only (D's input gradient, not its weight gradients); Adam on G; EMA of G's weights with the
  engine's warm-up ``beta_t = min(beta, (1 + t) / (10 + t))``.

All three use the config's sizes and activations (the recipe: G with ReLU, D with LeakyReLU(0.2)),
float32 and the same real batches (drawn once, outside the timing). The three sides:

- ``numpy``: the course's engine, ``ToyGAN.train_step`` itself (flat parameter vectors, hand-written
  forward, backward and R1 double backprop). It also updates its learning rate (the recipe's linear
  schedule) and checks the losses and weights for NaN, which the others do not: a little extra work on
  the engine's side;
- ``torch``: idiomatic torch eager code: ``nn.Sequential`` MLPs, ``torch.optim.Adam``, R1 with
  ``torch.autograd.grad(..., create_graph=True)``, and for the generator step
  ``torch.autograd.grad(g_loss, G's parameters)`` so that D's weight gradients are not computed;
- ``jax``: the whole iteration (noise drawn from a key split inside, D step, G step, EMA) as ONE
  ``jax.jit`` function over a state pytree, with Adam written by hand and R1 as ``jax.grad`` of
  ``sum(D(x))`` with respect to ``x`` inside the D loss, differentiated again for D's weights. Only
  where ``jax`` is importable (``pip install -e .[bench]``); otherwise the JSON says
  ``"jax": "not installed"``.

Threads: NumPy (BLAS through threadpoolctl) and torch (``torch.set_num_threads``) are each timed with
1 thread and with all cores. XLA reads its flags once, at import, so JAX runs in two worker processes:
one started with ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"`` (the
"1" column) and one with XLA's default thread pool (all cores). The three sides are timed interleaved
(for each repeat and thread setting: numpy, torch, jax) with the same iteration counts, so that machine
noise hits them alike; each side's best repeat is kept, and each is compared at its faster setting.
``cpu_per_wall`` is the process CPU time over wall time of that best repeat: about 1 with one thread
on a free core, below 1 when other work takes the CPU.

    python benchmarks/engine_vs_torch.py            # recipe size and batch 512 / width 512
    python benchmarks/engine_vs_torch.py --quick    # fewer iterations

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

#: the negative slope of the engine's ``leaky_relu`` (``gancourse.nn.MLP``'s default ``slope``)
LEAKY_SLOPE = 0.2
#: XLA flags for the one-thread JAX worker
JAX_ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _check_supported(cfg) -> None:
    """The torch and JAX sides mirror the recipe's kind of iteration only; refuse anything else."""
    wanted = {"loss": "ns", "optimizer": "adam", "n_critic": 1, "label_smoothing": 1.0, "instance_noise": 0.0,
              "feature_matching": False, "minibatch_discrimination": 0, "historical_averaging": 0.0,
              "unrolled_steps": 0, "weight_clip": 0.0, "spectral_norm": False, "dtype": "float32"}
    wrong = {k: getattr(cfg, k) for k, v in wanted.items() if getattr(cfg, k) != v}
    if cfg.penalty not in ("r1", "none"):
        wrong["penalty"] = cfg.penalty
    if cfg.g_activation not in ("relu", "leaky_relu") or cfg.d_activation not in ("relu", "leaky_relu"):
        wrong["activations"] = (cfg.g_activation, cfg.d_activation)
    if wrong:
        raise ValueError(f"this benchmark mirrors the recipe's iteration only; unsupported settings: {wrong}")


def _real_batches(cfg, dim: int) -> np.ndarray:
    """16 real batches, the same for every side (and every process)."""
    return np.random.default_rng(0).standard_normal((16, cfg.batch_size, dim)).astype(np.float32)


def _time(fn, iters: int, sync=None) -> tuple[float, float]:
    """``(iterations per second, CPU time / wall time)`` of ``iters`` calls of ``fn``, after a warm-up.

    ``sync`` (if given) is called before the clock stops, to wait for asynchronous work (JAX).
    """
    for _ in range(max(iters // 10, 3)):
        fn()
    if sync is not None:
        sync()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iters):
        fn()
    if sync is not None:
        sync()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return iters / wall, cpu / wall


# --------------------------------------------------------------------------------------------- numpy
def _numpy_iteration_fn(cfg, real_batches: np.ndarray):
    from gancourse.toy.trainer import ToyGAN

    gan = ToyGAN(cfg)
    state = {"i": 0}

    def real_batch(n):
        state["i"] += 1
        return real_batches[state["i"] % len(real_batches)][:n]

    gan.real_batch = real_batch  # same real data as the other sides; no sampling cost inside the timing
    return gan.train_step


# --------------------------------------------------------------------------------------------- torch
def _torch_iteration_fn(cfg, dim: int, real_batches: np.ndarray):
    import torch
    from torch import nn

    torch.manual_seed(cfg.seed)

    def mlp(sizes, activation):
        # nn.Linear's default init, U(+-1/sqrt(fan_in)) for the weights, is the engine's init="uniform"
        act = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE)}[activation]
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(act())
        return nn.Sequential(*layers)

    G = mlp([cfg.z_dim, *cfg.g_hidden, dim], cfg.g_activation)
    D = mlp([dim, *cfg.d_hidden, 1], cfg.d_activation)
    g_params = list(G.parameters())
    opt_g = torch.optim.Adam(g_params, lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    softplus = nn.functional.softplus
    ema = [p.detach().clone() for p in g_params] if cfg.ema > 0 else None
    reals = torch.from_numpy(real_batches)
    B, state = cfg.batch_size, {"i": 0}

    def iteration():
        regularize = cfg.penalty == "r1" and state["i"] % cfg.penalty_every == 0  # lazy R1, as the engine
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
        # generator step on the same fake batch, as the engine (and the PyTorch DCGAN example) does.
        # torch.autograd.grad for G's parameters only: D's weight gradients are not computed (autograd
        # prunes their backward matmuls). Of the two ways, the cheaper here: a G step alone measured about
        # 4% faster than freezing D with requires_grad_(False) around it, and 19% faster than the
        # backward() that also computed D's weight gradients (recipe size, 1 thread).
        g_loss = softplus(-D(fake_g)).mean()
        grads = torch.autograd.grad(g_loss, g_params)
        for p, gr in zip(g_params, grads):
            p.grad = gr
        opt_g.step()
        if ema is not None:  # generator weight average with the engine's warm-up
            t = state["i"]
            beta = min(cfg.ema, (1 + t) / (10 + t))
            with torch.no_grad():
                for avg, p in zip(ema, g_params):
                    avg.lerp_(p, 1 - beta)

    return iteration


# ----------------------------------------------------------------------------------------------- jax
def _jax_iteration_fn(cfg, dim: int, real_batches: np.ndarray):
    """``(run one iteration, wait for it)``: the whole iteration as one jitted function over a state pytree."""
    import jax
    import jax.numpy as jnp

    act = {"relu": jax.nn.relu, "leaky_relu": lambda x: jax.nn.leaky_relu(x, LEAKY_SLOPE)}
    g_act, d_act = act[cfg.g_activation], act[cfg.d_activation]
    B, b1, b2, eps = cfg.batch_size, cfg.beta1, cfg.beta2, 1e-8
    r1_weight = 0.5 * cfg.gamma * cfg.penalty_every
    tree_map = jax.tree_util.tree_map

    def init(key, sizes):  # the engine's init="uniform": U(+-1/sqrt(fan_in)) (weights and biases)
        params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            key, kw, kb = jax.random.split(key, 3)
            a = 1.0 / np.sqrt(fan_in)
            params.append((jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -a, a),
                           jax.random.uniform(kb, (fan_out,), jnp.float32, -a, a)))
        return params

    def mlp(params, x, activation):
        for w, b in params[:-1]:
            x = activation(x @ w + b)
        w, b = params[-1]
        return x @ w + b

    def G(gp, z):
        return mlp(gp, z, g_act)

    def D(dp, x):
        return mlp(dp, x, d_act)

    def d_loss(dp, real, fake, regularize: bool):
        d_fake = D(dp, fake)
        if not regularize:
            return jax.nn.softplus(-D(dp, real)).mean() + jax.nn.softplus(d_fake).mean()

        def d_sum(x):  # sum(D(x)), with the logits as aux: one forward pass for the loss and for R1
            out = D(dp, x)
            return out.sum(), out

        grad_x, d_real = jax.grad(d_sum, has_aux=True)(real)
        r1 = r1_weight * jnp.mean(jnp.sum(grad_x * grad_x, axis=1))
        return jax.nn.softplus(-d_real).mean() + jax.nn.softplus(d_fake).mean() + r1

    def adam(params, grads, m, v, t, lr):
        m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        c1, c2 = 1 - b1**t, 1 - b2**t
        params = tree_map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
        return params, m, v

    def iteration(state, reals):
        key, kz = jax.random.split(state["key"])
        i = state["i"]
        t = (i + 1).astype(jnp.float32)  # Adam's step count and the EMA's, as in the engine
        real = jax.lax.dynamic_index_in_dim(reals, i % reals.shape[0], keepdims=False)
        # discriminator step
        z = jax.random.normal(kz, (B, cfg.z_dim), jnp.float32)
        fake = jax.lax.stop_gradient(G(state["g"], z))
        if cfg.penalty == "none":
            d_grads = jax.grad(d_loss)(state["d"], real, fake, False)
        elif cfg.penalty_every == 1:
            d_grads = jax.grad(d_loss)(state["d"], real, fake, True)
        else:  # lazy regularization
            d_grads = jax.lax.cond(
                i % cfg.penalty_every == 0,
                lambda: jax.grad(d_loss)(state["d"], real, fake, True),
                lambda: jax.grad(d_loss)(state["d"], real, fake, False),
            )
        d, md, vd = adam(state["d"], d_grads, state["md"], state["vd"], t, cfg.lr_d)
        # generator step on the same noise batch (XLA shares G's forward pass with the D step's);
        # only G's gradients are taken
        g_grads = jax.grad(lambda gp: jax.nn.softplus(-D(d, G(gp, z))).mean())(state["g"])
        g, mg, vg = adam(state["g"], g_grads, state["mg"], state["vg"], t, cfg.lr_g)
        new = {"key": key, "i": i + 1, "g": g, "d": d, "mg": mg, "vg": vg, "md": md, "vd": vd}
        if cfg.ema > 0:
            beta = jnp.minimum(cfg.ema, (1 + t) / (10 + t))
            new["ema"] = tree_map(lambda a, p: beta * a + (1 - beta) * p, state["ema"], g)
        return new

    key_g, key_d, key = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
    g0 = init(key_g, [cfg.z_dim, *cfg.g_hidden, dim])
    d0 = init(key_d, [dim, *cfg.d_hidden, 1])
    zeros = lambda p: tree_map(jnp.zeros_like, p)  # noqa: E731
    state = {"key": key, "i": jnp.int32(0), "g": g0, "d": d0,
             "mg": zeros(g0), "vg": zeros(g0), "md": zeros(d0), "vd": zeros(d0)}
    if cfg.ema > 0:
        state["ema"] = tree_map(jnp.array, g0)  # a copy: the state's buffers are donated
    step = jax.jit(iteration, donate_argnums=0)  # the old state's buffers are reused for the new one
    reals = jnp.asarray(real_batches)
    holder = {"state": state}

    def run():
        holder["state"] = step(holder["state"], reals)

    def sync():
        jax.block_until_ready(holder["state"])

    return run, sync


def _jax_worker() -> None:
    """Serve the JAX side over stdin/stdout, one JSON object a line (see :class:`_JaxWorker`)."""
    import jax

    from gancourse.toy.config import ToyConfig

    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write to the protocol's stream
    run = sync = None
    for line in sys.stdin:
        msg = json.loads(line)
        if "version" in msg:
            reply = {"jax": jax.__version__}
        elif "setup" in msg:
            cfg = ToyConfig.from_dict(msg["setup"])
            t0 = time.perf_counter()
            run, sync = _jax_iteration_fn(cfg, msg["dim"], _real_batches(cfg, msg["dim"]))
            run()  # compiles
            sync()
            reply = {"compile_s": round(time.perf_counter() - t0, 2)}
        else:
            ips, cpu = _time(run, msg["iters"], sync)
            reply = {"it_per_s": ips, "cpu_per_wall": cpu}
        out.write(json.dumps(reply) + "\n")
        out.flush()


class _JaxWorker:
    """A process running :func:`_jax_worker`, with its own XLA thread settings; idle while the others run."""

    def __init__(self, xla_flags: str | None):
        env = dict(os.environ)
        if xla_flags is not None:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + xla_flags).strip()
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--jax-worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the JAX worker stopped (exit code {self.proc.wait()}); see its stderr above")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


# ------------------------------------------------------------------------------------------- compare
def compare(cfg, iters: int, repeats: int, jax_workers: dict | None) -> dict:
    import torch

    from gancourse.toy.trainer import ToyGAN

    _check_supported(cfg)
    dim = ToyGAN(cfg.replace(steps=1)).dim
    real_batches = _real_batches(cfg, dim)
    np_fn = _numpy_iteration_fn(cfg, real_batches)
    th_fn = _torch_iteration_fn(cfg, dim, real_batches)
    counts = sorted({1, os.cpu_count() or 1})
    sides = ["numpy", "torch"] + (["jax"] if jax_workers else [])
    compile_s = {}
    if jax_workers:
        for n in counts:
            compile_s[str(n)] = jax_workers[n].ask(setup=cfg.to_dict(), dim=dim)["compile_s"]
    # (it/s, cpu/wall) of every repeat, by side and thread count
    runs: dict[str, dict[int, list]] = {s: {n: [] for n in counts} for s in sides}
    default_threads = torch.get_num_threads()
    for _ in range(repeats):
        for n in counts:  # interleaved: machine noise hits the sides alike
            with threadpool_limits(limits=n, user_api="blas"):
                runs["numpy"][n].append(_time(np_fn, iters))
            torch.set_num_threads(n)
            runs["torch"][n].append(_time(th_fn, iters))
            if jax_workers:
                r = jax_workers[n].ask(iters=iters)
                runs["jax"][n].append((r["it_per_s"], r["cpu_per_wall"]))
    torch.set_num_threads(default_threads)
    best = {s: {n: max(runs[s][n]) for n in counts} for s in sides}  # best repeat (by it/s) per setting
    fastest = {s: max(counts, key=lambda n: best[s][n][0]) for s in sides}
    ips = {s: best[s][fastest[s]][0] for s in sides}
    result = {
        "batch_size": cfg.batch_size,
        "g_hidden": list(cfg.g_hidden),
        "d_hidden": list(cfg.d_hidden),
        "z_dim": cfg.z_dim,
        "activations": {"G": cfg.g_activation, "D": cfg.d_activation},
        "penalty": cfg.penalty,
        "penalty_every": cfg.penalty_every,
        "iters": iters,
        "repeats": repeats,
    }
    for s in sides:
        result[f"{s}_it_per_s"] = round(ips[s], 1)
    result["speedup"] = round(ips["numpy"] / ips["torch"], 2)  # engine vs torch
    if jax_workers:
        result["engine_vs_jax"] = round(ips["numpy"] / ips["jax"], 2)
    else:
        result["jax"] = "not installed"
    for s in sides:
        result[f"{s}_threads"] = fastest[s]
    for s in sides:
        result[f"{s}_it_per_s_by_threads"] = {str(n): round(best[s][n][0], 1) for n in counts}
    result["cpu_per_wall_by_threads"] = {s: {str(n): round(best[s][n][1], 2) for n in counts} for s in sides}
    if jax_workers:
        result["jax_compile_s_by_threads"] = compile_s
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a rough number)")
    parser.add_argument("--jax-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.jax_worker:
        _jax_worker()
        return
    import torch

    from gancourse.toy.config import recommended

    iters, repeats = (50, 3) if args.quick else (300, 5)
    recipe = recommended("grid25")
    large = recipe.replace(batch_size=512, g_hidden=(512, 512, 512), d_hidden=(512, 512, 512))
    counts = sorted({1, os.cpu_count() or 1})
    jax_workers = None
    if importlib.util.find_spec("jax") is not None:
        # one-thread flags for the "1" worker; XLA's default thread pool (all cores) for the other
        jax_workers = {n: _JaxWorker(JAX_ONE_THREAD_FLAGS if n == 1 else None) for n in counts}
    try:
        machine = {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "jax": jax_workers[1].ask(version=True)["jax"] if jax_workers else "not installed",
        }
        if jax_workers:
            machine["jax_xla_flags_1_thread"] = JAX_ONE_THREAD_FLAGS
        recipe_result = compare(recipe, iters, repeats, jax_workers)
        large_result = compare(large, max(iters // 10, 10), repeats, jax_workers)
        machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        for w in (jax_workers or {}).values():
            w.close()
    print(json.dumps({"benchmark": "engine_vs_torch", "machine": machine, "recipe": recipe_result,
                      "batch512_width512": large_result}, indent=2))


if __name__ == "__main__":
    main()
