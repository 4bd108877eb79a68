"""MIA-efficacy against a transcription of SalUn's evaluation.

Reference: github OPTML-Group/Unlearn-Saliency —

- ``Classification/evaluation/SVC_MIA.py:53-82`` (``SVC_fit_predict``): ``SVC(C=3,
  gamma="auto", kernel="rbf")`` fit on shadow-train (label 1) vs shadow-test (label 0)
  features; on ``target_test`` it reports ``1 − mean(predict)``;
- ``Classification/evaluation/SVC_MIA.py:85-150`` (``SVC_MIA``): the features, e.g.
  ``confidence`` = the true-class softmax probability (``torch.gather``);
- ``Classification/main_forget.py:160-180``: shadow-train = the *first* ``len(test)`` retain
  examples (``Subset(retain_dataset, range(test_len))``), shadow-test = the test set,
  target_test = the forget set.

:func:`~unlearn_pl.metrics.mia.mia_efficacy` balances the groups with a *seeded random* sample
of the larger one instead of the first examples; given the same members it agrees exactly.
"""

from __future__ import annotations

import numpy as np
from sklearn.svm import SVC

from unlearn_pl.metrics.mia import mia_efficacy


def authors_svc_fit_predict(shadow_train, shadow_test, target_test) -> float:
    """SVC_fit_predict with ``target_train`` empty (as main_forget.py calls it)."""
    x_shadow = np.concatenate([shadow_train, shadow_test]).reshape(len(shadow_train) + len(shadow_test), -1)
    y_shadow = np.concatenate([np.ones(len(shadow_train)), np.zeros(len(shadow_test))])
    clf = SVC(C=3, gamma="auto", kernel="rbf")
    clf.fit(x_shadow, y_shadow)
    accs = [1 - clf.predict(target_test.reshape(len(target_test), -1)).mean()]
    return float(np.mean(accs))


def confidences(rng: np.random.Generator, n: int, a: float, b: float) -> np.ndarray:
    """True-class probabilities in (0, 1), members skewed towards 1."""
    return rng.beta(a, b, size=(n, 1))


def test_mia_efficacy_equals_salun_given_the_same_members():
    rng = np.random.default_rng(0)
    retain, test, forget = confidences(rng, 900, 8, 1), confidences(rng, 300, 3, 2), confidences(rng, 120, 5, 2)
    members = retain[: len(test)]  # main_forget.py's shadow_train
    theirs = authors_svc_fit_predict(members, test, forget)
    ours = mia_efficacy(members, test, forget)  # equal sizes: no sample is drawn
    assert ours == theirs
    assert 0.0 < ours < 1.0


def test_mia_efficacy_draws_a_seeded_sample_where_salun_takes_the_first_examples():
    rng = np.random.default_rng(1)
    # A retain set ordered by confidence (e.g. by class) makes "the first |test|" a biased sample.
    retain = np.sort(confidences(rng, 900, 8, 1), axis=0)
    test, forget = confidences(rng, 300, 3, 2), confidences(rng, 120, 5, 2)
    theirs = authors_svc_fit_predict(retain[: len(test)], test, forget)
    ours = mia_efficacy(retain, test, forget, seed=0)
    assert ours == mia_efficacy(retain, test, forget, seed=0)  # seeded
    assert ours != theirs
