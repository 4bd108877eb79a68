"""The documented code runs: docs/extending.md's localizer and unlearner fit on digits and keep
the mask, and the README's Python example runs (on digits, briefly)."""

from __future__ import annotations

import re

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
