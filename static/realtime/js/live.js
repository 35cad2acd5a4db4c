// The live events page: one WebSocket to /ws/events/ (docs/live-protocol.md) that reconnects with
// capped exponential backoff plus jitter and catches up with ?since=<last id seen>. Settings come
// from the page's data- attributes; everything received is drawn with textContent, never as HTML.
const RISKS = ["low", "medium", "high", "critical"];
const SYSTEM_CHANNELS = new Set(["system_status", "performance_update"]);
const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 30_000;
const ACTIONS_KEPT = 20;
const SUMMARY_CHARS = 300;
// Depth samples carry the server's verdict on a bounded list (queues.inventory.QueueInfo.level).
const LEVEL_NOTES = { ok: "", filling: " · filling up", full: " · full" };
// A stream is trimmed rather than refused: its level says how far behind its groups are (or, for a
// stream DLQ, how near MAXLEN it is, where each new failure trims the oldest).
const STREAM_NOTES = { ok: "", filling: " · falling behind", full: " · losing entries" };
const STREAM_DLQ_NOTES = { ok: "", filling: " · filling up", full: " · losing entries" };
// 4008: the server's "do not reconnect" (daphne cannot send RFC 6455's 1008); 4011: reconnect.
const POLICY_CLOSES = new Set([1008, 4008]);
const FIELD_SKIP = /(^id$|_id$|^camera|_at$|time|^timestamp$)/;

// --- The socket ----------------------------------------------------------------------------------

class Connection {
  constructor(path, since, page) {
    this.path = path;
    this.lastId = since || null;
    this.page = page;
    this.attempt = 0;
    this.socket = null;
    this.everLive = false;
    this.refused = false;
  }

  open() {
    this.stopTimers();
    this.page.setStatus("connecting", "Connecting…");
    const socket = new WebSocket(this.url());
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      this.page.setStatus("connecting", this.lastId ? "Connected, catching up…" : "Connected…");
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", (event) => {
      if (socket === this.socket) {
        this.closed(event.code, opened);
      }
    });
    this.socket = socket;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = this.lastId ? `?since=${encodeURIComponent(this.lastId)}` : "";
    return `${scheme}//${location.host}${this.path}${query}`;
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (!isObject(message)) {
      return;
    }
    if (typeof message.id === "string") {
      if (this.lastId && compareIds(message.id, this.lastId) <= 0) {
        return; // already shown before a reconnect
      }
      this.lastId = message.id;
    }
    if (message.channel === "console" && message.type === "caught_up") {
      this.caughtUp(isObject(message.data) ? message.data : {});
    }
    this.page.receive(message);
  }

  caughtUp(data) {
    const replayed = Number(data.replayed) || 0;
    const note = this.everLive && replayed ? ` (caught up on ${plural(replayed, "missed event")})` : "";
    this.everLive = true;
    this.attempt = 0;
    this.page.setStatus("live", `Live${note}`);
  }

  async closed(code, opened) {
    this.socket = null;
    this.refused = POLICY_CLOSES.has(code) || (!opened && (await this.signedOut()));
    if (this.refused) {
      const why = "signed out, or your role no longer shows live events. Reload to sign in.";
      this.page.setStatus("offline", `Offline: ${why}`);
    } else if (navigator.onLine === false) {
      this.page.setStatus("offline", "Offline: no network. Reconnecting when it is back.");
    } else {
      this.schedule();
    }
  }

  async signedOut() {
    try {
      const options = { method: "HEAD", redirect: "manual", credentials: "same-origin", cache: "no-store" };
      const response = await fetch(location.pathname, options);
      return response.type === "opaqueredirect" || response.status === 403;
    } catch {
      return false; // the server is unreachable: keep trying
    }
  }

  schedule() {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    const due = Date.now() + delay;
    this.attempt += 1;
    const tick = () => {
      const seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
      this.page.setStatus("reconnecting", "Reconnecting", ` in ${seconds} s`);
    };
    tick();
    this.countdown = setInterval(tick, 1000);
    this.timer = setTimeout(() => this.open(), delay);
  }

  reconnectNow({ evenIfRefused = false } = {}) {
    if (!this.socket && (evenIfRefused || !this.refused)) {
      this.open();
    }
  }

  stopTimers() {
    clearTimeout(this.timer);
    clearInterval(this.countdown);
  }
}

