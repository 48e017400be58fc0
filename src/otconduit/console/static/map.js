// Network map: nodes placed by the server (Purdue levels top to bottom), drawn with
// Cytoscape.js (vendored: static/vendor/cytoscape.min.js, see scripts/vendor_cytoscape.sh).
// The page's query (zone, filters) goes to /api/map as it is; every colour here has its
// entry in the legend of templates/map.html (data-legend keys, see legendKey).
"use strict";
(function () {
  const box = document.getElementById("map");
  const status = document.getElementById("map-status");
  const query = new URLSearchParams(window.location.search);
  const url = "/api/map" + (query.toString() ? "?" + query.toString() : "");
  const colours = { allowed: "#12b76a", violation: "#d92d20", unchecked: "#98a2b3" };
  // The legend entry a node or edge is drawn by (the browser test checks each is listed).
  function legendKey(ele) {
    const d = ele.data();
    if (ele.isEdge()) return "edge-" + d.verdict;
    if (d.kind === "asset") return d.level_source === "policy" ? "asset" : "asset-" + d.level_source;
    return d.kind;
  }
  function open(params) {  // another view of the map, keeping the filters
    const next = new URLSearchParams(query);
    for (const [k, v] of Object.entries(params)) next.set(k, v);
    window.location.href = "/map?" + next.toString();
  }
  fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => r.ok ? r.json() : r.json().then((e) => Promise.reject(new Error(e.error ? e.error.message : r.statusText))))
    .then((data) => {
      if (typeof cytoscape !== "function") throw new Error("the graph library is missing (static/vendor/cytoscape.min.js)");
      const cy = cytoscape({
        container: box,
        elements: data.nodes.concat(data.edges),
        layout: { name: "preset", fit: true, padding: 30 },
        wheelSensitivity: 0.3,
        style: [
          { selector: "node", style: { label: "data(label)", "text-wrap": "wrap", "font-size": 10, "text-valign": "bottom", "text-margin-y": 3, width: 22, height: 22, "background-color": "#1f5fbf" } },
          { selector: 'node[kind = "level"]', style: { "background-color": "#f2f4f7", "background-opacity": 0.6, "border-width": 1, "border-color": "#d0d5dd", "text-valign": "top", "text-halign": "left", "font-size": 13, "font-weight": 600, shape: "rectangle", padding: 18 } },
          { selector: 'node[kind = "zone"]', style: { "background-color": "#e0eaff", "background-opacity": 0.5, "border-width": 1, "border-color": "#84adff", "text-valign": "top", "font-size": 11, shape: "round-rectangle", padding: 12, width: 60, height: 40 } },
          { selector: 'node[kind = "unzoned"]', style: { "background-color": "#fff", "border-style": "dashed", "border-width": 1, "border-color": "#98a2b3", "text-valign": "top", "font-size": 11, shape: "round-rectangle", padding: 12, width: 60, height: 40 } },
          { selector: 'node[kind = "subnet"]', style: { "background-color": "#0e9384", shape: "round-hexagon", width: 34, height: 30 } },
          { selector: 'node[kind = "asset"][level_source = "inferred"]', style: { "background-color": "#7a5af8" } },
          { selector: 'node[kind = "asset"][level_source = "unknown"]', style: { "background-color": "#98a2b3" } },
          { selector: "edge", style: { width: 2, "curve-style": "bezier", "target-arrow-shape": "triangle", "arrow-scale": 0.8, "line-color": (e) => colours[e.data("verdict")] || "#98a2b3", "target-arrow-color": (e) => colours[e.data("verdict")] || "#98a2b3", opacity: 0.85 } },
          { selector: 'edge[verdict = "violation"]', style: { width: 3 } },
          { selector: ":selected", style: { "overlay-opacity": 0.15 } },
        ],
      });
      cy.on("tap", "node", (ev) => {
        const d = ev.target.data();
        if (d.kind === "asset") window.location.href = "/assets/" + encodeURIComponent(d.ip);
        else if ((d.kind === "zone" || d.kind === "unzoned") && d.id !== data.focus) open({ zone: d.id });
        else if (d.kind === "subnet") open({ zone: "subnet:" + d.cidr });
      });
      cy.on("tap", "edge", (ev) => {
        const d = ev.target.data();
        if (!d.source.startsWith("asset:") || !d.target.startsWith("asset:")) return;
        const ip = d.source.replace(/^asset:/, "");
        const peer = d.target.replace(/^asset:/, "");
        window.location.href = "/conversations?ip=" + encodeURIComponent(ip) + "&peer=" + encodeURIComponent(peer);
      });
      window.conduitMap = cy;
      window.conduitLegendKey = legendKey;
      box.dataset.ready = "true";
      const bad = data.edges.filter((e) => e.data.verdict === "violation").length;
      const notes = [];
      if (data.mode === "zones") notes.push("shown as zones: click a zone to open it");
      if (data.subnets) notes.push(data.subnets + " subnet" + (data.subnets === 1 ? "" : "s") + " folded: click one to open it");
      if (data.hidden_unconfirmed) notes.push(data.hidden_unconfirmed + " scan targets hidden");
      if (data.filtered_out) notes.push(data.filtered_out + " assets outside the filter hidden");
      status.textContent = data.assets + " assets" + (notes.length ? " (" + notes.join("; ") + ")" : "") +
        ", " + data.edges.length + " edges, " + bad + " with policy violations" + (data.policy ? " (policy " + data.policy + ")" : "") + ".";
    })
    .catch((err) => { status.textContent = "The map could not be drawn: " + err.message; box.dataset.ready = "error"; });
})();
