"""Outages of the embedded Postgres under `picloud serve` (a real subprocess, its
own data directory and ports): kill -9 of the postmaster under write load, and
a smart shutdown. The serve process supervises its Postgres and brings it back;
no request hangs, and no acknowledged write is lost.

The measured figures (answer times during the outage, recovery time, smart
shutdown time) are printed in the test output.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import asyncpg
import msgspec
import pytest

from tests.helpers import free_port, picloud_env, public_temp_dir
from tests.http.helpers import Api, make_app, make_route
from tests.serving import admin_cli, kill_tree, serve, wait_healthy

pytestmark = pytest.mark.server

UNAVAILABLE = {
    "code": "store_unavailable",
    "message": "the database is unavailable; retry",
}
WRITE = 'kv.collection("w"):set(ctx.request.params.key, true) return {ok = true}'
CLIENTS = 6
ANSWER_WITHIN_S = 2.0
SMART_STOP_WITHIN_S = 30.0


@dataclass
class Running:
    """A `picloud serve` subprocess with an app whose route writes a KV key."""

    home: Path
    port: int
    apps_port: int
    key: str
    process: subprocess.Popen[str]
    log: IO[str]
    app_id: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def apps_base(self) -> str:
        return f"http://127.0.0.1:{self.apps_port}"

    @property
    def pgdata(self) -> Path:
        return self.home / "postgres"

    def postmaster(self) -> tuple[int, str]:
        """The pid and socket directory postmaster.pid names."""
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[0]), lines[4]

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres:@/picloud?host={self.postmaster()[1]}"

    def output(self) -> str:
        self.log.flush()
        return (self.home / "serve.log").read_text()


@dataclass(frozen=True)
class Answer:
    key: str
    status: int
    started: float
    ended: float
    retry_after: str | None
    body: Any

    @property
    def took(self) -> float:
        return self.ended - self.started


@dataclass
class Load:
    """Clients that each write one new key after another until stopped, and
    one that asks /healthz meanwhile."""

    base: str
    apps_base: str
    answers: list[Answer] = field(default_factory=list)
    health: list[tuple[int, float, Any]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def start(self, clients: int, pause: float = 0.0) -> None:
        self.task = asyncio.create_task(self._run(clients, pause))

    async def finish(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task

    async def _run(self, clients: int, pause: float) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(
                self._probe(session),
                *(self._client(session, f"c{c}", pause) for c in range(clients)),
            )

    async def _probe(self, session: aiohttp.ClientSession) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            async with session.get(f"{self.base}/healthz") as r:
                status, body = r.status, msgspec.json.decode(await r.read())
            self.health.append((status, time.monotonic() - started, body))
            await asyncio.sleep(0.05)

    async def _client(
        self, session: aiohttp.ClientSession, name: str, pause: float
    ) -> None:
        n = 0
        while not self.stop.is_set():
            key, n = f"{name}-{n}-{time.monotonic_ns()}", n + 1
            started = time.monotonic()
            try:
                async with session.post(f"{self.apps_base}/apps/load/w/{key}") as r:
                    status, body = r.status, await r.read()
                    retry_after = r.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as e:
                status, body, retry_after = 0, repr(e).encode(), None
            ended = time.monotonic()
            answer = Answer(key, status, started, ended, retry_after, body)
            self.answers.append(answer)
            # A short pause after a refusal: the outage stays densely sampled
            # without the clients spinning.
            await asyncio.sleep(pause if status == 200 else max(pause, 0.05))

    def first_refusal_after(self, moment: float) -> Answer | None:
        return next(
            (a for a in self.answers if a.status == 503 and a.started > moment), None
        )

    def first_success_after(self, moment: float) -> Answer | None:
        return next(
            (a for a in self.answers if a.status == 200 and a.started > moment), None
        )

    @property
    def acknowledged(self) -> set[str]:
        return {a.key for a in self.answers if 200 <= a.status < 300}


@pytest.fixture(scope="module")
def picloud() -> Iterator[Running]:
    home = public_temp_dir("picloud-test-outage-")
    port = free_port()
    env = picloud_env(home, PICLOUD_HTTP_PORT=str(port))
    admin_cli(env, "create-user", "root", "--admin", stdin="a long password\n")
    key = admin_cli(env, "create-key", "--user", "root", "--name", "t", "--all")
    log = (home / "serve.log").open("w")
    process = serve(env, log)
    try:
        wait_healthy(port, process)
        apps_port = int(env["PICLOUD_APPS_PORT"])
        yield Running(home, port, apps_port, key, process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_tree(process)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
async def app(picloud: Running) -> Running:
    async with aiohttp.ClientSession() as session:
        api = Api(session, picloud.base, {"Authorization": f"Bearer {picloud.key}"})
        picloud.app_id = (await make_app(api, "load"))["id"]
        await make_route(api, "load", WRITE, "POST", "/w/{key}")
    return picloud


@pytest.fixture
async def load(app: Running) -> AsyncIterator[Load]:
    load = Load(app.base, app.apps_base)
    yield load
    await load.finish()


async def wait_until(load: Load, after: float, within: float) -> Answer:
    deadline = time.monotonic() + within
    while (success := load.first_success_after(after)) is None:
        assert time.monotonic() < deadline, f"no write succeeded within {within}s"
        await asyncio.sleep(0.05)
    return success


async def stored_keys(app: Running) -> set[str]:
    conn = await asyncpg.connect(app.dsn)
    try:
        rows = await conn.fetch(
            "SELECT key FROM kv_entries WHERE app_id = $1 AND collection = 'w'",
            app.app_id,
        )
    finally:
        await conn.close()
    return {row["key"] for row in rows}


def check_answers(load: Load) -> None:
    """Every answer came in time, and each refusal is our 503; /healthz
    answered 503 naming the cause while Postgres was down, never a 500."""
    for status, took, body in load.health:
        assert took < ANSWER_WITHIN_S, (took, body)
        assert status in (200, 503), body
        if status == 503:
            assert body["postgres"]["error"].startswith("unreachable: "), body
    assert any(status == 503 for status, _, _ in load.health), load.health
    answers = load.answers
    slowest = max(answers, key=lambda a: a.took)
    assert slowest.took < ANSWER_WITHIN_S, slowest
    for answer in answers:
        assert answer.status in (200, 503), answer
        if answer.status == 503:
            assert answer.retry_after is not None, answer
            assert answer.retry_after.isdigit(), answer
            error = msgspec.json.decode(answer.body)["error"]
            assert {k: error[k] for k in UNAVAILABLE} == UNAVAILABLE, answer


def check_settled(load: Load, after: float) -> None:
    """Every write sent after ``after`` succeeded."""
    settled = [a for a in load.answers if a.started > after]
    assert settled, "no load after the recovery"
    assert all(a.status == 200 for a in settled), [
        a for a in settled if a.status != 200
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def causes(load: Load) -> str:
    """What /healthz named while Postgres was down."""
    named = {b["postgres"]["error"] for status, _, b in load.health if status == 503}
    return ", ".join(sorted(named))


@pytest.mark.timeout(300)
async def test_kill_9_of_the_postmaster_under_write_load_loses_no_acknowledged_write(
    app: Running, load: Load, capsys: pytest.CaptureFixture[str]
) -> None:
    load.start(CLIENTS)
    await wait_until(load, after=0.0, within=30)
    await asyncio.sleep(1.5)  # a steady load before the kill
    old_pid, _ = app.postmaster()
    killed = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    # The killed postmaster's backends may serve a few more queries on the
    # connections they hold: the outage starts with the first refusal.
    deadline = time.monotonic() + 30
    while (first_refusal := load.first_refusal_after(killed)) is None:
        assert time.monotonic() < deadline, "no request saw the outage"
        await asyncio.sleep(0.05)
    recovered = await wait_until(load, after=first_refusal.started, within=60)
    await asyncio.sleep(2.0)  # and a steady load after it
    await load.finish()

    check_answers(load)
    outage = [a for a in load.answers if killed <= a.ended < recovered.ended]
    refused = [a for a in outage if a.status == 503]
    assert refused, "no request saw the outage"
    check_settled(load, after=recovered.ended + 1.0)
    new_pid, _ = app.postmaster()
    assert new_pid != old_pid
    assert load.acknowledged <= await stored_keys(app)  # 0 acknowledged writes lost
    log = app.output()
    assert f"postmaster (pid {old_pid}) died and left postmaster.pid behind" in log
    assert f"embedded Postgres is running again (pid {new_pid})" in log
    took = [a.took for a in outage]
    with capsys.disabled():  # the measured figures belong in the test output
        print(  # noqa: T201
            f"\nkill -9 of the postmaster under {CLIENTS} writers:"
            f" {len(outage)} answers during the outage ({len(refused)} 503),"
            f" p50 {ms(statistics.median(took))}, max {ms(max(took))};"
            f" recovery (kill -> first success) {ms(recovered.ended - killed)};"
            f" {len(load.acknowledged)} writes acknowledged, all stored;"
            f" slowest answer overall {ms(max(a.took for a in load.answers))};"
            f" /healthz said: {causes(load)}"
        )


async def picloud_sessions(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'picloud'"
        )
    finally:
        await conn.close()
    return count


def smart_stop(pgdata: Path) -> subprocess.CompletedProcess[str]:
    """``pg_ctl stop -m smart``, as the server's own user (pg_ctl refuses root)."""
    with warnings.catch_warnings():  # platformdirs warns on headless machines
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC0415  # heavy

    pg_ctl = str(POSTGRES_BIN_PATH / "pg_ctl")
    return subprocess.run(
        [pg_ctl, "-D", str(pgdata), "-m", "smart", "-w", "-t", "120", "stop"],
        user="pgserver" if os.geteuid() == 0 else None,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


@pytest.mark.timeout(300)
async def test_a_smart_shutdown_of_postgres_completes_while_picloud_runs(
    app: Running, load: Load, capsys: pytest.CaptureFixture[str]
) -> None:
    load.start(1, pause=0.1)
    await wait_until(load, after=0.0, within=60)
    assert await picloud_sessions(app.dsn) > 0  # PiCloud holds connections
    old_pid, _ = app.postmaster()
    started = time.monotonic()
    stopped = await asyncio.to_thread(smart_stop, app.pgdata)
    took = time.monotonic() - started
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert took < SMART_STOP_WITHIN_S
    recovered = await wait_until(load, after=started + took, within=60)
    await load.finish()

    check_answers(load)
    assert load.acknowledged <= await stored_keys(app)
    assert f"postmaster (pid {old_pid}) shut down (postmaster.pid removed" in (
        app.output()
    )
    with capsys.disabled():  # the measured figures belong in the test output
        print(  # noqa: T201
            f"\npg_ctl stop -m smart under load: completed in {ms(took)};"
            f" writes again {ms(recovered.ended - started - took)} after it;"
            f" slowest answer {ms(max(a.took for a in load.answers))};"
            f" /healthz said: {causes(load)}"
        )
