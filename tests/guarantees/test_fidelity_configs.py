"""Hyperparameter declarations: the SGD fields declared once still show flat in ``--print_config``,
flat configs still parse, the reproduction switches parse from YAML, and bad values fail in one
line at the parser and with a clear ``ValueError`` from Python."""

from __future__ import annotations

import contextlib
import inspect
import io
from types import SimpleNamespace

import pytest
import yaml
from conftest import REPO
from jsonargparse import ArgumentParser
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat, NonNegativeInt, PositiveFloat

from unlearn_pl.cli import UnlearningCLI, main
from unlearn_pl.localizers import DEL, Layers, Random, SalUnSaliency
from unlearn_pl.unlearners import (
    SCRUB,
    SSD,
    Finetune,
    L1Sparse,
    NegGrad,
    NegGradPlus,
    RandomLabel,
    ResetFinetune,
    SalUn,
    Unlearner,
)

QUICK = REPO / "configs" / "quickstart.yaml"
BASE = REPO / "configs" / "del" / "base.yaml"
SGD_FIELDS = ("lr", "momentum", "weight_decay", "final_lr_fraction")
SGD_UNLEARNERS = {
    # class: its defaults that differ from SGDUnlearner's (lr 0.01, momentum 0.9, wd 5e-4, final 1.0)
    Finetune: {},
    L1Sparse: {},
    NegGrad: {"lr": 1e-3, "weight_decay": 0.0},
    NegGradPlus: {},
    RandomLabel: {},
    SalUn: {},
    ResetFinetune: {"lr": 0.015, "weight_decay": 0.0, "final_lr_fraction": 0.01},
}


def run_cli(*args: str) -> SimpleNamespace:
    """The console command ``unlearn-pl ARGS`` in this process (its entry point, ``main``): exit code
    and printed text, without paying a new interpreter's imports for a parse."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def parsed_init_args(cls: type) -> dict:
    """What jsonargparse (the parser behind LightningCLI) shows for ``cls`` with its defaults."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--unlearner", type=Unlearner)
    cfg = parser.parse_args([f"--unlearner={cls.__module__}.{cls.__name__}"])
    return yaml.safe_load(parser.dump(cfg))["unlearner"]["init_args"]


@pytest.mark.parametrize("cls", list(SGD_UNLEARNERS), ids=lambda c: c.__name__)
def test_sgd_fields_resolve_flat_with_each_unlearners_defaults(cls):
    args = parsed_init_args(cls)
    expected = {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "final_lr_fraction": 1.0, **SGD_UNLEARNERS[cls]}
    assert {k: args[k] for k in SGD_FIELDS} == expected
    built = cls()  # and the Python defaults are the printed ones
    assert {k: getattr(built, k) for k in SGD_FIELDS} == expected
    # inspect (help(), the tuner's grid checks) sees the forwarded fields too.
    signature = inspect.signature(cls.__init__).parameters
    assert {k: signature[k].default for k in SGD_FIELDS} == expected


def test_print_config_shows_the_forwarded_sgd_fields():
    out = run_cli(
        "fit", f"--config={QUICK}", f"--config={REPO / 'configs/methods/neggrad_plus.yaml'}", "--print_config"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    unlearner = yaml.safe_load(out.stdout)["model"]["init_args"]["unlearner"]
    assert unlearner["class_path"].endswith("NegGradPlus")
    assert set(SGD_FIELDS) | {"alpha"} <= set(unlearner["init_args"])


def test_flat_sgd_fields_parse_from_a_config(tmp_path):
    config = tmp_path / "finetune.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {
                    "init_args": {
                        "unlearner": {
                            "class_path": "unlearn_pl.unlearners.ResetFinetune",
                            "init_args": {
                                "lr": 0.02,
                                "momentum": 0.5,
                                "weight_decay": 1e-4,
                                "final_lr_fraction": 0.1,
                                "seed": 3,
                            },
                        }
                    }
                }
            }
        )
    )
    unlearner = UnlearningCLI(args=[f"--config={QUICK}", f"--config={config}"], run=False).model.unlearner
    assert (unlearner.lr, unlearner.momentum, unlearner.weight_decay, unlearner.final_lr_fraction, unlearner.seed) == (
        0.02,
        0.5,
        1e-4,
        0.1,
        3,
    )


