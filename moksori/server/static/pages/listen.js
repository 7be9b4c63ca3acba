// The voice page: the voices this caller may use (GET /voices), a voice's card and controls
// (GET /voices/{voice}/card: the page shows only the controls the card names), and speech streamed
// from POST /synthesize (16-bit PCM, sentence by sentence) into Web Audio, so that a long text
// starts playing as soon as its first sentence is ready. The received audio becomes the
// downloadable WAV. Plain JavaScript, no build step; the server does every check.

const $ = (id) => document.getElementById(id);
const KEY = "moksori.apiKey";

const state = { voices: [], card: null, playback: null, download: null };

// --- server ---------------------------------------------------------------------------------

function headers(extra = {}) {
  const key = sessionStorage.getItem(KEY);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function errorOf(response) {
  try {
    const body = await response.json();
    return body?.error?.message || `${response.status} ${response.statusText}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function getJson(path) {
  const response = await fetch(path, { headers: headers(), credentials: "omit" });
  if (!response.ok) throw new Error(await errorOf(response));
  return response.json();
}

function status(message, kind = "") {
  $("status").textContent = message;
  $("status").className = `hint ${kind}`;
}

// --- voices ---------------------------------------------------------------------------------

async function loadVoices() {
  let body;
  try {
    body = await getJson("/voices");
  } catch (error) {
    $("voice-select").replaceChildren();
    $("voice-card").textContent = "";
    $("key-box").open = true;
    status(error.message, "error");
    return;
  }
  state.voices = body.voices;
  const wanted = new URLSearchParams(location.search).get("voice") || body.default_voice;
  const select = $("voice-select");
  select.replaceChildren(...state.voices.map((v) => new Option(`${v.name} (${v.language})${v.private ? " · private" : ""}`, v.id)));
  const chosen = state.voices.find((v) => v.id === wanted || v.name === wanted) || state.voices[0];
  if (!chosen) {
    status("No voices are available to you on this server.", "warn");
    return;
  }
  select.value = chosen.id;
  status("");
  await loadCard(chosen.id);
  await renderVoiceList();
}

function modelsOf(card) {
  return `${card.acoustic.model} + ${card.vocoder.trained ? card.vocoder.model : "Griffin-Lim (no trained vocoder)"}`;
}

function stepsOf(card) {
  return ["acoustic", "vocoder"].filter((r) => card.steps[r] != null).map((r) => `${r} ${card.steps[r]}`).join(", ");
}

// Every voice's card in one table (a card is a small JSON file read; no weights are loaded).
async function renderVoiceList() {
  const cards = await Promise.all(state.voices.map((v) => getJson(`/voices/${encodeURIComponent(v.id)}/card`).catch(() => null)));
  const rows = state.voices.map((voice, i) => {
    const card = cards[i];
    const row = document.createElement("tr");
    row.dataset.voice = voice.id;
    const cells = [
      `${voice.name}${voice.private ? " (private)" : ""}`, voice.language,
      card ? modelsOf(card) : "?",
      card?.data_minutes != null ? `${card.data_minutes} min` : "—",
      card ? stepsOf(card) || "—" : "?",
      card?.evaluation?.mcd_db != null ? `MCD ${card.evaluation.mcd_db} dB` : (card && Object.keys(card.evaluation).length ? "see card" : "—"),
    ];
    row.append(...cells.map((text) => Object.assign(document.createElement("td"), { textContent: text })));
    row.addEventListener("click", guarded(async () => {
      $("voice-select").value = voice.id;
      await loadCard(voice.id);
    }));
    return row;
  });
  $("voice-list").tBodies[0].replaceChildren(...rows);
  markCurrent();
}

function markCurrent() {
  for (const row of $("voice-list").tBodies[0].rows) row.classList.toggle("current", row.dataset.voice === $("voice-select").value);
}

async function loadCard(voiceId) {
  state.card = await getJson(`/voices/${encodeURIComponent(voiceId)}/card`);
  renderCard(state.card);
  renderControls(state.card.controls);
  markCurrent();
  history.replaceState(null, "", `?voice=${encodeURIComponent(voiceId)}`);
}

function row(term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  if (value instanceof Node) dd.append(value);
  else dd.textContent = value;
  return [dt, dd];
}

function renderCard(card) {
  const list = document.createElement("dl");
  const steps = stepsOf(card);
  const figures = Object.entries(card.evaluation).map(([k, v]) => `${k} ${v}`).join(" · ");
  list.append(
    ...row("Language", card.language),
    ...row("Models", modelsOf(card)),
    ...row("Data", card.data_minutes != null ? `${card.data_minutes} min of recordings` : "not recorded in the voice card"),
    ...row("Steps", steps || "—"),
    ...row("Evaluation", figures || "not evaluated"),
  );
  if (card.description) list.append(...row("About", card.description));
  const parts = [list];
  if (!card.vocoder.trained) {
    const note = document.createElement("p");
    note.className = "warn";
    note.id = "griffin-lim-note";
    note.textContent = "This voice has no trained vocoder: it uses Griffin-Lim, which sounds buzzy and metallic.";
    parts.push(note);
    const offer = card.suggested_vocoder;
    if (offer) {
      const label = document.createElement("label");
      const box = Object.assign(document.createElement("input"), { type: "checkbox", id: "borrow-vocoder", checked: true });
      box.dataset.voice = offer.voice;
      label.append(box, ` Speak through the shipped voice ${offer.voice}'s ${offer.model} vocoder instead`);
      parts.push(label);
    }
  }
  $("voice-card").replaceChildren(...parts);
}

