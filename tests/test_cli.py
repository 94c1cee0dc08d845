"""The ``syncd`` command as a user meets it: help, check, bad config, sync, status and demo.

Most runs go through ``syncd.cli.main`` in this process (fast); a few start the real
command to prove that what reaches the terminal is a clear line and never a traceback.
Exit codes: 0 ok, 1 a sync failed or was refused / check found a problem, 2 fix your input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd import cli
from syncd.calendars.memory import MemoryCalendar
from syncd.config import load_config
from syncd.log import _SyncdHandler
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import run_cycle
from syncd.runtime import Runtime, open_store
from syncd.state.store import Store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"
FEED_TOKEN = "Jc0rV6Q2m9yTqXb3LkE5aWfH1uN8sD4p"  # 32 urlsafe characters


@pytest.fixture(autouse=True)
def _detach_log_handlers() -> Iterator[None]:
    """``cli.main`` points logging at the captured stderr; do not leave it there."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _SyncdHandler)]:
        root.removeHandler(handler)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def memory_config(
    path: Path, *, seed: int = 5, store: str = "sqlite:///state.db", sync: str = ""
) -> Path:
    path.write_text(
        f"""\
[store]
url = "{store}"

[providers.shop]
kind = "memory"
seed = {seed}

[calendars.cal]
kind = "memory"

[[syncs]]
name = "shop"
provider = "shop"
calendars = ["cal"]
{sync}
"""
    )
    return path


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text


# -- help ---------------------------------------------------------------------------------------

HELP: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("sync", "status", "check", "run", "feeds", "sandbox", "demo", "--version", "exit codes"),
    ("sync",): ("--dry-run", "--full", "--allow-mass-delete", "NAME", "--config"),
    ("status",): ("--json", "--config"),
    ("check",): ("--config", "credential"),
    ("run",): ("--config", "daemon"),
    ("feeds",): ("--config", "feed"),
    ("sandbox",): ("PROVIDER", "--port", "--seed"),
    ("demo",): ("--cycles", "--interval", "--port"),
}


def test_help_covers_every_command() -> None:
    (commands,) = [a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert {(name,) for name in commands.choices} == set(HELP) - {()}


@pytest.mark.parametrize("command", list(HELP), ids=lambda c: " ".join(c) or "syncd")
def test_help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: syncd {' '.join(command)}".rstrip())
    for word in HELP[command]:
        assert word in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["frobnicate"])
    assert exited.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


# -- check --------------------------------------------------------------------------------------


def example_environment() -> dict[str, str]:
    """A value for every ``${NAME}`` the example uses outside its comments."""
    names: set[str] = set()
    for line in EXAMPLE.read_text().splitlines():
        if not line.lstrip().startswith("#"):
            names.update(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", line))
    assert names, "the example uses no environment variables?"
    return {name: FEED_TOKEN if "TOKEN" in name else f"secret-{name.lower()}" for name in names}


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No name resolves, as in a sandbox without network; loopback still works."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in ("localhost", "127.0.0.1", "::1"):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_check_example_names_every_unreachable_endpoint(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    offline: None,
) -> None:
    env = example_environment()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # the example's store url is relative
    config = load_config(EXAMPLE)
    backends = {
        **{f"providers.{n}": c.kind for n, c in config.providers.items()},
        **{f"calendars.{n}": c.kind for n, c in config.calendars.items()},
    }
    assert {"providers.salon", "calendars.team", "providers.demo", "calendars.scratch"} <= set(
        backends
    )

    code, out, err = run(["check", "-c", str(EXAMPLE)], capsys)

    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("config: ok")
    assert "store: ok sqlite:///syncd.db" in lines
    assert (tmp_path / "syncd.db").exists()
    for key, kind in backends.items():
        (line,) = [x for x in lines if x.startswith(f"{key} ({kind}): ")]
        if kind == "memory":
            assert line == f"{key} (memory): ok"
        else:
            assert "FAILED" in line
    unreachable = sum(kind != "memory" for kind in backends.values())
    assert lines[-1] == f"{unreachable} problem(s) found"
    no_traceback(out, err)
    for secret in env.values():
        assert secret not in out + err


def test_check_with_working_backends_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = memory_config(tmp_path / "config.toml")
    code, out, _ = run(["check", "-c", str(config)], capsys)
    assert code == 0
    assert "providers.shop (memory): ok" in out
    assert "calendars.cal (memory): ok" in out
    assert out.rstrip().endswith("all checks passed")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # about 2.5 s: a fresh interpreter imports everything
