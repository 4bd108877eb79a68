"""A study across machines for real: a PostgreSQL server, ``unlearn-pl tune`` processes that share
one study through ``--storage postgresql://…``, each with its own working folder and model cache
as separate machines would have, and a worker killed mid-trial that Optuna's heartbeat fails and
retries once.

The server is Debian's ``postgresql`` package (``.ci/run`` installs it when missing), started in a
temporary folder on a free port. Without its binaries the test is skipped, except under ``CI=true``.
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import REPO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _study_toys import STUDY

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")


def server_binaries() -> Path | None:
    """The folder holding PostgreSQL's server programs: on the PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    folders = [Path(p).resolve().parent for p in map(shutil.which, SERVER_BINARIES) if p]
    folders += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    return next((f for f in folders if all((f / b).is_file() for b in SERVER_BINARIES)), None)


def _as_server_user() -> list[str]:
    """initdb and postgres refuse to run as root: run them as the ``postgres`` system user then."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.fail("running as root, PostgreSQL needs another user, and `runuser` (util-linux) is not installed")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(
            "running as root, PostgreSQL needs the `postgres` system user (Debian's postgresql package makes it)"
        )
    return [runuser, "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of its own, for one test: its URL."""
    folder = server_binaries()
    if folder is None:
        reason = "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found; .ci/run installs Debian's postgresql"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + ", and under CI=true this test must run")
        pytest.skip(reason)
    pytest.importorskip("psycopg2", reason="psycopg2 is the dev extra's PostgreSQL driver (pip install -e '.[dev]')")
    user = _as_server_user()
    data = Path(tempfile.mkdtemp(prefix="unlearn_pl-pg-"))
    if user:
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()

    def run(*args: str) -> None:
        out = subprocess.run([*user, *args], capture_output=True, text=True, timeout=300, check=False)
        if out.returncode != 0:
            log = data / "server.log"
            pytest.fail(
                f"{' '.join(args[:2])} failed ({out.returncode}): {out.stderr[-2000:]}"
                + (log.read_text()[-2000:] if log.is_file() else "")
            )

    run(str(folder / "initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40"
    run(
        str(folder / "pg_ctl"),
        "-D",
        str(data / "db"),
        "-l",
        str(data / "server.log"),
        "-o",
        options,
        "-w",
        "-t",
        "120",
        "start",
    )
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*user, str(folder / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(data, ignore_errors=True)


def _machine(root: Path, name: str) -> tuple[Path, dict[str, str]]:
    """A working folder and environment of their own (the model cache too), as on another machine."""
    home = root / name
    home.mkdir()
    return home, {**os.environ, "PYTHONPATH": str(REPO), "UNLEARN_PL_CACHE": str(home / "cache")}


@pytest.mark.slow  # three `unlearn-pl tune` processes on 3 cells of a tiny MLP, and a server: ~40 s
def test_tune_processes_share_a_study_on_postgresql_and_a_killed_one_is_retried_once(tmp_path, postgres_url):
    # Three cells of one seed; each process trains its own original (no oracle: the goal needs none).
    config = {
        **copy.deepcopy(STUDY),
        "grid": {"model.init_args.unlearner.init_args.lr": [0.01, 0.03, 0.05]},
        "seeds": [0],
        "noise_floor": False,
    }
    config["model"]["init_args"]["references"]["init_args"]["oracle"] = False
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(config))
    command = [
        sys.executable,
        "-m",
        "unlearn_pl",
        "tune",
        "--config",
        str(study_file),
        "--study_name",
        "shared",
        "--storage",
        postgres_url,
        "--heartbeat_interval",
        "1",
        "--output_dir",
        "out",
    ]
    storage = optuna.storages.get_storage(postgres_url)

    def trials() -> list[optuna.trial.FrozenTrial]:
        try:
            return optuna.load_study(study_name="shared", storage=storage).get_trials()
        except KeyError:  # not created yet
            return []

    # The first machine takes a trial and dies in it (SIGKILL: no chance to record anything).
    home, env = _machine(tmp_path, "a")
    first = subprocess.Popen(command, cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not [t for t in trials() if t.state.name == "RUNNING" and t.user_attrs.get("pid") == first.pid]:
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-3000:]
        time.sleep(0.1)
    first.kill()
    first.wait()
    (killed,) = [t for t in trials() if t.state.name == "RUNNING"]
    # Two more machines share the rest; the killed trial goes stale (no heartbeat) and is retried once.
    others = []
    for name in ("b", "c"):
        home, env = _machine(tmp_path, name)
        others.append(
            subprocess.Popen(command, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    for p in others:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    final = trials()
    done = Counter((t.params["candidate"], t.params["seed"]) for t in final if t.state.name == "COMPLETE")
    assert len(done) == 3 and set(done.values()) == {1}  # every cell ran once
    assert final[killed.number].state.name == "FAIL"
    retries = [t for t in final if t.system_attrs.get("failed_trial") == killed.number]
    assert [(t.state.name, t.params) for t in retries] == [("COMPLETE", killed.params)]
    assert all(t.params for t in final) and len(final) == 4
    for name in ("b", "c"):
        assert (tmp_path / name / "out" / "shared" / "trials.csv").is_file()
