"""Drive Airflow 3.3's React UI with Playwright and the system Chromium (no browser download).

Selectors were read off the live DOM: the trigger button is ``data-testid=trigger-dag-button``;
the model is an ``enum`` Param (a combobox of the models that have a policy);
each Param ``section`` is an accordion item whose trigger id ends in ``:trigger:<section>``;
a Param's field is ``#element_<name>`` (text inputs, textareas) or, for an ``enum``, a
combobox next to the hidden ``input[name=element_<name>]``; the submit button is
``data-testid=trigger-dag-submit``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"


def _choose(dialog: Any, name: str, option_text: str) -> list[str]:
    """Pick an enum Param's option by its displayed text; returns every option offered."""
    field = dialog.locator(
        f"div[data-part=root]:has(> * input[name=element_{name}]), div[data-part=root]:has(input[name=element_{name}])"
    ).last
    field.get_by_role("combobox").click()
    options = dialog.page.get_by_role("option")
    options.first.wait_for()
    offered = [t.strip() for t in options.all_inner_texts()]
    dialog.page.get_by_role("option", name=option_text, exact=True).first.click()
    return offered


def login(page: Any, airflow_url: str, password: str, screenshot: Path | None = None) -> None:
    """Log in to Airflow's UI as admin (SimpleAuthManager's form)."""
    page.goto(f"{airflow_url}/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    if screenshot is not None:
        page.screenshot(path=str(screenshot))
    page.click("button[type=submit]")
    page.wait_for_url(f"{airflow_url}/", timeout=60_000)


def open_trigger_form(page: Any) -> tuple[Any, dict[str, Any]]:
    """On a DAG's page: open the trigger dialog and its Incident section; returns the dialog and what it showed."""
    page.get_by_test_id("trigger-dag-button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_test_id("trigger-dag-submit").wait_for()
    seen: dict[str, Any] = {
        "sections": [t.strip() for t in dialog.locator("button[data-part=item-trigger]").all_inner_texts()]
    }
    _open_section(dialog, "Incident")
    return dialog, seen


def _open_section(dialog: Any, section: str) -> None:
    trigger = dialog.locator(f"button[data-part=item-trigger][id$=':trigger:{section}']")
    if trigger.get_attribute("aria-expanded") != "true":
        trigger.click()
    dialog.locator(f"[id$=':content:{section}']").wait_for(state="visible")


def trigger_from_the_form(
    airflow_url: str,
    password: str,
    screenshots: Path,
    *,
    model: str,
    failure_type: str,
    severity: str,
    description: str,
) -> dict[str, Any]:
    """Log in, open incident_response, fill the trigger form, trigger. Returns what the form showed."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        try:
            login(page, airflow_url, password, screenshots / "01-login.png")
            page.goto(f"{airflow_url}/dags/incident_response")
            dialog, shown = open_trigger_form(page)
            seen.update(shown)
            content = dialog.locator("[id$=':content:Incident']")
            seen["titles"] = [t.strip() for t in content.locator("label").all_inner_texts()]
            seen["descriptions"] = [t.strip() for t in content.locator("[data-part=helper-text]").all_inner_texts()]
            page.screenshot(path=str(screenshots / "02-form-incident-section.png"))
            seen["model_options"] = _choose(dialog, "model", model)  # the models that have a policy
            seen["failure_type_options"] = _choose(dialog, "failure_type", failure_type)
            seen["severity_options"] = _choose(dialog, "severity", severity)
            dialog.locator("#element_description").fill(description)
            page.screenshot(path=str(screenshots / "03-form-filled.png"))
            submit = dialog.get_by_test_id("trigger-dag-submit")
            submit.wait_for(state="visible")
            if submit.is_disabled():
                raise AssertionError(f"the trigger button stayed disabled: {dialog.inner_text()}")
            submit.click()
            page.wait_for_timeout(3000)
            page.screenshot(path=str(screenshots / "04-triggered.png"))
        except Exception:
            page.screenshot(path=str(screenshots / "99-failure.png"))
            raise
        finally:
            browser.close()
    return seen


def answer_required_action(
    airflow_url: str,
    password: str,
    screenshots: Path,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    option: str,
) -> dict[str, Any]:
    """Log in, open the task's Required Actions (Airflow's human-in-the-loop form), click ``option``.

    Returns what the page showed before the click (its text) and how long the click took to
    be accepted (the form leaves the waiting state).
    """
    import time

    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        try:
            page.goto(f"{airflow_url}/")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{airflow_url}/", timeout=60_000)
            page.goto(f"{airflow_url}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/required_actions")
            button = page.get_by_role("button", name=option, exact=True)
            button.first.wait_for(timeout=60_000)
            seen["text"] = page.inner_text("body")
            page.screenshot(path=str(screenshots / "10-required-action.png"), full_page=True)
            started = time.monotonic()
            button.first.click()
            page.wait_for_timeout(2000)
            seen["click_seconds"] = time.monotonic() - started
            page.screenshot(path=str(screenshots / "11-answered.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(screenshots / "99-required-action-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    return seen
