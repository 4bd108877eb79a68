from conftest import fast_trainer

from unlearn_pl.localizers import DEL
from unlearn_pl.unlearners import ResetFinetune


def test_prepared_module_fits(prepared_module, tmp_path):
    module, dm = prepared_module(localizer=DEL(budget=0.3), unlearner=ResetFinetune(lr=0.05))
    trainer = fast_trainer(tmp_path, max_epochs=2)
    trainer.fit(module, datamodule=dm)
    trainer.validate(module, datamodule=dm, verbose=False)
    acc = module.metrics[0].results
    assert acc["original"]["forget_acc"] > 0.95
    assert set(acc) == {"original", "unlearned", "oracle"}


def test_reference_models_are_evaluated_once_and_their_results_reused(prepared_module, tmp_path):
    """The frozen original/oracle are evaluated in the first validation epoch only; later epochs
    (and the final validate on the same data) reuse their per-example results unchanged."""
    module, dm = prepared_module(localizer=DEL(budget=0.3), unlearner=ResetFinetune(lr=0.05))
    calls = {"n": 0}
    original = module.reference("original")
    original.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    trainer = fast_trainer(tmp_path, max_epochs=3)
    trainer.fit(module, datamodule=dm)
    batches_per_epoch = sum(trainer.num_val_batches)
    assert calls["n"] == batches_per_epoch, "evaluated in the first validation epoch only"
    trainer.validate(module, datamodule=dm, verbose=False)
    cached = module.metrics[0].results
    assert calls["n"] == batches_per_epoch

    # A fresh module evaluating the same references from scratch gives the same rows.
    fresh, _ = prepared_module(localizer=DEL(budget=0.3), unlearner=ResetFinetune(lr=0.05))
    fast_trainer(tmp_path).validate(fresh, datamodule=dm, verbose=False)
    assert fresh.metrics[0].results["original"] == cached["original"]
    assert fresh.metrics[0].results["oracle"] == cached["oracle"]

    # Other data (another split) is evaluated afresh.
    other = digits_dm_with_seed(1)
    trainer.validate(module, datamodule=other, verbose=False)
    assert calls["n"] > batches_per_epoch


def digits_dm_with_seed(seed):
    from unlearn_pl import UnlearningDataModule
    from unlearn_pl.data import Digits, RandomForget

    return UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=64, seed=seed)
