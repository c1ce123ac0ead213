"""An attachment field in the desk (Debian's Chromium via Playwright, real ``campo serve`` on
SQLite and PostgreSQL): a supervisor uploads a file from the form (name and size shown,
the server holds the same bytes), a file of the wrong type is refused at the field, the
download button saves the same bytes; a viewer sees name, size and download but no upload
control; removing the file and saving clears the field."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from support.desk_browser import Served, axe_violations, new_page, screenshot, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PDF = b"%PDF-1.4\n" + b"% plano de la locacion\n" * 200 + b"%%EOF\n"


def _pad(served: Served, code: str) -> dict[str, Any]:
    status, body = served.call("POST", "/api/field/pad", {"code": code, "site": "s"})
    assert status == 201, body
    return body


def test_upload_show_download_and_remove_in_the_form(browser: Any, served: Served,
                                                     tmp_path: Path) -> None:
    pad = _pad(served, f"AT-{served.db.upper()}")
    url = f"{served.base}/#/f/field/pad/{pad['id']}"
    page = new_page(browser, served)
    sign_in(page, "sam")
    page.goto(url)
    field = page.locator("[data-field=plan]")
    expect(field).to_contain_text("No file")
    # wrong content: a text file named .pdf is refused at the field by the server
    fake = tmp_path / "fake.pdf"
    fake.write_text("not a pdf at all\n")
    page.get_by_label("Site plan: Upload").set_input_files(str(fake))
    expect(field.locator(".field-error")).to_contain_text("not accepted")
    # larger than the field's max_size (64KB, from /api/meta): refused before sending
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-1.4\n" + bytes(70 * 1024))
    sent: list[str] = []
    page.on("request", lambda req: sent.append(req.url) if "/files/" in req.url else None)
    page.get_by_label("Site plan: Upload").set_input_files(str(big))
    expect(field.locator(".field-error")).to_contain_text("larger than 64")
    assert sent == []
    # a real PDF is uploaded at once: name and size shown, the server holds the bytes
    good = tmp_path / "plano PZ.pdf"
    good.write_bytes(PDF)
    page.get_by_label("Site plan: Upload").set_input_files(str(good))
    expect(page.locator(".msg.ok")).to_contain_text("File attached")
    expect(field.locator(".file-name")).to_have_text("plano PZ.pdf")
    expect(field.locator(".file-size")).to_contain_text("KB")
    expect(field.locator(".field-error")).to_have_count(0)
    status, rec = served.call("GET", f"/api/field/pad/{pad['id']}")
    assert status == 200 and rec["plan"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert rec["plan"]["size"] == len(PDF)
    assert axe_violations(page) == []
    screenshot(page, f"attachment-form-{served.db}")
    # the download button saves the same bytes under the file's name
    with page.expect_download() as info:
        field.get_by_role("button", name="Download").click()
    saved = tmp_path / "downloaded.pdf"
    info.value.save_as(saved)
    assert info.value.suggested_filename == "plano PZ.pdf"
    assert saved.read_bytes() == PDF
    # a viewer: name, size and download, no upload control
    viewer = new_page(browser, served, lang="es")
    sign_in(viewer, "vic", lang="es")
    viewer.goto(url)
    vfield = viewer.locator("[data-field=plan]")
    expect(vfield.locator(".file-name")).to_have_text("plano PZ.pdf")
    expect(vfield.get_by_role("button", name="Descargar")).to_be_visible()
    assert vfield.locator("input[type=file]").count() == 0
    assert vfield.get_by_role("button", name="Quitar archivo").count() == 0
    # removing the file and saving clears the field
    field.get_by_role("button", name="Remove file").click()
    expect(field).to_contain_text("No file")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".msg.ok")).to_contain_text("Saved")
    status, rec = served.call("GET", f"/api/field/pad/{pad['id']}")
    assert status == 200 and rec["plan"] is None
    assert page.js_errors == [] and viewer.js_errors == []
