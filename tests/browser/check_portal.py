#!/usr/bin/env python3
"""Drives the customer portal in a real browser, offline, as a customer would.

    check_portal.py --base-url http://127.0.0.1:8000 tests/browser/expect/portal.json

The server is the webhooks example (`example-webhooks serve --allow-loopback
--retry-schedule 100ms`), with its admin key in the expectations file. The steps:

1. The API mints the customer's link (`POST /portal/links` with the admin key); the page
   opened with it takes the token out of the address bar.
2. The customer adds an endpoint for `new-subscription` with the form; its secret is shown
   once. The endpoint is the app's own `/nowhere`, which answers 404, so deliveries fail.
3. A user subscribes (`POST /subscriptions/`); the customer opens the endpoint's delivery
   log, finds the failed message, opens it (its attempts show the 404), and replays it:
   it is attempted again.
4. The customer rotates the secret (a new one is shown) and sends a test event, which
   appears in the log.
5. A page opened without a link, or with a forged one, shows no data.

It fails, as check_docs.py does, on a request to another host, a failed request (but the
forged link's 401), or a console error. Every wait has a deadline; there is no fixed sleep.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_docs  # noqa: E402  (sets SE_OFFLINE before Selenium is imported)
from check_docs import CheckFailed, console_problems, network_problems, wait_for  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


def http(base_url: str, method: str, path: str, body: dict, headers: dict | None = None) -> dict:
    request = urllib.request.Request(
        base_url.rstrip("/") + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback only)
        return json.loads(response.read() or b"null")


class Portal:
    def __init__(self, driver, base_url: str, expect: dict, timeout: float, artifacts: str):
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self.expect = expect
        self.timeout = timeout
        self.artifacts = artifacts

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def shot(self, name: str) -> None:
        os.makedirs(self.artifacts, exist_ok=True)
        path = os.path.join(self.artifacts, f"portal-{name}.png")
        self.driver.save_screenshot(path)
        print(f"   saved {path}")

    def visible(self, element_id: str) -> bool:
        return bool(self.js(
            "const e = document.getElementById(arguments[0]);"
            "return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;", element_id))

    def text(self, element_id: str) -> str:
        return self.js("const e = document.getElementById(arguments[0]); return e ? e.textContent : '';", element_id)

    def click(self, element_id: str) -> None:
        wait_for(f"#{element_id} to be visible", self.timeout, lambda: self.visible(element_id))
        self.driver.find_element(By.ID, element_id).click()

    def rows(self, table: str) -> list[list[str]]:
        return self.js(
            "return [...document.querySelectorAll(`#${arguments[0]} tbody tr`)]"
            ".map(r => [...r.children].map(c => c.textContent));", table)

    def step(self, what: str) -> None:
        print(f"   ok   {what}")

    def open_log(self) -> None:
        self.js("document.querySelector('#endpoints tbody tr button').click();")
        wait_for("the endpoint's page", self.timeout, lambda: self.visible("endpoint-section"))

    def run(self) -> None:
        admin = {"X-Admin-Key": self.expect["admin_key"]}
        link = http(self.base_url, "POST", "/portal/links", {"customer_id": self.expect["customer"]}, admin)
        self.driver.get(self.base_url + link["url"])
        wait_for("the events to choose from", self.timeout,
                 lambda: self.js("return document.querySelectorAll('#add-events input').length;") >= 1)
        if "token" in self.driver.current_url:
            raise CheckFailed(f"the token stayed in the address bar: {self.driver.current_url}")
        wait_for("the empty endpoint list", self.timeout, lambda: "No endpoint yet" in self.text("endpoints"))
        self.step("the link opens the portal, and the token leaves the address bar")

        form = self.driver.find_element(By.ID, "add")
        form.find_element(By.NAME, "url").send_keys(self.base_url + "/nowhere")
        form.find_element(By.NAME, "description").send_keys("<b>billing</b>")
        self.js("document.querySelector('#add-events input[value=\"new-subscription\"]').click();")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for("the secret", self.timeout, lambda: self.text("secret-value").startswith("whsec_"))
        first_secret = self.text("secret-value")
        wait_for("the endpoint in the list", self.timeout,
                 lambda: any("/nowhere" in r[0] and "new-subscription" in r[1] for r in self.rows("endpoints")))
        self.step("an endpoint is added for new-subscription; its secret is shown once")
        self.shot("endpoints")

        http(self.base_url, "POST", "/subscriptions/",
             {"username": "Rick", "monthly_fee": 9.99, "start_date": "2026-01-01T00:00:00Z"})
        self.open_log()

        def failed_rows():
            self.js("document.getElementById('back').click();")
            wait_for("the endpoint list", self.timeout, lambda: self.visible("endpoints-section"))
            wait_for("the endpoint row", self.timeout, lambda: len(self.rows("endpoints")) == 1)
            self.open_log()
            rows = wait_for("the log", self.timeout, lambda: self.rows("messages") or None)
            return [r for r in rows if r[2] == "failed"] or None

        failed = wait_for("the failed delivery", self.timeout * 2, failed_rows)
        message_id = failed[0][0]
        self.js("document.querySelector('#messages tbody tr button').click();")
        wait_for("the message", self.timeout, lambda: self.text("message-id") == message_id)
        wait_for("its 404 attempts", self.timeout, lambda: self.text("attempts").count("HTTP 404") == 2)
        if '"username":"Rick"' not in self.text("payload").replace(" ", ""):
            raise CheckFailed(f"the payload is not shown: {self.text('payload')}")
        self.step(f"the log shows {message_id} failed, with its payload and two 404 attempts")
        self.shot("message")
        self.click("replay")
        wait_for("the replay", self.timeout, lambda: "Replayed" in self.text("status"))

        def attempts_after_replay():
            self.js("document.getElementById('back').click();")
            wait_for("the endpoint list", self.timeout, lambda: self.visible("endpoints-section"))
            wait_for("the endpoint row", self.timeout, lambda: len(self.rows("endpoints")) == 1)
            self.open_log()
            wait_for("the log", self.timeout, lambda: self.rows("messages"))
            self.js("document.querySelector('#messages tbody tr button').click();")
            wait_for("the message", self.timeout, lambda: self.text("message-id") == message_id)
            return self.text("attempts").count("HTTP 404") >= 3 and self.text("message-state").count("failed")

        wait_for("the replayed attempts", self.timeout * 2, attempts_after_replay)
        self.step("replay sends the failed message again (a third attempt)")

        self.js("document.getElementById('back').click();")
        wait_for("the endpoint list", self.timeout, lambda: len(self.rows("endpoints")) == 1)
        self.open_log()
        self.click("rotate")
        wait_for("the new secret", self.timeout,
                 lambda: self.text("secret-value").startswith("whsec_") and self.text("secret-value") != first_secret)
        self.step("rotating the secret shows the new one")
        self.click("test")
        wait_for("the test event", self.timeout, lambda: "Test event new-subscription queued" in self.text("status"))
        wait_for("the test event in the log", self.timeout, lambda: len(self.rows("messages")) == 2)
        self.step("a test event is queued and shows in the log")
        self.shot("log")
        markup = self.js("return document.querySelectorAll('main b').length;")
        if markup:
            raise CheckFailed("the endpoint's description became markup")

        # Without a link, or with a forged one: nothing.
        self.js("sessionStorage.clear();")
        self.driver.get(self.base_url + self.expect["path"])
        wait_for("the request for a link", self.timeout, lambda: "Open this page with the link" in self.text("status"))
        forged = link["token"].rsplit(".", 1)[0] + ".AAAA"
        self.driver.get(self.base_url + self.expect["path"] + "#token=" + forged)
        wait_for("the refusal", self.timeout, lambda: "not valid or has expired" in self.text("status"))
        if self.visible("endpoints-section") and self.rows("endpoints"):
            raise CheckFailed("a forged link shows endpoints")
        self.step("a page without a link, or with a forged one, shows no data")


def page_problems(driver, base_url: str) -> list[str]:
    """check_docs' problems, but for the forged link's 401s, which the check asked for."""
    problems = []
    for problem in network_problems(driver, base_url):
        if problem.startswith("HTTP 401 for ") and "/portal/api/" in problem:
            continue
        problems.append(problem)
    for problem in console_problems(driver):
        if "401" in problem and "/portal/api/" in problem:
            continue
        problems.append(problem)
    return problems


def main() -> int:
    return check_docs.run_page_check(
        "portal",
        __doc__.split("\n\n")[0],
        lambda driver, base_url, expect, timeout, artifacts: Portal(driver, base_url, expect, timeout, artifacts).run(),
        lambda driver, base_url, expect: page_problems(driver, base_url),
    )


if __name__ == "__main__":
    sys.exit(main())
