"""Driving the web client (gateway/static) with Playwright and Debian's Chromium.

The browser is always /usr/bin/chromium (Debian's `chromium` package): Playwright never downloads
one (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1; no `playwright install`). When the package or the browser
is missing the tests fail and say what to install; they are never skipped.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

try:
    from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect, sync_playwright
except ImportError:  # each test fails with this message (a collection error would stop the whole suite)
    MISSING: str | None = (
        "The web client tests need the Python package `playwright` (a test extra): "
        "run `.venv/bin/pip install -e '.[test]'`. Do not run `playwright install`: the tests use /usr/bin/chromium."
    )
    expect = None  # type: ignore[assignment]
else:
    MISSING = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TESTS = Path(__file__).resolve().parents[1]
AXE = TESTS / "support" / "vendor" / "axe.min.js"
ARTIFACTS = TESTS / "artifacts"
TIMEOUT_MS = 15_000  # for every auto-waiting expect() and action
SERIOUS = ("serious", "critical")

if expect is not None:
    expect.set_options(timeout=TIMEOUT_MS)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; a clear failure (never a skip) when it or Playwright is missing."""
    if MISSING:
        pytest.fail(MISSING, pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the web client tests drive Debian's Chromium "
            "(`apt-get install -y chromium`); Playwright's own browser downloads are not used.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Client:
    """One user's tab in a browser context of its own, with what went wrong in it recorded."""

    page: Page
    user: str | None
    base: str
    dialogs: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("dialog", self._on_dialog)
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.errors.append(f"{self.user}: {error}"))

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{self.user}: {dialog.type} {dialog.message!r}")
        dialog.dismiss()

    def _on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(f"{self.user}: {message.text}")

    def problems(self) -> list[str]:
        return self.dialogs + self.csp_violations + self.errors

    def forget_problems(self) -> None:
        self.dialogs.clear()
        self.csp_violations.clear()
        self.errors.clear()

    # Signing in and the shell ---------------------------------------------------------------

    def sign_in(self) -> Client:
        """Open `/?user=<id>` and wait until the client is connected and caught up."""
        self.page.goto(f"{self.base}/?user={self.user}")
        expect(self.page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
        return self

    @property
    def badge(self) -> Locator:
        return self.page.get_by_test_id("unread-badge")

    @property
    def chat_button(self) -> Locator:
        """The chat bubble (aria-label "Messages"; the regex allows a name that adds the unread count)."""
        return self.page.get_by_role("button", name=re.compile(r"^Messages\b"))

    @property
    def panel(self) -> Locator:
        return self.page.get_by_test_id("messages-panel")

    def open_panel(self) -> None:
        if "open" not in (self.panel.get_attribute("class") or "").split():
            self.chat_button.click()
        expect(self.panel).to_have_class(re.compile(r"\bopen\b"))

    def show_list(self) -> None:
        """The open panel with only its list: back from any conversation or new message."""
        self.open_panel()
        back = self.page.get_by_test_id("panel-detail").get_by_role("button", name="Back to conversations")
        if back.count():
            back.click()
        expect(self.page.get_by_test_id("panel-detail")).to_be_empty()

    def item(self, conversation_id: str) -> Locator:
        return self.page.locator(f'[data-testid=conversation-item][data-id="{conversation_id}"]')

    def open_conversation(self, conversation_id: str) -> Locator:
        """Open a conversation from the panel's list; the conversation view once it shows."""
        self.open_panel()
        view = self.view(conversation_id)
        if not view.count():
            self.item(conversation_id).click()
        expect(view).to_be_visible()
        expect(view).to_have_attribute("aria-busy", "false")
        return view

    def view(self, conversation_id: str) -> Locator:
        return self.page.locator(f'[data-testid=conversation-view][data-id="{conversation_id}"]')

    def message(self, message_id: str) -> Locator:
        return self.page.locator(f'[data-testid=message][data-id="{message_id}"]')

    def message_with(self, text: str) -> Locator:
        """The one message of the open conversation whose body is exactly `text`."""
        bodies = self.page.get_by_test_id("message-body").filter(has_text=re.compile(f"^{re.escape(text)}$"))
        return self.page.get_by_test_id("message").filter(has=bodies)

    def send(self, text: str) -> str:
        """Write and send in the open conversation; the new message's id."""
        composer = self.page.get_by_test_id("composer")
        composer.get_by_role("textbox").fill(text)
        composer.get_by_role("button", name="Send", exact=True).click()
        sent = self.message_with(text)
        expect(sent).to_have_count(1)
        expect(composer.get_by_role("textbox")).to_have_value("")
        return sent.get_attribute("data-id") or ""

    def message_menu(self, message_id: str, choice: str) -> None:
        """Choose `choice` from a message's "Message options" menu."""
        self.message(message_id).get_by_role("button", name="Message options").click()
        self.page.get_by_role("menu").get_by_role("menuitem", name=choice, exact=True).click()

    def gear_menu(self, choice: str) -> None:
        self.page.get_by_role("button", name="Conversation settings").click()
        self.page.get_by_role("menu").get_by_role("menuitem", name=choice, exact=True).click()

    def confirm(self, button: str) -> None:
        dialog = self.page.get_by_test_id("confirm-dialog")
        dialog.get_by_role("button", name=button, exact=True).click()
        expect(dialog).to_have_count(0)

    # Checks ---------------------------------------------------------------------------------

    def serious_violations(self) -> list[dict[str, Any]]:
        """axe-core's violations of impact serious or critical on the page as it is now."""
        if not self.page.evaluate("() => typeof window.axe === 'object'"):
            self.page.add_script_tag(path=str(AXE))
        violations = self.page.evaluate(
            """async () => {
                const result = await axe.run(document, { resultTypes: ["violations"] });
                return result.violations.map((v) => ({
                    id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
                    nodes: v.nodes.map((n) => ({ target: n.target.join(" "), why: n.failureSummary, html: n.html })),
                }));
            }"""
        )
        return [v for v in violations if v["impact"] in SERIOUS]

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"web-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


class Tabs:
    """`tabs(user)`: that user's tab, signed in, in a browser context of its own, made once.

    `tabs(user, bypass_csp=True)` is a second context for the user that lets axe-core in;
    `tabs(None, bypass_csp=True)` one that is not signed in.
    """

    def __init__(self, browser: Browser, base: str) -> None:
        self.browser = browser
        self.base = base
        self.made: dict[tuple[str | None, bool], Client] = {}

    def __call__(self, user: str | None, *, bypass_csp: bool = False) -> Client:
        key = (user, bypass_csp)
        if key not in self.made:
            context = self.browser.new_context(
                bypass_csp=bypass_csp, reduced_motion="reduce", viewport={"width": 1280, "height": 800}
            )
            self.made[key] = Client(context.new_page(), user, self.base)
            if user:
                self.made[key].sign_in()
        return self.made[key]

    def take_problems(self) -> list[str]:
        """What went wrong in any tab since the last call."""
        problems = [p for each in self.made.values() for p in each.problems()]
        for each in self.made.values():
            each.forget_problems()
        return problems

    def close(self) -> None:
        for each in self.made.values():
            each.page.context.close()


def describe(violations: list[dict[str, Any]]) -> str:
    """axe violations, one block per rule, for a failure message a person can act on."""
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['url']})")
        for node in v["nodes"][:10]:
            lines.append(f"    at {node['target']}: {node['html'][:200]}")
            lines += [f"        {why}" for why in (node["why"] or "").splitlines()]
        if len(v["nodes"]) > 10:
            lines.append(f"    … and {len(v['nodes']) - 10} more")
    return "\n".join(lines)
