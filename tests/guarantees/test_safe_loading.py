"""Safe loading: every file is loaded with ``weights_only=True``, and a killed cache
write never leaves a file that a later run trusts.

Related: ``test_references.py`` (a corrupt cache entry is retrained), ``test_resume.py`` (real
unlearning checkpoints load with ``weights_only=True``), ``test_bad_input.py`` (bad files).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
from conftest import FAST_RECIPE, REPO, run_script

import unlearn_pl
from unlearn_pl import ReferenceModels
from unlearn_pl.cli import UnlearningCLI

PACKAGE = Path(unlearn_pl.__file__).parent


def test_every_torch_load_in_the_package_is_weights_only():
    """A static check, so a new ``torch.load`` without ``weights_only=True`` fails here."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                kw = {k.arg: k.value for k in node.keywords}
                safe = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                calls.append((f"{path.relative_to(PACKAGE)}:{node.lineno}", safe))
    assert calls, "expected at least the reference-model loader"
    assert [c for c, safe in calls if not safe] == []


def test_cli_loads_ckpt_path_weights_only(tmp_path, monkeypatch):
    """``unlearn-pl fit`` then ``validate --ckpt_path``: Lightning's load gets weights_only=True
    (set by our CLI whatever torch's default), and our checkpoint loads that way."""
    from test_bad_input import write_config

    monkeypatch.setattr("sys.argv", ["unlearn-pl"])
    config = str(
        write_config(tmp_path, **{"model.init_args.metrics": [{"class_path": "unlearn_pl.metrics.SplitAccuracy"}]})
    )
    UnlearningCLI(args=["fit", "--config", config])
    (ckpt,) = (tmp_path / "runs" / "tiny" / "version_0" / "checkpoints").glob("*.ckpt")

    seen: list = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    cli = UnlearningCLI(args=["validate", "--config", config, f"--ckpt_path={ckpt}"])
    assert seen and all(w is True for w in seen), seen
    assert cli.trainer.ckpt_path == str(ckpt)
    results = json.loads((tmp_path / "runs" / "tiny" / "version_1" / "results.json").read_text())
    fitted = json.loads((tmp_path / "runs" / "tiny" / "version_0" / "results.json").read_text())
    assert results["unlearned"] == pytest.approx(fitted["unlearned"])


KILLED_WRITE = r"""
import os, signal, sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
import unlearn_pl.references.models as refs
from conftest import FAST_RECIPE, tiny_mlp
from unlearn_pl import ReferenceModels, UnlearningDataModule
from unlearn_pl.data import Digits, RandomForget

real_save = torch.save

def save_half_then_die(obj, f, *args, **kwargs):
    real_save(obj, f, *args, **kwargs)
    data = open(f, "rb").read()
    open(f, "wb").write(data[: len(data) // 2])  # half of the entry is on disk...
    os.kill(os.getpid(), signal.SIGKILL)  # ...when the process is killed (no cleanup can run)

refs.torch.save = save_half_then_die
dm = UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=64)
ReferenceModels(recipe=FAST_RECIPE, oracle=False, cache_dir={cache!r}).prepare(tiny_mlp(), dm)
"""


@pytest.mark.slow  # a fresh process training a reference model, then one more training: ~30 s on 2 busy cores
def test_a_killed_cache_write_leaves_no_trusted_file(tmp_path, digits_dm):
    from conftest import tiny_mlp

    cache = tmp_path / "cache"
    with pytest.raises(AssertionError, match=r"script failed \(-9\)"):
        run_script(KILLED_WRITE.format(tests=str(REPO / "tests"), cache=str(cache)), tmp_path)
    refs = ReferenceModels(recipe=FAST_RECIPE, oracle=False, cache_dir=str(cache))
    entry = refs.cache_path(tiny_mlp(), digits_dm(), "original")
    leftovers = list(cache.glob(".*.tmp"))
    assert not entry.exists(), "the half-written entry must not sit under its final name"
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0  # it died mid-write

    # The next run trains again and writes a complete entry; the stray temporary file is never read.
    nets = refs.prepare(tiny_mlp(), digits_dm())
    saved = torch.load(entry, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in nets["original"].state_dict().items())
