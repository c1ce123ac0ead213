"""Browser-test helpers: a real ``campo serve`` of the desk project (SQLite or PostgreSQL)
with users of each role, Debian's Chromium driven by Playwright, axe-core injected for the
accessibility pass, and screenshots kept as artifacts. (Fixtures are in conftest.py.)

Playwright's own browser download is never used: Chromium comes from Debian
(``apt-get install chromium``, done by ``.ci/run``) and is launched by path.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
AXE = Path(__file__).resolve().parents[1] / "browser" / "vendor" / "axe-core" / "axe.min.js"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "desk"
ARTIFACTS = Path(os.environ.get("CAMPO_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts")) / "browser"
PASSWORD = "desk-browser-pw-1"
ADMIN_PASSWORD = "desk-browser-admin-1"
USERS = {"sam": "supervisor", "otto": "operator", "vic": "viewer"}


def require_chromium() -> None:
    """Skip (fail under CI=true) when Debian's chromium is missing."""
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it with apt-get")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@dataclass
class Served:
    """A running ``campo serve``: its port, the db kind and admin/user tokens."""

    port: int
    db: str
    tokens: dict[str, str] = field(default_factory=dict)
    #: the served project folder and database URL (a second server can share them)
    root: Path | None = None
    url: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body: Any = None, user: str = "admin",
             raw: bytes | None = None, content_type: str = "application/json"
             ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        headers = {"Content-Type": content_type}
        if user in self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
            return resp.status, json.loads(text) if text else None
        finally:
            conn.close()

    def login(self, user: str, password: str) -> None:
        status, body = self.call("POST", "/api/auth/login", {"username": user,
                                                             "password": password})
        assert status == 200, body
        self.tokens[user] = body["access_token"]


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page PNG under the (gitignored) artifacts folder."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the current page."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


#: contexts opened by the running test (conftest closes them: each holds a WebSocket thread)
OPEN: list[Any] = []


def new_page(browser: Any, served: Served, *, lang: str = "en", width: int = 1280,
             height: int = 900) -> Any:
    """A fresh context (own storage) and page; CSP bypassed only so axe can be injected."""
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="en-US",
                              timezone_id="UTC", bypass_csp=True, service_workers="block")
    OPEN.append(ctx)
    ctx.set_default_timeout(15_000)
    ctx.add_init_script(f"localStorage.setItem('campo.lang', '{lang}')")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.js_errors = errors  # type: ignore[attr-defined]
    page.goto(served.base + "/")
    return page


def sign_in(page: Any, user: str, password: str = PASSWORD, lang: str = "en") -> None:
    """Fill the login form (in ``lang``) and wait for the shell."""
    words = {"en": ("User name", "Password", "Sign in"),
             "es": ("Usuario", "Contraseña", "Ingresar")}[lang]
    page.get_by_label(words[0]).fill(user)
    page.get_by_label(words[1]).fill(password)
    page.get_by_role("button", name=words[2]).click()
    page.wait_for_selector("nav.sidebar")


@contextmanager
def serving(root: Path, db: str, log: Path) -> Iterator[int]:
    """``campo serve`` on a free port with enough threads for a few open desks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPO_")}
    env.update(CAMPO_SIMULATE="false", CAMPO_SCADA="false", CAMPO_ADMIN_PASSWORD=ADMIN_PASSWORD,
               CAMPO_API_RATE_LIMIT="100000 per minute", CAMPO_LOGIN_RATE_LIMIT="1000 per minute")
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "serve", "--project", str(root),
             "--database-url", db, "--port", "0", "--threads", "16"],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    assert proc.stdout is not None
    try:
        port = None
        for line in proc.stdout:
            if line.startswith("serving on http://"):
                port = int(line.split()[2].rsplit(":", 1)[1])
                break
        assert port is not None, f"server did not start: {log.read_text()}"
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        finally:
            proc.stdout.close()
