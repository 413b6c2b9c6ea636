// Sensor charts for the map's popups: one entity's last 24 hours from the NGSI-LD temporal API,
// drawn as inline SVG (no libraries): one line per quantity in panels stacked on a shared time
// axis, each panel with its quantity, unit and range; times are local (Europe/Sofia).
// Reads GET map/ngsi-ld/v1/temporal/entities/{id}?timerel=between&timeAt=...&endTimeAt=... through
// the service's proxy, following partial answers (206 + Content-Range) page by page.
// For tests and tools: div.chart[data-state] (loading|ready|empty|error), and per quantity
// g.series[data-attr][data-unit][data-points].
window.BurgasChart = (() => {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const ZONE = "Europe/Sofia";
  const HOUR = 3600 * 1000;
  const WINDOW = 24 * HOUR;
  const MAX_PAGES = 40;          // partial answers followed per chart
  const GAP_BREAK = 2 * HOUR;    // readings further apart than this are not joined by the line
  const WIDTH = 460, PANEL = 50, SPACE = 16, LEFT = 48, RIGHT = 12, TOP = 4, AXIS = 30;
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  // Quantities the data models give without a unit code: what their numbers count.
  const COUNTS = { intensity: "vehicles", occupiedSpotNumber: "spaces", availableSpotNumber: "spaces",
                   occupancy: "share", airQualityIndex: "index", relativeHumidity: "share" };

  const clock = new Intl.DateTimeFormat("en-GB", { timeZone: ZONE, hour: "2-digit", minute: "2-digit",
                                                   hourCycle: "h23" });
  const day = new Intl.DateTimeFormat("en-GB", { timeZone: ZONE, day: "numeric", month: "short" });
  const stamp = new Intl.DateTimeFormat("en-GB", { timeZone: ZONE, day: "numeric", month: "short",
                                                   year: "numeric", hour: "2-digit", minute: "2-digit",
                                                   hourCycle: "h23", timeZoneName: "short" });
  const localHour = (t) => Number(clock.formatToParts(new Date(t)).find((p) => p.type === "hour").value);
  const iso = (t) => new Date(t).toISOString();
  const shortName = (iri) => String(iri).split(/[#/]/).filter(Boolean).pop() || String(iri);
  const number = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(1)
    : String(Math.round(v * 10000) / 10000));

  const el = (name, attrs, text) => {
    const node = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };

  // --- reading -------------------------------------------------------------------------------

  // attr -> {unit, points: [{t, v}]} of the numeric instances observed in [end - 24 h, end].
  async function history(api, entityId, end) {
    const series = new Map();
    let from = end - WINDOW;
    for (let page = 0; page < MAX_PAGES; page++) {
      const url = new URL("temporal/entities/" + encodeURIComponent(entityId), api);
      url.searchParams.set("timerel", "between");
      url.searchParams.set("timeAt", iso(from));
      url.searchParams.set("endTimeAt", iso(end + 1000));
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.status === 404) break;  // no history (yet)
      let body = null;
      try { body = await response.json(); } catch (e) { /* reported below */ }
      if (!response.ok || !body) {
        throw new Error(`history: ${response.status}${body && body.detail ? " " + body.detail : ""}`);
      }
      for (const [key, attr] of Object.entries(body)) {
        if (["id", "type", "@context"].includes(key)) continue;
        for (const a of Array.isArray(attr) ? attr : [attr]) {
          if (!a || typeof a.value !== "number" || !Number.isFinite(a.value) || !a.observedAt) continue;
          const name = shortName(key);
          if (!series.has(name)) series.set(name, { unit: a.unitCode || null, points: new Map() });
          const s = series.get(name);
          s.unit = s.unit || a.unitCode || null;
          s.points.set(Date.parse(a.observedAt), a.value);
        }
      }
      // A partial answer is complete up to the end of its Content-Range: read on from there.
      const range = /date-time (\S+?Z)-(\S+?Z)\//.exec(response.headers.get("Content-Range") || "");
      if (response.status !== 206 || !range) break;
      const next = Date.parse(range[2]) + 1;
      if (!(next > from)) break;
      from = next;
    }
    return [...series.entries()].map(([attr, s]) => ({
      attr, unit: s.unit,
      points: [...s.points.entries()].map(([t, v]) => ({ t, v })).sort((a, b) => a.t - b.t),
    })).filter((s) => s.points.length).sort((a, b) => a.attr.localeCompare(b.attr));
  }

  // --- drawing -------------------------------------------------------------------------------

  function axis(svg, start, end, x, bottom) {
    const grid = el("g", { class: "axis" });
    for (let t = Math.ceil(start / HOUR) * HOUR; t <= end; t += HOUR) {
      const hour = localHour(t);
      if (hour % 3 !== 0) continue;  // Sofia's offset is whole hours: UTC and local hours coincide
      grid.append(el("line", { x1: x(t), x2: x(t), y1: TOP, y2: bottom, class: hour === 0 ? "midnight" : "" }));
      if (hour % 6 === 0) {
        grid.append(el("text", { x: x(t), y: bottom + 13, "text-anchor": "middle" }, clock.format(new Date(t))));
        if (hour === 0) grid.append(el("text", { x: x(t), y: bottom + 25, "text-anchor": "middle", class: "day" },
                                          day.format(new Date(t))));
      }
    }
    svg.append(grid);
  }

  function panel(svg, s, index, x, unitLabel) {
    const y0 = TOP + index * (PANEL + SPACE) + SPACE;
    const values = s.points.map((p) => p.v);
    let lo = Math.min(...values), hi = Math.max(...values);
    if (hi - lo < 1e-9) { const pad = Math.abs(hi) * 0.1 || 1; lo -= pad; hi += pad; }
    const y = (v) => y0 + PANEL - ((v - lo) / (hi - lo)) * PANEL;
    const unit = s.unit ? unitLabel(s.unit) : (COUNTS[s.attr] || "");
    const color = COLORS[index % COLORS.length];
    const g = el("g", { class: "series", "data-attr": s.attr, "data-unit": unit, "data-points": s.points.length });
    g.append(el("rect", { x: LEFT, y: y0, width: WIDTH - LEFT - RIGHT, height: PANEL, class: "frame" }));
    const last = s.points[s.points.length - 1];
    g.append(el("text", { x: LEFT, y: y0 - 4, class: "name" }, `${s.attr}${unit ? " (" + unit + ")" : ""}`));
    g.append(el("text", { x: WIDTH - RIGHT, y: y0 - 4, "text-anchor": "end", class: "last", fill: color },
                `${number(last.v)}${unit ? " " + unit : ""} at ${clock.format(new Date(last.t))}`));
    g.append(el("text", { x: LEFT - 4, y: y0 + 9, "text-anchor": "end" }, number(hi)));
    g.append(el("text", { x: LEFT - 4, y: y0 + PANEL, "text-anchor": "end" }, number(lo)));
    let d = "";
    s.points.forEach((p, i) => {
      const joined = i > 0 && p.t - s.points[i - 1].t <= GAP_BREAK;
      d += `${joined ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;
    });
    g.append(el("path", { d, stroke: color, class: "line" }));
    const dots = el("g", { fill: color });
    for (const p of s.points) {
      const dot = el("circle", { cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: s.points.length > 48 ? 1.4 : 2.2 });
      dot.append(el("title", {}, `${clock.format(new Date(p.t))}  ${number(p.v)}${unit ? " " + unit : ""}`));
      dots.append(dot);
    }
    g.append(dots);
    svg.append(g);
  }

  // Draw the last 24 h before `end` (ms) of one entity into `container` (a div, emptied first).
  async function show(container, api, entityId, end, unitLabel) {
    container.className = "chart";
    container.dataset.state = "loading";
    container.replaceChildren(Object.assign(document.createElement("p"), { className: "note",
                                                                          textContent: "Loading the last 24 h…" }));
    let series;
    try {
      series = await history(api, entityId, end);
    } catch (error) {
      container.dataset.state = "error";
      container.firstChild.textContent = `No history: ${error.message}`;
      return;
    }
    if (!series.length) {
      container.dataset.state = "empty";
      container.firstChild.textContent = "No readings in the last 24 h.";
      return;
    }
    const start = end - WINDOW;
    const x = (t) => LEFT + ((t - start) / WINDOW) * (WIDTH - LEFT - RIGHT);
    const bottom = TOP + series.length * (PANEL + SPACE) + SPACE;
    const svg = el("svg", { viewBox: `0 0 ${WIDTH} ${bottom + AXIS}`, width: WIDTH, height: bottom + AXIS,
                            role: "img", "aria-label": `Last 24 hours of ${entityId}` });
    axis(svg, start, end, x, bottom);
    series.forEach((s, i) => panel(svg, s, i, x, unitLabel));
    const caption = Object.assign(document.createElement("p"), { className: "note" });
    caption.textContent = `Last 24 h to ${stamp.format(new Date(end))} (Europe/Sofia), ` +
      `${series.reduce((n, s) => n + s.points.length, 0)} readings`;
    container.replaceChildren(svg, caption);
    container.dataset.state = "ready";
  }

  return { show, history, WINDOW };
})();