def test_check_process_reports_unreachable_endpoints_without_traceback(tmp_path: Path) -> None:
    """The real command, with endpoints on a closed loopback port: unreachable anywhere."""
    dead = f"http://127.0.0.1:{_closed_port()}"
    config = tmp_path / "config.toml"
    config.write_text(
        f"""\
[providers.salon]
kind = "onlineafspraken"
base_url = "{dead}/APIREST"
api_key = "${{OA_API_KEY}}"
api_secret = "${{OA_API_SECRET}}"

[providers.shop]
kind = "memory"

[calendars.team]
kind = "caldav"
url = "{dead}/dav/team/"
username = "syncd"
password = "${{CALDAV_PASSWORD}}"

[[syncs]]
name = "salon"
provider = "salon"
calendars = ["team"]
"""
    )
    env = {
        **os.environ,
        "OA_API_KEY": "key-xyzzy",
        "OA_API_SECRET": "secret-plugh",
        "CALDAV_PASSWORD": "password-frotz",
    }
    done = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "check", "-c", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "config: ok" in done.stdout
    assert re.search(r"^providers\.salon \(onlineafspraken\): FAILED .+", done.stdout, re.M)
    assert re.search(r"^calendars\.team \(caldav\): FAILED .+", done.stdout, re.M)
    assert "providers.shop (memory): ok" in done.stdout
    assert "2 problem(s) found" in done.stdout
    no_traceback(done.stdout, done.stderr)
    for secret in ("key-xyzzy", "secret-plugh", "password-frotz"):
        assert secret not in done.stdout + done.stderr


# -- bad config ---------------------------------------------------------------------------------


def config_text(
    sync: dict[str, str] | None = None,
    provider: dict[str, str] | None = None,
    top: str = "",
    bottom: str = "",
) -> str:
    """A valid config, with ``sync`` and ``provider`` keys (TOML values) changed or added."""
    sync_keys = {"name": '"shop"', "provider": '"shop"', "calendars": '["cal"]', **(sync or {})}
    provider_keys = {"kind": '"memory"', **(provider or {})}
    lines = [top, "[providers.shop]"]
    lines += [f"{k} = {v}" for k, v in provider_keys.items()]
    lines += ["", "[calendars.cal]", 'kind = "memory"', "", "[[syncs]]"]
    lines += [f"{k} = {v}" for k, v in sync_keys.items()]
    return "\n".join([*lines, bottom, ""])


MISTAKES: list[tuple[str, str]] = [
    ("syncs[0].conflict", config_text(sync={"conflict": '"calendar-wins"'})),
    ("syncs[0].direction", config_text(sync={"direction": '"sideways"'})),
    ("syncs[0].provider", config_text(sync={"provider": '"nobody"'})),
    ("syncs[0].calendars[0]", config_text(sync={"calendars": '["nowhere"]'})),
    ("syncs[0].interval", config_text(sync={"interval": '"soon"'})),
    ("syncs[0].max_delete_share", config_text(sync={"max_delete_share": "2"})),
    ("syncs[0].colour", config_text(sync={"colour": '"red"'})),
    ("syncs[0].calendar_delete", config_text(sync={"calendar_delete": '"cancel"'})),
    ("providers.shop.kind", config_text(provider={"kind": '"bookly"'})),
    ("providers.shop.seed", config_text(provider={"seed": "-1"})),
    ("store.url", config_text(top='[store]\nurl = "mysql://db.internal/syncd"\n')),
    ("log.level", config_text(top='[log]\nlevel = "loud"\n')),
    ("server.listen", config_text(top='[server]\nlisten = "everywhere"\n')),
    (
        "feeds.public.token",
        config_text(bottom='\n[feeds.public]\nsync = "shop"\ntoken = "short"'),
    ),
    (
        "calendars.dav.password",
        config_text(
            bottom='\n[calendars.dav]\nkind = "caldav"\nurl = "https://dav.example.org/c/"\n'
            'username = "u"\npassword = "${SYNCD_TEST_SURELY_UNSET}"'
        ),
    ),
]
COMMANDS = (["check"], ["sync"], ["status"], ["sync", "--dry-run"], ["status", "--json"])


@pytest.mark.parametrize(
    ("index", "key", "text"),
    [(i, key, text) for i, (key, text) in enumerate(MISTAKES)],
    ids=[key for key, _ in MISTAKES],
)
def test_bad_config_is_one_line_naming_the_key(
    index: int,
    key: str,
    text: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCD_TEST_SURELY_UNSET", raising=False)
    config = tmp_path / "config.toml"
    config.write_text(text)
    command = COMMANDS[index % len(COMMANDS)]
    code, out, err = run([*command, "-c", str(config)], capsys)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"syncd: {config}: 1 problem(s)"
    (problem,) = lines[1:]
    assert problem.startswith(f"  {key}: ")
    assert len(problem.strip()) > len(key) + 10  # says what is wrong, not just where
    no_traceback(err)
    assert not (tmp_path / "state.db").exists()  # nothing was opened


def test_missing_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCD_CONFIG", raising=False)
    code, out, err = run(["check", "-c", "nope.toml"], capsys)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "syncd: nope.toml: 1 problem(s)",
        "  file not found (pass -c PATH or set SYNCD_CONFIG)",
    ]
    code, _, err = run(["status"], capsys)  # no -c: ./config.toml
    assert code == 2
    assert err.startswith("syncd: config.toml: 1 problem(s)")
    monkeypatch.setenv("SYNCD_CONFIG", str(tmp_path / "elsewhere.toml"))
    code, _, err = run(["sync"], capsys)
    assert code == 2
    assert f"syncd: {tmp_path / 'elsewhere.toml'}: 1 problem(s)" in err


