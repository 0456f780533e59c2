"""Helpers of the console's browser tests (services/console/tests/integration): the running
stack, a browser session signed in as a demo person through the local identity provider,
axe-core on a page. Playwright drives Debian's Chromium (``/usr/bin/chromium``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Page

from legation_devstack.console import ConsolePorts
from legation_devstack.oidc_provider import DEMO_PEOPLE
from legation_devstack.stack import Stack

CHROMIUM = "/usr/bin/chromium"
# The console's front-end, built by `make console-assets` (axe-core is one of its npm
# development packages).
CONSOLE = Path(__file__).resolve().parents[4] / "services" / "console"
ASSETS = CONSOLE / "build" / "assets"
AXE = CONSOLE / "web" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)


# A channel with a short text limit beside the site's feed, for the editor's channel counts:
# a webhook, never chosen by default (nothing is delivered to it unless a test chooses it).
SHORT_CHANNEL = "short-hook"
SHORT_LIMIT = 60


def short_channel_env(folder: Path) -> dict[str, str]:
    """The publisher's environment for a channels file with :data:`SHORT_CHANNEL` (written
    into ``folder``) and its signing secret."""
    channels = {
        "channels": [
            {
                "name": SHORT_CHANNEL,
                "kind": "webhook",
                "options": {"url": "http://127.0.0.1:9/hook", "max_text_length": SHORT_LIMIT},
                "secrets": {"signing_secret": "CONSOLE_TEST_HOOK_SECRET"},
            }
        ]
    }
    path = folder / "channels.json"
    path.write_text(json.dumps(channels), encoding="utf-8")
    return {"LEGATION_PUBLISHER_CHANNELS_FILE": str(path), "CONSOLE_TEST_HOOK_SECRET": "s" * 32}


@dataclass
class Running:
    stack: Stack
    console: ConsolePorts

    @property
    def url(self) -> str:
        return self.console.url

    def log(self, name: str) -> str:
        return (self.stack.log_dir / f"{name}.log").read_text(errors="replace")


@dataclass
class Session:
    """One person's browser session; ``csp_violations`` collects what the page's
    Content-Security-Policy blocked (it must stay empty)."""

    page: Page
    csp_violations: list[str] = field(default_factory=list)


def sign_in(browser: Browser, running: Running, username: str, path: str = "/") -> Session:
    """A new browser context signed in as the demo person ``username`` through the local
    identity provider (authorization code + PKCE), left on ``path``."""
    person = next(p for p in DEMO_PEOPLE if p.username == username)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    session = Session(page)
    page.on(
        "console",
        lambda message: (
            session.csp_violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.goto(running.url + path)
    assert page.url.startswith(running.console.issuer + "/authorize?"), page.url
    assert "code_challenge_method=S256" in page.url
    page.get_by_role("button", name=f"Sign in as {person.name} ({username})").click()
    page.wait_for_url(running.url + path)
    return session


def screenshot(page: Page, name: str) -> None:
    """Saves the page as ``<name>.png`` into ``$LEGATION_CONSOLE_SCREENSHOTS`` when that is
    set (how the README's screenshots are made: run the browser tests with it)."""
    folder = os.environ.get("LEGATION_CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations on the page as it is now. axe is evaluated
    through the DevTools protocol, which the page's CSP does not govern."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[list[str]] = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => [v.id, v.impact, v.nodes.map(n => n.target.join(' ')).join('; ')]);
        }"""
    )
    return [" ".join(item) for item in found]
