#!/usr/bin/env python3
"""Checks in a real browser that an app's Swagger UI and ReDoc pages render, offline.

    check_docs.py --base-url http://127.0.0.1:8000 tests/browser/expect/NAME.json

Drives Debian's Chromium through /usr/bin/chromedriver with Selenium (the driver path is
given, and SE_OFFLINE=true, so Selenium never tries to download a driver or a browser).
The expectations file lists pages and, for each, steps run in order:

    {"see": ["text", ...]}    every text appears (visible) in the current scope
    {"expand": "OP"}          Swagger UI: opens the operation OP, found in the current scope by
                              operationId, summary, "METHOD /path", or path (a webhook's
                              name); it becomes the scope
    {"tab": "Callbacks"}      Swagger UI: clicks that tab of the operation in scope
    {"section": "Webhooks"}   Swagger UI: the scope becomes the tag section, "Webhooks" or
                              "Schemas" with that heading
    {"click": "text"}         clicks the innermost visible element in scope with exactly that text
    {"scope": "page"}         the scope becomes the whole page again

A page fails if a step times out, if the page requests anything from a host other than the
server under test, if a request to the server fails or gets a status >= 400, or if the
console reports an error. Requests are read from Chrome's performance log (the DevTools
Network events): that catches an attempted request even where the network namespace made
it fail at once, and names the URL. scripts/browser-test also runs all of this in a network
namespace with only loopback, so nothing could leave the machine in any case.

Every wait has a deadline (--timeout, per wait); there is no fixed sleep. On failure a
screenshot and the page's text are written to --artifacts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

os.environ["SE_OFFLINE"] = "true"  # before Selenium is imported: never fetch a driver

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    ElementClickInterceptedException,
    ElementNotInteractableException,
    JavascriptException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]
# Schemes that never reach the network. Anything else must go to the server under test.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-extension", "chrome-untrusted", "devtools"}
POLL = 0.1  # seconds between two looks at the page while waiting

# JavaScript run in the page. Text is compared after removing zero-width spaces (Swagger UI
# puts them in paths) and collapsing whitespace.
JS_NORMALIZE = r"""
const norm = (s) => (s || '').replace(/[\u200b\u00ad]/g, '').replace(/\s+/g, ' ').trim();
"""
JS_FIND_OPERATIONS = JS_NORMALIZE + r"""
const [scope, wanted] = arguments;
const w = norm(wanted);
const hits = [];
for (const op of scope.querySelectorAll('.opblock')) {
  const link = op.querySelector('.opblock-summary-path a, .opblock-summary-operation-id');
  const href = link && link.getAttribute('href') ? decodeURIComponent(link.getAttribute('href')) : '';
  const operationId = href.startsWith('#/') ? href.split('/').slice(2).join('/') : '';
  const summaryEl = op.querySelector('.opblock-summary-description');
  const summary = summaryEl ? norm(summaryEl.textContent) : '';
  const methodEl = op.querySelector('.opblock-summary-method');
  const pathEl = op.querySelector('.opblock-summary-path');
  const method = methodEl ? norm(methodEl.textContent).toUpperCase() : '';
  const path = pathEl ? norm(pathEl.getAttribute('data-path') || pathEl.textContent) : '';
  const byMethodPath = w.includes(' ') && (method + ' ' + path) === (w.split(' ')[0].toUpperCase() + ' ' + w.split(' ').slice(1).join(' '));
  // A webhook's "path" is its name, e.g. "new-subscription".
  if (operationId === w || summary === w || path === w || byMethodPath) hits.push(op);
}
return hits;
"""
JS_FIND_SECTION = JS_NORMALIZE + r"""
const [wanted] = arguments;
const w = norm(wanted);
for (const section of document.querySelectorAll('.opblock-tag-section')) {
  const h = section.querySelector('.opblock-tag');
  if (h && (h.getAttribute('data-tag') === wanted || norm(h.querySelector('span') ? h.querySelector('span').textContent : h.textContent) === w)) return section;
}
for (const section of document.querySelectorAll('.webhooks, section.models')) {
  const h = section.querySelector('h2, h4');
  if (h && norm(h.textContent) === w) return section;
}
return null;
"""
JS_FIND_TAB = JS_NORMALIZE + r"""
const [op, wanted] = arguments;
const w = norm(wanted);
const body = op.querySelector('.opblock-body') || op;
for (const tab of body.querySelectorAll('.tab-header .tab-item')) {
  if (norm(tab.textContent) === w) return tab;
}
return null;
"""
JS_FIND_CLICKABLE = JS_NORMALIZE + r"""
const [scope, wanted] = arguments;
const w = norm(wanted);
const visible = (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
let best = null;
for (const e of scope.querySelectorAll('*')) {
  if (norm(e.innerText) !== w || !visible(e)) continue;
  // The innermost match; then climb to the element that handles the click, if any.
  if (!best || best.contains(e)) best = e;
}
if (!best) return null;
return best.closest('button, a, [role=button], [role=tab], summary, label') || best;
"""
JS_TEXT = JS_NORMALIZE + "return norm(arguments[0].innerText);"
JS_STATE = r"""
const text = document.body ? document.body.innerText : '';
return {
  ready: document.readyState,
  swaggerInfo: !!document.querySelector('.swagger-ui .information-container .info'),
  swaggerError: (() => { const e = document.querySelector('.swagger-ui .errors-wrapper, .swagger-ui .loading-container .errors'); return e ? e.innerText : null; })(),
  swaggerOps: document.querySelectorAll('.swagger-ui .opblock').length,
  redocReady: !!document.querySelector('.redoc-wrap .api-content'),
  redocError: text.includes('Something went wrong...') ? text.slice(0, 500) : null,
};
"""


class CheckFailed(Exception):
    """A step did not hold; the message says what was expected and what was seen."""


@dataclass
class Result:
    passed: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)


def wait_for(what: str, timeout: float, probe: Callable[[], Any]) -> Any:
    """Calls probe until it returns a truthy value, or fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except (StaleElementReferenceException, JavascriptException) as err:
            last_error = err  # the page is re-rendering: look again
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error.msg})" if last_error else ""
            raise CheckFailed(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(POLL)


def start_browser(user_data_dir: str, server_host: str, page_load_timeout: float) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    # Resolve no name but the server's: even run outside a network namespace, no DNS query
    # leaves the browser. An attempted request still shows in the performance log.
    options.add_argument(f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {server_host}")
    # The first tab would otherwise open the default search engine's new-tab page (seen:
    # https://start.duckduckgo.com/ with Debian's Chromium 156), before any page is tested.
    options.add_experimental_option("prefs", {
        "session.restore_on_startup": 4,  # open the URLs below
        "session.startup_urls": ["about:blank"],
    })
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    driver.set_script_timeout(page_load_timeout)
    return driver


class PageCheck:
    """Runs one page's steps, keeping the current scope as a way to find it again (React
    may replace nodes while it renders)."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, page: dict[str, Any], timeout: float):
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self.page = page
        self.timeout = float(page.get("timeout", timeout))
        self.ui = page.get("ui", "swagger")
        self.scope_name = "page"
        self.scope: Callable[[], WebElement | None] = lambda: driver.find_element("tag name", "body")

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> None:
        url = self.base_url + self.page["path"]
        self.driver.get(url)
        if self.ui == "swagger":
            def rendered() -> bool:
                state = self.driver.execute_script(JS_STATE)
                if state["swaggerError"]:
                    raise CheckFailed(f"Swagger UI reports an error: {state['swaggerError']}")
                return state["swaggerInfo"] and state["swaggerOps"] >= int(self.page.get("min_operations", 1))
            wait_for(f"Swagger UI to render the document's operations at {url}", self.timeout, rendered)
        elif self.ui == "redoc":
            def rendered() -> bool:
                state = self.driver.execute_script(JS_STATE)
                if state["redocError"]:
                    raise CheckFailed(f"ReDoc reports an error: {state['redocError']}")
                return state["redocReady"]
            wait_for(f"ReDoc to render at {url}", self.timeout, rendered)
        else:
            wait_for(f"{url} to load", self.timeout,
                     lambda: self.driver.execute_script("return document.readyState") == "complete")
        if "title" in self.page:
            wanted = self.page["title"]
            wait_for(f"the title {wanted!r} (it is {self.driver.title!r})", self.timeout,
                     lambda: self.driver.title == wanted)

    # -- steps -----------------------------------------------------------------------------

    def run(self, step: dict[str, Any]) -> str:
        if len(step) != 1:
            raise CheckFailed(f"a step has exactly one action, not {sorted(step)}")
        (action, arg), = step.items()
        handler = getattr(self, f"step_{action}", None)
        if handler is None:
            raise CheckFailed(f"unknown step {action!r} (see: see, expand, tab, section, click, scope)")
        handler(arg)
        return f"{action} {json.dumps(arg, ensure_ascii=False)}"

    def current_scope(self) -> WebElement:
        element = self.scope()
        if element is None:
            raise StaleElementReferenceException(f"the scope {self.scope_name} is gone")
        return element

    def step_see(self, texts: list[str] | str) -> None:
        texts = [texts] if isinstance(texts, str) else texts
        wanted = [" ".join(t.replace("\u200b", "").split()) for t in texts]
        seen = {"text": ""}

        def all_visible() -> bool:
            seen["text"] = self.driver.execute_script(JS_TEXT, self.current_scope())
            return all(t in seen["text"] for t in wanted)

        try:
            wait_for(f"{wanted} in {self.scope_name}", self.timeout, all_visible)
        except CheckFailed as err:
            missing = [t for t in wanted if t not in seen["text"]]
            raise CheckFailed(f"{err}; missing {missing}; the scope shows: {seen['text'][:600]!r}") from None

    def find_operation(self, scope: WebElement, wanted: str) -> WebElement | None:
        hits = self.driver.execute_script(JS_FIND_OPERATIONS, scope, wanted)
        if len(hits) > 1:
            raise CheckFailed(f"{wanted!r} names {len(hits)} operations in {self.scope_name}; "
                              "use its operationId")
        return hits[0] if hits else None

    def step_expand(self, wanted: str) -> None:
        self.require_swagger("expand")
        parent_find, parent_name = self.scope, self.scope_name

        def parent() -> WebElement:
            element = parent_find()
            if element is None:
                raise StaleElementReferenceException(f"the scope {parent_name} is gone")
            return element

        op = wait_for(f"the operation {wanted!r} in {self.scope_name}", self.timeout,
                      lambda: self.find_operation(parent(), wanted))
        if "is-open" not in (op.get_attribute("class") or ""):
            self.click(op.find_element("css selector", ".opblock-summary-control"))
        self.scope = lambda: self.find_operation(parent(), wanted)
        self.scope_name = f"operation {wanted!r}"
        wait_for(f"the operation {wanted!r} to open", self.timeout,
                 lambda: "is-open" in (self.current_scope().get_attribute("class") or "")
                 and self.current_scope().find_elements("css selector", ".opblock-body"))

    def step_tab(self, label: str) -> None:
        self.require_swagger("tab")
        if not self.scope_name.startswith("operation"):
            raise CheckFailed("'tab' needs an operation in scope: 'expand' one first")
        tab = wait_for(f"the tab {label!r} in {self.scope_name}", self.timeout,
                       lambda: self.driver.execute_script(JS_FIND_TAB, self.current_scope(), label))
        if "active" not in (tab.get_attribute("class") or "").split():
            self.click(tab.find_element("css selector", "h4, button, span"))
        wait_for(f"the tab {label!r} to be active", self.timeout,
                 lambda: "active" in (self.driver.execute_script(JS_FIND_TAB, self.current_scope(), label)
                                      .get_attribute("class") or "").split())

    def step_section(self, heading: str) -> None:
        self.require_swagger("section")
        finder = lambda: self.driver.execute_script(JS_FIND_SECTION, heading)  # noqa: E731
        wait_for(f"the section {heading!r}", self.timeout, finder)
        self.scope, self.scope_name = finder, f"section {heading!r}"

    def step_click(self, text: str) -> None:
        element = wait_for(f"something to click showing {text!r} in {self.scope_name}", self.timeout,
                           lambda: self.driver.execute_script(JS_FIND_CLICKABLE, self.current_scope(), text))
        self.click(element)

    def step_scope(self, name: str) -> None:
        if name != "page":
            raise CheckFailed(f"'scope' only resets to \"page\", not {name!r}")
        self.scope = lambda: self.driver.find_element("tag name", "body")
        self.scope_name = "page"

    def require_swagger(self, action: str) -> None:
        if self.ui != "swagger":
            raise CheckFailed(f"'{action}' is a Swagger UI step; this page is {self.ui!r}")

    def click(self, element: WebElement) -> None:
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        try:
            element.click()
        except (ElementClickInterceptedException, ElementNotInteractableException):
            self.driver.execute_script("arguments[0].click();", element)


def network_problems(driver: webdriver.Chrome, base_url: str) -> list[str]:
    """Requests to other hosts, and failed requests, from Chrome's performance log."""
    server = urllib.parse.urlsplit(base_url)
    problems: list[str] = []
    urls: dict[str, str] = {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        method, params = message.get("method"), message.get("params", {})
        if method in ("Network.requestWillBeSent", "Page.frameStartedNavigating"):
            # A document's request id is its loader id; a failed navigation may never get
            # a requestWillBeSent, only frameStartedNavigating.
            url = params["request"]["url"] if "request" in params else params.get("url", "")
            request_id = params.get("requestId") or params.get("loaderId", "")
            if urls.get(request_id) == url:
                continue
            urls[request_id] = url
            parts = urllib.parse.urlsplit(url)
            if parts.scheme in LOCAL_SCHEMES:
                continue
            if parts.scheme not in ("http", "https") or parts.netloc != server.netloc:
                problems.append(f"request to another host: {url[:200]}")
        elif method == "Network.webSocketCreated":
            problems.append(f"WebSocket opened: {params.get('url', '')[:200]}")
        elif method == "Network.responseReceived":
            response = params["response"]
            if response.get("status", 0) >= 400 and not response["url"].startswith("data:"):
                problems.append(f"HTTP {response['status']} for {response['url'][:200]}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            url = urls.get(params["requestId"], "(a request not seen starting)")
            if urllib.parse.urlsplit(url).scheme not in LOCAL_SCHEMES:
                problems.append(f"request failed ({params.get('errorText')}): {url[:200]}")
    return problems


def console_problems(driver: webdriver.Chrome) -> list[str]:
    problems = []
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            problems.append(f"console error: {entry.get('message', '')[:300]}")
        else:
            print(f"   console {entry.get('level')}: {entry.get('message', '')[:300]}")
    return problems


def save_artifacts(driver: webdriver.Chrome, artifacts: str, name: str) -> None:
    try:
        os.makedirs(artifacts, exist_ok=True)
        path = os.path.join(artifacts, name)
        driver.save_screenshot(path + ".png")
        with open(path + ".txt", "w", encoding="utf-8") as out:
            out.write(driver.execute_script("return document.body ? document.body.innerText : ''"))
        print(f"   saved {path}.png and {path}.txt")
    except (WebDriverException, OSError) as err:
        print(f"   could not save artifacts: {err}")



def run_page_check(
    name: str,
    description: str,
    run: Callable[[webdriver.Chrome, str, dict, float, str], None],
    page_problems: Callable[[webdriver.Chrome, str, dict], list[str]],
) -> int:
    """The command line of a check that drives one page of an app (the console, the portal):
    starts Chromium offline, runs `run(driver, base_url, expect, timeout, artifacts)`, adds
    what `page_problems` finds in the browser's logs, and prints PASS or FAIL with each
    problem. The exit status is 1 when anything failed."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("expect", help=f"tests/browser/expect/{name}.json")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--artifacts", default=os.path.join(tempfile.gettempdir(), "browser-test"))
    parser.add_argument("--screenshots", action="store_true", help="accepted for check_docs.py's interface")
    args = parser.parse_args()
    with open(args.expect, encoding="utf-8") as f:
        expect = json.load(f)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-", ignore_cleanup_errors=True) as profile:
        server_host = urllib.parse.urlsplit(args.base_url).hostname or "127.0.0.1"
        driver = start_browser(profile, server_host, page_load_timeout=max(args.timeout, 30.0))
        problems: list[str] = []
        try:
            run(driver, args.base_url, expect, args.timeout, args.artifacts)
        except CheckFailed as err:
            problems.append(str(err))
        except WebDriverException as err:
            problems.append(f"browser error: {err.msg}")
        problems += page_problems(driver, args.base_url, expect)
        if problems:
            save_artifacts(driver, args.artifacts, f"{name}-failed")
        driver.quit()
    for problem in problems:
        print(f"   FAIL {name}: {problem}")
    print(f"{'FAIL' if problems else 'PASS'} {name} ({time.monotonic() - started:.1f}s)")
    return 1 if problems else 0

def check(driver: webdriver.Chrome, base_url: str, expect: dict[str, Any], timeout: float,
          artifacts: str, screenshots: bool) -> Result:
    result = Result()
    for index, page in enumerate(expect["pages"]):
        label = page.get("name", page["path"])
        started = time.monotonic()
        checker = PageCheck(driver, base_url, page, timeout)
        problems: list[str] = []
        step_text = "load"
        try:
            checker.load()
            print(f"   ok   {label}: loaded ({time.monotonic() - started:.1f}s)")
            for step in page.get("steps", []):
                step_started = time.monotonic()
                step_text = json.dumps(step, ensure_ascii=False)
                done = checker.run(step)
                print(f"   ok   {label}: {done} ({time.monotonic() - step_started:.1f}s)")
        except CheckFailed as err:
            problems.append(f"step {step_text}: {err}")
        except WebDriverException as err:
            problems.append(f"step {step_text}: browser error: {err.msg}")
        problems += network_problems(driver, base_url)
        problems += console_problems(driver)
        elapsed = time.monotonic() - started
        artifact_name = f"{index:02d}-{label.strip('/').replace('/', '_') or 'root'}"
        if problems:
            result.failed += 1
            for problem in problems:
                print(f"   FAIL {label}: {problem}")
                result.failures.append(f"{label}: {problem}")
            save_artifacts(driver, artifacts, artifact_name)
            print(f"FAIL {label} ({elapsed:.1f}s)")
        else:
            result.passed += 1
            print(f"PASS {label} ({elapsed:.1f}s)")
            if screenshots:
                save_artifacts(driver, artifacts, artifact_name)
    return result


def main() -> int:
    # A deadline's TERM unwinds like an exception, so the browser is quit on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("expect", help="JSON file of pages and steps (tests/browser/expect/*.json)")
    parser.add_argument("--base-url", required=True, help="the server under test, e.g. http://127.0.0.1:8000")
    parser.add_argument("--timeout", type=float, default=20.0, help="deadline of each wait, in seconds")
    parser.add_argument("--artifacts", default=os.path.join(tempfile.gettempdir(), "browser-test"),
                        help="where screenshots of failed pages go")
    parser.add_argument("--screenshots", action="store_true",
                        help="also save a screenshot of every page that passes, after its last step")
    args = parser.parse_args()

    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            print(f"check_docs: {path} is missing; install Debian's chromium and chromium-driver",
                  file=sys.stderr)
            return 2
    try:
        with open(args.expect, encoding="utf-8") as f:
            expect = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        print(f"check_docs: cannot read {args.expect}: {err}", file=sys.stderr)
        return 2
    if not isinstance(expect, dict) or not isinstance(expect.get("pages"), list) or not expect["pages"]:
        print(f"check_docs: {args.expect} needs a non-empty \"pages\" list", file=sys.stderr)
        return 2

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-", ignore_cleanup_errors=True) as profile:
        try:
            server_host = urllib.parse.urlsplit(args.base_url).hostname or "127.0.0.1"
            driver = start_browser(profile, server_host, page_load_timeout=max(args.timeout, 30.0))
        except WebDriverException as err:
            print(f"check_docs: could not start Chromium through {CHROMEDRIVER}: {err.msg}", file=sys.stderr)
            return 2
        print(f"   browser started ({time.monotonic() - started:.1f}s): "
              f"{driver.capabilities.get('browserVersion', '?')}")
        try:
            result = check(driver, args.base_url, expect, args.timeout, args.artifacts, args.screenshots)
        finally:
            driver.quit()
    print(f"   {args.expect}: {time.monotonic() - started:.1f}s")
    print(f"check_docs: {result.passed} passed, {result.failed} failed")
    return 0 if result.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
