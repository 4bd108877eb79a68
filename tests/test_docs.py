"""The code in docs/extending.md runs: its localizer and unlearner fit on digits and keep the mask."""

from __future__ import annotations

import re

import torch
from conftest import REPO

DOC = REPO / "docs" / "extending.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_doc_has_the_examples():
    blocks = python_blocks()
    assert len(blocks) == 3
    assert "class FisherChannels(Localizer)" in blocks[0] and "class UniformForget(Unlearner)" in blocks[1]
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