// --- The page ------------------------------------------------------------------------------------

class LivePage {
  constructor(root) {
    const find = (name) => root.querySelector(`[data-live-${name}]`);
    this.el = {
      status: find("status"),
      statusText: find("status-text"),
      countdown: find("countdown"),
      reconnect: find("reconnect"),
      pause: find("pause"),
      held: find("held"),
      banner: find("banner"),
      bannerText: find("banner-text"),
      filters: find("filters"),
      cameras: find("cameras"),
      types: find("types"),
      counters: find("counters"),
      rows: find("rows"),
      empty: find("empty"),
      shown: find("shown"),
      tiles: find("tiles"),
      sampled: find("sampled"),
      actions: find("actions"),
      actionsEmpty: find("actions-empty"),
      systemTime: find("system-time"),
    };
    this.maxRows = Number(root.dataset.maxRows) || 500;
    this.queueUrl = root.dataset.queueUrl || "";
    this.auditUrl = root.dataset.auditUrl || "";
    this.root = root;
    this.paused = false;
    this.held = [];
    this.heldCount = 0;
    this.counts = new Map();
    this.total = 0;
    this.notices = { lost: 0, skipped: 0, estimated: false };
    this.tiles = new Map();
    this.chips = new Map();
    this.connection = new Connection(root.dataset.socketPath, root.dataset.since, this);
  }

