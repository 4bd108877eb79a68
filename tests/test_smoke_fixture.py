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
