"""The PWA part of the desk in a real Chromium: the service worker keeps the shell, so the
desk opens with the link down (issue 13: "the shell loads on a flaky link")."""

from __future__ import annotations

from typing import Any

from support.desk_browser import OPEN, Served


def test_the_shell_opens_offline_once_the_service_worker_holds_it(browser: Any,
                                                                  served: Served) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US",
                              timezone_id="UTC", service_workers="allow",
                              bypass_csp=True)  # Playwright polls by eval
    OPEN.append(ctx)
    ctx.set_default_timeout(30_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(served.base + "/")
    page.get_by_label("User name").wait_for()
    # installed and controlling this page (the worker claims its clients on activation)
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    cached = page.evaluate("caches.open('campo-shell-v1').then((c) => c.keys())"
                           ".then((ks) => ks.map((r) => new URL(r.url).pathname))")
    assert "/" in cached and "/ui/js/app.js" in cached and "/manifest.webmanifest" in cached
    ctx.set_offline(True)
    try:
        page.reload()
        page.get_by_label("User name").wait_for()   # the shell, from the worker's cache
        assert page.get_by_label("Password").is_visible()
        # a file the worker never held is not invented: the link is really down
        status = page.evaluate("fetch('/api/health').then((r) => r.status, () => 'offline')")
        assert status == "offline"
    finally:
        ctx.set_offline(False)
    assert errors == []
