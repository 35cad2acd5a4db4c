// The orchestrator page's live badges: listens on /ws/events/ (docs/live-protocol.md) for HSI's
// `service_status` events from `security_events` and updates that service's badge and note.
// Drawn with textContent only; reconnects with capped backoff plus jitter. No inline script.
const STATUSES = new Set(["running", "starting", "unhealthy", "stopped", "disabled", "not_found"]);
const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 30_000;
const POLICY_CLOSES = new Set([1008, 4008]);

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function rowFor(name) {
  for (const row of document.querySelectorAll("tr[data-service]")) {
    if (row.dataset.service === name) {
      return row;
    }
  }
  return null;
}

export function applyServiceStatus(data, now = new Date()) {
  if (!isObject(data) || typeof data.name !== "string") {
    return false;
  }
  const row = rowFor(data.name);
  if (!row) {
    return false;
  }
  const status = STATUSES.has(data.status) ? data.status : "unknown";
  const badge = row.querySelector("[data-testid=status]");
  if (badge) {
    badge.textContent = status;
    badge.className = `orchestrator-badge orchestrator-${status}`;
  }
  row.classList.toggle("orchestrator-disabled", status === "disabled" || data.enabled === false);
  const note = row.querySelector("[data-testid=live-note]");
  if (note) {
    note.textContent = `live: ${status} at ${now.toLocaleTimeString()}`;
  }
  return true;
}

function connect(path, attempt = 0) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${path}`);
  let opened = false;
  socket.addEventListener("open", () => {
    opened = true;
  });
  socket.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (isObject(message) && message.type === "service_status") {
      applyServiceStatus(message.data);
    }
  });
  socket.addEventListener("close", (event) => {
    if (POLICY_CLOSES.has(event.code)) {
      return;
    }
    const next = opened ? 0 : attempt + 1;
    const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** next) * (0.5 + Math.random() / 2);
    setTimeout(() => connect(path, next), delay);
  });
}

const root = document.querySelector("[data-testid=orchestrator][data-socket]");
if (root && "WebSocket" in window) {
  connect(root.dataset.socket);
}
