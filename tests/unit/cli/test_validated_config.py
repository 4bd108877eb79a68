"""The CLI validates a config once: its dumps (checkpoint hyperparameters, ``config.yaml``) skip
jsonargparse's repeated validation of the config parsing validated, and only of that one."""

from pathlib import Path

import pytest
import yaml
from conftest import write_config

from unlearn_pl.cli.main import run_cli
from unlearn_pl.cli.validated import ValidatedConfigParser


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every whole-config validation by the CLI's parsers, in order."""
    calls: list[str] = []
    depth = [0]
    validate = ValidatedConfigParser.validate

    def counted(self, cfg, *args, **kwargs):
        # A whole run's config, not a part validated within it (the subcommand's part of the
        # root's config; a class type's arguments, by a nested parser).
        if depth[0] == 0 and ("trainer" in cfg or "subcommand" in cfg):
            calls.append("validate")
        depth[0] += 1
        try:
            return validate(self, cfg, *args, **kwargs)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(ValidatedConfigParser, "validate", counted)
    return calls


def _fit(tmp_path: Path, name: str) -> tuple[str, dict]:
    """``config.yaml`` (the run's name written as NAME) and ``hparams.yaml`` of a one-epoch fit."""
    config = write_config(tmp_path, **{"trainer.logger.init_args.name": name})
    run_cli(["fit", "--config", str(config)])
    (folder,) = (tmp_path / "runs" / name).glob("version_*")
    return (folder / "config.yaml").read_text().replace(name, "NAME"), yaml.safe_load(
        (folder / "hparams.yaml").read_text()
    )


def test_a_run_saves_the_same_config_with_two_validations_fewer(tmp_path, monkeypatch, validations):
    saved, hparams = _fit(tmp_path, "once")
    once = len(validations)
    # The same run with the parser forgetting what it validated: jsonargparse's own behaviour.
    monkeypatch.setattr(ValidatedConfigParser, "remember_valid", lambda self, config: None)
    validations.clear()
    saved_again, hparams_again = _fit(tmp_path, "every_dump")
    assert len(validations) == once + 2  # the hyperparameters' dump and config.yaml's
    assert saved == saved_again
    assert hparams == hparams_again
    assert hparams["network"]["class_path"] == "unlearn_pl.models.MLP"  # what rebuilds the model from a checkpoint


def test_a_config_changed_after_parsing_is_validated_when_dumped(tmp_path, validations):
    cli = run_cli(["--config", str(write_config(tmp_path))], run=False)
    validations.clear()
    assert cli.parser.dump(cli.config) == cli.parser.dump(cli.config, skip_validation=False)
    assert validations == ["validate"]  # only the dump that asked for it
    validations.clear()
    cli.config["trainer.max_epochs"] = "many"
    with pytest.raises(TypeError, match="max_epochs"):
        cli.parser.dump(cli.config)
    assert validations == ["validate"]
