// Live overview: server-sent events from /api/events replace the numbers and the
// newest-alert list whenever the store changes (an alert acknowledged, a capture analysed).
"use strict";
(function () {
  const live = document.getElementById("live");
  const newest = document.getElementById("newest");
  function get(obj, path) {
    return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  // Times as the server renders them: YYYY-MM-DD HH:MM:SS in the plant zone (body data-tz),
  // the full ISO value on hover.
  const zone = document.body.dataset.tz || "UTC";
  const fmt = new Intl.DateTimeFormat("sv-SE", { timeZone: zone, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  function when(iso) {
    const t = el("time");
    if (!iso) return t;
    t.dateTime = iso;
    t.title = iso;
    t.textContent = fmt.format(new Date(iso));
    return t;
  }
  function render(data) {
    data.violations_total = Object.values(data.violations || {}).reduce((a, b) => a + b, 0);
    document.querySelectorAll("[data-bind]").forEach((node) => {
      const v = get(data, node.dataset.bind);
      if (v !== undefined && String(v) !== node.textContent) {
        node.textContent = String(v);
      }
    });
    if (newest && Array.isArray(data.newest_alerts)) {
      const before = new Set(Array.from(newest.querySelectorAll("li")).map((li) => li.dataset.key));
      newest.replaceChildren();
      for (const a of data.newest_alerts) {
        const li = el("li");
        li.dataset.key = a.id + ":" + a.status + ":" + a.updated_at;
        li.append(el("span", "sev sev-" + a.severity, a.severity), " ",
                  el("span", "status status-" + a.status, a.status), " ");
        const link = el("a", null, "#" + a.id + " " + a.title);
        link.href = "/alerts/" + a.id;
        const small = el("small", null, (a.src_ip || "") + " → " + (a.dst_ip || "") + " · ");
        small.append(when(a.last_seen));
        li.append(link, " ", small);
        if (before.size && !before.has(li.dataset.key)) li.classList.add("fresh");
        newest.append(li);
      }
      if (!data.newest_alerts.length) newest.append(el("li", "muted", "No alerts yet."));
    }
    live.dataset.updated = String(data.change);
    live.textContent = "live · updated " + new Date().toLocaleTimeString();
  }
  if (!window.EventSource || !live) return;
  const src = new EventSource("/api/events");
  src.addEventListener("open", () => { live.dataset.state = "open"; if (live.textContent.endsWith("…")) live.textContent = "live"; });
  src.addEventListener("error", () => { live.dataset.state = "closed"; live.textContent = "live updates: reconnecting…"; });
  src.addEventListener("overview", (ev) => render(JSON.parse(ev.data)));
  src.addEventListener("end", () => { src.close(); location.assign("/login"); });  // logged out or expired
})();
