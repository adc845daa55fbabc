"""The workspace in a real browser: Playwright drives Debian's Chromium against the app served by uvicorn.

Covers the issue's list: sign in; the list in rank order with reasons; right party + promise moves to the next item
and the guarantor's other account leaves a second specialist's list; a disabled call explains itself; another's item
by URL is a 403; a form without its CSRF token is refused; a `<script>` note is shown as text; the supervisor sees
the promise; the insights charts render as non-empty images.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from serving.store.models import Outcome, WorkItem
from tests.store_helpers import PASSWORD
from tests.web_helpers import Server, chromium_or_fail, workspace

SCRIPT_NOTE = "<script>window.__pwned = 1</script> asked about the bill"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    executable = chromium_or_fail()
    tmp = tmp_path_factory.mktemp("workspace")
    store, ids, book_dir = workspace(tmp)
    with Server(f"sqlite:///{tmp / 'workspace.db'}", tmp, book_dir) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield {"url": url, "ids": ids, "store": store, "browser": browser}
        finally:
            browser.close()
            store.dispose()


def sign_in(site: dict[str, Any], who: str, width: int = 1440) -> Any:
    """A fresh browser context signed in as `who`; returns its page."""
    context = site["browser"].new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(site["url"] + "/app/login")
    page.get_by_label("Username").fill(who)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app/*")
    return page


def test_sign_in_and_list_in_rank_order_with_reasons(site):
    page = sign_in(site, "ana")
    assert page.url.endswith("/app/calls")
    assert page.get_by_role("heading", name="My calls today").is_visible()
    ranks = [int(r) for r in page.locator("ol.calls > li").evaluate_all("els => els.map(e => e.dataset.rank)")]
    assert ranks == sorted(ranks) and len(ranks) == 7
    first = page.locator("ol.calls > li").first
    assert "paid twice in the last year" in first.inner_text()
    text = first.inner_text().lower()
    assert "window open" in text and "calls left (7 in 7)\n7 of 7" in text
    cookie = next(c for c in page.context.cookies() if c["name"] == "payrank_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    page.context.close()


def test_right_party_promise_moves_on_and_leaves_the_other_list(site):
    ids = site["ids"]
    bo = sign_in(site, "bo")
    assert bo.locator("ol.calls > li[data-account]").count() == 1
    page = sign_in(site, "ana")
    page.goto(f"{site['url']}/app/items/{ids.shared_ana}")
    page.get_by_text("Right party — what was agreed").click()
    page.get_by_label("Promise to pay").check()
    page.get_by_label("Promised amount ($)").fill("75")
    page.get_by_role("button", name="Record right-party call").click()
    page.wait_for_url(f"**/app/items/{ids.ana[1]}?recorded={ids.shared_ana}")
    assert "Here is your next call" in page.get_by_role("status").inner_text()
    bo.goto(site["url"] + "/app/calls")
    assert bo.locator("ol.calls > li").count() == 0
    taken_off = bo.locator("section.withdrawn").inner_text()
    assert "one call per guarantor" in taken_off and "another account of this guarantor was called today" in taken_off
    for p in (page, bo):
        p.context.close()


def test_a_disabled_call_explains_itself(site):
    page = sign_in(site, "ana", width=390)
    page.goto(f"{site['url']}/app/items/{site['ids'].closed}")
    button = page.get_by_role("button", name="No answer")
    assert button.is_disabled()
    why = page.locator("#why-not").inner_text()
    assert "Calling window closed" in why and "Pacific/Honolulu" in why
    assert button.get_attribute("aria-describedby") == "why-not"
    page.goto(f"{site['url']}/app/items/{site['ids'].capped}")
    assert "7-in-7 reached" in page.locator("#why-not").inner_text()
    page.context.close()


def test_another_specialists_item_by_url_is_403(site):
    page = sign_in(site, "ana")
    answer = page.goto(f"{site['url']}/app/items/{site['ids'].shared_bo}")
    assert answer.status == 403
    assert "belongs to another specialist" in page.get_by_role("alert").inner_text()
    page.context.close()


def test_a_form_without_its_csrf_token_is_refused(site):
    page = sign_in(site, "ana")
    item = site["ids"].ana[2]
    answer = page.request.post(f"{site['url']}/app/items/{item}/outcome", form={"outcome": "no_answer"})
    assert answer.status == 403
    answer = page.request.post(f"{site['url']}/app/items/{item}/outcome", form={"outcome": "no_answer", "csrf": "x"})
    assert answer.status == 403
    with site["store"].session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Outcome).where(Outcome.item_id == item)) == 0
        assert s.get(WorkItem, item).status == "open"
    page.context.close()


def test_a_script_in_a_note_is_shown_as_text(site):
    page = sign_in(site, "ana")
    item = site["ids"].ana[2]
    page.goto(f"{site['url']}/app/items/{item}")
    page.get_by_label("Note (optional)").fill(SCRIPT_NOTE)
    page.get_by_role("button", name="Voicemail").click()
    page.wait_for_url("**/app/items/*?recorded=*")
    page.goto(f"{site['url']}/app/items/{item}")
    assert page.locator(".usernote").inner_text() == SCRIPT_NOTE
    assert page.evaluate("window.__pwned") is None
    page.context.close()


def test_supervisor_sees_the_promise(site):
    page = sign_in(site, "sue")
    assert page.url.endswith("/app/supervisor")
    promises = page.locator("#promises").inner_text()
    assert "ana" in promises and "promise $75.00" in promises
    assert "Promises today: 1, $75.00" in page.get_by_role("heading", name="Promises today").inner_text()
    assert "payrank/test" in page.locator(".sub").first.inner_text()
    page.context.close()


UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map(e => e.name || e.id)"""


@pytest.mark.parametrize("who", ["ana", "sue"])
def test_pages_fit_a_phone_and_every_control_is_labelled(site, who):
    page = sign_in(site, who, width=390)
    paths = ["/app/calls", f"/app/items/{site['ids'].ana[2]}", "/app/insights"]
    for path in paths + (["/app/supervisor"] if who == "sue" else []):
        page.goto(site["url"] + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        assert page.evaluate(UNLABELLED) == [], path
    page.context.close()


def test_insights_charts_render(site):
    page = sign_in(site, "sue")
    page.goto(site["url"] + "/app/insights")
    images = page.locator(".charts img")
    assert images.count() == 8
    page.wait_for_function(
        "() => [...document.querySelectorAll('.charts img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=60_000,
    )
    for n in range(images.count()):
        src = images.nth(n).get_attribute("src")
        svg = page.request.get(site["url"] + src).text()
        assert svg.count("<path") > 10 and "A0" not in svg.split("</metadata>")[-1].split("<text")[0]
        box = images.nth(n).bounding_box()
        assert box["width"] > 300 and box["height"] > 100
    page.context.close()
