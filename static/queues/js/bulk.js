// Runs a bulk retry/delete to the end: POSTs the progress form as JSON, one time-boxed chunk at a
// time, each with the next start position and a fresh nonce from the server. Without this script
// the page's Continue button posts the same form and gets the next progress page. Stop ends the
// run after the step under way; the form then holds where it stopped, and Continue goes on.
// When the queue a retry or restore moves to is full, the run pauses there; with "wait for room"
// ticked it tries again by itself, 2 s later, then less often (up to a minute) while nothing fits.
// A list DLQ's run that stops or pauses with entries it left at the tail behind some it has not
// examined offers "End here…", a plain submit with end=1; the page it leads to carries end=1 in
// its form, so the steps that follow put the DLQ back in order and act on nothing.
import { postForm } from "./post.js";

const FIRST_WAIT_MS = 2000;
const LONGEST_WAIT_MS = 60000;

const form = document.querySelector("form[data-bulk]");
if (form) {
  run(form);
}

async function run(form) {
  const continueButton = form.querySelector("[data-bulk-continue]");
  const stopButton = form.querySelector("[data-bulk-stop]");
  const hint = form.querySelector("[data-bulk-hint]");
  const wait = form.querySelector("[data-bulk-wait]");
  const end = form.querySelector("[data-bulk-end]");
  let stopAsked = false;
  let wakeUp = () => {};
  let delay = FIRST_WAIT_MS;
  let doneBefore = null;
  continueButton.hidden = true;
  hint.hidden = true;
  stopButton.hidden = false;
  if (end) {
    end.hidden = true;
  }
  stopButton.addEventListener("click", () => {
    stopAsked = true;
    stopButton.disabled = true;
    stopButton.textContent = "Stopping after this step…";
    wakeUp();
  });
  const pause = (reply) => {
    stopButton.hidden = true;
    continueButton.hidden = false;
    if (end && reply && reply.can_end) {
      end.querySelector("[data-bulk-end-kept]").textContent = reply.kept.toLocaleString("en-US");
      end.querySelector("[data-bulk-end-left]").textContent = reply.remaining.toLocaleString("en-US");
      end.hidden = false;
    }
  };
  for (;;) {
    let reply;
    try {
      reply = await postChunk(form);
    } catch (error) {
      showStatus(`Stopped: ${error.message} Press Continue to try the next step again.`, "error");
      pause();
      return;
    }
    showProgress(reply);
    const roomLater = reply.room_later;
    if (reply.finished && !roomLater) {
      showStatus(reply.summary, reply.level);
      showUndo(reply.undo);
      showStage("finished");
      stopButton.hidden = true;
      if (wait) {
        wait.closest("label").hidden = true; // nothing is left to wait for
      }
      return;
    }
    form.elements.start.value = reply.start;
    form.elements.nonce.value = reply.nonce;
    form.elements.tally.value = reply.tally;
    if (stopAsked) {
      showStatus(`Stopped. ${reply.summary} Continue goes on from here.`, "warning");
      showUndo(reply.undo);
      showStage("stopped");
      pause(reply);
      return;
    }
    if (!roomLater) {
      continue;
    }
    if (!wait || !wait.checked) {
      showStatus(`Paused. ${reply.summary} Continue tries again; tick “wait for room” to go on by itself.`, "warning");
      showStage("paused");
      pause(reply);
      return;
    }
    delay = doneBefore === null || reply.done > doneBefore ? FIRST_WAIT_MS : Math.min(delay * 2, LONGEST_WAIT_MS);
    doneBefore = reply.done;
    showStatus(`Waiting for room. ${reply.summary} Trying again in ${delay / 1000} s.`, "warning");
    await new Promise((resolve) => {
      wakeUp = resolve;
      setTimeout(resolve, delay);
    });
    if (stopAsked) {
      showStatus(`Stopped while waiting for room. ${reply.summary} Continue goes on from here.`, "warning");
      showStage("stopped");
      pause(reply);
      return;
    }
  }
}

function postChunk(form) {
  return postForm(form, new FormData(form));
}

function showProgress(reply) {
  const bar = document.querySelector("[data-bulk-progress]");
  bar.max = Math.max(reply.planned, 1);
  bar.value = reply.handled;
  bar.textContent = `${reply.handled} of ${reply.planned}`;
  const count = document.querySelector("[data-bulk-count]");
  count.textContent = `${reply.handled.toLocaleString("en-US")} of ${reply.planned.toLocaleString("en-US")} entries dealt with`;
  document.querySelector("[data-bulk-status]").textContent = reply.summary;
}

// The heading, the tab's title and the last breadcrumb said "… in progress" until now.
function showStage(word) {
  const heading = document.querySelector("#content h1");
  if (heading) {
    heading.textContent = heading.textContent.replace("in progress", word);
  }
  document.title = document.title.replace("in progress", word);
  const stage = document.querySelector("[data-bulk-stage]");
  if (stage) {
    stage.textContent = word;
  }
}

function showStatus(text, level) {
  const status = document.querySelector("[data-bulk-status]");
  status.textContent = text;
  status.className = `queues-status queues-status-${level}`;
}

// A finished (or stopped) delete links to its archive rows, from where all of them can be restored at once.
function showUndo(url) {
  if (!url) {
    return;
  }
  const link = document.createElement("a");
  link.href = url;
  link.textContent = "Undo: restore them";
  link.dataset.testid = "undo";
  document.querySelector("[data-bulk-status]").append(" ", link);
}
