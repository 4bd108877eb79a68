"""A gloo process group is destroyed at exit (Lightning does so only for NCCL)."""

from __future__ import annotations

import subprocess
import sys

import torch.distributed as dist

import unlearn_pl.utils.distributed as distributed


def test_nothing_is_registered_without_a_process_group(monkeypatch):
    registered = []
    monkeypatch.setattr(distributed.atexit, "register", registered.append)
    monkeypatch.setattr(distributed, "_registered", False)
    distributed.destroy_gloo_group_at_exit()
    assert registered == [] and not dist.is_initialized()


def test_an_initialized_gloo_group_is_destroyed_by_the_exit_handler_once(monkeypatch):
    registered = []
    monkeypatch.setattr(distributed.atexit, "register", registered.append)
    monkeypatch.setattr(distributed, "_registered", False)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        distributed.destroy_gloo_group_at_exit()
        distributed.destroy_gloo_group_at_exit()  # a second run in the same process adds nothing
        assert registered == [distributed._destroy]
        registered[0]()
        assert not dist.is_initialized()
        registered[0]()  # already destroyed (by the user, or Lightning): a no-op
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_a_process_that_leaves_its_group_alive_exits_cleanly_with_the_handler(tmp_path):
    """The whole path in a fresh interpreter: a gloo group with a finished collective, left alive,
    and the handler registered; the process exits with status 0 and the group was destroyed."""
    marker = tmp_path / "destroyed"
    script = f"""
import atexit, torch, torch.distributed as dist
from unlearn_pl.utils.distributed import destroy_gloo_group_at_exit

def check():  # registered first, so it runs last (atexit is last-in, first-out)
    if not dist.is_initialized():
        open({str(marker)!r}, "w").close()

atexit.register(check)
dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
t = torch.ones(3)
dist.all_reduce(t)
destroy_gloo_group_at_exit()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert marker.is_file()
