"""The console on a real local stack for the browser tests: the Kafka and OpenSearch
stand-ins, the four services and the notifier as processes (its e-mail, chat and webhook
servers too), the local identity provider and the console,
on free ports in a temporary folder, stopped by process id; and headless Chromium (Debian's
``/usr/bin/chromium``, never a downloaded browser) driven by playwright. The publisher has
one channel besides the site's feed: a webhook with a 60-character limit (the editor's
channel counts)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from legation_devstack.console import console_ports
from legation_devstack.console_browser import (
    ASSETS,
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    Running,
    short_channel_env,
)
from legation_devstack.notify_local import NotifyServers
from legation_devstack.stack import NOTIFIER, SERVICES, Stack


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The whole stack with the console, once per test module."""
    if not (ASSETS / "htmx.min.js").exists() or not AXE.exists():
        pytest.fail("the console's front-end is not built: run `make console-assets`")
    workdir = tmp_path_factory.mktemp("console-stack")
    # The notifier's links point into this console: its ports are chosen first.
    ports = console_ports(fixed=False)
    notify = NotifyServers(workdir / "notify", console_url=ports.url).start()
    stack = Stack(workdir, extra_env={**short_channel_env(workdir), **notify.env()})
    stack.console = ports
    try:
        stack.start_infrastructure()
        for name in (*SERVICES, NOTIFIER):
            stack.start_service(name)
        stack.start_console()
        yield Running(stack, ports)
    finally:
        codes = stack.stop()
        notify.stop()
    # SIGTERM: every process, the console and the identity provider too, stops cleanly.
    assert set(codes.values()) == {0}, codes


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=list(CHROMIUM_ARGS),
        )
        try:
            yield launched
        finally:
            launched.close()
