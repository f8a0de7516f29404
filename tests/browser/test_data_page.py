"""The data page at ``/`` and the API reference at ``/docs`` in Chromium, offline, against a
real server: what a person with a browser can do, by mouse and by keyboard."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from livedata.auth.keys import new_key
from tests.browser.conftest import Watched


@pytest.fixture(scope="module")
def url(serve: Callable[..., str]) -> str:
    return serve()


def only_this_origin(seen: Watched, url: str) -> None:
    """Nothing was asked of another host and the console reported no error (no CSP
    violation, no failed load)."""
    assert [r for r in seen.requests if not r.startswith((url, "blob:", "data:"))] == []
    assert seen.console_errors == []


def write_key(directory: Path, grant: str) -> str:
    """``directory/access.toml`` with one API key holding ``grant`` (TOML lines); the key."""
    key, digest = new_key("dashboard")
    (directory / "access.toml").write_text(f'[api_keys.dashboard]\nhash = "{digest}"\n{grant}\n')
    return key


def rows(page: Page) -> Locator:
    return page.locator("#rows tbody tr")


def first_cells(page: Page) -> list[str]:
    return page.locator("#rows tbody tr td:first-child").all_inner_texts()


def open_entry(page: Page, url: str, name: str) -> None:
    page.goto(f"{url}/")
    page.get_by_role("button", name=name, exact=True).click()
    expect(page.locator("#request-heading")).to_contain_text(name)


def test_docs_render_offline(watched: Watched, url: str) -> None:
    page = watched.page
    page.goto(f"{url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("livedata")
    expect(page.locator(".opblock-summary-path", has_text="/query").first).to_be_visible()
    only_this_origin(watched, url)


def test_a_named_query_with_parameters_paged_forward_and_back(
    watched: Watched, url: str, tmp_path: Path
) -> None:
    page = watched.page
    open_entry(page, url, "countries_by_region")
    expect(page.get_by_label("region", exact=True)).to_have_js_property("tagName", "SELECT")
    page.get_by_label("region", exact=True).select_option("Africa")
    page.get_by_label("min_population").fill("1000000")
    page.get_by_label("Rows per page").select_option("25")
    page.get_by_role("button", name="Run").click()

    expect(rows(page)).to_have_count(25)
    expect(page.locator("#page-range")).to_have_text(re.compile(r"^Rows 1 to 25 of \d+$"))
    total = page.locator("#page-range").inner_text().rsplit(" ", 1)[1]
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()
    expect(page.locator("#summary")).to_contain_text("Cache-Status: livedata;")
    expect(page.locator("#summary")).to_contain_text("total")
    first_page = first_cells(page)
    assert first_page[0] == "NGA"  # the most populous first

    page.get_by_role("button", name="Next page").click()  # with the first page's cursor
    expect(page.locator("#page-range")).to_have_text(re.compile(rf"Rows 26 to \d+ of {total}"))
    assert set(first_cells(page)).isdisjoint(first_page)

    page.get_by_role("button", name="Previous page").click()
    expect(page.locator("#page-range")).to_have_text(f"Rows 1 to 25 of {total}")
    assert first_cells(page) == first_page
    # The same page asked again: the client revalidated what it kept and the server said 304
    # (a page of the same snapshot), not asking the source again although Chromium added
    # "Cache-Control: max-age=0" to the conditional request.
    expect(page.locator("#summary")).to_contain_text("304")
    expect(page.locator("#summary")).to_contain_text("Cache-Status: livedata; hit")
    page.screenshot(path=tmp_path / "data-page.png", full_page=True)
    only_this_origin(watched, url)


@pytest.mark.parametrize(
    ("query", "label", "value"),
    [
        pytest.param("countries_by_region", "min_population", "-5", id="below-min"),
        pytest.param("country", "codes", "FRA, jp", id="list-item-pattern"),
    ],
)
def test_a_value_breaking_its_rules_is_refused_by_the_form(
    watched: Watched, url: str, query: str, label: str, value: str
) -> None:
    page = watched.page
    open_entry(page, url, query)
    asked = len(watched.requests)
    page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("alert")).to_contain_text(label)
    assert len(watched.requests) == asked, "nothing was sent"
    expect(page.get_by_label(label, exact=True)).to_be_focused()


def test_a_value_the_server_refuses_is_shown_with_its_request_id(
    watched: Watched, serve: Callable[..., str], tmp_path: Path
) -> None:
    """Only the server knows that this key is held to Europe."""
    key = write_key(
        tmp_path, 'queries = ["countries_by_region"]\nrestrictions = { region = "Europe" }'
    )
    url = serve(auth_file=tmp_path / "access.toml")
    page = watched.page
    page.goto(f"{url}/")
    page.get_by_label("API key or embed token").fill(key)
    page.get_by_role("button", name="Use").click()
    page.get_by_role("button", name="countries_by_region").click()
    page.get_by_label("region", exact=True).select_option("Asia")
    page.get_by_role("button", name="Run").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("region")
    expect(alert).to_contain_text(re.compile(r"request id [0-9a-f]{16}"))
    expect(page.locator("#result")).to_be_hidden()
    page.get_by_label("region", exact=True).select_option("Europe")
    page.get_by_role("button", name="Run").click()
    expect(rows(page).first).to_be_visible()
    expect(alert).to_be_hidden()


def test_date_parameters_are_date_inputs_with_their_bounds(watched: Watched, url: str) -> None:
    page = watched.page
    open_entry(page, url, "revenue_by_shipmode")
    shipped_from = page.get_by_label("shipped_from", exact=True)
    expect(shipped_from).to_have_attribute("type", "date")
    expect(shipped_from).to_have_attribute("min", "1992-01-01")
    expect(shipped_from).to_have_attribute("max", "1998-12-31")
    expect(shipped_from).to_have_value("1994-01-01")  # the default
    shipped_from.fill("1995-03-01")
    page.get_by_label("shipped_before", exact=True).fill("1995-04-01")
    page.get_by_role("button", name="Run").click()
    expect(rows(page)).to_have_count(7)  # one per ship mode
    expect(page.locator("#rows thead th")).to_have_text(["ship_mode", "items", "revenue"])


def test_a_table_filtered_and_sorted_and_downloaded(watched: Watched, url: str) -> None:
    page = watched.page
    open_entry(page, url, "world_country_list")
    page.get_by_label("Column").select_option("region")
    page.get_by_label("Condition").select_option("eq")
    page.get_by_label("Value").fill("Oceania")
    page.get_by_role("button", name="Add filter").click()
    expect(page.locator("#filters li")).to_have_text(re.compile(r'region = "Oceania"'))
    page.get_by_label("Order by").select_option("population")
    page.get_by_label("Direction").select_option("desc")
    page.get_by_role("button", name="Run").click()
    expect(rows(page).first).to_be_visible()
    assert first_cells(page)[:3] == ["AU", "PG", "NZ"]  # alpha_2

    with page.expect_download() as download:
        page.get_by_role("button", name="CSV").click()
    assert download.value.suggested_filename == "world_country_list.csv"
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith('"alpha_2","alpha_3"')
    assert len(lines) == 1 + page.locator("#rows tbody tr").count()
    only_this_origin(watched, url)


def test_the_catalog_column_descriptions_are_shown(watched: Watched, url: str) -> None:
    page = watched.page
    guide = page.locator("#column-guide")
    open_entry(page, url, "countries_by_region")
    expect(guide).to_be_hidden()  # the bundled catalog describes none of its columns
    open_entry(page, url, "world_country_list")
    page.get_by_text("What the columns hold").click()
    expect(guide.locator("dt").first).to_have_text("alpha_2 (string)")
    expect(guide.get_by_text("ISO 3166-1 alpha-3 code.")).to_be_visible()
    page.get_by_role("button", name="Run").click()
    alpha_3 = page.locator("#rows thead th").nth(1)
    expect(alpha_3).to_have_attribute("title", "string: ISO 3166-1 alpha-3 code.")
    expect(page.locator("#rows thead th").nth(3)).to_have_attribute("title", "string")  # name
    only_this_origin(watched, url)


def test_keyboard_only_and_every_control_labelled(watched: Watched, url: str) -> None:
    page = watched.page
    page.goto(f"{url}/")
    query = page.get_by_role("button", name="countries_by_region")
    query.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#request-heading")).to_be_focused()
    page.get_by_label("region", exact=True).focus()
    page.keyboard.press("ArrowDown")  # Africa -> Americas
    page.get_by_label("min_population").focus()
    page.keyboard.type("100000000")
    page.keyboard.press("Enter")  # submits the form
    expect(rows(page)).to_have_count(3)  # USA, BRA, MEX
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, button')]
            .filter((c) => !c.closest('[hidden]'))
            .filter((c) => !c.labels?.length && !c.ariaLabel && !c.textContent.trim())
            .map((c) => c.id || c.outerHTML)"""
    )
    assert unlabelled == []


def test_a_pasted_api_key_shows_what_it_may_run(
    watched: Watched, serve: Callable[..., str], tmp_path: Path
) -> None:
    key = write_key(tmp_path, 'queries = ["country"]')
    url = serve(auth_file=tmp_path / "access.toml")
    page = watched.page
    page.goto(f"{url}/")
    expect(page.locator("#catalog-status")).to_contain_text("Paste an API key")
    page.get_by_label("API key or embed token").fill(key)
    page.get_by_role("button", name="Use").click()
    expect(page.locator("#queries li")).to_have_count(1)
    expect(page.get_by_role("button", name="country", exact=True)).to_be_visible()
    expect(page.locator("#tables li")).to_have_count(0)
    page.get_by_role("button", name="country", exact=True).click()
    page.get_by_label("codes").fill("FRA,JPN")
    page.get_by_role("button", name="Run").click()
    expect(rows(page)).to_have_count(2)
    # The 401 of the catalog before the key was pasted is the only console error.
    assert all("401" in e for e in watched.console_errors), watched.console_errors