// --- controls -------------------------------------------------------------------------------

function slider(id, label, spec, step, value) {
  const wrap = document.createElement("label");
  const input = Object.assign(document.createElement("input"), {
    id, type: "range", min: spec.min, max: spec.max, step, value,
  });
  const shown = document.createElement("output");
  const show = () => { shown.textContent = input.dataset.unset === "true" ? "default" : Number(input.value).toFixed(2); };
  input.addEventListener("input", () => { input.dataset.unset = "false"; show(); });
  if (spec.default == null) input.dataset.unset = "true"; // the model's own default until moved
  show();
  wrap.append(`${label} `, shown, input);
  if (spec.help) wrap.title = spec.help;
  return wrap;
}

function renderControls(controls) {
  const parts = controls.speed ? [slider("speed", "Speed", controls.speed, 0.05, controls.speed.default)] : [];
  if (controls.sigma) parts.push(slider("sigma", "Noise (sigma)", controls.sigma, 0.01, 0.667));
  if (controls.style) {
    const label = document.createElement("label");
    const select = Object.assign(document.createElement("select"), { id: "style-ref" });
    select.append(new Option("(the voice's own style)", ""), ...controls.style.clips.map((c) => new Option(c, c)));
    label.append("Style reference ", select);
    parts.push(label, slider("style-strength", "Style strength", controls.style.strength, 0.05, 1));
  }
  if (controls.vocoder_sigma) parts.push(slider("vocoder-sigma", "Vocoder sigma", controls.vocoder_sigma, 0.01, 0.666));
  if (controls.denoise) parts.push(slider("denoise", "Denoise", controls.denoise, 0.005, 0.01));
  $("controls").replaceChildren(...parts);
}

function controlValue(id) {
  const input = $(id);
  if (!input || input.dataset.unset === "true") return undefined;
  return Number(input.value);
}

function requestBody() {
  const body = { text: $("text").value, voice: $("voice-select").value, format: "pcm", stream: true,
    speed: controlValue("speed") ?? 1 };
  const optional = { sigma: "sigma", vocoder_sigma: "vocoder-sigma", denoise: "denoise" };
  for (const [field, id] of Object.entries(optional)) {
    const value = controlValue(id);
    if (value !== undefined) body[field] = value;
  }
  if ($("ssml").checked) body.input_format = "ssml";
  if ($("borrow-vocoder")?.checked) body.vocoder_voice = $("borrow-vocoder").dataset.voice;
  if ($("style-ref")?.value) {
    body.style_ref = $("style-ref").value;
    body.style_strength = controlValue("style-strength") ?? 1;
  }
  return body;
}

// --- playback -------------------------------------------------------------------------------

