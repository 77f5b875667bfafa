"""Generated sequence datasets: the adding problem (regression) and the shapes read row by row.

Both are per-sample `[T, F]` sequences, time first and features last, as a spec's sequence input
takes them (a module gets `[N, T, F]`).

The adding problem (Hochreiter & Schmidhuber 1997, experiment 4, in the form of Le, Jaitly &
Hinton 2015): each step carries a value drawn from U(0, 1) and a marker; exactly two steps are
marked, one in each half of the sequence, and the target is the sum of their two values. A net must
carry the first marked value across up to T steps, which is what the LSTM's forget gate is for.
Predicting the mean sum (1.0) gives a mean-squared error of Var(U + U) = 2/12 ~ 0.167: the baseline
any trained model must beat.
"""

from __future__ import annotations

import numpy as np
import torch

SPLIT_IDS = {"train": 0, "val": 1}
ADDING_BASELINE_MSE = 2.0 / 12.0
"""The mean-squared error of always predicting the mean sum, 1.0: Var(U(0,1) + U(0,1))."""


class AddingProblem(torch.utils.data.Dataset):
    """`length` adding-problem sequences of `steps` steps. Items are (x float32 [steps, 2],
    y float32 [1]): x[:, 0] the values, x[:, 1] the two markers, y their marked values' sum.

    The whole split is drawn at once from (seed, split, steps), so it is the same in every process
    and every epoch (exact resume, DataLoader workers) and costs one vectorised draw."""

    def __init__(self, split: str, length: int, *, steps: int = 100, seed: int = 0):
        if split not in SPLIT_IDS:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if steps < 2:
            raise ValueError(f"the adding problem needs at least 2 steps (one marker in each half), got {steps}")
        self.split, self.length, self.steps, self.seed = split, int(length), int(steps), int(seed)
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, SPLIT_IDS[split], self.steps, 13])
        values = rng.random((self.length, self.steps), dtype=np.float32)
        half = self.steps // 2
        first = rng.integers(0, half, size=self.length)
        second = rng.integers(half, self.steps, size=self.length)
        markers = np.zeros_like(values)
        rows = np.arange(self.length)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        self.inputs = torch.from_numpy(np.stack([values, markers], axis=-1))
        self.targets = torch.from_numpy((values[rows, first] + values[rows, second])[:, None])

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]


class RowSequences(torch.utils.data.Dataset):
    """A classification dataset of images `[C, H, W]` read row by row: items are
    (`[H, C*W]` sequence, label), row h holding the channels of that row side by side (all of
    channel 0's pixels, then channel 1's...). A recurrent net then sees one image row per step."""

    def __init__(self, images: torch.utils.data.Dataset):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image, label = self.images[index]
        return rows_of(image), label

    def __getitems__(self, indices: list[int]) -> list:
        """A batch at once when the images give one (the shapes' gather), each read row by row."""
        fetch = getattr(self.images, "__getitems__", None)
        items = fetch(indices) if fetch is not None else [self.images[i] for i in indices]
        return [(rows_of(image), label) for image, label in items]

    def preload(self) -> None:
        """What `compiler.data.preload` asks of a dataset: the images' own preload."""
        load = getattr(self.images, "preload", None)
        if load is not None:
            load()

    # The images' normalisation and raw pixels, for drawing a sequence as the image it reads.
    @property
    def mean(self):
        return self.images.mean

    @property
    def std(self):
        return self.images.std


def rows_of(image: torch.Tensor) -> torch.Tensor:
    """`[C, H, W]` -> `[H, C*W]`: one sequence step per image row."""
    channels, height, width = image.shape
    return image.permute(1, 0, 2).reshape(height, channels * width)
