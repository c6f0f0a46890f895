"""A studio tab as a person uses it: sign in, move between pages, screenshot each one,
and keep every console error and uncaught exception so a test can insist on none."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Studio:
    page: Any
    base: str
    shots: Path
    errors: list[str] = field(default_factory=list)

    @classmethod
    def open(
        cls, browser: Any, base: str, shots: Path, viewport: dict[str, int] = DESKTOP
    ) -> Studio:
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.set_default_timeout(15_000)
        studio = cls(page, base, shots)
        page.on("console", studio._console)
        page.on("pageerror", lambda exc: studio.errors.append(f"uncaught: {exc}"))
        page.goto(f"{base}/studio")
        return studio

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} at {message.location}")

    def sign_in(self, key: str) -> None:
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("heading", name="Live streams").wait_for()

    def go(self, hash_route: str, heading: str) -> None:
        self.page.goto(f"{self.base}/studio{hash_route}")
        self.page.get_by_role("heading", name=heading, exact=True).wait_for()

    def shoot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def overflows(self) -> bool:
        """True when the page scrolls sideways (it must fit a phone's width)."""
        return bool(
            self.page.evaluate("document.scrollingElement.scrollWidth > window.innerWidth + 1")
        )

    def close(self) -> None:
        self.page.context.close()