  start() {
    this.readFiltersFromUrl();
    this.el.filters.addEventListener("input", () => this.filtersChanged());
    this.el.filters.addEventListener("reset", () => setTimeout(() => this.filtersChanged()));
    this.el.filters.addEventListener("submit", (event) => event.preventDefault());
    this.el.pause.addEventListener("click", () => this.togglePause());
    this.el.reconnect.addEventListener("click", () => this.connection.reconnectNow({ evenIfRefused: true }));
    this.root.querySelector("[data-live-banner-dismiss]").addEventListener("click", () => this.dismissBanner());
    document.addEventListener("keydown", (event) => this.shortcut(event));
    window.addEventListener("online", () => this.connection.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") {
        this.connection.reconnectNow();
      }
    });
    this.updateCounts();
    this.connection.open();
  }

  setStatus(state, text, countdown = "") {
    this.el.status.dataset.state = state;
    if (this.el.statusText.textContent !== text) {
      this.el.statusText.textContent = text;
    }
    this.el.countdown.textContent = countdown;
    this.el.reconnect.hidden = state !== "reconnecting" && state !== "offline";
  }

  receive(message) {
    if (message.channel === "console") {
      this.control(message.type, isObject(message.data) ? message.data : {});
    } else if (message.channel === "console_actions") {
      this.addAction(message);
    } else if (SYSTEM_CHANNELS.has(message.channel)) {
      this.showSystem(message);
    } else {
      this.addEvent(describe(message));
    }
  }

  control(type, data) {
    if (type === "queue_depths") {
      this.showDepths(data);
    } else if (type === "lost" || type === "skipped") {
      this.notices[type] += Number(data.count) || 0;
      this.notices.estimated ||= type === "lost" && data.exact === false;
      this.showBanner();
    }
  }

  // --- Events, pause, filters

  addEvent(view) {
    this.total += 1;
    this.counts.set(view.type, (this.counts.get(view.type) || 0) + 1);
    this.remember(view);
    if (this.paused) {
      this.held.push(view);
      this.held.splice(0, this.held.length - this.maxRows);
      this.heldCount += 1;
      this.el.held.textContent = `${plural(this.heldCount, "new event")} while paused`;
    } else {
      this.insert([view]);
    }
    this.updateCounts();
  }

  insert(views) {
    const filter = this.filter();
    const fragment = document.createDocumentFragment();
    for (const view of [...views].reverse()) {
      const row = eventRow(view);
      row.hidden = !matches(row.dataset, filter);
      fragment.append(row);
    }
    this.el.rows.prepend(fragment);
    while (this.el.rows.rows.length > this.maxRows) {
      this.el.rows.lastElementChild.remove();
    }
    this.updateShown();
  }

  togglePause() {
    this.paused = !this.paused;
    this.el.pause.textContent = this.paused ? "Resume" : "Pause";
    this.el.pause.toggleAttribute("data-paused", this.paused);
    this.el.held.hidden = !this.paused;
    if (this.paused) {
      this.el.held.textContent = "Paused: new events are counted, not shown";
    } else {
      this.insert(this.held);
      this.held = [];
      this.heldCount = 0;
    }
  }

  remember(view) {
    if (view.camera && !this.el.cameras.querySelector(`option[value="${CSS.escape(view.camera)}"]`)) {
      this.el.cameras.append(new Option("", view.camera));
    }
    addOption(this.el.types, view.type);
  }

  filter() {
    const form = this.el.filters.elements;
    return { camera: form.camera.value.trim().toLowerCase(), type: form.type.value, risk: form.risk.value };
  }

  filtersChanged() {
    const filter = this.filter();
    for (const row of this.el.rows.rows) {
      row.hidden = !matches(row.dataset, filter);
    }
    this.updateShown();
    this.updateCounts();
    const query = new URLSearchParams(Object.entries(filter).filter(([, value]) => value));
    history.replaceState(null, "", query.toString() ? `?${query}` : location.pathname);
  }

  readFiltersFromUrl() {
    const query = new URLSearchParams(location.search);
    const form = this.el.filters.elements;
    form.camera.value = query.get("camera") || "";
    if (query.get("type")) {
      addOption(this.el.types, query.get("type"));
      form.type.value = query.get("type");
    }
    form.risk.value = RISKS.includes(query.get("risk")) ? query.get("risk") : "";
  }

  clearFilters() {
    this.el.filters.reset();
  }

  updateShown() {
    const rows = [...this.el.rows.rows];
    const shown = rows.filter((row) => !row.hidden).length;
    const filtered = shown !== rows.length;
    const of = filtered ? ` of ${rows.length.toLocaleString("en-US")}` : "";
    this.el.shown.textContent = rows.length ? `${shown.toLocaleString("en-US")} shown${of}, newest first` : "";
    this.el.empty.hidden = shown > 0;
    this.el.empty.textContent = rows.length ? "No event matches the filters." : "Waiting for events…";
  }

  updateCounts() {
    const active = this.filter().type;
    this.countChip("", this.total, active);
    for (const [type, count] of this.counts) {
      this.countChip(type, count, active);
    }
  }

  countChip(type, count, active) {
    let chip = this.chips.get(type);
    if (!chip) {
      chip = countButton(type || "All");
      chip.addEventListener("click", () => this.chooseType(type === active ? "" : type));
      const item = document.createElement("li");
      item.dataset.type = type;
      item.append(chip);
      const items = [...this.el.counters.children];
      const later = items.find((li) => li.dataset.type && li.dataset.type.localeCompare(type) > 0);
      this.el.counters.insertBefore(item, later || null);
      this.chips.set(type, chip);
    }
    chip.querySelector("strong").textContent = count.toLocaleString("en-US");
    chip.setAttribute("aria-pressed", String(type === active));
  }

  chooseType(type) {
    addOption(this.el.types, type);
    this.el.filters.elements.type.value = type;
    this.filtersChanged();
  }

  shortcut(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) {
      return;
    }
    const typing =
      event.target instanceof Element && event.target.closest("input, select, textarea, [contenteditable]");
    if (event.key === "Escape") {
      this.clearFilters();
      if (typing) {
        event.target.blur();
      }
    } else if (typing) {
      return;
    } else if (event.key === "p" || event.key === "P") {
      event.preventDefault();
      this.togglePause();
    } else if (event.key === "/") {
      event.preventDefault();
      this.el.filters.elements.camera.focus();
    }
  }

  // --- Notices, depths, system, actions

  showBanner() {
    const parts = [];
    if (this.notices.lost) {
      const why = "the console's stream no longer held them when this page caught up.";
      const count = plural(this.notices.lost, "event");
      parts.push(`${this.notices.estimated ? `At least ${count}` : count} lost: ${why}`);
    }
    if (this.notices.skipped) {
      const why = "this page fell behind and the oldest were dropped.";
      parts.push(`${plural(this.notices.skipped, "event")} skipped: ${why}`);
    }
    this.el.bannerText.textContent = parts.join(" ");
    this.el.banner.hidden = parts.length === 0;
  }

  dismissBanner() {
    this.notices = { lost: 0, skipped: 0, estimated: false };
    this.showBanner();
  }

  showDepths(data) {
    const queues = Array.isArray(data.queues) ? data.queues.filter(isObject) : [];
    const order = queues.map((queue) => this.depthTile(queue));
    for (const [key, tile] of this.tiles) {
      if (!order.includes(tile)) {
        tile.remove();
        this.tiles.delete(key);
      }
    }
    if (order.some((tile, index) => this.el.tiles.children[index] !== tile)) {
      this.el.tiles.append(...order);
    }
    this.el.sampled.textContent = data.sampled_at ? `sampled at ${clock(data.sampled_at)}` : "";
  }

  depthTile(queue) {
    const key = String(queue.key);
    let tile = this.tiles.get(key);
    if (!tile) {
      tile = depthTileElement(key, this.queueUrl);
      this.tiles.set(key, tile);
    }
    const length = Number(queue.length) || 0;
    const ratio = Number(queue.fill_ratio) || 0;
    const isList = queue.type !== "stream";
    const limited = isList && Number(queue.max_size) > 0; // HSI appends to an overflow DLQ without a limit
    const level = LEVEL_NOTES[queue.level] === undefined ? "ok" : queue.level;
    // Another kind of value under the queue's name: Redis refused its length, so there is none to show.
    const stored = queue.stored_type ? String(queue.stored_type) : "";
    tile.dataset.kind = queue.kind === "dlq" ? "dlq" : "queue";
    tile.dataset.level = stored ? "wrong-type" : level;
    tile.classList.toggle("live-tile-warn", Boolean(stored) || level !== "ok");
    tile.classList.toggle("live-tile-full", !stored && level === "full");
    tile.querySelector(".live-tile-length").textContent = stored ? "—" : length.toLocaleString("en-US");
    const meter = tile.querySelector("meter");
    meter.hidden = !limited || Boolean(stored);
    meter.value = Math.min(ratio, 1);
    meter.textContent = percent(ratio);
    const shape = isList ? "list" : "stream";
    const kind = `${queue.kind === "dlq" ? "dead-letter" : "work"} ${shape}`;
    const max = (Number(queue.max_size) || 0).toLocaleString("en-US");
    const size = limited ? `${percent(ratio)} of ${max}${LEVEL_NOTES[level]}` : "no limit";
    const notes = queue.kind === "dlq" ? STREAM_DLQ_NOTES : STREAM_NOTES;
    const fill = isList ? size : `${length.toLocaleString("en-US")} of MAXLEN ${max}${notes[level]}`;
    tile.querySelector(".live-tile-fill").textContent = stored
      ? `${kind} · holds a ${stored}, not a ${shape}`
      : `${kind} · ${fill}`;
    return tile;
  }

  showSystem(message) {
    const payload = isObject(message.data) ? message.data : {};
    const data = isObject(payload.data) ? payload.data : payload;
    const set = (name, value) => {
      if (value) {
        this.root.querySelector(`[data-live-system="${name}"]`).replaceChildren(value);
      }
    };
    if (message.type === "system_status") {
      set("health", healthBadge(data.health));
      set("cameras", isObject(data.cameras) && words(data.cameras.active, "of", data.cameras.total, "active"));
      set("gpu", gpuText(data.gpu));
      const queue = isObject(data.queue) ? data.queue : null;
      set("queue", queue && words(queue.pending, "waiting for detection,", queue.processing, "for analysis"));
    } else if (message.type === "circuit_breaker_update" && isObject(data.summary)) {
      const { open, half_open: halfOpen, total } = data.summary;
      set("breakers", words(open, "open,", halfOpen, "half-open of", total));
    } else if (message.type === "performance_update") {
      const latency = data.inference?.detector_latency_ms?.avg;
      set("latency", typeof latency === "number" && `${latency.toLocaleString("en-US")} ms average`);
    }
    this.el.systemTime.textContent = message.time ? `updated ${clock(message.time)}` : "";
  }

  addAction(message) {
    const data = isObject(message.data) ? message.data : {};
    const item = document.createElement("li");
    const summary = text(data.summary) || [text(data.action), text(data.key)].filter(Boolean).join(" ");
    const user = text(data.user) || "someone";
    // The summary names the user already ("alice retried 120 entries of …"): show it once, in bold.
    const rest = summary.startsWith(`${user} `) ? summary.slice(user.length) : `: ${summary}`;
    item.append(timeElement(message.time), " ", strong(user), clip(rest));
    if (this.auditUrl && data.audit_id != null) {
      const link = document.createElement("a");
      link.href = this.auditUrl.replace("__key__", encodeURIComponent(String(data.audit_id)));
      link.textContent = "audit entry";
      item.append(" (", link, ")");
    }
    this.el.actions.prepend(item);
    while (this.el.actions.children.length > ACTIONS_KEPT) {
      this.el.actions.lastElementChild.remove();
    }
    this.el.actionsEmpty.hidden = true;
  }
}

