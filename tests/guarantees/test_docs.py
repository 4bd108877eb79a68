"""The documented code runs: docs/extending.md's localizer and unlearner fit on digits and keep
the mask, the README's Python example runs (on digits, briefly), and its commands parse."""

from __future__ import annotations

import re
import shlex
import sys

import pytest
import torch
from conftest import REPO

DOC = REPO / "docs" / "extending.md"
README = REPO / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_doc_has_the_examples():
    blocks = python_blocks()
    assert len(blocks) == 4
    assert "class FisherChannels(Localizer)" in blocks[0] and "class UniformForget(Unlearner)" in blocks[1]
    assert "class ForgetMargin(EvaluationCallback)" in blocks[2]
    assert len(blocks[0].strip().splitlines()) <= 25  # "a new localizer in ~20 lines"


def test_doc_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Lightning may write next to the working directory
    namespace: dict = {}
    for block in python_blocks():
        exec(compile(block, str(DOC), "exec"), namespace)
    module, trainer = namespace["module"], namespace["trainer"]
    assert trainer.state.finished
    masks = module.localizer.masks
    original = module.reference("original")
    fraction = sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
    assert 0.3 <= fraction < 0.5
    changed = 0
    for name, p in module.network.named_parameters():
        ref = dict(original.named_parameters())[name]
        assert torch.equal(p[~masks[name]], ref[~masks[name]])
        changed += int((p[masks[name]] != ref[masks[name]]).sum())
    assert changed > 0
    assert "forget_acc" in module.metrics[0].results["unlearned"]
    margin = module.metrics[-1].results
    assert set(margin) == {"original", "unlearned", "oracle"}
    # the original saw the forget set: its loss there is below its test loss
    assert margin["original"]["forget_margin"] > 0


