// A "select every row on this page" checkbox for tables of checkboxes (hidden until this runs), and
// a DLQ selection that spans pages: every tick posts this page's ticks to the server (one request
// at a time, the latest state last), which keeps the selection in the session. Without this script
// the page's "Update selection" button, or Retry/Delete selected, posts the same form. A list DLQ's
// rows tick refs (name=ref), a stream DLQ's rows tick entry ids (name=id): the checkboxes of the
// form's table body are the ticks, whatever they are named.
import { postForm } from "./post.js";

const TICKS = "tbody input[type=checkbox]";

for (const all of document.querySelectorAll("input[data-select-all]")) {
  const boxes = () => all.closest("table").querySelectorAll(TICKS);
  all.hidden = false;
  all.checked = boxes().length > 0 && [...boxes()].every((box) => box.checked);
  all.addEventListener("change", () => {
    for (const box of boxes()) {
      box.checked = all.checked;
    }
  });
}

const form = document.querySelector("form[data-selection]");
if (form) {
  keepTicks(form);
}

function keepTicks(form) {
  const save = form.querySelector("[data-selection-save]");
  if (save) {
    save.hidden = true;
  }
  let running = false;
  let again = false;

  async function sync() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        showSelection(await postTicks(form));
      } while (again);
    } catch (error) {
      showStatus(`The ticks were not saved: ${error.message} Press Update selection to try again.`);
      if (save) {
        save.hidden = false;
      }
    } finally {
      running = false;
    }
  }

  form.addEventListener("change", (event) => {
    if (event.target.matches("input[type=checkbox]")) {
      sync();
    }
  });
}

function postTicks(form) {
  const body = new FormData(form);
  body.set("op", "sync");
  body.delete("then");
  return postForm(form, body, { keepalive: true }); // a tick just before following a page link is still saved
}

function showSelection(reply) {
  const banner = document.querySelector("[data-selection-banner]");
  if (!banner) {
    return;
  }
  banner.hidden = reply.count === 0;
  banner.querySelector("[data-selection-count]").textContent = reply.count.toLocaleString("en-US");
  banner.querySelector("[data-selection-here]").textContent = form.querySelectorAll(`${TICKS}:checked`).length;
  for (const ref of reply.refused) {
    const box = form.querySelector(`${TICKS}[value="${CSS.escape(ref)}"]`);
    if (box) {
      box.checked = false;
    }
  }
  showStatus(reply.message);
}

function showStatus(text) {
  const status = document.querySelector("[data-selection-status]");
  if (status) {
    status.textContent = text;
    status.className = text ? "queues-selection-status queues-status-warning" : "queues-selection-status";
  }
  const banner = document.querySelector("[data-selection-banner]");
  if (banner && text) {
    banner.hidden = false;
  }
}