// --- What an event says --------------------------------------------------------------------------

function describe(message) {
  const data = isObject(message.data) ? message.data : {};
  // Sharded channels (events:shard:*) carry {camera_id, event_type, payload}.
  const inner = isObject(data.payload) ? data.payload : {};
  const type = text(message.type) || text(data.event_type) || "unknown";
  const risk = first(data.risk_level, data.severity, inner.risk_level, inner.severity).toLowerCase();
  return {
    id: text(message.id),
    time: text(message.time),
    type,
    camera: first(data.camera_id, data.camera, data.camera_name, inner.camera_id),
    risk: RISKS.includes(risk) ? risk : "",
    score: typeof data.risk_score === "number" ? data.risk_score : null,
    summary: clip(summarise(type, data, inner)),
  };
}

const SUMMARISERS = {
  "detection.new": (d) => words(d.label, typeof d.confidence === "number" && percent(d.confidence)),
  camera_status: (d) =>
    words(first(d.camera_name, d.camera_id), "is", d.status, d.previous_status && `(was ${d.previous_status})`) +
    (text(d.reason) ? `: ${text(d.reason)}` : ""),
  service_status: (d) => words(first(d.display_name, d.name), "is", d.status),
  worker_status: (d) => words(first(d.worker, d.name), "is", first(d.status, d.state)),
};