async function play() {
  stop();
  clearDownload();
  const started = performance.now();
  const controller = new AbortController();
  const audio = new AudioContext();
  const playback = { controller, audio, chunks: [], next: 0, firstAudioMs: null };
  state.playback = playback;
  $("play").disabled = true;
  $("stop").disabled = false;
  status("Synthesising…");
  document.body.dataset.playing = "true";
  try {
    const response = await fetch("/synthesize", {
      method: "POST", body: JSON.stringify(requestBody()), signal: controller.signal, credentials: "omit",
      headers: headers({ "Content-Type": "application/json" }),
    });
    if (!response.ok) throw new Error(await errorOf(response));
    const rate = Number(response.headers.get("X-Sample-Rate")) || 22050;
    await readStream(response.body.getReader(), playback, rate, started);
    const doneMs = performance.now() - started;
    document.body.dataset.doneMs = doneMs.toFixed(1);
    offerDownload(playback.chunks, rate);
    const seconds = playback.chunks.reduce((n, c) => n + c.length, 0) / rate;
    status(`${seconds.toFixed(1)} s of audio; playback began after ${playback.firstAudioMs.toFixed(0)} ms, `
      + `synthesis finished after ${doneMs.toFixed(0)} ms.`);
  } catch (error) {
    if (error.name !== "AbortError") status(error.message, "error");
  } finally {
    $("play").disabled = false;
    $("stop").disabled = true;
    document.body.dataset.playing = "false";
  }
}

// Int16 little-endian bytes arrive in pieces of any length; an odd byte waits for its partner.
async function readStream(reader, playback, rate, started) {
  let carry = new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const bytes = new Uint8Array(carry.length + value.length);
    bytes.set(carry);
    bytes.set(value, carry.length);
    const usable = bytes.length - (bytes.length % 2);
    carry = bytes.slice(usable);
    if (!usable) continue;
    const ints = new Int16Array(bytes.buffer.slice(0, usable));
    const samples = Float32Array.from(ints, (s) => s / 32768);
    playback.chunks.push(samples);
    schedule(playback, samples, rate);
    if (playback.firstAudioMs === null) {
      playback.firstAudioMs = performance.now() - started;
      document.body.dataset.firstAudioMs = playback.firstAudioMs.toFixed(1);
    }
    document.body.dataset.chunks = String(playback.chunks.length);
  }
}

function schedule(playback, samples, rate) {
  const buffer = playback.audio.createBuffer(1, samples.length, rate);
  buffer.copyToChannel(samples, 0);
  const source = playback.audio.createBufferSource();
  source.buffer = buffer;
  source.connect(playback.audio.destination);
  const at = Math.max(playback.next, playback.audio.currentTime + 0.05);
  source.start(at);
  playback.next = at + buffer.duration;
}

function stop() {
  const playback = state.playback;
  if (!playback) return;
  playback.controller.abort();
  playback.audio.close();
  state.playback = null;
}

// --- download -------------------------------------------------------------------------------

function clearDownload() {
  if (state.download) URL.revokeObjectURL(state.download);
  state.download = null;
  $("download").href = "#";
  $("download").setAttribute("aria-disabled", "true");
}

function offerDownload(chunks, rate) {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + total * 2));
  const text = (offset, s) => [...s].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + total * 2, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, total * 2, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (const sample of chunk) {
      view.setInt16(offset, Math.max(-32768, Math.min(32767, Math.round(sample * 32768))), true);
      offset += 2;
    }
  }
  state.download = URL.createObjectURL(new Blob([view.buffer], { type: "audio/wav" }));
  const link = $("download");
  link.href = state.download;
  link.download = `${state.card?.name || "moksori"}.wav`;
  link.setAttribute("aria-disabled", "false");
}

// --- wiring ---------------------------------------------------------------------------------

function guarded(action) {
  return async (event) => {
    event?.preventDefault?.();
    try {
      await action(event);
    } catch (error) {
      status(error.message, "error");
    }
  };
}

function wire() {
  $("voice-select").addEventListener("change", guarded(() => loadCard($("voice-select").value)));
  $("play").addEventListener("click", guarded(play));
  $("stop").addEventListener("click", () => { stop(); status("Stopped."); });
  $("key-form").addEventListener("submit", guarded(async () => {
    sessionStorage.setItem(KEY, $("api-key").value.trim());
    $("api-key").value = "";
    await loadVoices();
  }));
  $("forget-key").addEventListener("click", guarded(async () => {
    sessionStorage.removeItem(KEY);
    await loadVoices();
  }));
}

wire();
guarded(async () => {
  await loadVoices();
  document.body.dataset.ready = "true";
})();
