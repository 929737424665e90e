"""Headless Chromium for the browser tests: Debian's chromium + chromium-driver, driven by Selenium.

The browser is never downloaded by a test library: when /usr/bin/chromium or /usr/bin/chromedriver
is missing, the Debian packages are installed with apt-get (as the devcloud launcher installs
MariaDB), and a machine where that is impossible fails the tests with apt's output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")
APT_TIMEOUT = 1200  # seconds: chromium is about 100 MiB of packages


class BrowserSetupError(RuntimeError):
    """Chromium could not be installed; the message carries apt's output."""


def _apt(*args: str) -> None:
    command = ["apt-get", *args]
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            raise BrowserSetupError(f"{' '.join(PACKAGES)} missing and not root (no sudo): install them")
        command = [sudo, "-n", *command]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=APT_TIMEOUT)
    if result.returncode != 0:
        raise BrowserSetupError(
            f"`{' '.join(command)}` exited {result.returncode}\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )


def ensure_chromium() -> tuple[Path, Path]:
    """Paths of chromium and chromedriver, installing Debian's packages first when either is missing."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        _apt("update")
        _apt("install", "-y", "--no-install-recommends", *PACKAGES)
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            raise BrowserSetupError(f"{path} is still missing after installing {' '.join(PACKAGES)}")
    return CHROMIUM, CHROMEDRIVER


# -- a browser on a served dashboard ------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"  # gitignored; reviewers open the PNGs
WAIT = 90.0  # seconds a page may take to show what a test waits for (the devcloud is slow under load)
WINDOW = (1280, 900)
PHONE = (390, 844)


def chrome(window: tuple[int, int] = WINDOW) -> WebDriver:
    """A headless Chromium (Debian's) driven through Debian's chromedriver; never a downloaded browser."""
    chromium, chromedriver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={window[0]},{window[1]}",
    ):
        options.add_argument(argument)
    if window == PHONE:
        # A desktop window cannot be narrower than about 500 px; emulate the phone's viewport instead.
        options.add_experimental_option(
            "mobileEmulation", {"deviceMetrics": {"width": window[0], "height": window[1], "pixelRatio": 2}}
        )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(chromedriver)))
    driver.set_page_load_timeout(WAIT)
    return driver


class Browser:
    """One browser session on the dashboard at `base_url`, with the steps the tests repeat."""

    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        url = str(self.driver.current_url)
        return url.removeprefix(self.base_url)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self) -> str:
        return str(self.find("body").text)

    def wait_for(self, css: str, timeout: float = WAIT) -> WebElement:
        element: WebElement = WebDriverWait(self.driver, timeout).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
        )
        return element

    def wait_until(
        self, what: str, check: Callable[[], bool], timeout: float = WAIT, poll: float = 0.5
    ) -> None:
        """Wait for `check()`; fail naming `what` and showing the page's text when it never holds."""
        deadline = time.monotonic() + timeout
        while not self._holds(check):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; page:\n{self.text()}")
            time.sleep(poll)

    @staticmethod
    def _holds(check: Callable[[], bool]) -> bool:
        try:
            return check()
        except WebDriverException:
            # htmx replaced the element, or the page was being replaced by the next one, between
            # finding and reading it (StaleElementReference, "node does not belong to the document"):
            # look again. A browser that is really gone fails the wait at its deadline.
            return False

    def fill(self, field_id: str, value: str) -> None:
        element = self.find(f"#{field_id}")
        element.clear()
        element.send_keys(value)

    def choose(self, field_id: str, *, text: str | None = None, value: str | None = None) -> None:
        select = Select(self.find(f"#{field_id}"))
        if value is not None:
            select.select_by_value(value)
        else:
            assert text is not None
            select.select_by_visible_text(text)

    def sign_in(self, username: str, password: str, project: str) -> None:
        self.open("/ui/login")
        self.fill("username", username)
        self.fill("password", password)
        self.fill("project", project)
        self.find("form.stack button[type=submit]").click()
        self.wait_for("header nav")

    def shot(self, name: str) -> Path:
        """Save the page as artifacts/screenshots/<name>.png (the whole page, not only the window)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        width = int(self.driver.execute_script("return document.documentElement.scrollWidth"))
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        size = self.driver.get_window_size()
        self.driver.set_window_size(max(size["width"], width), max(size["height"], min(height + 120, 4000)))
        try:
            assert self.driver.save_screenshot(str(path)), f"no screenshot saved at {path}"
        finally:
            self.driver.set_window_size(size["width"], size["height"])
        return path

    def cookies(self) -> dict[str, str]:
        return {c["name"]: c["value"] for c in self.driver.get_cookies()}

    def quit(self) -> None:
        self.driver.quit()


class Dashboard:
    """The served app: its base URL, and an admin API key for setting things up over the REST API."""

    def __init__(self, base_url: str, admin_key: str) -> None:
        self.base_url = base_url
        self.admin_key = admin_key

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=120
        )