function summarise(type, data, inner) {
  const own = first(data.summary, data.message, data.description, inner.summary, inner.message);
  if (own) {
    return own;
  }
  const made = SUMMARISERS[type] ? SUMMARISERS[type](data) : type.startsWith("alert_") ? alertSummary(data) : "";
  return made.trim() || fieldsSummary(isObject(data.payload) ? inner : data);
}

function alertSummary(d) {
  const about = words(d.dedup_key && `for ${d.dedup_key}`, d.event_id != null && `(event ${d.event_id})`);
  return words("Alert", d.status, about);
}

function fieldsSummary(data) {
  const fields = Object.entries(data).filter(
    ([name, value]) => !FIELD_SKIP.test(name) && ["string", "number", "boolean"].includes(typeof value),
  );
  return fields.slice(0, 4).map(([name, value]) => `${name}: ${value}`).join("; ");
}

// --- Elements ------------------------------------------------------------------------------------

function eventRow(view) {
  const row = document.createElement("tr");
  Object.assign(row.dataset, { id: view.id, camera: view.camera, type: view.type, risk: view.risk });
  row.className = "live-new";
  const type = document.createElement("code");
  type.textContent = view.type;
  row.append(
    cell(timeElement(view.time), "Time"),
    cell(view.camera || "—", "Camera"),
    cell(type, "Type"),
    cell(riskBadge(view.risk, view.score), "Risk"),
    cell(view.summary, "Summary", "live-summary"),
  );
  return row;
}

function cell(content, label, className = "") {
  const td = document.createElement("td");
  td.dataset.label = label;
  td.className = className;
  td.append(content);
  return td;
}

