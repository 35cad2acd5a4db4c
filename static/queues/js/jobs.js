// The jobs list and a job's page, live: listens on /ws/events/ (docs/live-protocol.md) for the
// relay's `jobs` notices (only rows that changed) and updates the status badge, progress bar and
// message of the rows shown. Drawn with textContent and DOM nodes only; reconnects with capped
// backoff plus jitter, like the orchestrator page. No inline script (script-src 'self').
const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 30_000;
const POLICY_CLOSES = new Set([1008, 4008]);
const MESSAGE_CHARS = 80;
const STATUS = /^[a-z_]{1,20}$/;

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function rowsFor(id, source) {
  return [...document.querySelectorAll("[data-job][data-source]")].filter(
    (row) => row.dataset.job === id && row.dataset.source === source,
  );
}

function drawProgress(cell, progress) {
  cell.replaceChildren();
  if (typeof progress !== "number" || !Number.isFinite(progress)) {
    cell.textContent = "—";
    return;
  }
  const value = Math.max(0, Math.min(100, Math.round(progress)));
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = value;
  bar.textContent = `${value}%`;
  cell.append(bar, ` ${value}%`);
}

function shorten(text, limit) {
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

export function applyJobRow(data) {
  if (!isObject(data) || typeof data.id !== "string" || typeof data.source !== "string") {
    return 0;
  }
  const rows = rowsFor(data.id, data.source);
  const status = typeof data.status === "string" && STATUS.test(data.status) ? data.status : "unknown";
  for (const row of rows) {
    const badge = row.querySelector("[data-live=status]");
    if (badge) {
      badge.textContent = status;
      badge.className = `jobs-status jobs-${status}`;
    }
    const progress = row.querySelector("[data-live=progress]");
    if (progress) {
      drawProgress(progress, data.progress);
    }
    const message = row.querySelector("[data-live=message]");
    if (message && typeof data.message === "string") {
      const limit = row.tagName === "TR" ? MESSAGE_CHARS : Infinity;
      message.textContent = shorten(data.message, limit) || (row.tagName === "TR" ? "" : "—");
    }
    row.dataset.updatedAt = typeof data.updated_at === "string" ? data.updated_at : "";
  }
  return rows.length;
}

function receive(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    return;
  }
  if (isObject(message) && message.type === "jobs" && isObject(message.data) && Array.isArray(message.data.jobs)) {
    for (const row of message.data.jobs) {
      applyJobRow(row);
    }
  }
}

function connect(root, attempt = 0) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${root.dataset.socket}`);
  let opened = false;
  socket.addEventListener("open", () => {
    opened = true;
    root.dataset.live = "open";
  });
  socket.addEventListener("message", (event) => receive(event.data));
  socket.addEventListener("close", (event) => {
    root.dataset.live = "closed";
    root.dataset.closeCode = String(event.code);
    if (POLICY_CLOSES.has(event.code)) {
      return;
    }
    const next = opened ? 0 : attempt + 1;
    const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** next) * (0.5 + Math.random() / 2);
    setTimeout(() => connect(root, next), delay);
  });
}

const root = document.querySelector("[data-testid=jobs-page][data-socket]");
if (root && "WebSocket" in window) {
  connect(root);
}
