// POSTs one of the console's forms for a script (bulk.js's steps, select.js's ticks) and returns its
// JSON answer, or throws an Error whose message is a sentence for the page: the console's refusal
// (its `detail`; its `error` is a code), a replayed step (`error` is the sentence), a lost session.
export async function postForm(form, body, options = {}) {
  const response = await fetch(form.action, {
    method: "POST",
    body,
    headers: { Accept: "application/json", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
    credentials: "same-origin",
    ...options,
  });
  const isJson = (response.headers.get("Content-Type") || "").startsWith("application/json");
  const reply = isJson ? await response.json() : null;
  if (reply === null && response.redirected) {
    throw new Error("you were signed out (the session ended). Sign in again in another tab.");
  }
  if (!response.ok || reply === null) {
    throw new Error(reply?.detail || reply?.error || `the server answered ${response.status} ${response.statusText}.`);
  }
  return reply;
}