function riskBadge(risk, score) {
  const badge = document.createElement("span");
  badge.className = risk ? `live-risk live-risk-${risk}` : "live-risk-none";
  badge.textContent = risk ? words(risk, score !== null && String(score)) : "—";
  if (score !== null) {
    badge.title = `risk score ${score}`;
  }
  return badge;
}

function depthTileElement(key, urlTemplate) {
  const tile = document.createElement("li");
  tile.className = "live-tile";
  tile.dataset.key = key;
  const name = document.createElement(urlTemplate ? "a" : "span");
  name.className = "live-tile-key";
  for (const [index, part] of key.split(":").entries()) {
    name.append(...(index ? [":", document.createElement("wbr"), part] : [part])); // break after colons
  }
  if (urlTemplate) {
    name.href = urlTemplate.replace("__key__", encodeURIComponent(key));
  }
  const meter = document.createElement("meter");
  Object.assign(meter, { min: 0, max: 1, low: 0.5, high: 0.8, optimum: 0 });
  tile.append(name, span("live-tile-length"), meter, span("live-tile-fill"));
  return tile;
}

function countButton(label) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "live-count";
  button.append(label, " ", document.createElement("strong"));
  return button;
}

function healthBadge(health) {
  const value = text(health);
  if (!value) {
    return null;
  }
  const badge = span(`live-health live-health-${value.replace(/[^a-z]/g, "")}`);
  badge.textContent = value;
  return badge;
}

function gpuText(gpu) {
  if (!isObject(gpu)) {
    return "";
  }
  return words(
    typeof gpu.utilization === "number" && `${gpu.utilization}% busy`,
    typeof gpu.temperature === "number" && `${gpu.temperature} °C`,
    typeof gpu.inference_fps === "number" && `${gpu.inference_fps} fps`,
  );
}

function timeElement(iso) {
  const element = document.createElement("time");
  const when = new Date(iso);
  if (!iso || Number.isNaN(when.getTime())) {
    element.textContent = "—";
    return element;
  }
  element.dateTime = iso;
  element.title = when.toLocaleString();
  element.textContent = clock(iso);
  return element;
}

function span(className) {
  const element = document.createElement("span");
  element.className = className;
  return element;
}

function strong(value) {
  const element = document.createElement("strong");
  element.textContent = value;
  return element;
}

function addOption(select, value) {
  if (!value || [...select.options].some((option) => option.value === value)) {
    return;
  }
  const options = [...select.options].slice(1);
  const before = options.find((option) => option.value.localeCompare(value) > 0) || null;
  select.add(new Option(value, value), before);
}

// --- Small helpers -------------------------------------------------------------------------------

function matches(fields, filter) {
  return (
    (!filter.camera || (fields.camera || "").toLowerCase().includes(filter.camera)) &&
    (!filter.type || fields.type === filter.type) &&
    (!filter.risk || fields.risk === filter.risk)
  );
}

function compareIds(a, b) {
  try {
    const [aTime, aSeq = "0"] = a.split("-");
    const [bTime, bSeq = "0"] = b.split("-");
    const [x, y] = BigInt(aTime) === BigInt(bTime) ? [BigInt(aSeq), BigInt(bSeq)] : [BigInt(aTime), BigInt(bTime)];
    return x === y ? 0 : x < y ? -1 : 1;
  } catch {
    return 1; // not a stream id: treat as new
  }
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value) {
  return typeof value === "string" || typeof value === "number" ? String(value) : "";
}

function first(...values) {
  return values.map(text).find(Boolean) || "";
}

function words(...parts) {
  return parts.map(text).filter(Boolean).join(" ");
}

function clip(value) {
  return value.length > SUMMARY_CHARS ? `${value.slice(0, SUMMARY_CHARS - 1)}…` : value;
}

function percent(ratio) {
  return `${Math.round(ratio * 100)}%`;
}

function plural(count, noun) {
  return `${count.toLocaleString("en-US")} ${noun}${count === 1 ? "" : "s"}`;
}

function clock(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? "" : when.toLocaleTimeString([], { hourCycle: "h23" });
}

const root = document.querySelector("[data-live]");
if (root) {
  new LivePage(root).start();
}
