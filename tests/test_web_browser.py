"""The status page in a real browser: headless Chromium loads it and we read its DOM."""

from __future__ import annotations

import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.daemon_kit import BUSY_TOKEN, TOKEN, daemon_process, memory_config
from tests.servers import free_port

pytestmark = pytest.mark.slow
BROWSER = next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)


class Page(HTMLParser):
    """The rows marked as syncs and the feed links of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[str] = []
        self.feeds: dict[str, str] = {}
        self._link: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tr" and values.get("class") == "sync":
            self.syncs.append(values.get("data-sync") or "")
        if tag == "a" and values.get("class") == "feed":
            self._link = values.get("href")

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self.feeds[data.strip()] = self._link
            self._link = None


@pytest.mark.skipif(
    BROWSER is None, reason="Chromium is not installed (Debian: apt-get install chromium)"
)
def test_the_status_page_shows_each_sync_and_its_feed_links(tmp_path: Path) -> None:
    assert BROWSER is not None
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(memory_config(tmp_path / "state.db", port))
    with daemon_process(config, port) as daemon:
        daemon.wait_healthy()
        deadline = time.monotonic() + 20
        while b"BEGIN:VEVENT" not in httpx.get(f"{daemon.url}/feeds/{TOKEN}.ics").content:
            assert time.monotonic() < deadline, daemon.output()
            time.sleep(0.1)
        dom = subprocess.run(
            [
                BROWSER,
                "--headless",
                "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
                "--disable-gpu",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--dump-dom",
                f"{daemon.url}/",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert dom.returncode == 0, dom.stderr
    page = Page()
    page.feed(dom.stdout)
    assert page.syncs == ["shop"]
    assert page.feeds == {
        "all": f"{daemon.url}/feeds/{TOKEN}.ics",
        "busy": f"{daemon.url}/feeds/{BUSY_TOKEN}.ics",
    }
    assert "healthy" in dom.stdout
