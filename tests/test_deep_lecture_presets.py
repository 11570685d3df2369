"""The CycleGAN presets of lecture 9 at its 32x32 images: the networks' shapes the lecture builds on."""
from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from gancourse.deep.train_cyclegan import CycleGANTrainer, cyclegan_preset  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def images(n, c, seed):
    return torch.rand(n, c, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("smoke", [True, False], ids=["smoke", "full"])
def test_cyclegan_presets_score_6x6_patches_and_translate_to_three_channels(smoke):
    config = dataclasses.replace(cyclegan_preset(smoke=smoke), steps=1)
    a, b = images(2 * config.batch_size, 1, 0), images(2 * config.batch_size, 3, 1)
    trainer = CycleGANTrainer(config, a, b, "cpu")
    assert trainer.a.shape[1] == 3  # the grey digits, repeated over three channels
    with torch.no_grad():
        assert trainer.D_B(trainer.b[:2]).shape == (2, 1, 6, 6)
    assert trainer.translate_ab(a[:3]).shape == trainer.translate_ba(b[:3]).shape == (3, 3, 32, 32)
