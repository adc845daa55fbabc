"""Screenshots of the workspace for docs/screenshots/ (run by hand: `.venv/bin/python -m tests.web_screenshots`).

The same seeded workspace as the browser tests, with a little work recorded first, at 390 px and 1440 px.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.store_helpers import PASSWORD
from tests.web_helpers import CHROMIUM, Server, workspace

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
WIDTHS = (390, 1440)


def _sign_in(browser, url: str, who: str, width: int):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1).new_page()
    page.goto(url + "/app/login")
    page.get_by_label("Username").fill(who)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app/*")
    return page


def main(out: Path = OUT) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        store, ids, book_dir = workspace(tmp)
        with Server(f"sqlite:///{tmp / 'workspace.db'}", tmp, book_dir) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = _sign_in(browser, url, "ana", 1440)  # some work first: a promise, a voicemail with a note
            page.goto(f"{url}/app/items/{ids.shared_ana}")
            page.get_by_text("Right party — what was agreed").click()
            page.get_by_label("Promise to pay").check()
            page.get_by_label("Promised amount ($)").fill("75")
            page.get_by_label("Note", exact=True).fill("Will pay on Friday; asked for a statement by e-mail.")
            page.get_by_role("button", name="Record right-party call").click()
            page.get_by_label("Note (optional)").fill("Left a message with the callback number.")
            page.get_by_role("button", name="Voicemail").click()
            page.wait_for_url("**/app/items/*")
            for width in WIDTHS:
                ana = _sign_in(browser, url, "ana", width)
                ana.screenshot(path=out / f"calls-{width}.png", full_page=width == 1440)
                ana.goto(f"{url}/app/items/{ids.ana[2]}")
                ana.get_by_text("Right party — what was agreed").click()
                ana.screenshot(path=out / f"card-{width}.png", full_page=True)
                sue = _sign_in(browser, url, "sue", width)
                sue.screenshot(path=out / f"supervisor-{width}.png", full_page=True)
                sue.goto(url + "/app/insights")
                sue.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
                sue.screenshot(path=out / f"insights-{width}.png", full_page=True)
            browser.close()
        store.dispose()
    print(f"screenshots in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
