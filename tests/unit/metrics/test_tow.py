"""ToW, the gaps to the oracle, and the default metric set's results table."""

import math

import pytest
from conftest import fast_trainer

from unlearn_pl.metrics import SplitAccuracy, TugOfWar, default_metrics, tug_of_war


def test_tow_equals_hand_computation():
    model = {"forget": 0.9, "retain": 1.0, "test": 0.8, "val": 0.1}
    oracle = {"forget": 0.8, "retain": 0.97, "test": 0.85, "val": 0.9}
    # val is not in the product: its 0.8 gap must not matter.
    assert tug_of_war(model, oracle) == pytest.approx((1 - 0.1) * (1 - 0.03) * (1 - 0.05))
    assert tug_of_war(oracle, oracle) == 1.0
    assert tug_of_war({"forget": 0.0, "retain": 1, "test": 1}, {"forget": 1.0, "retain": 1, "test": 1}) == 0.0
    assert tug_of_war(model, oracle, splits=["val"]) == pytest.approx(0.2)


def test_tow_rejects_bad_input():
    with pytest.raises(ValueError, match="accuracies have no split 'test'"):
        tug_of_war({"forget": 1.0, "retain": 1.0}, {"forget": 1.0, "retain": 1.0, "test": 1.0})
    with pytest.raises(ValueError, match=r"must be a fraction in \[0, 1\]; got 97.0"):
        tug_of_war({"forget": 1.0, "retain": 97.0, "test": 1.0}, {"forget": 1.0, "retain": 1.0, "test": 1.0})
    with pytest.raises(ValueError, match="at least one split"):
        TugOfWar(splits=[])


def test_tow_and_gaps_of_a_validation_run(prepared_module, tmp_path):
    module, dm = prepared_module(metrics=[SplitAccuracy(), TugOfWar()], report=False)
    fast_trainer(tmp_path).validate(module, datamodule=dm, verbose=False)
    acc, tow = module.metrics[0].results, module.metrics[1].results
    assert set(tow) == {"original", "unlearned"}  # the oracle is the reference, not a row
    for model in ("original", "unlearned"):
        a, o = acc[model], acc["oracle"]
        hand = (
            (1 - abs(a["forget_acc"] - o["forget_acc"]))
            * (1 - abs(a["retain_acc"] - o["retain_acc"]))
            * (1 - abs(a["test_acc"] - o["test_acc"]))
        )
        assert tow[model]["tow"] == pytest.approx(hand, abs=1e-12)
        for split in ("retain", "forget", "val", "test"):
            assert a[f"{split}_acc_gap"] == pytest.approx(a[f"{split}_acc"] - o[f"{split}_acc"], abs=1e-12)
            assert a[f"{split}_loss_gap"] == pytest.approx(a[f"{split}_loss"] - o[f"{split}_loss"], abs=1e-12)
    # The original memorized the forget set; the oracle did not: ToW is informative, not 1.
    assert tow["original"]["tow"] < 1.0
    assert not any(k.endswith("_gap") for k in acc["oracle"])


def test_no_oracle_means_no_tow_and_no_gaps(prepared_module, tmp_path):
    module, dm = prepared_module(oracle=False, metrics=[SplitAccuracy(), TugOfWar()], report=False)
    fast_trainer(tmp_path).validate(module, datamodule=dm, verbose=False)
    acc, tow = module.metrics[0].results, module.metrics[1].results
    assert set(acc) == {"original", "unlearned"}
    assert tow == {}
    assert not any(k.endswith("_gap") for values in acc.values() for k in values)


def test_default_metrics_fill_the_report_table(prepared_module, tmp_path):
    module, dm = prepared_module()
    assert [type(m).__name__ for m in module.metrics] == [type(m).__name__ for m in default_metrics()]
    fast_trainer(tmp_path).validate(module, datamodule=dm, verbose=False)
    table = module.run_report.last_results
    assert list(table) == ["original", "unlearned", "oracle"]
    for column in ("forget_acc", "forget_acc_gap", "test_loss_gap", "tow", "mia_loss_acc", "mia_efficacy"):
        assert column in table["unlearned"], column
    assert all(math.isfinite(v) for values in table.values() for v in values.values())
    assert (tmp_path / "results.csv").exists() and (tmp_path / "results.json").exists()


def test_during_fit_false_skips_fit_time_validation(prepared_module, tmp_path):
    from unlearn_pl.unlearners import ResetFinetune

    fit_time, everywhere = TugOfWar(during_fit=False), TugOfWar()
    module, dm = prepared_module(unlearner=ResetFinetune(lr=0.05), metrics=[fit_time, everywhere], report=False)
    fast_trainer(tmp_path, max_epochs=1, limit_train_batches=2).fit(module, datamodule=dm)
    assert fit_time.results == {} and "unlearned" in everywhere.results
    fast_trainer(tmp_path).validate(module, datamodule=dm, verbose=False)
    assert fit_time.results == everywhere.results