def test_unknown_sync_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = memory_config(tmp_path / "config.toml")
    code, out, err = run(["sync", "-c", str(config), "nope"], capsys)
    assert (code, out) == (2, "")
    assert err == "syncd: unknown sync nope (syncs: shop)\n"
    assert not (tmp_path / "state.db").exists()


def test_bad_config_process_exits_2_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(sync={"conflict": '"calendar-wins"'}))
    done = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "sync", "-c", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines()[1].startswith("  syncs[0].conflict: ")
    no_traceback(done.stderr)


# -- sync and status ----------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = memory_config(tmp_path / "config.toml", seed=5)

    code, out, err = run(["sync", "--dry-run", "-c", str(config)], capsys)

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("shop (dry run, nothing changed): 5 created, 0 updated")
    creates = [line for line in lines if line.startswith("  create event for ")]
    assert len(creates) == 5
    assert all(line.endswith(" in cal (new)") for line in creates)
    store = Store("sqlite:///state.db")
    try:
        assert store.link_count("shop") == 0
        assert store.records("shop") == {}
        assert store.pending_count("shop") == 0
        assert store.cursor("provider:shop") is None
    finally:
        store.close()

    code, out, _ = run(["status", "--json", "-c", str(config)], capsys)
    assert code == 0
    (status,) = json.loads(out)["syncs"]
    assert status["sync"] == "shop"
    assert status["last_run"]["status"] == "dry-run"
    assert status["last_run"]["counts"]["create"] == 5
    assert (status["linked_events"], status["pending_actions"]) == (0, 0)
    assert status["last_success"] is None

    # The same command without --dry-run does what the plan said.
    code, out, _ = run(["sync", "-c", str(config)], capsys)
    assert code == 0
    assert out.startswith("shop: 5 created, 0 updated, 0 deleted")
    code, out, _ = run(["status", "-c", str(config)], capsys)
    assert code == 0
    assert out.splitlines()[1] == "  5 linked events, 0 pending"


@pytest.mark.anyio
async def test_mass_delete_refusal_is_visible_in_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "state.db"
    path = memory_config(tmp_path / "config.toml", seed=20, store=f"sqlite:///{db}")
    config = load_config(path)
    store = open_store(config)
    runtime = Runtime.build(config)
    try:
        (sync,) = runtime.syncs
        provider = runtime.providers["shop"]
        calendar = runtime.calendars["cal"]
        assert isinstance(provider, MemoryProvider)
        assert isinstance(calendar, MemoryCalendar)
        first = await run_cycle(store, sync)
        assert first.status == "ok"
        assert store.link_count("shop") == 20

        gone = sorted(provider.appointments())[:15]
        for native_id in gone:
            provider.hard_delete(native_id)
        refused = await run_cycle(store, sync, full=True)
        assert refused.status == "refused"
        assert "mass-delete guard" in refused.error
        assert store.link_count("shop") == 20
        assert len(calendar.items()) == 20

        async def cli_main(argv: list[str]) -> tuple[int, str, str]:
            code = await anyio.to_thread.run_sync(cli.main, argv)  # it runs its own loop
            out, err = capsys.readouterr()
            return code, out, err

        code, out, _ = await cli_main(["status", "-c", str(path)])
        assert code == 1
        lines = out.splitlines()
        assert lines[0].startswith("shop: refused, last run ")
        assert f"  refused: {refused.error}" in lines
        code, out, _ = await cli_main(["status", "--json", "-c", str(path)])
        assert code == 1
        (status,) = json.loads(out)["syncs"]
        assert status["last_run"]["status"] == "refused"
        assert "mass-delete guard" in status["last_run"]["error"]
        assert status["linked_events"] == 20
        assert status["last_success"] is not None  # the first run

        override = Runtime.build(config, allow_mass_delete=True)
        try:
            policy = override.syncs[0].policy
        finally:
            await override.aclose()
        assert policy.allow_mass_delete
        applied = await run_cycle(store, replace(sync, policy=policy), full=True)
        assert applied.status == "ok"
        assert applied.plan.counts().get("delete") == 15
        assert store.link_count("shop") == 5
        assert len(calendar.items()) == 5
        code, out, _ = await cli_main(["status", "--json", "-c", str(path)])
        assert code == 0
        assert json.loads(out)["syncs"][0]["last_run"]["status"] == "ok"
    finally:
        await runtime.aclose()
        store.close()


# -- demo ---------------------------------------------------------------------------------------


def test_demo_runs_two_cycles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["demo", "--cycles", "2", "--interval", "0", "--port", "0"], capsys)
    assert code == 0, err
    cycles = [line for line in out.splitlines() if line.startswith("cycle ")]
    assert len(cycles) == 2
    assert cycles[0].startswith("cycle 1: demo: 25 created")
    assert cycles[1].startswith("cycle 2: demo: ")
    assert (tmp_path / "syncd-demo.db").exists()
    no_traceback(out, err)
