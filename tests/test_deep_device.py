"""Device selection (CPU path, fall-back message, bad names) and seeding."""
from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gancourse.deep import device as dev  # noqa: E402


@pytest.fixture
def no_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)


def test_auto_picks_cpu_without_accelerators(no_accelerators, capsys):
    assert dev.select_device() == torch.device("cpu")
    assert "using cpu" in capsys.readouterr().out


def test_auto_prefers_cuda_when_available(monkeypatch, capsys):
    monkeypatch.setattr(dev, "device_available", lambda kind: kind in ("cuda", "cpu"))
    monkeypatch.setattr(dev, "_describe", lambda d: str(d))
    assert dev.select_device("auto").type == "cuda"
    monkeypatch.setattr(dev, "device_available", lambda kind: kind in ("mps", "cpu"))
    assert dev.select_device(verbose=False).type == "mps"
    assert capsys.readouterr().out.count("using") == 1


@pytest.mark.parametrize("name", ["cuda", "CUDA", "mps", "cuda:0"])
def test_unavailable_device_falls_back_with_a_message(no_accelerators, capsys, name):
    assert dev.select_device(name) == torch.device("cpu")
    out = capsys.readouterr().out
    assert repr(name) in out and "falling back to cpu" in out


def test_quiet_mode_prints_nothing(no_accelerators, capsys):
    dev.select_device("cuda", verbose=False)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("name", ["tpu", "cpu:1", "cuda:x", ""])
def test_unknown_device_names_raise(name):
    with pytest.raises(ValueError, match="valid options"):
        dev.select_device(name)


def test_prefer_must_be_a_string():
    with pytest.raises(TypeError, match="prefer"):
        dev.select_device(0)


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)

    dev.seed_everything(7)
    first = draw()
    dev.seed_everything(7)
    second = draw()
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])
    dev.seed_everything(8)
    assert draw()[0] != first[0]


def test_seed_everything_deterministic_switch():
    try:
        dev.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        dev.seed_everything(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic


@pytest.mark.parametrize("seed, err", [(1.5, TypeError), (True, TypeError), (-1, ValueError), (2**32, ValueError)])
def test_seed_everything_rejects_bad_seeds(seed, err):
    with pytest.raises(err, match="seed"):
        dev.seed_everything(seed)
