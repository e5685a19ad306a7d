"""A handwritten-digit classifier: the module pytest-aide optimizes for validation accuracy.

The data set is scikit-learn's bundled ``digits`` (1,797 8x8 images, no download). The
tests own the data split; this module only decides how to train. ``C`` and ``GAMMA`` are
the tuner's knobs and start from a mediocre setting: ``GAMMA`` is too large for raw pixel
values in 0..16, so the RBF kernel sees every pair of images as far apart.
"""

from __future__ import annotations

import numpy as np
from sklearn.svm import SVC

C = 1.0  # aide: 1e-2..1e3 log
GAMMA = 0.01  # aide: 1e-5..1e-1 log


def train_model(features: np.ndarray, labels: np.ndarray) -> SVC:
    """Fit a classifier on (n, 64) pixel features; the result has ``predict``."""
    model = SVC(C=C, gamma=GAMMA)
    model.fit(features, labels)
    return model
