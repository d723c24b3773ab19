"use strict";
(function () {
  // Everything shown comes from the portal API and is written as text: no markup from data.
  var api = location.pathname.replace(/\/+$/, "") + "/api";
  var token = null;
  var current = null; // the endpoint whose log is open
  var events = [];
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function say(text) { $("status").textContent = text || ""; }
  function show(id) {
    ["endpoints-section", "endpoint-section", "message-section"].forEach(function (s) {
      $(s).hidden = s !== id;
    });
  }
  function call(method, path, body) {
    var init = { method: method, headers: { "Authorization": "Bearer " + token } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(api + path, init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
        if (response.status === 401) {
          sessionStorage.removeItem("roundtrip-portal-token");
          throw new Error("This link is not valid or has expired: ask for a new one.");
        }
        if (!response.ok) {
          var detail = data && data.detail;
          if (Array.isArray(detail)) {
            detail = detail.map(function (d) { return (d.loc || []).join(".") + ": " + d.msg; }).join("; ");
          }
          throw new Error(response.status + " " + (detail || response.statusText));
        }
        return data;
      });
    });
  }
  function fail(err) { say(err.message); }
  function showSecret(secret) {
    $("secret-value").textContent = secret;
    $("secret").hidden = false;
  }
  function eventBoxes(fieldset, chosen) {
    while (fieldset.children.length > 1) fieldset.removeChild(fieldset.lastChild);
    events.forEach(function (e) {
      var label = el("label");
      var box = el("input");
      box.type = "checkbox";
      box.value = e.name;
      box.checked = chosen.indexOf(e.name) >= 0;
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + e.name));
      if (e.description) label.title = e.description;
      fieldset.appendChild(label);
    });
  }
  function chosen(fieldset) {
    return Array.prototype.filter.call(fieldset.querySelectorAll("input[type=checkbox]"), function (b) {
      return b.checked;
    }).map(function (b) { return b.value; });
  }
  function loadEndpoints() {
    show("endpoints-section");
    return call("GET", "/endpoints").then(function (list) {
      var body = $("endpoints").tBodies[0];
      body.textContent = "";
      list.data.forEach(function (view) {
        var ep = view.endpoint, health = view.health || {};
        var row = el("tr");
        row.appendChild(el("td", ep.url));
        row.appendChild(el("td", ep.event_types.length ? ep.event_types.join(", ") : "every event"));
        row.appendChild(el("td", ep.enabled ? "enabled" : "disabled: " + (ep.disabled_reason || "")));
        var rate = health.success_rate;
        row.appendChild(el("td", rate === null || rate === undefined ? "–" : Math.round(rate * 100) + " %"));
        var cell = el("td");
        var open = el("button", "Open");
        open.type = "button";
        open.addEventListener("click", function () { openEndpoint(ep); });
        cell.appendChild(open);
        row.appendChild(cell);
        body.appendChild(row);
      });
      if (!list.data.length) {
        var empty = el("tr");
        var td = el("td", "No endpoint yet: add one below.");
        td.colSpan = 5;
        empty.appendChild(td);
        body.appendChild(empty);
      }
    }).catch(fail);
  }
  function openEndpoint(ep) {
    $("secret").hidden = true;
    current = ep;
    say("");
    show("endpoint-section");
    $("endpoint-url").textContent = ep.url;
    eventBoxes($("edit-events"), ep.event_types);
    loadMessages(null);
  }
  function loadMessages(before) {
    var query = "?endpoint_id=" + encodeURIComponent(current.id) + "&limit=50";
    if (before) query += "&before=" + encodeURIComponent(before);
    return call("GET", "/messages" + query).then(function (page) {
      var body = $("messages").tBodies[0];
      if (!before) body.textContent = "";
      page.data.forEach(function (m) {
        var row = el("tr");
        var cell = el("td");
        var link = el("button", m.id);
        link.type = "button";
        link.addEventListener("click", function () { openMessage(m.id); });
        cell.appendChild(link);
        row.appendChild(cell);
        row.appendChild(el("td", m.event));
        row.appendChild(el("td", m.status, m.status));
        row.appendChild(el("td", m.attempts));
        row.appendChild(el("td", m.created_at));
        body.appendChild(row);
      });
      var more = $("more");
      more.hidden = !page.next;
      more.onclick = function () { loadMessages(page.next); };
    }).catch(fail);
  }
  function openMessage(id) {
    return call("GET", "/messages/" + encodeURIComponent(id)).then(function (detail) {
      $("secret").hidden = true;
      show("message-section");
      var m = detail.message;
      $("message-id").textContent = m.id;
      $("message-state").textContent = m.event + " · " + m.status + " · " + m.attempts + " attempt(s)";
      $("payload").textContent = detail.payload;
      var list = $("attempts");
      list.textContent = "";
      detail.attempts.forEach(function (a) {
        var item = el("li");
        var what = a.response_status ? "HTTP " + a.response_status : (a.error_kind || "no answer");
        item.appendChild(el("div", a.started_at + " · " + what + " · " + Math.round(a.duration_ms) + " ms"));
        if (a.error) item.appendChild(el("div", a.error));
        if (a.response_body) item.appendChild(el("pre", a.response_body));
        list.appendChild(item);
      });
      var replay = $("replay");
      replay.hidden = m.status !== "failed";
      replay.onclick = function () {
        call("POST", "/messages/" + encodeURIComponent(m.id) + "/replay").then(function () {
          say("Replayed: it is delivered again now.");
          return openMessage(m.id);
        }).catch(fail);
      };
    }).catch(fail);
  }
  $("add").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    call("POST", "/endpoints", {
      url: form.elements.url.value,
      description: form.elements.description.value,
      event_types: chosen($("add-events"))
    }).then(function (created) {
      form.reset();
      showSecret(created.secret);
      say("Endpoint added.");
      return loadEndpoints();
    }).catch(fail);
  });
  $("events-form").addEventListener("submit", function (event) {
    event.preventDefault();
    call("PATCH", "/endpoints/" + encodeURIComponent(current.id), { event_types: chosen($("edit-events")) })
      .then(function (ep) { current = ep; say("Events saved."); }).catch(fail);
  });
  $("rotate").addEventListener("click", function () {
    call("POST", "/endpoints/" + encodeURIComponent(current.id) + "/rotate-secret").then(function (r) {
      showSecret(r.secret);
      say("Secret rotated; the previous one keeps signing until " + r.previous_expires_at + ".");
    }).catch(fail);
  });
  $("test").addEventListener("click", function () {
    call("POST", "/endpoints/" + encodeURIComponent(current.id) + "/test", {}).then(function (sent) {
      say("Test event " + sent.event_type + " queued as " + sent.message_id + ".");
      return loadMessages(null);
    }).catch(fail);
  });
  $("back").addEventListener("click", function () { say(""); loadEndpoints(); });

  // The token comes in the link's fragment, which is never sent to a server; keep it for
  // this tab only and take it out of the address bar.
  // A new link pasted into this tab changes only the fragment: start again with it.
  window.addEventListener("hashchange", function () { location.reload(); });
  var match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem("roundtrip-portal-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname);
  }
  token = sessionStorage.getItem("roundtrip-portal-token");
  if (!token) {
    say("Open this page with the link you were given.");
    return;
  }
  call("GET", "/events").then(function (list) {
    events = list.data;
    eventBoxes($("add-events"), []);
    return loadEndpoints();
  }).catch(fail);
})();
