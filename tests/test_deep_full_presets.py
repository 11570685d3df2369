"""The full-size presets (what ``papermill -p SMOKE False`` trains) build and take real steps on a CPU.

Full runs belong on a GPU; this checks that the full-size networks, batch sizes and settings fit
together, so that a GPU run does not fail on a shape after the first hour.
"""
from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from gancourse.deep.train_cyclegan import CycleGANTrainer, cyclegan_preset  # noqa: E402
from gancourse.deep.train_gan import GANTrainer, dcgan_preset, wgan_gp_preset  # noqa: E402


def _images(n, c, size, seed):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("preset", [dcgan_preset, wgan_gp_preset], ids=["dcgan", "wgan-gp"])
def test_full_gan_preset_trains_two_steps(preset):
    torch.manual_seed(0)
    config = preset()
    x = _images(2 * config.batch_size * config.n_critic, 1, config.image_size, 0)
    trainer = GANTrainer(dataclasses.replace(config, steps=2), x, "cpu")
    trainer.train(progress=False)
    samples = trainer.sample(4)
    assert samples.shape == (4, 1, config.image_size, config.image_size)
    assert torch.isfinite(samples).all() and samples.abs().max() <= 1


def test_full_cyclegan_preset_trains_two_steps():
    torch.manual_seed(0)
    config = cyclegan_preset()
    n = 4 * config.batch_size
    trainer = CycleGANTrainer(dataclasses.replace(config, steps=2), _images(n, 1, config.image_size, 1),
                              _images(n, 3, config.image_size, 2), "cpu")
    trainer.train(progress=False)
    out = trainer.translate_ab(_images(2, 1, config.image_size, 3))
    assert out.shape == (2, 3, config.image_size, config.image_size) and torch.isfinite(out).all()
