"""Train the LeNet behind FD-LeNet on the MNIST-5k training split and record its held-out accuracy.

    python scripts/train_lenet.py            # writes data/lenet_mnist5k.pt and data/lenet_mnist5k.json
    python scripts/train_lenet.py --check    # retrains and checks the committed accuracy is reproduced

Training runs on the CPU with one thread and a fixed seed, so a rerun on the same torch version gives
the same weights; ``--check`` accepts a held-out accuracy within 0.5 percentage points (other torch
versions or CPUs may round differently) and says whether the weights came out identical.
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from gancourse.deep.data import mnist5k  # noqa: E402
from gancourse.deep.idx import sha256_of  # noqa: E402
from gancourse.deep.lenet import LENET_INFO_PATH, LENET_PATH, LeNet, _n_params, accuracy, train_lenet  # noqa: E402
from gancourse.io import atomic_write  # noqa: E402

MAX_BYTES = 1 << 20  # the committed weights must stay under 1 MB
TOLERANCE = 0.005  # --check: allowed difference in held-out accuracy


def _write_atomically(data: bytes, path: Path) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def _state_bytes(state: dict) -> bytes:
    """torch.save into memory: the bytes do not depend on the file name, so equal weights hash equally."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _float32_state(model: LeNet) -> dict:
    return {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}


def train(args: argparse.Namespace) -> tuple[LeNet, dict]:
    torch.set_num_threads(args.threads)
    x, y = mnist5k("train")
    xh, yh = mnist5k("heldout")
    t0 = time.perf_counter()
    model = train_lenet(x, y, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                        max_shift=args.max_shift, seed=args.seed, progress=args.progress)
    seconds = time.perf_counter() - t0
    acc = accuracy(model, xh, yh)
    info = {
        "heldout_accuracy": acc,
        "heldout_correct": round(acc * len(yh)),
        "n_train": len(y),
        "n_heldout": len(yh),
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "max_shift": args.max_shift,
        "threads": args.threads,
        "n_params": _n_params(model),
        "torch_version": torch.__version__,
    }
    return model, {**info, "_seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-shift", type=int, default=2, help="random translation in pixels (augmentation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (fixed for reproducibility)")
    p.add_argument("--weights", type=Path, default=LENET_PATH)
    p.add_argument("--info", type=Path, default=LENET_INFO_PATH)
    p.add_argument("--check", action="store_true", help="retrain and compare with the committed record")
    p.add_argument("--progress", action="store_true", help="print the loss after each epoch")
    args = p.parse_args(argv)

    if args.check:
        committed = json.loads(args.info.read_text())
        for key in ("epochs", "batch_size", "lr", "max_shift", "seed", "threads"):
            setattr(args, key, committed[key])
        model, info = train(args)
        saved = torch.load(args.weights, map_location="cpu", weights_only=True)
        identical = all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
        retrained_sha = hashlib.sha256(_state_bytes(_float32_state(model))).hexdigest()
        diff = abs(info["heldout_accuracy"] - committed["heldout_accuracy"])
        ok = diff <= TOLERANCE
        print(json.dumps({
            "check": "passed" if ok else "failed",
            "committed_accuracy": committed["heldout_accuracy"],
            "retrained_accuracy": info["heldout_accuracy"],
            "difference": diff,
            "tolerance": TOLERANCE,
            "identical_weights": identical,
            "identical_sha256": retrained_sha == committed["sha256"],
            "train_seconds": round(info["_seconds"], 1),
        }, indent=2))
        return 0 if ok else 1

    model, info = train(args)
    seconds = info.pop("_seconds")
    _write_atomically(_state_bytes(_float32_state(model)), args.weights)
    size = args.weights.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{args.weights} is {size} bytes, over the {MAX_BYTES}-byte limit")
    info.update(weights_file=args.weights.name, weights_bytes=size, sha256=sha256_of(args.weights))
    _write_atomically((json.dumps(info, indent=2, sort_keys=True) + "\n").encode(), args.info)
    print(json.dumps({**info, "train_seconds": round(seconds, 1)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