def test_the_reproduction_switches_parse_from_their_configs():
    cli = UnlearningCLI(args=[f"--config={BASE}", f"--config={REPO / 'configs/del/authors_mask.yaml'}"], run=False)
    loc = cli.model.localizer
    assert isinstance(loc, DEL)
    assert (loc.top_h_of, loc.aggregate, loc.budget_rounding, loc.batch_size, loc.drop_last) == (
        "authors",
        "batch_sum",
        "exact",
        128,
        True,
    )
    scrub = UnlearningCLI(args=[f"--config={QUICK}", f"--config={REPO / 'configs/methods/scrub.yaml'}"], run=False)
    s = scrub.model.unlearner
    assert isinstance(s, SCRUB)
    assert (s.order, s.optimizer, s.lr_decay_epochs, s.lr_decay_rate, s.forget_batch_size) == (
        "sequential",
        "sgd",
        (3, 5, 9),
        0.1,
        None,
    )


@pytest.mark.parametrize(
    "key,value,fragment",
    [
        ("localizer.init_args.budget", "1.5", "PositiveFraction"),
        ("unlearner.init_args.lr", "-1", "v>0"),
    ],
)
def test_bad_range_is_rejected_by_the_parser_in_one_line(key, value, fragment):
    out = run_cli("fit", f"--config={BASE}", f"--model.init_args.{key}={value}")
    assert out.returncode != 0
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "build,fragment",
    [
        (lambda: Finetune(lr=0.0), "lr"),
        (lambda: NegGrad(momentum=1.5), "momentum"),
        (lambda: NegGradPlus(alpha=2.0), "alpha"),
        (lambda: ResetFinetune(final_lr_fraction=-0.1), "final_lr_fraction"),
        (lambda: SalUn(saliency_aggregate="sum"), "aggregate"),
        (lambda: SSD(batch_size=0), "batch_size"),
        (lambda: L1Sparse(epochs=0), "epochs"),
        (lambda: DEL(top_h_of="paper"), "top_h_of"),
        (lambda: DEL(aggregate="max"), "aggregate"),
        (lambda: DEL(budget_rounding="ceil"), "budget_rounding"),
        (lambda: DEL(batch_size=0), "batch_size"),
        (lambda: SalUnSaliency(aggregate="sum"), "aggregate"),
        (lambda: Random(budget=0.0), "budget"),
        (lambda: Layers(last=1, depth=0), "depth"),
    ],
)
def test_bad_values_from_python_raise_a_clear_value_error(build, fragment):
    with pytest.raises(ValueError, match=fragment):
        build()


@pytest.mark.parametrize(
    "build",
    [
        # As LightningCLI builds them: the parsed values are jsonargparse's restricted-type instances.
        lambda: NegGradPlus(
            alpha=ClosedUnitInterval(0.9),
            lr=PositiveFloat(0.01),
            momentum=ClosedUnitInterval(0.9),
            weight_decay=NonNegativeFloat(5e-4),
            final_lr_fraction=ClosedUnitInterval(0.5),
        ),
        lambda: SCRUB(
            msteps=NonNegativeInt(1),
            lr=PositiveFloat(1e-3),
            momentum=ClosedUnitInterval(0.9),
            weight_decay=NonNegativeFloat(5e-4),
            optimizer="adam",
        ),
    ],
    ids=["NegGradPlus", "SCRUB-adam"],
)
def test_checkpoints_of_parsed_hyperparameters_load_with_weights_only(prepared_module, tmp_path, build):
    import torch
    from conftest import fast_trainer
    from lightning.pytorch.callbacks import ModelCheckpoint

    module, dm = prepared_module(unlearner=build(), oracle=False, metrics=[], report=False)
    trainer = fast_trainer(
        tmp_path,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        enable_checkpointing=True,
        callbacks=[ModelCheckpoint(dirpath=tmp_path)],
    )
    trainer.fit(module, datamodule=dm)
    (ckpt,) = tmp_path.glob("*.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # the only way the package loads files
    assert state["optimizer_states"]
