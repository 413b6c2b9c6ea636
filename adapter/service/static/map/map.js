// The broker's entities on a map of Burgas: plain JS and SVG, no libraries, no tiles, no network
// beyond this service. Reads NGSI-LD (normalized) through the service's read-only proxy:
//   GET map/ngsi-ld/v1/types, GET map/ngsi-ld/v1/entities?type=...&limit=...&offset=...
// For tests and tools the DOM says what is drawn: body[data-state] (loading|ready|error),
// body[data-features], and per type g.layer[data-type][data-count] and li[data-type][data-count].
// A sensor's popup (an entity with observed values) also charts its last 24 h (chart.js).
(() => {
  "use strict";

  const API = new URL("map/ngsi-ld/v1/", location.href);
  const PAGE = 1000;          // the broker's largest page
  const MAX_PAGES = 20;       // per type: at most 20,000 entities of one type are drawn
  const PARALLEL = 4;         // types read at once
  const BURGAS = [27.33, 42.42, 27.58, 42.60];  // lon/lat box shown when nothing has a geometry
  const M_PER_DEG_LAT = 110574;
  const M_PER_DEG_LON = 111320;
  const POINT_RADIUS = 5.5;
  const TEXT_MAX = 240;
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                   "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#ad494a", "#3182bd",
                   "#e6550d", "#31a354"];
  // Units of measurement (UN/CEFACT codes) the Burgas data uses; others are shown as their code.
  const UNITS = { GQ: "µg/m³", GP: "mg/m³", KMH: "km/h", MTR: "m", KTM: "km", KWT: "kW", DD: "°",
                  CEL: "°C", P1: "%", KGM: "kg", HUR: "h", MIN: "min", SEC: "s", E32: "veh/h",
                  A24: "cd/m²", MBR: "mbar", HPA: "hPa", MMT: "mm", MTS: "m/s", DB: "dB" };
  // Attributes whose value is the time of an observation (short names).
  const TIME_ATTRS = ["dateObserved", "observationDateTime", "dateObservedTo", "dateLastValueReported",
                      "dateModified"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  const svg = document.getElementById("map");
  const popup = document.getElementById("popup");
  const popupBody = document.getElementById("popup-body");
  const statusLine = document.getElementById("status");
  const layerList = document.getElementById("layers");

  let projection = null;      // {lon0, lat0, k}
  let view = { x: 0, y: 0, scale: 1 };  // world metres at the centre, pixels per metre
  let layers = [];            // [{type, iri, color, entities, features, group}]
  let features = [];          // [{entity, layer, geometry, element}]
  let root = null, grid = null, selected = null;

  // --- names and values ----------------------------------------------------------------------

  const shortName = (iri) => String(iri).split(/[#/]/).filter(Boolean).pop() || String(iri);
  const clip = (text) => (text.length > TEXT_MAX ? text.slice(0, TEXT_MAX - 1) + "…" : text);

  function formatValue(value, unitCode) {
    let text;
    if (value === null || value === undefined) text = "—";
    else if (typeof value === "number") text = Number.isInteger(value) ? String(value)
      : String(Math.round(value * 1000) / 1000);
    else if (typeof value === "string") text = value;
    else if (Array.isArray(value) && value.every((v) => typeof v !== "object")) text = value.join(", ");
    else text = JSON.stringify(value);
    if (unitCode) text += " " + (UNITS[unitCode] || unitCode);
    return clip(text);
  }

  function formatAttribute(attr) {
    const instances = Array.isArray(attr) ? attr : [attr];
    return instances.map((a) => {
      if (a === null || typeof a !== "object") return formatValue(a);
      switch (a.type) {
        case "Relationship": return formatValue(a.object);
        case "LanguageProperty":
          return clip(Object.entries(a.languageMap || {}).map(([lang, v]) => `${lang}: ${v}`).join(" · "));
        case "GeoProperty": return a.value && a.value.type ? a.value.type : "geometry";
        default: return formatValue(a.value, a.unitCode);
      }
    }).join("; ");
  }

  function entityName(entity) {
    for (const [key, attr] of Object.entries(entity)) {
      const name = shortName(key);
      const a = Array.isArray(attr) ? attr[0] : attr;
      if (name === "multilingualName" && a && a.languageMap) {
        return a.languageMap.en || a.languageMap.bg || Object.values(a.languageMap)[0];
      }
    }
    for (const [key, attr] of Object.entries(entity)) {
      const a = Array.isArray(attr) ? attr[0] : attr;
      if (["name", "agencyName", "headSign"].includes(shortName(key)) && a && typeof a.value === "string") {
        return a.value;
      }
    }
    return entity.id;
  }

  // The latest observation time of an entity: attribute observedAt, or a date-of-observation value.
  function observedAt(entity) {
    let latest = null;
    const consider = (text) => {
      const t = typeof text === "string" ? Date.parse(text) : NaN;
      if (!Number.isNaN(t) && (latest === null || t > latest.t)) latest = { t, text };
    };
    for (const [key, attr] of Object.entries(entity)) {
      for (const a of Array.isArray(attr) ? attr : [attr]) {
        if (!a || typeof a !== "object") continue;
        consider(a.observedAt);
        if (TIME_ATTRS.includes(shortName(key))) consider(a.value);
      }
    }
    return latest && latest.text;
  }

  function geometryOf(entity) {
    const candidates = [entity.location, ...Object.values(entity)];
    for (const attr of candidates) {
      const a = Array.isArray(attr) ? attr[0] : attr;
      if (a && a.type === "GeoProperty" && a.value && a.value.type) return a.value;
    }
    return null;
  }

  // --- reading the broker --------------------------------------------------------------------

  async function getJSON(path, params) {
    const url = new URL(path, API);
    for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, v);
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await response.json(); } catch (e) { /* reported below */ }
    if (response.status === 404 && body && String(body.type).endsWith("NonExistingTenant")) {
      // A tenant nobody has written to yet holds nothing (Orion-LD answers 404 until then).
      return { body: path === "types" ? { typeList: [] } : [], count: "0" };
    }
    if (!response.ok) {
      const detail = body && (body.detail || body.title);
      throw new Error(`${url.pathname}: ${response.status}${detail ? " " + detail : ""}`);
    }
    return { body, count: response.headers.get("NGSILD-Results-Count") };
  }

  async function loadType(iri) {
    const entities = [];
    for (let page = 0; page < MAX_PAGES; page++) {
      const { body, count } = await getJSON("entities", { type: iri, limit: String(PAGE),
                                                          offset: String(entities.length), count: "true" });
      if (!Array.isArray(body)) throw new Error(`entities of ${iri}: not an array`);
      entities.push(...body);
      if (body.length < PAGE || (count !== null && entities.length >= Number(count))) break;
    }
    return entities;
  }

  async function pool(items, worker) {
    const results = new Array(items.length);
    let next = 0;
    const run = async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await worker(items[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, run));
    return results;
  }

  // --- projection and drawing ----------------------------------------------------------------

  function project([lon, lat]) {
    return [(lon - projection.lon0) * projection.k * M_PER_DEG_LON, (projection.lat0 - lat) * M_PER_DEG_LAT];
  }

  function unproject([x, y]) {
    return [x / (projection.k * M_PER_DEG_LON) + projection.lon0, projection.lat0 - y / M_PER_DEG_LAT];
  }

  function positions(geometry) {
    switch (geometry.type) {
      case "Point": return [geometry.coordinates];
      case "MultiPoint": case "LineString": return geometry.coordinates;
      case "MultiLineString": case "Polygon": return geometry.coordinates.flat();
      case "MultiPolygon": return geometry.coordinates.flat(2);
      case "GeometryCollection": return geometry.geometries.flatMap(positions);
      default: return [];
    }
  }

  function bounds(geometries) {
    let b = null;
    for (const g of geometries) {
      for (const [lon, lat] of positions(g)) {
        if (!Number.isFinite(lon) || !Number.isFinite(lat)) continue;
        b = b ? [Math.min(b[0], lon), Math.min(b[1], lat), Math.max(b[2], lon), Math.max(b[3], lat)]
              : [lon, lat, lon, lat];
      }
    }
    return b || BURGAS;
  }

  const el = (name, attrs) => {
    const node = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  };

  const ringPath = (ring) => ring.map((p, i) => {
    const [x, y] = project(p);
    return `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
  }).join("");

  // SVG elements of one geometry; paths keep their stroke width whatever the zoom.
  function shapes(geometry, color) {
    const c = geometry.coordinates;
    const area = (rings) => el("path", { d: rings.map((r) => ringPath(r) + "Z").join(""), class: "area",
      fill: color, stroke: color, "fill-rule": "evenodd", "vector-effect": "non-scaling-stroke" });
    const line = (coords) => el("path", { d: ringPath(coords), class: "line", stroke: color,
      "vector-effect": "non-scaling-stroke" });
    const point = (p) => {
      const [x, y] = project(p);
      return el("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 1, class: "point", fill: color,
                            "vector-effect": "non-scaling-stroke" });
    };
    switch (geometry.type) {
      case "Point": return [point(c)];
      case "MultiPoint": return c.map(point);
      case "LineString": return [line(c)];
      case "MultiLineString": return c.map(line);
      case "Polygon": return [area(c)];
      case "MultiPolygon": return c.map(area);
      case "GeometryCollection": return geometry.geometries.flatMap((g) => shapes(g, color));
      default: return [];
    }
  }

  const KIND_ORDER = { Polygon: 0, MultiPolygon: 0, LineString: 1, MultiLineString: 1 };

  function draw() {
    svg.replaceChildren();
    grid = el("g", { class: "grid" });
    root = el("g", { id: "view" });
    svg.append(grid, root);
    features = [];
    // Areas under lines under points, so that every point stays clickable.
    const rank = (layer) => Math.min(2, ...layer.geometries.map((g) => KIND_ORDER[g.type] ?? 2));
    for (const layer of [...layers].sort((a, b) => rank(a) - rank(b) || a.type.localeCompare(b.type))) {
      layer.group = el("g", { class: "layer", "data-type": layer.type, "data-count": layer.geometries.length });
      for (let i = 0; i < layer.withGeometry.length; i++) {
        const entity = layer.withGeometry[i];
        const feature = el("g", { class: "feature", "data-id": entity.id, "data-index": features.length,
                                  tabindex: "0" });
        const title = el("title");
        title.textContent = `${entityName(entity)} (${layer.type})`;
        feature.append(title, ...shapes(layer.geometries[i], layer.color));
        features.push({ entity, layer, element: feature });
        layer.group.append(feature);
      }
      layer.group.style.display = layer.visible ? "" : "none";
      root.append(layer.group);
    }
    document.body.dataset.features = String(features.length);
  }

  function size() {
    const box = svg.getBoundingClientRect();
    return [Math.max(box.width, 1), Math.max(box.height, 1)];
  }

  function fit(box) {
    const [w, h] = size();
    const [x0, y0] = project([box[0], box[3]]);
    const [x1, y1] = project([box[2], box[1]]);
    view = { x: (x0 + x1) / 2, y: (y0 + y1) / 2,
             scale: Math.min((w * 0.9) / Math.max(x1 - x0, 200), (h * 0.9) / Math.max(y1 - y0, 200)) };
    render();
  }

  function render() {
    if (!root) return;
    const [w, h] = size();
    const s = view.scale;
    root.setAttribute("transform", `translate(${w / 2 - view.x * s},${h / 2 - view.y * s}) scale(${s})`);
    for (const circle of root.querySelectorAll("circle.point")) circle.setAttribute("r", POINT_RADIUS / s);
    renderGrid(w, h);
    renderScale();
  }

  // Lon/lat lines every 0.01..0.5 degrees, some 6-12 across the window, with labels.
  function renderGrid(w, h) {
    grid.replaceChildren();
    const toWorld = (px, py) => [view.x + (px - w / 2) / view.scale, view.y + (py - h / 2) / view.scale];
    const [lonA, latA] = unproject(toWorld(0, 0));
    const [lonB, latB] = unproject(toWorld(w, h));
    const span = Math.max(lonB - lonA, latA - latB);
    const step = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1].find((s) => span / s <= 12) || 1;
    const decimals = step < 0.01 ? 3 : 2;
    const toPixel = (lon, lat) => {
      const [x, y] = project([lon, lat]);
      return [w / 2 + (x - view.x) * view.scale, h / 2 + (y - view.y) * view.scale];
    };
    for (let lon = Math.ceil(lonA / step) * step; lon <= lonB; lon += step) {
      const [x] = toPixel(lon, latA);
      grid.append(el("line", { x1: x, y1: 0, x2: x, y2: h }));
      const label = el("text", { x: x + 3, y: 14 });
      label.textContent = `${lon.toFixed(decimals)}°E`;
      grid.append(label);
    }
    for (let lat = Math.ceil(latB / step) * step; lat <= latA; lat += step) {
      const [, y] = toPixel(lonA, lat);
      grid.append(el("line", { x1: 0, y1: y, x2: w, y2: y }));
      const label = el("text", { x: w - 52, y: y - 3 });
      label.textContent = `${lat.toFixed(decimals)}°N`;
      grid.append(label);
    }
  }

  function renderScale() {
    const metres = 110 / view.scale;
    const magnitude = 10 ** Math.floor(Math.log10(metres));
    const nice = [5, 2, 1].map((f) => f * magnitude).find((m) => m <= metres) || magnitude;
    document.getElementById("scale-bar").style.width = `${nice * view.scale}px`;
    document.getElementById("scale-label").textContent = nice >= 1000 ? `${nice / 1000} km` : `${nice} m`;
  }

  // --- panel and popup -----------------------------------------------------------------------

  function renderPanel() {
    layerList.replaceChildren();
    for (const layer of layers) {
      const item = document.createElement("li");
      item.dataset.type = layer.type;
      item.dataset.count = String(layer.geometries.length);
      item.dataset.entities = String(layer.entities.length);
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = layer.color;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = layer.type;
      name.title = layer.iri;
      const count = document.createElement("span");
      count.className = "count";
      if (layer.geometries.length === 0) {
        item.className = "empty";
        count.textContent = `${layer.entities.length}, no geometry`;
        item.append(swatch, name, count);
      } else {
        const label = document.createElement("label");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.checked = layer.visible;
        box.addEventListener("change", () => {
          layer.visible = box.checked;
          layer.group.style.display = layer.visible ? "" : "none";
          if (!layer.visible && selected && selected.layer === layer) closePopup();
        });
        count.textContent = String(layer.geometries.length);
        label.append(box, swatch, name, count);
        item.append(label);
      }
      layerList.append(item);
    }
  }

  function openPopup(feature, clientX, clientY) {
    closePopup();
    selected = feature;
    for (const shape of feature.element.querySelectorAll("path, circle")) shape.classList.add("selected");
    const { entity, layer } = feature;
    const heading = document.createElement("h2");
    heading.textContent = entityName(entity);
    const meta = document.createElement("p");
    meta.className = "meta";
    meta.textContent = `${layer.type} · ${entity.id}`;
    const observed = document.createElement("p");
    observed.className = "observed";
    const when = observedAt(entity);
    observed.textContent = when ? `Observed ${when}` : "No observation time";
    const table = document.createElement("table");
    for (const [key, attr] of Object.entries(entity)) {
      if (["id", "type", "@context"].includes(key)) continue;
      const a = Array.isArray(attr) ? attr[0] : attr;
      if (a && a.type === "GeoProperty") continue;
      const row = table.insertRow();
      const th = document.createElement("th");
      th.textContent = shortName(key);
      th.title = key;
      row.append(th);
      const value = row.insertCell();
      value.className = "value";
      value.textContent = formatAttribute(attr);
      const time = row.insertCell();
      time.className = "time";
      // Only observation times that differ from the entity's (shown once, above the table).
      time.textContent = a && a.observedAt && a.observedAt !== when ? a.observedAt : "";
    }
    popupBody.replaceChildren(heading, meta, observed, table);
    const sensor = when && Object.values(entity).some((a) => a && typeof a === "object" && !Array.isArray(a)
                                                          && a.observedAt);
    popup.classList.toggle("with-chart", Boolean(sensor));
    popup.hidden = false;
    popup.dataset.id = entity.id;
    place(clientX, clientY);
    if (sensor && window.BurgasChart) {
      const chart = document.createElement("div");
      popupBody.append(chart);
      window.BurgasChart.show(chart, API, entity.id, Date.parse(when), (code) => UNITS[code] || code)
        .then(() => { if (selected === feature) place(clientX, clientY); });
    }
  }

  // Beside the feature, on the side of the window with more room.
  function place(clientX, clientY) {
    const stage = svg.getBoundingClientRect();
    const x = clientX - stage.left, y = clientY - stage.top;
    const left = x > stage.width / 2 ? x - popup.offsetWidth - 14 : x + 14;
    const top = y > stage.height / 2 ? y - popup.offsetHeight + 14 : y - 14;
    popup.style.left = `${Math.max(8, Math.min(left, stage.width - popup.offsetWidth - 8))}px`;
    popup.style.top = `${Math.max(8, Math.min(top, stage.height - popup.offsetHeight - 8))}px`;
  }

  function closePopup() {
    if (selected) {
      for (const shape of selected.element.querySelectorAll(".selected")) shape.classList.remove("selected");
    }
    selected = null;
    popup.hidden = true;
    delete popup.dataset.id;
  }

  // --- interaction ---------------------------------------------------------------------------

  function zoomAt(factor, px, py) {
    const [w, h] = size();
    const wx = view.x + (px - w / 2) / view.scale;
    const wy = view.y + (py - h / 2) / view.scale;
    view.scale = Math.min(Math.max(view.scale * factor, 1e-4), 50);
    view.x = wx - (px - w / 2) / view.scale;
    view.y = wy - (py - h / 2) / view.scale;
    render();
  }

  let drag = null;
  svg.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false };
  });
  window.addEventListener("pointermove", (e) => {
    // Only while the button is down: a release the page never saw must not leave the map
    // following the pointer.
    if (!drag || !(e.buttons & 1)) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    drag.moved = true;
    svg.classList.add("dragging");
    view.x = drag.vx - dx / view.scale;
    view.y = drag.vy - dy / view.scale;
    render();
  });
  window.addEventListener("pointerup", () => {
    svg.classList.remove("dragging");
    setTimeout(() => { drag = null; }, 0);  // the click that ends a drag is not a feature click
  });
  svg.addEventListener("click", (e) => {
    if (drag && drag.moved) return;
    const target = e.target.closest && e.target.closest(".feature");
    if (target) openPopup(features[Number(target.dataset.index)], e.clientX, e.clientY);
    else closePopup();
  });
  svg.addEventListener("keydown", (e) => {
    const target = e.target.closest && e.target.closest(".feature");
    if (target && (e.key === "Enter" || e.key === " ")) {
      const box = target.getBoundingClientRect();
      openPopup(features[Number(target.dataset.index)], box.right, box.bottom);
    }
  });
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const box = svg.getBoundingClientRect();
    zoomAt(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - box.left, e.clientY - box.top);
  }, { passive: false });
  document.getElementById("zoom").addEventListener("click", (e) => {
    const action = e.target.dataset && e.target.dataset.zoom;
    const [w, h] = size();
    if (action === "in") zoomAt(1.5, w / 2, h / 2);
    else if (action === "out") zoomAt(1 / 1.5, w / 2, h / 2);
    else if (action === "fit") fit(bounds(layers.flatMap((l) => l.geometries)));
  });
  document.getElementById("popup-close").addEventListener("click", closePopup);
  document.getElementById("reload").addEventListener("click", () => load());
  window.addEventListener("resize", render);

  // --- loading -------------------------------------------------------------------------------

  async function load() {
    document.body.dataset.state = "loading";
    statusLine.textContent = "Loading the broker's entities…";
    closePopup();
    try {
      const { body } = await getJSON("types");
      const iris = (body && Array.isArray(body.typeList) ? body.typeList : []).slice()
        .sort((a, b) => shortName(a).localeCompare(shortName(b)));
      const visible = new Map(layers.map((l) => [l.iri, l.visible]));
      const loaded = await pool(iris, loadType);
      layers = iris.map((iri, i) => {
        const withGeometry = [], geometries = [];
        for (const entity of loaded[i]) {
          const geometry = geometryOf(entity);
          if (geometry) { withGeometry.push(entity); geometries.push(geometry); }
        }
        return { type: shortName(iri), iri, color: PALETTE[i % PALETTE.length], entities: loaded[i],
                 withGeometry, geometries, visible: visible.get(iri) ?? true, group: null };
      });
      const box = bounds(layers.flatMap((l) => l.geometries));
      projection = { lon0: (box[0] + box[2]) / 2, lat0: (box[1] + box[3]) / 2,
                     k: Math.cos(((box[1] + box[3]) / 2) * Math.PI / 180) };
      draw();
      renderPanel();
      fit(box);
      const total = layers.reduce((n, l) => n + l.entities.length, 0);
      statusLine.textContent = `${total} entities of ${layers.length} types; ${features.length} on the map.`;
      document.body.dataset.state = "ready";
    } catch (error) {
      statusLine.textContent = `Cannot read the broker: ${error.message}`;
      document.body.dataset.state = "error";
    }
  }

  load();
})();
