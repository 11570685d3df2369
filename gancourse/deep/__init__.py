"""The PyTorch track: devices, bundled image data, a small LeNet and image metrics.

Everything under ``gancourse.deep`` imports torch; the rest of the package does not.
Import the sub-modules directly, for example ``from gancourse.deep.data import mnist5k``:
this file imports nothing so that ``import gancourse.deep`` stays cheap.
"""
__all__ = ["device", "data", "idx", "lenet", "metrics"]