def readme_python_example() -> str:
    section = README.read_text().split("From Python:", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


#: The README's example, made a seconds-long run: same code otherwise.
SHORTER = {
    "TrainingRecipe(epochs=10)": "TrainingRecipe(epochs=2)",
    "max_epochs=3,": "max_epochs=1, enable_progress_bar=False,",
}


def test_readme_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = readme_python_example()
    assert "pl.seed_everything(0)" in code  # without a seed every run retrains the reference models
    for old, new in SHORTER.items():
        assert old in code, old
        code = code.replace(old, new)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    module, trainer = namespace["module"], namespace["trainer"]
    assert trainer.state.finished and trainer.state.fn == "validate"
    results = module.run_report.last_results
    assert set(results) == {"original", "unlearned", "oracle"} and "forget_acc" in results["unlearned"]


OWN = REPO / "docs" / "own-model-and-data.md"


def write_digit_images(root) -> None:
    """scikit-learn's digits 0-2 as grayscale PNGs in ``root/{train,val}/<digit>/``."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.flatnonzero(digits.target < 3)[:240]
    for k, i in enumerate(keep):
        folder = root / ("val" if k % 5 == 0 else "train") / str(digits.target[i])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[i] * 16).astype(np.uint8), mode="L").save(folder / f"{i}.png")


def test_own_model_and_data_guide_runs_as_written(tmp_path, monkeypatch):
    from unlearn_pl.references import models

    monkeypatch.chdir(tmp_path)
    write_digit_images(tmp_path / "my_images")
    blocks = re.findall(r"```python\n(.*?)```", OWN.read_text(), flags=re.S)
    assert len(blocks) == 3
    # The messages are read where the package hands them to Lightning's rank_zero_info, not from
    # Python's logging: which logger rank_zero_info writes to is a global of lightning_utilities
    # that the last imported Lightning flavour (lightning.pytorch, pytorch_lightning) decides.
    said: list[str] = []
    monkeypatch.setattr(models, "rank_zero_info", lambda message, *a, **k: said.append(str(message)))
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(OWN), "exec"), namespace)
    module, trainer = namespace["module"], namespace["trainer"]
    assert trainer.state.finished and (tmp_path / "split.json").exists()
    assert "Loaded the original model from my_original.pt" in said
    assert any(m.startswith("The oracle is retrained with references.recipe (10 epochs") for m in said), said
    results = module.run_report.last_results
    assert set(results) == {"original", "unlearned", "oracle"}
    assert results["original"]["retain_acc"] > 0.8  # the loaded weights, not an untrained network (1/3)


def test_an_original_that_saw_the_validation_data_is_flagged(tmp_path, monkeypatch):
    """Trained on every training image, validation ones included: 100% on validation, less on test."""
    import lightning.pytorch as pl
    import torch

    from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
    from unlearn_pl.data import Digits, RandomForget
    from unlearn_pl.guards import OutcomeGuard
    from unlearn_pl.models import MLP

    # 400 validation examples: a model of the original's ~97% test accuracy that never saw them
    # gets them all right with probability ~1e-5
    data = UnlearningDataModule(Digits(), RandomForget(0.1), val_fraction=0.3, batch_size=64)
    data.setup()
    torch.manual_seed(0)
    network = MLP(in_features=64, num_classes=10, hidden=(256,))
    everything = torch.utils.data.ConcatDataset([data.split_dataset("train"), data.split_dataset("val")])
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    for _ in range(60):
        for _, x, y in torch.utils.data.DataLoader(everything, batch_size=64, shuffle=True):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(network(x), y).backward()
            optimizer.step()
    torch.save(network.state_dict(), tmp_path / "seen_val.pt")
    module = UnlearningModule(
        MLP(in_features=64, num_classes=10, hidden=(256,)),
        report=False,
        references=ReferenceModels(
            original=str(tmp_path / "seen_val.pt"), oracle=False, recipe=TrainingRecipe(epochs=1)
        ),
    )
    module.prepare_models(data)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    # validate() of an unfit module is refused by the CLI, not by the module: here it evaluates the original
    with pytest.warns(
        UserWarning, match=r"scores val_acc 1\.000 but test_acc 0\.\d+ .*it has probably been trained on validation"
    ):
        trainer.validate(module, datamodule=data, verbose=False)
    assert OutcomeGuard in {type(c) for c in module.configure_callbacks()}


def readme_commands() -> list[list[str]]:
    """The ``unlearn-pl`` commands of the README's shell blocks, comments dropped; commands with a
    placeholder for the reader's own values (``STUDY.yaml``, a database URL) are left out."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.splitlines():
            command = line.split("#", 1)[0].split("&&")[-1].strip()
            if command.startswith("unlearn-pl ") and not re.search(r"[A-Z]{3,}\.yaml|://", command):
                commands.append(shlex.split(command)[1:])
    return commands


def test_readme_lists_its_commands():
    subcommands = {c[0] for c in readme_commands()}
    assert {"fit", "tune", "audit", "ulira"} <= subcommands


@pytest.mark.parametrize("args", readme_commands(), ids=lambda a: " ".join(a[:3]))
def test_readme_commands_parse(args, capsys, monkeypatch):
    """Each command the README gives parses as written: its configs exist and compose."""
    from unlearn_pl.cli import UnlearningCLI

    monkeypatch.chdir(REPO)  # the README's paths are relative to the checkout
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])  # pytest's own arguments are not the command's
    with pytest.raises(SystemExit) as stop:
        UnlearningCLI(args=[*args, "--print_config"])
    assert stop.value.code in (None, 0), capsys.readouterr().err[-2000:]
    assert "model:" in capsys.readouterr().out


def test_every_claim_in_the_results_summary_names_its_verdict_n_and_detectable_effect():
    """docs/results.md's claims table (the README links it) reads each claim in the statistics layer's
    verdict words, with its number of seeds and the effect it could detect (or its margin); "not
    supported" stands only beside a verdict that shows it (an opposite difference or an equivalence)."""
    text = (REPO / "docs" / "results.md").read_text()
    table = text[text.index("## Summary: the papers' claims") : text.index("## Compute")]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| claim")]
    cells = [re.split(r"(?<!\\)\|", row)[1:-1] for row in rows]
    assert len(cells) >= 10 and all(len(c) == 6 for c in cells)
    verdict_word = re.compile(r"\*\*(higher|lower|equivalent|inconclusive)\b")
    for claim, verdict, n, mde, _effects, _settings in cells:
        assert verdict_word.search(verdict), claim
        assert re.fullmatch(r"\s*\d+( \([^)]*\))?(, \d+ \([^)]*\))*\s*", n), (claim, n)
        assert re.search(r"\d\.\d", mde) or "margin" in mde, (claim, mde)
        if "not supported" in verdict.lower():
            assert re.search(r"\*\*(higher|lower|equivalent)", verdict), claim
