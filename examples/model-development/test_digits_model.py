"""Tests for digits_model: validation accuracy as the metric, and guards that a broken or
leaking model cannot pass.

The validation split is fixed (``random_state=0``) so that every candidate is judged on the
same images. The guards retrain on other splits (a candidate tuned to one split must still
generalize) and on shuffled labels (a candidate that found the answers somewhere other than
its training data would score well there, and fails).
"""

from __future__ import annotations

import numpy as np
import pytest
from digits_model import train_model
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

#: Chance is 0.10 on ten balanced classes; a working classifier is far above this floor.
ACCURACY_FLOOR = 0.5
#: Training on shuffled labels cannot generalize; anything near this ceiling is a leak.
SHUFFLED_CEILING = 0.25


def split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    features, labels = load_digits(return_X_y=True)
    return train_test_split(features, labels, test_size=0.25, random_state=seed, stratify=labels)


def accuracy(model, features: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(model.predict(features) == labels))


@pytest.mark.optimize(metric="accuracy", maximize=True)
def test_validation_accuracy(record_property) -> None:
    train_x, valid_x, train_y, valid_y = split(seed=0)
    value = accuracy(train_model(train_x, train_y), valid_x, valid_y)
    record_property("accuracy", value)
    print(f"accuracy: {value:.4f}")
    assert value >= ACCURACY_FLOOR


@pytest.mark.parametrize("seed", [1, 2])
def test_generalizes_to_other_splits(seed: int) -> None:
    train_x, valid_x, train_y, valid_y = split(seed)
    assert accuracy(train_model(train_x, train_y), valid_x, valid_y) >= ACCURACY_FLOOR


def test_predicts_known_labels() -> None:
    train_x, valid_x, train_y, _ = split(seed=0)
    predictions = np.asarray(train_model(train_x, train_y).predict(valid_x))
    assert predictions.shape == (len(valid_x),)
    assert set(predictions.tolist()) <= set(range(10))


@pytest.mark.parametrize("seed", [0, 1])
def test_shuffled_labels_are_not_learned(seed: int) -> None:
    train_x, valid_x, train_y, valid_y = split(seed=0)
    shuffled = np.random.default_rng(seed).permutation(train_y)
    assert accuracy(train_model(train_x, shuffled), valid_x, valid_y) <= SHUFFLED_CEILING
