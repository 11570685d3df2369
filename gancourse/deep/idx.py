"""Reading MNIST-style IDX files from a path the user gives, with SHA-256 checks.

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/) is a big-endian header followed
by raw values:

    bytes 0-1   zero
    byte  2     type code (0x08 = unsigned byte, the only type MNIST uses)
    byte  3     number of dimensions d
    then        d sizes as big-endian uint32, then prod(sizes) values

Images are ``(N, rows, cols)`` (magic 0x00000803), labels ``(N,)`` (magic 0x00000801).
Files ending in ``.gz`` (any case) are decompressed on the fly; the hash is the hash of the file as
stored. Expected hashes are compared without surrounding whitespace and case.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import re
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["IdxFormatError", "ChecksumError", "sha256_of", "parse_idx", "load_mnist_idx"]


class IdxFormatError(ValueError):
    """The file is not a well-formed IDX file (bad magic number, wrong size, truncated)."""


class ChecksumError(ValueError):
    """The file's SHA-256 differs from the expected one (corrupted or a different file)."""


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes as stored on disk."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_GZIP_MAGIC = b"\x1f\x8b"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _check_file(path: Path) -> None:
    """A clear error unless ``path`` is an existing regular file (a folder is a common slip)."""
    if path.is_dir():
        raise ValueError(
            f"{path} is a folder, not an IDX file; give the path of the file inside it "
            f"(e.g. {path / 'train-images-idx3-ubyte.gz'})"
        )
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")


def _read_bytes(path: Path) -> bytes:
    _check_file(path)
    raw = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IdxFormatError(
                f"{path} ends in .gz but is not a valid gzip file (damaged or cut short: {exc}); download it again"
            ) from None
    return raw


def parse_idx(data: bytes, *, name: str = "IDX data", ndim: int | None = None) -> np.ndarray:
    """Parse the bytes of an unsigned-byte IDX file into a uint8 array of the sizes in its header."""
    if len(data) < 4:
        raise IdxFormatError(f"{name} is truncated: {len(data)} bytes, fewer than the 4-byte magic number")
    zero, code, dims = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or code != 0x08:
        hint = " (it looks gzip-compressed: give it a .gz suffix)" if data[:2] == _GZIP_MAGIC else ""
        raise IdxFormatError(
            f"{name} has magic number 0x{data[:4].hex()}; an unsigned-byte IDX file starts with "
            f"0x000008 followed by the number of dimensions{hint}"
        )
    if ndim is not None and dims != ndim:
        raise IdxFormatError(f"{name} must have {ndim} dimension(s) (magic 0x0000080{ndim}), got {dims}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise IdxFormatError(f"{name} is truncated inside its header ({len(data)} of {header} bytes)")
    sizes = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    expected = header + math.prod(sizes)  # Python ints: sizes up to 2**32 - 1 each never overflow
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise IdxFormatError(
            f"{name} is {what}: its header gives sizes {sizes}, so {expected} bytes, but it has {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(sizes).copy()


def _normalized_hash(key: str, expected: object) -> str:
    """``expected`` without surrounding whitespace, in lower case; a clear error unless it is 64 hex digits."""
    text = str(expected).strip().lower()
    if not _SHA256_HEX.fullmatch(text):
        raise ValueError(
            f"the expected sha256 for {key!r} must be 64 hexadecimal digits, got {str(expected)!r} "
            f"({len(text)} characters)"
        )
    return text


def _check_hash(path: Path, key: str, expected: str | None) -> None:
    if expected is None:
        return
    want = _normalized_hash(key, expected)
    _check_file(path)
    got = sha256_of(path)
    if got != want:
        raise ChecksumError(
            f"SHA-256 mismatch for {path}:\n  expected: {want}\n  got:      {got}\n"
            f"The file is corrupted or is not the one expected; download it again."
        )


def load_mnist_idx(
    images_path: str | Path,
    labels_path: str | Path,
    sha256: Mapping[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST-style image file and its label file.

    Parameters
    ----------
    images_path, labels_path : path
        IDX files (optionally ``.gz``, any case) with images ``(N, rows, cols)`` and labels ``(N,)``.
    sha256 : mapping, optional
        Expected hex SHA-256 of the stored files, under the keys ``"images"`` and/or ``"labels"``
        (surrounding whitespace and case are ignored). Checked before parsing.

    Returns
    -------
    images : uint8 ndarray (N, rows, cols), values 0..255
    labels : int64 ndarray (N,), values 0..9

    Raises
    ------
    FileNotFoundError; ChecksumError, IdxFormatError, and ValueError for a folder given as a path or a
    malformed expected hash (all three are ValueErrors, and each names the file or key).
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    if sha256 is not None:
        if not isinstance(sha256, Mapping):
            raise TypeError(f"sha256 must be a mapping with keys 'images'/'labels', got {type(sha256).__name__}")
        unknown = set(sha256) - {"images", "labels"}
        if unknown:
            raise ValueError(f"unknown sha256 key(s) {sorted(unknown)}; valid keys are: 'images', 'labels'")
        _check_hash(images_path, "images", sha256.get("images"))
        _check_hash(labels_path, "labels", sha256.get("labels"))
    images = parse_idx(_read_bytes(images_path), name=str(images_path), ndim=3)
    labels = parse_idx(_read_bytes(labels_path), name=str(labels_path), ndim=1).astype(np.int64)
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise IdxFormatError(f"{labels_path} holds label {int(labels.max())}; digit labels are 0..9")
    return images, labels
