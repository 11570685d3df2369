"""gancourse: a runnable course on Generative Adversarial Networks."""
__version__ = "0.1.0"
