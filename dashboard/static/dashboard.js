// netsched dashboard: polls /api/v1/dashboard (ETag, 304 when unchanged) and draws the
// cluster's network the way the scheduler sees it. Plain DOM, no dependencies: the page
// must work on clusters without Internet access.
"use strict";

(() => {
  const POLL_MS = 2000;
  const DIRS = ["ingress", "egress"];
  const MAX_POD_ROWS = 300; // a longer table costs every update and nobody reads it: search instead
  const AUTO_ZOOM = [[48, "detail"], [400, "compact"], [Infinity, "dense"]];

  const ui = {
    data: null,
    etag: null,
    clockSkewMs: 0,
    lastOk: 0,
    selected: decodeURIComponent(location.hash.slice(1)) || null,
    query: "",
    zoom: null, // null: chosen from the node count
    tab: "decisions",
    structure: "",
    nodeEls: new Map(), // node name -> {el, bars, cells}
    seenPods: new Set(),
    firstRender: true,
  };
  window.netschedDashboard = ui; // for tests and curious admins: ui.data is the last document

  // -- helpers --------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key === "style") el.style.cssText = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  /** Rates for people, like netsched's format_bandwidth: 9.2G, 500M, 1.5k. */
  function rate(bps) {
    for (const [suffix, scale] of [["T", 1e12], ["G", 1e9], ["M", 1e6], ["k", 1e3]]) {
      if (Math.abs(bps) >= scale) return `${+(bps / scale).toPrecision(3)}${suffix}`;
    }
    return `${+bps.toPrecision(3)}`;
  }

  const pct = (f) => `${Math.round(f * 100)}%`;
  const share = (part, whole) => (whole > 0 ? part / whole : part > 0 ? Infinity : 0);

  /** Load against capacity as a colour: teal (idle) → amber → orange → red (full / over). */
  const STOPS = [[0, [28, 78, 80]], [0.25, [45, 212, 191]], [0.5, [163, 230, 53]], [0.7, [250, 204, 21]], [0.85, [251, 146, 60]], [1.0, [239, 68, 68]]];
  function loadColour(f) {
    if (!(f > 0)) return "";
    if (f > 1.0001) return "rgb(217, 70, 239)"; // beyond capacity: observed over the usable budget
    for (let i = 1; i < STOPS.length; i++) {
      const [f1, c1] = STOPS[i];
      if (f <= f1) {
        const [f0, c0] = STOPS[i - 1];
        const t = (f - f0) / (f1 - f0);
        const c = c0.map((v, k) => Math.round(v + (c1[k] - v) * t));
        return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
      }
    }
    return "rgb(239, 68, 68)";
  }

  function setLoad(el, f) {
    const colour = loadColour(f);
    if (el._colour !== colour) {
      el._colour = colour;
      if (colour) el.style.setProperty("--load", colour);
      else el.style.removeProperty("--load");
    }
  }

  function setBar(bar, reserved, observed, capacity, speed) {
    // The track is the link speed; the hatched end is headroom netsched never promises.
    const full = speed > 0 ? speed : capacity;
    const resW = Math.min(100, (share(reserved, full) || 0) * 100);
    const obsL = Math.min(100, (share(observed, full) || 0) * 100);
    const headW = full > 0 ? Math.max(0, 100 - (capacity / full) * 100) : 0;
    bar.res.style.width = `${resW.toFixed(2)}%`;
    bar.obs.style.left = `${obsL.toFixed(2)}%`;
    bar.obs.style.display = observed > 0 ? "" : "none";
    bar.head.style.width = `${headW.toFixed(2)}%`;
    bar.el.dataset.reservedBps = reserved;
    bar.el.dataset.observedBps = observed;
    bar.el.dataset.capacityBps = capacity;
    setLoad(bar.res, Math.max(share(reserved, capacity), 0.0001));
  }

  function makeBar(extraClass) {
    const res = h("i", { class: "res" });
    const obs = h("i", { class: "obs" });
    const head = h("i", { class: "headroom" });
    const el = h("div", { class: `bar ${extraClass || ""}` }, head, res, obs);
    return { el, res, obs, head };
  }

  function sum(pairs, index) {
    let total = 0;
    for (const pair of pairs) total += pair[index];
    return total;
  }

  function nodeTotals(node) {
    const out = {};
    DIRS.forEach((dir, i) => {
      out[dir] = {
        capacity: sum(node.interfaces.map((x) => x.capacity), i),
        reserved: sum(node.interfaces.map((x) => x.reserved), i),
        observed: sum(node.interfaces.map((x) => x.observed), i),
        speed: node.interfaces.reduce((t, x) => t + x.speed_mbps * 1e6, 0),
      };
    });
    return out;
  }

  function isStale(node) {
    const ttl = ui.data.report_ttl_seconds;
    if (ttl === null) return false;
    if (!node.heartbeat) return true;
    const now = Date.now() + ui.clockSkewMs;
    return now - Date.parse(node.heartbeat) > ttl * 1000;
  }

  function* allNodes(data) {
    for (const zone of data.zones) for (const sw of zone.switches) for (const node of sw.nodes) yield [zone, sw, node];
  }

  const time = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });

  // -- topology -------------------------------------------------------------------------

  function structureOf(data) {
    const parts = [];
    for (const [zone, sw, node] of allNodes(data)) {
      parts.push(zone.name, sw.name, node.name, node.interfaces.map((x) => `${x.name}:${x.networks}:${x.vlans}:${x.vnis}:${x.up}`).join(","));
    }
    return parts.join("|");
  }

  function buildTopology(data) {
    const root = document.getElementById("topology");
    root.replaceChildren();
    ui.nodeEls.clear();
    ui.zoneEls = new Map();
    for (const zone of data.zones) {
      const count = zone.switches.reduce((t, s) => t + s.nodes.length, 0);
      const zoneBars = {};
      const barsEl = h("div", { class: "zone-bars" },
        DIRS.map((dir) => {
          zoneBars[dir] = makeBar();
          zoneBars[dir].label = h("span");
          return h("span", { class: "pair", title: `${dir}: reserved of usable capacity in this zone` }, dir === "ingress" ? "in" : "out", zoneBars[dir].el, zoneBars[dir].label);
        }));
      const zoneEl = h("section", { class: "zone", dataset: { zone: zone.name } },
        h("div", { class: "zone-head", onclick: () => zoneEl.classList.toggle("folded") },
          h("span", { class: "fold" }, "▾"),
          h("h2", null, zone.name),
          h("span", { class: "meta" }, `${zone.region} · ${zone.switches.length} switch${zone.switches.length === 1 ? "" : "es"} · ${count} node${count === 1 ? "" : "s"}`),
          barsEl),
        h("div", { class: "switches" },
          zone.switches.map((sw) => h("div", { class: "switch", dataset: { switch: sw.name } },
            h("div", { class: "switch-head" },
              h("svg", { viewBox: "0 0 16 16" }),
              h("b", null, sw.name), h("span", null, `${sw.nodes.length} node${sw.nodes.length === 1 ? "" : "s"}`)),
            h("div", { class: "nodes" }, sw.nodes.map((node) => buildNode(node, zone, sw)))))));
      ui.zoneEls.set(zone.name, { el: zoneEl, bars: zoneBars });
      root.append(zoneEl);
    }
    // switch icon (an svg built with innerHTML keeps the namespace right)
    for (const svg of root.querySelectorAll(".switch-head svg")) {
      svg.outerHTML = '<svg viewBox="0 0 16 16" aria-hidden="true"><rect x="1.5" y="4.5" width="13" height="7" rx="1.5"/><path d="M4 8h.01M6.5 8h.01M9 8h.01"/></svg>';
    }
  }

  function buildNode(node, zone, sw) {
    const bars = {};
    const barRows = DIRS.map((dir) => {
      bars[dir] = makeBar("node-bar");
      bars[dir].el.dataset.dir = dir;
      bars[dir].pct = h("span", { class: "pct" });
      return [h("span", null, dir === "ingress" ? "in" : "out"), bars[dir].el, bars[dir].pct];
    });
    const cells = new Map();
    const ifaces = node.interfaces.map((x) => {
      const res = h("span", { class: "cell res" });
      const obs = h("span", { class: "cell obs" });
      const el = h("div", { class: `iface${x.up ? "" : " down"}`, dataset: { iface: x.name } },
        h("div", { class: "cells" }, res, obs),
        h("div", { class: "iface-label" }, h("span", null, x.name), h("span", null, speed(x.speed_mbps))),
        h("div", { class: "nets", title: segments(x) }, x.networks.map((n) => h("span", { class: `chip ${networkClass(n)}` }, n)),
          x.vlans.filter((v) => !vlanOfNetwork(v)).map((v) => h("span", { class: "chip vlan" }, `v${v}`))));
      cells.set(x.name, { el, res, obs });
      return el;
    });
    const pods = h("span", { class: "node-pods" });
    const el = h("article", {
      class: "node", tabindex: "0", dataset: { node: node.name, zone: zone.name, switch: sw.name },
      onclick: () => select(node.name),
      onmouseenter: () => tooltip(node.name),
      onkeydown: (e) => { if (e.key === "Enter") select(node.name); },
    },
    h("div", { class: "node-head" }, h("span", { class: "node-name" }, node.name), pods),
    h("div", { class: "node-bars" }, barRows),
    h("div", { class: "ifaces" }, ifaces));
    ui.nodeEls.set(node.name, { el, bars, cells, pods });
    return el;
  }

  function networkClass(name) {
    const n = ui.data.networks.find((x) => x.name === name);
    return n ? n.mode : "";
  }
  const vlanOfNetwork = (vlan) => ui.data.networks.some((n) => n.segment === `VLAN ${vlan}`);
  const segments = (x) => [...x.vlans.map((v) => `VLAN ${v}`), ...x.vnis.map((v) => `VNI ${v}`), ...x.networks.map((n) => `network ${n}`)].join(", ");

  /** A node's tooltip, written when the pointer arrives (5,000 of them each update would cost). */
  function tooltip(name) {
    const view = ui.nodeEls.get(name);
    const node = view.node;
    const lines = [`${node.name} · ${view.el.dataset.zone} · ${node.pods} pod(s) holding bandwidth`];
    for (const x of node.interfaces) {
      lines.push(`${x.name} (${x.role}, ${speed(x.speed_mbps)}): reserved in ${rate(x.reserved[0])} out ${rate(x.reserved[1])} of ${rate(x.capacity[0])}; observed in ${rate(x.observed[0])} out ${rate(x.observed[1])}${x.networks.length ? `; carries ${x.networks.join(", ")}` : ""}`);
    }
    view.el.title = lines.join("\n");
  }

  const speed = (mbps) => (mbps >= 1000 ? `${+(mbps / 1000).toPrecision(3)}G` : `${mbps}M`);

  function updateTopology(data) {
    const zoneTotals = new Map();
    for (const [zone, , node] of allNodes(data)) {
      const view = ui.nodeEls.get(node.name);
      if (!view) continue;
      const totals = nodeTotals(node);
      const zt = zoneTotals.get(zone.name) || { ingress: [0, 0, 0, 0], egress: [0, 0, 0, 0] };
      for (const dir of DIRS) {
        const t = totals[dir];
        setBar(view.bars[dir], t.reserved, t.observed, t.capacity, t.speed);
        view.bars[dir].pct.textContent = pct(share(t.reserved, t.capacity));
        const z = zt[dir];
        z[0] += t.reserved; z[1] += t.observed; z[2] += t.capacity; z[3] += t.speed;
      }
      zoneTotals.set(zone.name, zt);
      view.pods.textContent = node.pods ? `${node.pods} pod${node.pods === 1 ? "" : "s"}` : "";
      view.el.classList.toggle("stale", isStale(node));
      for (const x of node.interfaces) {
        const cell = ui.nodeEls.get(node.name).cells.get(x.name);
        const resF = Math.max(share(x.reserved[0], x.capacity[0]), share(x.reserved[1], x.capacity[1]));
        const obsF = Math.max(share(x.observed[0], x.capacity[0]), share(x.observed[1], x.capacity[1]));
        setLoad(cell.res, resF);
        setLoad(cell.obs, obsF);
        cell.el.dataset.reservedShare = resF.toFixed(4);
        cell.el.dataset.observedShare = obsF.toFixed(4);
      }
      view.node = node;
    }
    for (const [name, zt] of zoneTotals) {
      const zoneView = ui.zoneEls.get(name);
      for (const dir of DIRS) {
        const [reserved, observed, capacity, spd] = zt[dir];
        setBar(zoneView.bars[dir], reserved, observed, capacity, spd);
        zoneView.bars[dir].label.textContent = pct(share(reserved, capacity));
      }
    }
  }

  // -- search and zoom ------------------------------------------------------------------

  function matcher() {
    const words = ui.query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return null;
    const podsOn = new Map();
    for (const r of ui.data.reservations) podsOn.set(r.node, `${podsOn.get(r.node) || ""} ${r.pod}`);
    return (zone, sw, node) => {
      const hay = [node.name, zone.name, zone.region, sw.name, podsOn.get(node.name) || "",
        ...node.interfaces.flatMap((x) => [x.name, x.role, ...x.networks, ...x.vlans.map((v) => `vlan${v}`)])].join(" ").toLowerCase();
      return words.every((w) => hay.includes(w));
    };
  }

  function applySearch() {
    if (!ui.data) return;
    const match = matcher();
    let shown = 0;
    const switchShown = new Map();
    const zoneShown = new Map();
    for (const [zone, sw, node] of allNodes(ui.data)) {
      const ok = !match || match(zone, sw, node);
      ui.nodeEls.get(node.name)?.el.classList.toggle("hidden", !ok);
      if (ok) {
        shown++;
        switchShown.set(`${zone.name}/${sw.name}`, true);
        zoneShown.set(zone.name, true);
      }
    }
    for (const el of document.querySelectorAll(".switch")) {
      el.classList.toggle("hidden", !switchShown.get(`${el.closest(".zone").dataset.zone}/${el.dataset.switch}`));
    }
    for (const el of document.querySelectorAll(".zone")) el.classList.toggle("hidden", !zoneShown.get(el.dataset.zone));
    document.getElementById("no-match").hidden = shown > 0;
    renderPods(ui.data);
    renderDecisions(ui.data);
  }

  function nodeCount(data) {
    let n = 0;
    for (const _ of allNodes(data)) n++;
    return n;
  }

  function applyZoom() {
    const chosen = ui.zoom || AUTO_ZOOM.find(([limit]) => nodeCount(ui.data) <= limit)[1];
    document.getElementById("topology").dataset.zoom = chosen;
    for (const b of document.querySelectorAll("#zoom button")) b.setAttribute("aria-pressed", String(b.dataset.zoom === chosen));
  }

  // -- side pane ------------------------------------------------------------------------

  function select(name) {
    ui.selected = ui.selected === name ? null : name;
    history.replaceState(null, "", ui.selected ? `#${encodeURIComponent(ui.selected)}` : location.pathname);
    for (const [n, v] of ui.nodeEls) v.el.classList.toggle("selected", n === ui.selected);
    renderDetail(ui.data);
  }

  function renderDetail(data) {
    const box = document.getElementById("node-detail");
    let found = null;
    if (ui.selected) for (const entry of allNodes(data)) if (entry[2].name === ui.selected) found = entry;
    if (!found) {
      box.replaceChildren(renderOverview(data));
      return;
    }
    const [zone, sw, node] = found;
    const pods = data.reservations.filter((r) => r.node === node.name);
    const refusals = [];
    for (const d of data.decisions) {
      for (const g of d.reasons) if (g.nodes.includes(node.name)) refusals.push([d, g.reason]);
    }
    box.replaceChildren(h("div", { dataset: { node: node.name } },
      h("div", { class: "detail-head" }, h("h3", null, node.name), h("button", { title: "Close", onclick: () => select(node.name) }, "×")),
      h("div", { class: "where" }, `${zone.region} › ${zone.name} › ${sw.name}`, isStale(node) ? h("span", { style: "color:var(--bad)" }, " · report stale") : "",
        node.heartbeat ? h("span", null, ` · heartbeat ${time(node.heartbeat)}`) : " · no report"),
      node.interfaces.map((x) => h("div", { class: "iface-detail", dataset: { iface: x.name } },
        h("header", null, h("b", null, x.name), h("span", { class: "role" }, `${x.role} · ${x.kind} · ${speed(x.speed_mbps)}b/s · ${x.up ? "up" : "down"}`),
          x.vlans.map((v) => h("span", { class: "chip vlan" }, `VLAN ${v}`)),
          x.vnis.map((v) => h("span", { class: "chip vni" }, `VNI ${v}`)),
          x.networks.map((n) => h("span", { class: "chip" }, n))),
        h("div", { class: "rows" }, DIRS.map((dir, i) => {
          const bar = makeBar("iface-bar");
          bar.el.dataset.dir = dir;
          setBar(bar, x.reserved[i], x.observed[i], x.capacity[i], x.speed_mbps * 1e6);
          return [h("span", { class: "dir" }, dir), bar.el,
            h("span", { class: "figures" }, "reserved ", h("b", null, rate(x.reserved[i])), ` (${pct(share(x.reserved[i], x.capacity[i]))})`,
              " · observed ", h("b", null, rate(x.observed[i])), " · capacity ", h("b", null, rate(x.capacity[i])))];
        })))),
      h("div", { class: "subhead" }, `Pods holding bandwidth here (${pods.length})`),
      pods.length ? h("ul", { class: "node-pods-list" }, pods.map((r) => h("li", null, h("span", null, r.pod, r.foreign ? h("small", { class: "foreign" }, " · another scheduler's") : null, r.claim ? h("small", { class: "claim" }, ` · DRA claim ${r.claim}`) : null), h("span", null, podRates(r))))) : h("p", { class: "empty" }, "None."),
      refusals.length ? [h("div", { class: "subhead" }, "Refused here in recent decisions"),
        h("ul", { class: "node-pods-list" }, refusals.slice(0, 8).map(([d, reason]) => h("li", null, h("span", null, d.pod), h("span", { style: "color:#fecaca" }, reason))))] : null));
  }

  /** The busiest interfaces, by reserved share of capacity: where the next pod will not fit. */
  function hotSpots(data, count) {
    const all = [];
    for (const [, , node] of allNodes(data)) {
      for (const x of node.interfaces) {
        const reserved = Math.max(share(x.reserved[0], x.capacity[0]), share(x.reserved[1], x.capacity[1]));
        const observed = Math.max(share(x.observed[0], x.capacity[0]), share(x.observed[1], x.capacity[1]));
        if (reserved > 0 || observed > 0) all.push({ node: node.name, iface: x.name, reserved, observed });
      }
    }
    all.sort((a, b) => b.reserved - a.reserved || b.observed - a.observed);
    return all.slice(0, count);
  }

  function renderOverview(data) {
    const hot = hotSpots(data, 6);
    return h("div", null,
      h("div", { class: "detail-head" }, h("h3", { style: "font-family:inherit" }, "Cluster")),
      h("p", { class: "empty" }, "Click a node for its interfaces, VLANs, bars and pods. Search filters the map; zones fold on click."),
      hot.length ? [h("div", { class: "subhead" }, "Fullest interfaces"),
        h("ul", { class: "node-pods-list hot" }, hot.map((x) => h("li", { dataset: { node: x.node }, onclick: () => { select(x.node); reveal(x.node); } },
          h("span", null, `${x.node} · ${x.iface}`),
          h("span", null, h("b", { class: "swatch", style: `background:${loadColour(x.reserved) || "var(--empty)"}` }), `reserved ${pct(x.reserved)} · observed ${pct(x.observed)}`))))] : null,
      h("div", { class: "subhead" }, "Zones"),
      h("div", { class: "rows" }, data.zones.map((zone) => {
        let cap = 0, res = 0, obs = 0, spd = 0;
        for (const sw of zone.switches) for (const node of sw.nodes) for (const x of node.interfaces) {
          cap += x.capacity[0] + x.capacity[1]; res += x.reserved[0] + x.reserved[1]; obs += x.observed[0] + x.observed[1]; spd += 2 * x.speed_mbps * 1e6;
        }
        const bar = makeBar();
        setBar(bar, res, obs, cap, spd);
        return [h("span", { class: "dir" }, zone.name), bar.el,
          h("span", { class: "figures" }, "reserved ", h("b", null, rate(res)), ` (${pct(share(res, cap))}) · observed `, h("b", null, rate(obs)), " · capacity ", h("b", null, rate(cap)))];
      })));
  }

  function podRates(r) {
    return Object.entries(r.interfaces).map(([name, [i, e]]) => `${name} ↓${rate(i)} ↑${rate(e)}`).join("  ");
  }

  function renderPods(data) {
    const body = document.getElementById("pods");
    const words = ui.query.toLowerCase().split(/\s+/).filter(Boolean);
    const rows = data.reservations.filter((r) => {
      const hay = `${r.pod} ${r.node} ${r.attachments.map((a) => `${a.network} ${a.ip || ""}`).join(" ")}`.toLowerCase();
      return words.every((w) => hay.includes(w)) || (words.length && ui.nodeEls.get(r.node) && !ui.nodeEls.get(r.node).el.classList.contains("hidden"));
    });
    document.getElementById("pods-count").textContent = data.reservations.length;
    const shown = rows.slice(0, MAX_POD_ROWS);
    const more = rows.length - shown.length;
    body.replaceChildren(...shown.map((r) => h("tr", {
      dataset: { pod: r.pod, node: r.node }, class: ui.seenPods.has(r.uid) || ui.firstRender ? "" : "new", onclick: () => { select(r.node); reveal(r.node); },
    },
    h("td", null, r.pod, r.priority ? h("div", { class: "muted" }, `priority ${r.priority}`) : null, r.foreign ? h("div", { class: "muted foreign" }, "another scheduler's pod") : null, r.claim ? h("div", { class: "muted claim" }, `DRA claim ${r.claim}, share ${r.share_id || "-"}`) : null),
    h("td", null, r.node),
    h("td", null, Object.entries(r.interfaces).map(([name, [i, e]]) => h("div", { class: "rate" }, h("b", null, name), ` ↓${rate(i)} ↑${rate(e)}`))),
    h("td", null, r.attachments.length ? r.attachments.map((a) => h("div", { class: "rate" }, h("b", null, a.interface), ` ${a.network} · ${a.segment} on ${a.parent}`, a.ip ? h("div", { class: "muted" }, a.ip) : null)) : h("span", { class: "muted" }, "—")))),
    more > 0 ? h("tr", { class: "more" }, h("td", { colspan: "4", class: "muted" }, `… and ${more} more: search for a pod, node or network to narrow the list`)) : []);
    ui.seenPods = new Set(data.reservations.map((r) => r.uid)); // only the current ones: a tab left open for weeks stays small
  }

  /** Newest first; a bind is shown on the line of the filter call that preceded it. */
  function decisionRows(decisions) {
    const rows = [];
    for (let i = 0; i < decisions.length; i++) {
      const d = decisions[i];
      const before = decisions[i + 1];
      if (d.verb === "bind" && before && before.verb === "filter" && before.pod === d.pod) {
        rows.push({ filter: before, bind: d });
        i++;
      } else {
        rows.push(d.verb === "bind" ? { bind: d } : { filter: d });
      }
    }
    return rows;
  }

  function renderDecisions(data) {
    const list = document.getElementById("decisions");
    const words = ui.query.toLowerCase().split(/\s+/).filter(Boolean);
    const rows = decisionRows(data.decisions).filter(({ filter, bind }) => {
      if (!words.length) return true;
      const hay = [filter, bind].filter(Boolean).map((d) => `${d.pod} ${d.node || ""} ${d.error} ${d.reasons.map((g) => `${g.reason} ${g.nodes.join(" ")}`).join(" ")}`).join(" ").toLowerCase();
      return words.every((w) => hay.includes(w));
    });
    document.getElementById("decisions-count").textContent = data.decisions.length;
    const open = new Set([...list.querySelectorAll("details[open]")].map((el) => el.dataset.key));
    list.replaceChildren(...rows.map(({ filter, bind }) => {
      const d = bind || filter;
      const key = `${d.time}|${d.pod}`;
      const outcomes = [];
      let cls = "";
      if (filter && filter.passed === 0 && filter.refused > 0) {
        outcomes.push(h("span", { class: "outcome bad" }, "fits no node"));
        cls = " refused";
      } else if (filter && !bind) {
        outcomes.push(h("span", { class: "outcome" }, `${filter.passed} of ${filter.passed + filter.refused} nodes fit`));
      }
      if (bind) {
        outcomes.push(bind.error
          ? h("span", { class: "outcome bad" }, `bind to ${bind.node} failed`)
          : h("span", { class: "outcome good" }, `→ ${bind.node}`));
        if (bind.error) cls = " refused";
      }
      const fitNote = filter && bind && filter.refused ? `${filter.passed} of ${filter.passed + filter.refused} fit · ` : "";
      const listed = filter ? filter.reasons.reduce((t, g) => t + g.count, 0) : 0;
      return h("li", { class: `decision${cls}`, dataset: { pod: d.pod, verbs: [filter && "filter", bind && "bind"].filter(Boolean).join(" ") } },
        h("div", { class: "line" }, h("time", { datetime: d.time }, time(d.time)),
          filter ? h("span", { class: "verb" }, "filter") : null, bind ? h("span", { class: "verb bind" }, "bind") : null,
          h("span", { class: "pod" }, d.pod), outcomes),
        bind && bind.error ? h("div", { class: "error" }, bind.error) : null,
        filter && filter.refused ? h("details", { dataset: { key }, open: cls !== "" || open.has(key) },
          h("summary", null, `${fitNote}${filter.refused} node${filter.refused === 1 ? "" : "s"} refused — why`),
          h("ul", { class: "reasons" }, filter.reasons.map((g) => h("li", null,
            h("div", { class: "reason" }, g.reason),
            h("div", { class: "on" }, g.count > 1 ? `${g.count} nodes: ` : "", g.nodes.slice(0, 12).join(", "), g.count > Math.min(12, g.nodes.length) ? ` … +${g.count - Math.min(12, g.nodes.length)}` : ""))),
          listed < filter.refused ? h("li", { class: "on" }, `… ${filter.refused - listed} more nodes in /api/v1/decisions`) : null)) : null);
    }));
  }

  function renderNetworks(data) {
    document.getElementById("networks").replaceChildren(...data.networks.map((n) => h("li", null,
      h("b", null, n.name), h("span", { class: `chip ${n.mode === "vlan" ? "vlan" : n.mode === "vxlan" ? "vni" : ""}` }, n.segment),
      h("span", null, n.mode), h("span", { class: "muted", title: n.note || "" },
        `${n.nodes} nodes · ${n.note ? (n.note.includes("reach unknown") ? n.note.slice(n.note.indexOf("(reach unknown")) : "Multus") : n.zones.length ? n.zones.join(", ") : "all zones"}`))));
  }

  function renderPolicies(data) {
    const pair = (p) => p && (p.ingress || p.egress) ? `in ${p.ingress || "-"} out ${p.egress || "-"}` : null;
    const usage = (p) => [["in", p.spec.hard && p.spec.hard.ingress, p.used.ingress], ["out", p.spec.hard && p.spec.hard.egress, p.used.egress]]
      .filter(([, hard]) => hard).map(([dir, hard, used]) => `${dir} ${rate(used)} of ${hard}`).join(" · ");
    document.getElementById("policies-count").textContent = data.policies.length || "";
    document.getElementById("policies").replaceChildren(...(data.policies.length ? data.policies.map((p) => h("li", { dataset: { policy: `${p.namespace}/${p.name}` } },
      h("b", null, `${p.namespace}/${p.name}`),
      pair(p.spec.default) ? h("span", { class: "chip", title: "reserved for pods that ask nothing" }, `default ${pair(p.spec.default)}`) : null,
      pair(p.spec.max) ? h("span", { title: "per pod, all interfaces" }, `max ${pair(p.spec.max)}`) : null,
      h("span", { class: "muted", title: "reserved by the namespace's pods, of its hard total" }, usage(p) || "no total"))) :
      [h("li", { class: "muted" }, "No BandwidthPolicy: pods that ask nothing reserve nothing.")]));
  }

  function renderSummary(data) {
    let nodes = 0, stale = 0;
    const totals = { ingress: [0, 0], egress: [0, 0] };
    for (const [, , node] of allNodes(data)) {
      nodes++;
      if (isStale(node)) stale++;
      for (const x of node.interfaces) {
        totals.ingress[0] += x.reserved[0]; totals.ingress[1] += x.capacity[0];
        totals.egress[0] += x.reserved[1]; totals.egress[1] += x.capacity[1];
      }
    }
    const stat = (value, label, title) => h("div", { class: "stat", title: title || "" }, h("b", null, value), h("span", null, label));
    document.getElementById("summary").replaceChildren(...[
      stat(nodes, "nodes"),
      stat(data.zones.length, "zones"),
      stat(data.reservations.length, "pods holding"),
      stat(`${pct(share(totals.ingress[0], totals.ingress[1]))}`, `in of ${rate(totals.ingress[1])}`, "ingress bandwidth reserved, of all usable capacity"),
      stat(`${pct(share(totals.egress[0], totals.egress[1]))}`, `out of ${rate(totals.egress[1])}`, "egress bandwidth reserved, of all usable capacity"),
      stat(data.networks.length, "networks"),
      stale ? stat(stale, "stale reports") : null].filter(Boolean));
  }

  function reveal(name) {
    const view = ui.nodeEls.get(name);
    if (!view) return;
    view.el.closest(".zone")?.classList.remove("folded");
    view.el.scrollIntoView({ block: "nearest", behavior: "smooth" });
    view.el.classList.remove("flash");
    void view.el.offsetWidth;
    view.el.classList.add("flash");
  }

  // -- the loop -------------------------------------------------------------------------

  function render(data) {
    const started = performance.now();
    const structure = structureOf(data);
    if (structure !== ui.structure) {
      buildTopology(data);
      ui.structure = structure;
      applyZoom();
    }
    updateTopology(data);
    for (const [n, v] of ui.nodeEls) v.el.classList.toggle("selected", n === ui.selected);
    renderSummary(data);
    renderDetail(data);
    renderNetworks(data);
    renderPolicies(data);
    applySearch(); // renders pods and decisions, filtered
    if (ui.firstRender) ui.firstRenderAt = performance.now(); // ms since navigation started
    ui.firstRender = false;
    ui.renderMs = performance.now() - started;
    document.body.dataset.version = data.version;
  }

  async function poll() {
    const live = document.getElementById("live");
    try {
      const response = await fetch("/api/v1/dashboard", { headers: ui.etag ? { "If-None-Match": ui.etag } : {}, cache: "no-store" });
      const date = response.headers.get("Date");
      if (date) ui.clockSkewMs = Date.parse(date) - Date.now();
      if (response.status === 200) {
        const data = await response.json();
        ui.etag = response.headers.get("ETag");
        ui.data = data;
        render(data);
      } else if (response.status !== 304) {
        throw new Error(`HTTP ${response.status}`);
      } else if (ui.data) {
        updateTopology(ui.data); // staleness moves with the clock even when nothing else does
      }
      ui.lastOk = Date.now();
      live.className = "live ok";
      live.lastElementChild.textContent = `live · ${new Date().toLocaleTimeString([], { hour12: false })}`;
    } catch (error) {
      live.className = "live down";
      live.lastElementChild.textContent = `offline — retrying (${error.message})`;
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  // -- wiring ---------------------------------------------------------------------------

  for (const el of document.querySelectorAll(".legend-scale i")) {
    el.style.background = loadColour(parseFloat(el.style.getPropertyValue("--f"))) || "var(--empty)";
  }
  const search = document.getElementById("search");
  let searchTimer = 0;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { ui.query = search.value; applySearch(); }, 120);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && document.activeElement !== search) { e.preventDefault(); search.focus(); }
    if (e.key === "Escape") { search.value = ""; ui.query = ""; applySearch(); }
  });
  for (const b of document.querySelectorAll("#zoom button")) {
    b.addEventListener("click", () => { ui.zoom = b.dataset.zoom; applyZoom(); });
  }
  for (const b of document.querySelectorAll(".tabs button")) {
    b.addEventListener("click", () => {
      for (const other of document.querySelectorAll(".tabs button")) other.setAttribute("aria-selected", String(other === b));
      for (const body of document.querySelectorAll(".tab-body")) body.hidden = body.id !== `tab-${b.dataset.tab}`;
    });
  }
  poll();
})();
