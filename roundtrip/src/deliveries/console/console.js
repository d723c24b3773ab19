"use strict";
// The deliveries console. Everything it shows comes from the deliveries API and is put in
// the page as text (textContent), never as markup.
(function () {
  const config = JSON.parse(document.getElementById("rt-config").textContent || "{}");
  const auth = config.auth || { kind: "none" };
  const KEY = "roundtrip-console-key";
  const POLL_MS = 3000;
  const $ = (id) => document.getElementById(id);
  const state = { view: "messages", message: null, before: null, timer: null, locked: !!config.locked };

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function key() {
    try { return sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; }
  }

  function base64(text) {
    const bytes = new TextEncoder().encode(text);
    let binary = "";
    bytes.forEach((b) => { binary += String.fromCharCode(b); });
    return btoa(binary);
  }

  function withKey(path, init) {
    const url = new URL(config.api + path, location.href);
    const headers = new Headers(init.headers || {});
    const k = key();
    if (k) {
      if (auth.kind === "header" && auth.name) headers.set(auth.name, k);
      else if (auth.kind === "bearer") headers.set("Authorization", "Bearer " + k);
      else if (auth.kind === "basic") headers.set("Authorization", "Basic " + base64(k));
      else if (auth.kind === "query" && auth.name) url.searchParams.set(auth.name, k);
    }
    return [url, Object.assign({}, init, { headers, credentials: "same-origin" })];
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(describe(status, detail));
      this.status = status;
    }
  }

  function describe(status, detail) {
    if (Array.isArray(detail)) {
      return detail
        .map((d) => (Array.isArray(d.loc) ? d.loc.join(".") : "") + ": " + (d.msg || ""))
        .join("\n");
    }
    if (typeof detail === "string") return detail;
    return "HTTP " + status;
  }

  async function api(path, init) {
    const [url, options] = withKey(path, init || {});
    const response = await fetch(url, options);
    let body = null;
    const text = await response.text();
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
    if (response.status === 401 || response.status === 403) {
      showUnlock(describe(response.status, body && body.detail));
      throw new ApiError(response.status, body && body.detail);
    }
    if (!response.ok) throw new ApiError(response.status, body && body.detail);
    hideUnlock();
    return body;
  }

  function post(path, body) {
    return api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
  }

  function notice(text, kind) {
    const box = $("notice");
    box.textContent = text;
    box.className = "notice " + (kind || "");
    box.hidden = !text;
  }

  function fail(err) {
    if (err && err.status !== 401 && err.status !== 403) notice(err.message || String(err), "error");
  }

  // ---- the key ----

  function showUnlock(why) {
    state.locked = true;
    const hints = {
      header: "Enter the key sent as the " + auth.name + " header.",
      query: "Enter the key sent as the " + auth.name + " query parameter.",
      cookie: "Enter the key kept in the " + auth.name + " cookie.",
      bearer: "Enter the bearer token.",
      basic: "Enter user:password.",
      none: "The server refused access.",
    };
    $("unlock-hint").textContent = (why ? why + ". " : "") + (hints[auth.kind] || hints.none);
    $("unlock").hidden = false;
    document.querySelectorAll(".view").forEach((v) => { v.hidden = true; });
  }

  function hideUnlock() {
    if (!state.locked) return;
    state.locked = false;
    $("unlock").hidden = true;
    show(state.view, true);
  }

  $("unlock-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const k = $("key").value;
    $("key").value = "";
    try { sessionStorage.setItem(KEY, k); } catch (e) { /* private mode: kept for no page */ }
    if (auth.kind === "cookie" && auth.name) {
      document.cookie = encodeURIComponent(auth.name) + "=" + encodeURIComponent(k) + "; path=/; SameSite=Strict";
    }
    state.locked = false;
    $("unlock").hidden = true;
    show(state.view, true);
  });

  // ---- views ----

  function show(view, reload) {
    state.view = view;
    document.querySelectorAll(".tab").forEach((t) => {
      if (t.dataset.view === view || (view === "message" && t.dataset.view === "messages")) t.setAttribute("aria-current", "page");
      else t.removeAttribute("aria-current");
    });
    document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== "view-" + view; });
    if (reload) refresh();
  }

  function refresh() {
    if (state.locked) return Promise.resolve();
    if (state.view === "messages") return loadMessages();
    if (state.view === "message" && state.message) return loadMessage(state.message);
    if (state.view === "endpoints") return loadEndpoints();
    if (state.view === "events") return loadEvents();
    return Promise.resolve();
  }

  document.querySelectorAll(".tab").forEach((t) => {
    t.addEventListener("click", () => {
      notice("");
      if (t.dataset.view === "messages") location.hash = "";
      show(t.dataset.view, true);
    });
  });

  function when(text) {
    if (!text) return "";
    const d = new Date(text);
    return isNaN(d) ? String(text) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function statusCell(status) {
    return el("td", status, "status status-" + status);
  }

  // ---- messages ----

  function localToIso(value) {
    if (!value) return "";
    const d = new Date(value);
    return isNaN(d) ? value : d.toISOString();
  }

  function query() {
    const q = new URLSearchParams();
    document.querySelectorAll('#filters input[name="status"]:checked').forEach((c) => q.append("status", c.value));
    const pairs = [["kind", $("f-kind").value], ["event", $("f-event").value.trim()],
      ["endpoint_id", $("f-endpoint").value.trim()], ["host", $("f-host").value.trim()],
      ["since", localToIso($("f-since").value)], ["until", localToIso($("f-until").value)],
      ["id", $("f-id").value.trim()]];
    pairs.forEach(([k, v]) => { if (v) q.set(k, v); });
    return q;
  }

  async function loadMessages(older) {
    const q = query();
    if (older && state.before) q.set("before", state.before);
    let page;
    try {
      page = await api("messages?" + q.toString());
    } catch (err) {
      fail(err);
      return;
    }
    const body = document.querySelector("#messages tbody");
    if (!older) body.replaceChildren();
    page.data.forEach((m) => {
      const row = el("tr");
      row.dataset.id = m.id;
      row.append(el("td", when(m.created_at)), statusCell(m.status), el("td", m.kind),
        el("td", m.event), el("td", m.host), el("td", m.attempts), el("td", m.last_error || ""));
      const cell = el("td", null, "id");
      const open = el("button", m.id);
      open.type = "button";
      open.title = m.id;
      open.addEventListener("click", () => { location.hash = "#/messages/" + encodeURIComponent(m.id); });
      cell.append(open);
      row.append(cell);
      row.querySelectorAll("td").forEach((td) => { if (!td.title) td.title = td.textContent; });
      body.append(row);
    });
    state.before = page.next;
    $("older").hidden = !page.next;
    $("messages-empty").hidden = body.children.length > 0;
  }

  $("apply").addEventListener("click", () => { notice(""); loadMessages(); });
  $("older").addEventListener("click", () => loadMessages(true));
  $("clear").addEventListener("click", () => {
    document.querySelectorAll("#filters input").forEach((i) => { if (i.type === "checkbox") i.checked = false; else i.value = ""; });
    $("f-kind").value = "";
    notice("");
    loadMessages();
  });
  $("replay-since").addEventListener("click", async () => {
    const since = localToIso($("f-since").value);
    if (!since) { notice("Choose a Since time first.", "error"); return; }
    try {
      const done = await post("replay", { since });
      notice(done.replayed + " failed message(s) replayed.", "ok");
      loadMessages();
    } catch (err) { fail(err); }
  });

  // ---- one message ----

  function field(list, name, value) {
    if (value === null || value === undefined || value === "") return;
    list.append(el("dt", name), el("dd", value));
  }

  async function loadMessage(id) {
    let m;
    try {
      m = await api("messages/" + encodeURIComponent(id));
    } catch (err) {
      fail(err);
      return;
    }
    const s = m.message;
    $("m-title").textContent = s.event + " · " + s.id;
    const fields = $("m-fields");
    fields.replaceChildren();
    const status = el("dd", s.status, "status status-" + s.status);
    status.id = "m-status";
    fields.append(el("dt", "Status"), status);
    field(fields, "Kind", s.kind);
    field(fields, "Sent to", s.method + " " + s.url);
    field(fields, "Endpoint", s.endpoint_id);
    field(fields, "Created", when(s.created_at));
    field(fields, "Attempts", s.attempts);
    field(fields, "Next attempt", when(s.next_attempt_at));
    field(fields, "Finished", when(s.finished_at));
    field(fields, "Last error", s.last_error);
    const live = s.status === "pending" || s.status === "leased";
    $("m-retry").disabled = s.status === "leased";
    $("m-replay").disabled = live;
    $("m-cancel").disabled = !live;
    $("m-payload").textContent = m.payload;
    $("m-payload-note").textContent = m.payload_utf8 ? "" : "(not valid UTF-8: replaced characters shown)";
    const list = $("m-attempts");
    list.replaceChildren();
    if (m.attempts.length === 0) list.append(el("li", "No attempts yet."));
    m.attempts.forEach((a) => {
      const item = el("li", null, "outcome-" + a.outcome);
      const head = "#" + a.number + " · " + when(a.started_at) + " · " + a.duration_ms.toFixed(1) + " ms · " +
        (a.response_status ? "HTTP " + a.response_status : (a.error_kind || "no answer")) + " · " + a.outcome;
      item.append(el("div", head, "head"));
      if (a.error) item.append(el("div", a.error));
      if (a.contract_violation) item.append(el("div", "Contract: " + a.contract_violation));
      if (a.next_attempt_at) item.append(el("div", "Next attempt " + when(a.next_attempt_at), "note"));
      if (a.response_headers && a.response_headers.length) {
        const details = el("details");
        details.append(el("summary", a.response_headers.length + " response header(s)"));
        details.append(el("pre", a.response_headers.map(([k, v]) => k + ": " + v).join("\n")));
        item.append(details);
      }
      if (a.response_body) {
        item.append(el("pre", a.response_body + (a.response_truncated ? "\n…(truncated)" : "")));
      }
      list.append(item);
    });
  }

  async function act(action) {
    if (!state.message) return;
    try {
      const done = await post("messages/" + encodeURIComponent(state.message) + "/" + action);
      notice(done.id + " is " + done.status + " (" + action + ").", "ok");
      loadMessage(state.message);
    } catch (err) { fail(err); }
  }
  $("m-retry").addEventListener("click", () => act("retry"));
  $("m-replay").addEventListener("click", () => act("replay"));
  $("m-cancel").addEventListener("click", () => act("cancel"));
  $("back").addEventListener("click", () => { location.hash = ""; });

  // ---- endpoints ----

  async function loadEndpoints() {
    let page;
    try {
      page = await api("endpoints?limit=100");
    } catch (err) {
      fail(err);
      return;
    }
    const body = document.querySelector("#endpoints tbody");
    body.replaceChildren();
    page.data.forEach((view) => {
      const e = view.endpoint;
      const h = view.health;
      const row = el("tr");
      row.dataset.id = e.id;
      const url = el("td", e.url);
      url.title = e.url + (e.description ? "\n" + e.description : "");
      let stateText = e.enabled ? "enabled" : "disabled (" + (e.disabled_by || "") + ") " + when(e.disabled_at) + ": " + (e.disabled_reason || "");
      const stateCell = el("td", stateText, e.enabled ? "status status-succeeded" : "status status-failed");
      stateCell.title = stateText;
      const rate = h.success_rate === null ? "–" : (h.success_rate * 100).toFixed(1) + " %";
      const counts = h.succeeded + " / " + h.failed + " / " + h.pending + (h.capped ? "+" : "");
      const error = el("td", h.last_error ? when(h.last_error_at) + " " + h.last_error : "");
      error.title = error.textContent;
      const actions = el("td", null, "row");
      const test = el("button", "Send test");
      test.type = "button";
      test.addEventListener("click", async () => {
        try {
          const sent = await post("endpoints/" + encodeURIComponent(e.id) + "/test", {});
          notice("Test " + sent.event_type + " queued as " + sent.message_id + ".", "ok");
        } catch (err) { fail(err); }
      });
      const rotate = el("button", "Rotate secret");
      rotate.type = "button";
      rotate.addEventListener("click", async () => {
        try {
          const rotated = await post("endpoints/" + encodeURIComponent(e.id) + "/rotate-secret", {});
          $("secret-value").textContent = rotated.secret;
          $("secret").hidden = false;
          notice("The previous secret keeps signing until " + when(rotated.previous_expires_at) + ".", "ok");
        } catch (err) { fail(err); }
      });
      const deliveries = el("button", "Deliveries");
      deliveries.type = "button";
      deliveries.addEventListener("click", () => {
        $("f-endpoint").value = e.id;
        location.hash = "";
        show("messages", true);
      });
      actions.append(test, rotate, deliveries);
      row.append(url, stateCell, el("td", rate), el("td", counts), error, actions);
      body.append(row);
    });
    $("endpoints-empty").hidden = page.data.length > 0;
  }

  $("secret-done").addEventListener("click", () => {
    $("secret-value").textContent = "";
    $("secret").hidden = true;
  });

  // ---- events ----

  async function loadEvents() {
    let catalogue;
    try {
      catalogue = await api("events");
    } catch (err) {
      fail(err);
      return;
    }
    const box = $("events");
    box.replaceChildren();
    if (catalogue.data.length === 0) box.append(el("p", "This API declares no webhooks or callbacks.", "empty"));
    catalogue.data.forEach((e) => {
      const card = el("article", null, "event");
      card.append(el("h3", e.name));
      let line = e.kind + " · " + e.method;
      if (e.operation) line += " · sent by " + e.operation;
      if (e.url_expression) line += " · to " + e.url_expression;
      card.append(el("div", line, "note"));
      if (e.description) card.append(el("p", e.description));
      const cols = el("div", null, "cols");
      const schema = el("div");
      schema.append(el("h4", "Schema"), el("pre", JSON.stringify(e.schema, null, 2)));
      const example = el("div");
      example.append(el("h4", "Example"), el("pre", JSON.stringify(e.example, null, 2)));
      cols.append(schema, example);
      card.append(cols);
      box.append(card);
    });
  }

  // ---- navigation and live updates ----

  function route() {
    const match = /^#\/messages\/(.+)$/.exec(location.hash);
    if (match) {
      state.message = decodeURIComponent(match[1]);
      show("message", true);
    } else if (state.view === "message") {
      state.message = null;
      show("messages", true);
    }
  }
  window.addEventListener("hashchange", () => { notice(""); route(); });

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(async () => {
      // The list keeps its first page live; older pages and the catalogue stay as loaded.
      if ($("live").checked && !document.hidden && state.view !== "events") {
        if (state.view === "messages") await loadMessages();
        else await refresh();
      }
      schedule();
    }, POLL_MS);
  }

  if (state.locked && !key()) showUnlock("");
  else state.locked = false;
  if (/^#\/messages\/.+$/.test(location.hash)) route();
  else show("messages", true);
  schedule();
})();
