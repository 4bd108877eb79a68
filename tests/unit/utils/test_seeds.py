"""Seeds derived from the run's seed, and isolating a seed set inside a run (reference training)."""

from __future__ import annotations

import os

import lightning.pytorch as pl
import pytest
import torch
from conftest import tiny_cnn
from lightning.fabric.utilities.seed import reset_seed

from unlearn_pl.localizers import Random
from unlearn_pl.utils.seeds import derived_seed, isolated_rng, run_seed


def test_a_derived_seed_follows_the_run_seed_and_its_purpose():
    pl.seed_everything(3, verbose=False)
    torch.rand(10)  # drawing leaves the run seed
    assert run_seed() == 3 and derived_seed("mask") == derived_seed("mask", 3)
    assert len({derived_seed("mask", 3), derived_seed("mask", 4), derived_seed("labels", 3), 3}) == 4
    with pytest.raises(ValueError, match="non-negative int"):
        derived_seed("mask", -1)


def test_a_seed_set_inside_isolated_rng_does_not_become_the_seed_ddp_resets_to(monkeypatch):
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    net = tiny_cnn()
    pl.seed_everything(0, verbose=False)
    expected = Random(budget=0.3).localize(net, None)
    # A reference model trained with its recipe's seed, then a DDP strategy's setup (reset_seed).
    with isolated_rng():
        pl.seed_everything(77, verbose=False)
        torch.rand(10)
    assert os.environ["PL_GLOBAL_SEED"] == "0" and torch.initial_seed() == 0
    reset_seed()
    mask = Random(budget=0.3).localize(net, None)
    assert all(torch.equal(mask[n], expected[n]) for n in expected)
    # Without a seed before, none is left behind.
    monkeypatch.delenv("PL_GLOBAL_SEED")
    with isolated_rng():
        pl.seed_everything(5, verbose=False)
    assert "PL_GLOBAL_SEED" not in os.environ
