"""Every method and DEL-experiment config parses; one composition runs end to end on digits."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from unlearn_pl.cli import UnlearningCLI
from unlearn_pl.localizers import DEL, Random
from unlearn_pl.unlearners import Unlearner

METHODS = sorted((REPO / "configs" / "methods").glob("*.yaml"))
DEL_PARTS = sorted(p for p in (REPO / "configs" / "del").glob("*.yaml") if p.name != "base.yaml")
BASE = REPO / "configs" / "del" / "base.yaml"
TINY = [  # a tiny network and recipe so a full run takes seconds
    "--model.init_args.network.class_path=unlearn_pl.models.MLP",
    "--model.init_args.network.init_args.in_features=64",
    "--model.init_args.network.init_args.hidden=[32]",
    "--model.init_args.references.init_args.recipe.epochs=2",
]


def parse(*configs: Path, extra: tuple[str, ...] = ()) -> UnlearningCLI:
    args = [f"--config={c}" for c in configs] + list(extra)
    return UnlearningCLI(args=args, run=False)


def test_there_is_a_config_per_unlearner():
    import unlearn_pl.unlearners as u

    classes = {
        getattr(u, n) for n in u.__all__ if isinstance(getattr(u, n), type) and issubclass(getattr(u, n), Unlearner)
    }
    concrete = {c.__name__ for c in classes if c.__name__ not in ("Unlearner", "SGDUnlearner")}
    configured = {parse(BASE, m).model.unlearner.__class__.__name__ for m in METHODS if m.name != "full_mask.yaml"}
    assert concrete <= configured


@pytest.mark.parametrize("config", METHODS + DEL_PARTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_partial_configs_compose_with_both_bases(config: Path):
    for base in (BASE, REPO / "configs" / "quickstart.yaml"):
        cli = parse(base, config)
        assert cli.model.unlearner is not None and cli.model.localizer is not None


def test_del_arms_set_what_they_say():
    assert isinstance(parse(BASE).model.localizer, DEL) and parse(BASE).model.localizer.budget == 0.3
    assert isinstance(parse(BASE, REPO / "configs/del/exp1_random.yaml").model.localizer, Random)
    assert parse(BASE, REPO / "configs/del/exp2_top_h_channels.yaml").model.localizer.top_h_of == "channels"
    assert parse(BASE, REPO / "configs/del/exp2_top_h_mean.yaml").model.localizer.top_h == 1.0
    loc = parse(BASE, REPO / "configs/del/exp3_budget20.yaml", REPO / "configs/methods/neggrad_plus.yaml").model
    assert loc.localizer.budget == 0.2 and type(loc.unlearner).__name__ == "NegGradPlus"


def test_dataset_override_for_fashion_mnist_parses():
    cli = parse(BASE, extra=("--data.init_args.dataset.class_path=unlearn_pl.data.FashionMNIST",))
    assert type(cli.datamodule.dataset).__name__ == "FashionMNIST"
    assert cli.datamodule.dataset.root == "/usr/share/datasets/fashion-mnist"


def test_hyperparameters_show_in_print_config(capsys):
    with pytest.raises(SystemExit):
        UnlearningCLI(
            args=["fit", f"--config={BASE}", f"--config={REPO / 'configs/methods/scrub.yaml'}", "--print_config"]
        )
    out = capsys.readouterr().out
    for key in ("msteps: 2", "temperature: 4.0", "alpha: 0.001", "gamma: 0.99"):
        assert key in out


def test_del_with_neggrad_plus_runs_end_to_end_on_digits(tmp_path):
    args = [
        "fit",
        f"--config={BASE}",
        f"--config={REPO / 'configs/del/exp3_budget20.yaml'}",
        f"--config={REPO / 'configs/methods/neggrad_plus.yaml'}",
        *TINY,
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=3",
        "--trainer.logger=false",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_checkpointing=false",
    ]
    cli = UnlearningCLI(args=args)
    assert cli.trainer.state.finished
    results = cli.model.metrics[0].results
    assert {"original", "unlearned", "oracle"} <= set(results)
    assert cli.model.localizer.budget == 0.2
