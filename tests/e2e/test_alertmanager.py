"""An alert reaches a receiver: real Prometheus and Alertmanager (Debian's), departments
killed then started again, and a webhook receiver run by this test.

The rules are the committed ones with InstanceDown's `for:` shortened, and Alertmanager's
config is observability/alertmanager/alertmanager.yml (routes, grouping, inhibition) with
this test's webhook as both receivers and 1 s group waits: the notification must come
through the `page` route, grouped by service, with its runbook URL; while it fires, a
burn-rate alert of departments is inhibited and one of users is not; `resolved` once the
service is back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from tests.e2e.gateway_stack import answers, wait_until
from tests.e2e.observability_stack import Proc, require, service_env, spawn
from tests.servers import Servers
from tools import keys
from tools.deploy import alertmanager, prometheus
from tools.local.ports import free_port
from tools.local.service_process import ServiceProcess

SCRAPE = 1.0  # s: scrape and rule evaluation interval
FOR = "1s"  # InstanceDown's `for:` here (1m in the committed rules)
GROUP_WAIT = "1s"
# scrape + for + evaluation + group wait, each a second, plus the processes' own delays on
# a loaded machine: an upper bound, not a pause
DELIVERY = 30 * SCRAPE


class Receiver:
    """The webhook Alertmanager posts to: every notification, in order."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.notifications.append(await request.json())
        return web.Response()

    def find(self, status: str, alertname: str) -> dict[str, Any] | None:
        for note in self.notifications:
            for alert in note["alerts"]:
                if alert["status"] == status and alert["labels"]["alertname"] == alertname:
                    return {**note, "alert": alert}
        return None


@contextlib.asynccontextmanager
async def webhook(receiver: Receiver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


def short_rules(tmp: Path) -> Path:
    """The committed rule files, InstanceDown's `for:` shortened."""
    rules = tmp / "rules"
    rules.mkdir()
    for path in prometheus.RULES.glob("*.yml"):
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == "InstanceDown":
                    rule["for"] = FOR
        (rules / path.name).write_text(yaml.safe_dump(document, sort_keys=False))
    return rules


async def test_instance_down_reaches_the_receiver_and_resolves(
    tmp_path: Path, servers: Servers, migrated_db: Callable[[str], str]
) -> None:
    require("prometheus")
    require(alertmanager.BINARY)
    keys.main(["--dir", str(tmp_path / "keys")])
    env = service_env("departments", migrated_db("departments"), free_port(), tmp_path)
    receiver = Receiver()
    procs: list[Proc] = []
    service = ServiceProcess(env, tmp_path / "departments.log", name="departments")
    try:
        async with webhook(receiver) as hook:
            hooks = {"webhook_configs": [{"url": hook, "send_resolved": True}]}
            am_conf = tmp_path / "alertmanager.yml"
            am_conf.write_text(
                alertmanager.render(
                    alertmanager.config(
                        {"page": hooks, "ticket": hooks}, GROUP_WAIT, group_interval=GROUP_WAIT
                    )
                )
            )
            am_listen = f"127.0.0.1:{free_port()}"
            command = alertmanager.command(am_conf, tmp_path / "am", am_listen)
            procs.append(spawn("alertmanager", command, tmp_path))
            listen = f"127.0.0.1:{free_port()}"
            conf = tmp_path / "prometheus.yml"
            targets = {"departments": [f"127.0.0.1:{service.port}"]}
            conf.write_text(
                prometheus.local_config(
                    targets, f"{SCRAPE:g}s", alertmanager=am_listen, rules=short_rules(tmp_path)
                )
            )
            command = prometheus.prometheus_command(conf, tmp_path / "tsdb", listen)
            procs.append(spawn("prometheus", command, tmp_path))
            for url in (f"http://{am_listen}", f"http://{listen}"):
                await wait_until(lambda u=url: answers(f"{u}/-/ready"), f"{url} ready", 30)
            await service.wait_healthy()

            async def scraped() -> bool:
                return bool(await up(listen))

            await wait_until(scraped, "departments scraped up", DELIVERY)
            service.stop()  # SIGKILL

            async def fired() -> bool:
                return receiver.find("firing", "InstanceDown") is not None

            await wait_until(fired, "InstanceDown delivered to the webhook", DELIVERY)
            note = receiver.find("firing", "InstanceDown")
            assert note is not None
            assert note["receiver"] == "page"
            assert note["groupLabels"] == {"service": "departments"}
            assert note["alert"]["labels"]["severity"] == "page"
            assert note["alert"]["labels"]["job"] == "departments"
            assert note["alert"]["annotations"]["runbook_url"] == "docs/runbooks/InstanceDown.md"
            assert (prometheus.ROOT / note["alert"]["annotations"]["runbook_url"]).is_file()

            await burn_alerts_are_inhibited_for_the_down_service(f"http://{am_listen}", receiver)

            service = ServiceProcess(env, tmp_path / "departments-2.log", name="departments")
            await service.wait_healthy()

            async def resolved() -> bool:
                return receiver.find("resolved", "InstanceDown") is not None

            await wait_until(resolved, "InstanceDown resolved at the webhook", DELIVERY)
    finally:
        service.stop()
        for proc in procs:
            proc.stop()


async def up(listen: str) -> list[Any]:
    """departments' `up` samples equal to 1."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{listen}/api/v1/query", params={"query": "up == 1"}) as resp,
    ):
        result: list[Any] = (await resp.json())["data"]["result"]
        return result


def burn(service: str) -> dict[str, Any]:
    labels = {"alertname": "ErrorBudgetBurn", "service": service, "slo": "availability"}
    return {"labels": {**labels, "severity": "page"}}


async def burn_alerts_are_inhibited_for_the_down_service(am: str, receiver: Receiver) -> None:
    """Burn-rate alerts sent straight to Alertmanager while departments' InstanceDown fires:
    departments' is suppressed (inhibited by it), users' goes out in its own group."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{am}/api/v2/alerts", json=[burn("departments"), burn("users")]):
            pass

        async def states() -> dict[str, dict[str, Any]]:
            async with http.get(f"{am}/api/v2/alerts") as resp:
                listed: list[dict[str, Any]] = await resp.json()
            return {
                a["labels"]["service"]: a["status"]
                for a in listed
                if a["labels"]["alertname"] == "ErrorBudgetBurn"
            }

        async def both_listed() -> bool:
            return len(await states()) == 2

        await wait_until(both_listed, "both burn alerts listed by Alertmanager", DELIVERY)
        status = await states()
    assert status["departments"]["state"] == "suppressed"
    assert status["departments"]["inhibitedBy"]
    assert status["users"]["state"] == "active"

    async def users_notified() -> bool:
        note = receiver.find("firing", "ErrorBudgetBurn")
        return note is not None and note["groupLabels"] == {"service": "users"}

    await wait_until(users_notified, "users' burn alert delivered, grouped by service", DELIVERY)
