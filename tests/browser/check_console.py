#!/usr/bin/env python3
"""Drives the deliveries console in a real browser, offline, as an operator would.

    check_console.py --base-url http://127.0.0.1:8000 tests/browser/expect/console.json

The server is `roundtrip/examples/deliveries_console.rs`: a billing app whose receiver fails
each message's first delivery, with two failed `invoice.paid` messages and one hostile one.
The steps:

1. The console asks for the key (the page was loaded without it); the key is typed in.
2. A filter the API refuses shows its 422 as text. The failed messages are found with the status filter; one is opened: its attempt
   timeline shows the receiver's 500.
3. Replay is clicked; the page updates by itself until the message has succeeded, and
   the receiver's log shows that it got the message again, answered 200.
4. The hostile message (markup, a 20 000-character word, invalid UTF-8, in its name,
   payload and the receiver's answer) is opened: the markup shows as text, nothing runs
   (no script, no image handler, no alert), and the page is no wider than the window.
5. The endpoints show their health; the event catalogue shows `invoice.paid` with its
   schema and example.

It fails, as check_docs.py does, on a request to another host, a failed request (but the
console page's own 401 before the key, and the 422 of the filter it gets wrong on purpose),
or a console error. Screenshots of every step go
to --artifacts; with --screenshots they are also the README's pictures (docs/console-*.png).
Every wait has a deadline; there is no fixed sleep.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_docs  # noqa: E402  (sets SE_OFFLINE before Selenium is imported)
from check_docs import CheckFailed, console_problems, network_problems, wait_for  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


class Console:
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
        path = os.path.join(self.artifacts, f"console-{name}.png")
        self.driver.save_screenshot(path)
        print(f"   saved {path}")

    def visible(self, element_id: str) -> bool:
        return bool(self.js(
            "const e = document.getElementById(arguments[0]);"
            "return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;", element_id))

    def text(self, element_id: str) -> str:
        return self.js("const e = document.getElementById(arguments[0]); return e ? e.textContent : '';", element_id)

    def click(self, element_id: str) -> None:
        wait_for(f"#{element_id} to be clickable", self.timeout,
                 lambda: self.visible(element_id) and not self.js(
                     "return document.getElementById(arguments[0]).disabled;", element_id))
        self.driver.find_element(By.ID, element_id).click()

    def rows(self) -> list[dict]:
        return self.js(
            "return [...document.querySelectorAll('#messages tbody tr')].map(r => ({"
            "id: r.dataset.id, cells: [...r.children].map(c => c.textContent)}));")

    def no_script_ran(self, where: str) -> None:
        pwned = self.js("return window.__pwned === undefined ? null : String(window.__pwned);")
        if pwned is not None:
            raise CheckFailed(f"{where}: markup from the data ran (window.__pwned = {pwned})")
        try:
            alert = self.driver.switch_to.alert
            raise CheckFailed(f"{where}: an alert opened: {alert.text}")
        except NoAlertPresentException:
            pass

    def step(self, what: str) -> None:
        print(f"   ok   {what}")

    def run(self) -> None:
        self.driver.get(self.base_url + self.expect["path"])
        wait_for("the key form", self.timeout, lambda: self.visible("unlock"))
        self.shot("unlock")
        self.driver.find_element(By.ID, "key").send_keys(self.expect["key"])
        self.click("unlock-button")
        wait_for("the messages", self.timeout, lambda: len(self.rows()) >= 3)
        self.step("unlocked with the key; the messages are listed")
        self.no_script_ran("the message list")

        # A filter the API refuses: its 422 is shown, in words, where it went wrong.
        self.driver.find_element(By.ID, "f-host").send_keys("evil.example/<b>x</b>")
        self.click("apply")
        wait_for("the refused host", self.timeout, lambda: self.visible("notice")
                 and "query.host" in self.text("notice") and "pattern" in self.text("notice"))
        self.no_script_ran("a refused filter")
        self.driver.find_element(By.ID, "f-host").clear()
        self.step("a bad host filter is refused with the API's 422, shown as text")

        # Find a failed message with the filters.
        self.driver.find_element(By.CSS_SELECTOR, '#filters input[value="failed"]').click()
        self.driver.find_element(By.ID, "f-event").send_keys("invoice.paid")
        self.click("apply")
        wait_for("only failed invoice.paid messages", self.timeout, lambda: (
            len(self.rows()) == 2
            and all(r["cells"][1] == "failed" and r["cells"][3] == "invoice.paid" for r in self.rows())))
        self.step("the status and event filters find the two failed invoice.paid messages")
        self.shot("messages")
        target = self.rows()[0]["id"]
        self.js("document.querySelector(`#messages tr[data-id='${arguments[0]}'] td.id button`).click();", target)
        wait_for("the message page", self.timeout, lambda: self.visible("view-message") and self.text("m-status") == "failed")
        wait_for("the failed attempt", self.timeout, lambda: "HTTP 500" in self.text("m-attempts"))
        self.step(f"{target} shows its failed attempt (HTTP 500)")

        # Replay it; the page follows it until it succeeded, and the receiver got it.
        self.click("m-replay")
        wait_for("the replay to succeed", self.timeout * 2, lambda: self.text("m-status") == "succeeded")
        wait_for("the second attempt", self.timeout, lambda: "HTTP 200" in self.text("m-attempts"))
        self.step(f"{target} was replayed and succeeded, the page updating by itself")
        self.shot("message")
        self.driver.get(self.base_url + "/receiver/log")
        log = wait_for("the receiver's log", self.timeout, lambda: self.driver.find_element(By.TAG_NAME, "body").text)
        if f"{target} 500" not in log or f"{target} 200" not in log:
            raise CheckFailed(f"the receiver did not get {target} again: {log}")
        self.step("the receiver got the message again and answered 200")

        # The hostile message: shown as text, nothing runs, nothing overflows.
        self.driver.get(self.base_url + self.expect["path"])
        wait_for("the messages", self.timeout, lambda: len(self.rows()) >= 3)
        hostile = [r for r in self.rows() if r["cells"][3].startswith("hostile.")]
        if len(hostile) != 1 or hostile[0]["cells"][3] != "hostile.<b>event</b>":
            raise CheckFailed(f"the hostile event name is not shown as text: {hostile}")
        self.js("document.querySelector(`#messages tr[data-id='${arguments[0]}'] td.id button`).click();", hostile[0]["id"])
        wait_for("the hostile payload", self.timeout, lambda: "<script>" in self.text("m-payload"))
        wait_for("the hostile answer", self.timeout, lambda: "<script>" in self.text("m-attempts"))
        payload = self.text("m-payload")
        if "A" * 20000 not in payload or "\ufffd" not in payload:
            raise CheckFailed("the long word or the replaced bytes are missing from the payload")
        if "not valid UTF-8" not in self.text("m-payload-note"):
            raise CheckFailed("the payload is not marked as invalid UTF-8")
        markup = self.js("return document.querySelectorAll('main script, main img, main b').length;")
        if markup:
            raise CheckFailed(f"{markup} element(s) from the data were made into markup")
        self.no_script_ran("the hostile message")
        overflow = self.js("return document.documentElement.scrollWidth - window.innerWidth;")
        if overflow > 20:
            raise CheckFailed(f"the page is {overflow}px wider than the window")
        self.step("the hostile message shows its markup as text; nothing ran or overflowed")
        self.shot("hostile")

        # Endpoints with health, and the event catalogue.
        self.click("tab-endpoints")
        wait_for("the endpoint", self.timeout, lambda: "/receiver/hooks" in self.text("endpoints"))
        wait_for("its health", self.timeout, lambda: "%" in self.text("endpoints"))
        self.step("the endpoint shows its success rate")
        self.shot("endpoints")
        self.click("tab-events")
        wait_for("the catalogue", self.timeout, lambda: "invoice.paid" in self.text("events")
                 and "amount_cents" in self.text("events"))
        self.step("the event catalogue shows invoice.paid with its schema and example")
        self.shot("events")
        self.no_script_ran("the end")


def page_problems(driver, base_url: str, console_path: str) -> list[str]:
    """check_docs' problems, but for the console page's own 401 before the key was typed."""
    own = base_url.rstrip("/") + console_path
    refused = "host=evil.example"  # the filter the check types on purpose: a 422 is right
    problems = []
    for problem in network_problems(driver, base_url):
        if problem == f"HTTP 401 for {own}" or (problem.startswith("HTTP 422 for") and refused in problem):
            continue
        problems.append(problem)
    for problem in console_problems(driver):
        if ("401" in problem and console_path in problem) or ("422" in problem and refused in problem):
            continue
        problems.append(problem)
    return problems


def main() -> int:
    return check_docs.run_page_check(
        "console",
        __doc__.split("\n\n")[0],
        lambda driver, base_url, expect, timeout, artifacts: Console(driver, base_url, expect, timeout, artifacts).run(),
        lambda driver, base_url, expect: page_problems(driver, base_url, expect["path"]),
    )


if __name__ == "__main__":
    sys.exit(main())
