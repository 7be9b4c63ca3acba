// The studio page's pronunciation lexicon panel: the open voice's entries (written → spoken),
// add, remove and try a sentence. studio.js announces the open voice with a "studio:voice" event.
// The server checks everything (owner, lengths, unreadable characters); this only shows it.

const $ = (id) => document.getElementById(id);
let voiceId = null;

async function api(path, options = {}) {
  const init = { credentials: "same-origin", method: options.method || "GET" };
  if (options.json !== undefined) {
    init.method = options.method || "POST";
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, init);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.error?.message || `${response.status} ${response.statusText}`);
  return body;
}

const url = () => `/api/studio/voices/${voiceId}/lexicon`;

function say(message, isError = false) {
  const line = $("lexicon-status");
  line.textContent = message;
  line.className = isError ? "hint error" : "hint";
}

function render(entries) {
  const list = $("lexicon-entries");
  list.replaceChildren();
  for (const entry of entries) {
    const row = document.createElement("li");
    row.dataset.written = entry.written;
    const text = document.createElement("span");
    text.textContent = `${entry.written} → ${entry.spoken}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => run(() => removeEntry(entry.written)));
    row.append(text, " ", remove);
    list.append(row);
  }
  $("lexicon-empty").hidden = entries.length > 0;
}

async function load() {
  if (voiceId === null) return;
  render((await api(url())).entries);
}

async function addEntry() {
  const written = $("lexicon-written").value;
  const spoken = $("lexicon-spoken").value;
  const saved = await api(url(), { method: "PUT", json: { written, spoken } });
  $("lexicon-written").value = "";
  $("lexicon-spoken").value = "";
  say(`Saved: ${saved.written} → ${saved.spoken}`);
  await load();
}

async function removeEntry(written) {
  await api(`${url()}?written=${encodeURIComponent(written)}`, { method: "DELETE" });
  say(`Removed ${written}`);
  await load();
}

async function testText() {
  const result = await api(`${url()}/test`, { json: { text: $("lexicon-test-text").value } });
  $("lexicon-test-result").textContent = `${result.lexicon} → ${result.normalized}`;
}

async function run(action) {
  try {
    await action();
  } catch (error) {
    say(error.message, true);
  }
}

$("lexicon-form").addEventListener("submit", (event) => { event.preventDefault(); run(addEntry); });
$("lexicon-test-form").addEventListener("submit", (event) => { event.preventDefault(); run(testText); });
document.addEventListener("studio:voice", (event) => {
  voiceId = event.detail?.id ?? null;
  $("lexicon-test-result").textContent = "";
  say("");
  run(load);
});
