"""The image history pool of CycleGAN (Shrivastava et al. 2017; Zhu et al. 2017, section 4).

The discriminators are updated on a mix of the newest translated images and
older ones, so that they do not forget earlier generators and the two players
oscillate less. The pool keeps up to ``capacity`` (50) past images. Until it
is full, every incoming image is stored and returned as it is. Once full,
each incoming image is, with probability 1/2, returned as it is, or else
swapped with a stored image picked uniformly at random: the stored one is
returned and the new one takes its place.
"""
from __future__ import annotations

import torch

from gancourse.errors import check_positive_int

__all__ = ["ImagePool"]


class ImagePool:
    """History buffer of generated images; ``pool.query(images)`` returns a batch of the same shape.

    Randomness comes from ``generator`` (a CPU ``torch.Generator``) so that a
    training run that saves it resumes exactly; ``state_dict`` holds the images, and
    ``load_state_dict`` puts them back on ``device`` (None: where they were saved, the CPU).
    """

    def __init__(self, capacity: int = 50, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None):
        self.capacity = check_positive_int("capacity", capacity, minimum=0)
        self.generator = generator
        self.device = None if device is None else torch.device(device)
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> (N, C, H, W): each one new or, once full, a stored one with probability 1/2."""
        if self.capacity == 0:
            return images.detach()
        out = []
        for img in images.detach():
            if len(self.images) < self.capacity:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                j = int(torch.randint(self.capacity, (), generator=self.generator))
                out.append(self.images[j].clone())
                self.images[j] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"capacity": self.capacity,
                "images": torch.stack(self.images).cpu() if self.images else torch.empty(0)}

    def load_state_dict(self, state: dict) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"checkpoint pool capacity {state['capacity']} differs from this pool's {self.capacity}")
        imgs = state["images"]
        self.images = [im.to(self.device) if self.device is not None else im.clone() for im in imgs] if imgs.numel() else []
