// The recording studio page: choose a voice and a prompt set, record prompt after prompt
// (microphone → PCM in an AudioWorklet, or a ScriptProcessor where there is none → 16-bit WAV
// → multipart upload), show the server's verdict, progress, export and training.
// Plain JavaScript, no build step. The server does every check; this page only shows them.

const $ = (id) => document.getElementById(id);

const ADVICE = {
  silent: "Nothing was heard: check that the right microphone is chosen and not muted.",
  too_quiet: "Too quiet: move closer to the microphone or raise its input level.",
  clipped: "Too loud (clipping): move back a little or lower the input level.",
  noisy: "Background noise is high: find a quieter place, switch off fans.",
  leading_silence: "Long silence before you start: trim it, or start speaking sooner.",
  trailing_silence: "Long silence at the end: trim it, or stop the recording sooner.",
  too_fast: "Faster than usual for this sentence: read a little more slowly.",
  too_slow: "Slower than usual for this sentence: read at a natural pace.",
  too_short: "Very short: read the whole sentence.",
  too_long: "Very long: one sentence per take.",
  shorter_than_expected: "Shorter than this sentence takes: was the end cut off, or a word skipped? Read the whole sentence.",
  longer_than_expected: "Longer than this sentence takes: read it at your usual pace, without long pauses.",
  cut_off_end: "Cut off: the recording stopped while you were still speaking. Wait a moment after the last word.",
  cut_off_start: "Cut off at the start: start the recording first, then speak.",
  late_start: "Late start: a long silence before you began. Start speaking soon after the recording starts.",
  words_mismatch: "The words heard differ from the script: read the sentence exactly as written, with no word skipped or added.",
  noisy_background: "Background noise (judged by DNSMOS): find a quieter room, switch off fans and close windows.",
  poor_signal: "The voice sounds degraded (distorted, muffled or echoing): speak toward the microphone, in a less echoing room.",
};
// While the server's background judges (speech recogniser, DNSMOS) work on a take, the page asks again this often.
const JUDGES_POLL_MS = 1500;
// Past this with no verdict (or when a request fails or hangs) the page says so and offers to check again.
const JUDGES_WAIT_MS = 90000;
const JUDGES_REQUEST_TIMEOUT_MS = 15000;
// A take's upload and fast checks take a second or two; past this the page stops waiting, so a hung
// request cannot block recording and moving, and keeps the take to send again.
const UPLOAD_TIMEOUT_MS = 120000;
// Building a big recipe's models for the plan takes seconds, one plan at a time on the server.
const PLAN_TIMEOUT_MS = 60000;

// Touch screens have no Space bar: the hints name the button instead.
const TOUCH = window.matchMedia?.("(pointer: coarse)").matches || navigator.maxTouchPoints > 0;
const HINT = TOUCH
  ? { start: "Tap ● Record to start recording.", stop: "tap ■ Stop when you are done", again: "tap ● Record to record again" }
  : { start: "Press Space to start recording.", stop: "press Space to stop (Esc cancels)", again: "Space to record again" };
// A take stops by itself after this much silence following speech.
const AUTO_STOP_SILENCE_S = 1.5;

const state = {
  user: null,
  anonymousAllowed: true,
  voices: [],
  voice: null,
  promptSets: [],
  promptSet: null,
  prompts: [],
  index: 0,
  take: null, // the take shown under the prompt (a recording from the server)
  keptTakes: null, // the voice's kept takes, from its progress
  unsent: null, // {wav, prompt}: a take whose upload failed on the way (network, server error), to send again
  uploading: false,
  runPoll: null,
};

// --- server ---------------------------------------------------------------------------------

async function api(path, options = {}) {
  const init = { credentials: "same-origin", ...options };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, init);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const message = body?.error?.message || `${response.status} ${response.statusText}`;
    throw Object.assign(new Error(message), { status: response.status });
  }
  return body;
}

// A request lost on the way (no answer: network, timeout; or a server error) may be sent again;
// a 4xx refusal stands.
function lostOnTheWay(error) {
  return error.status === undefined || error.status >= 500;
}

function toast(message, isError = false) {
  const box = $("toast");
  box.textContent = message;
  box.className = isError ? "error" : "";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, isError ? 8000 : 3000);
}

// Runs an async UI action and shows its error instead of losing it in the console.
function guarded(action) {
  return async (event) => {
    event?.preventDefault?.();
    try {
      await action(event);
    } catch (error) {
      toast(error.message, true);
    }
  };
}

// --- microphone -----------------------------------------------------------------------------

class Recorder {
  constructor(onLevel) {
    this.onLevel = onLevel;
    this.onSilence = null; // called once when speech was heard and then AUTO_STOP_SILENCE_S of quiet
    this.context = null;
    this.chunks = [];
    this.recording = false;
  }

  get ready() { return this.context !== null; }

  async open() {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    this.context = new AudioContext();
    await this.context.resume();
    const source = this.context.createMediaStreamSource(stream);
    const node = await this.captureNode();
    // A muted gain keeps the capture node pulled by the graph without playing the microphone back.
    const mute = this.context.createGain();
    mute.gain.value = 0;
    source.connect(node);
    node.connect(mute);
    mute.connect(this.context.destination);
  }

  async captureNode() {
    if (this.context.audioWorklet) {
      try {
        await this.context.audioWorklet.addModule("/studio/static/recorder-worklet.js");
        const node = new AudioWorkletNode(this.context, "pcm-capture");
        node.port.onmessage = (event) => this.receive(event.data);
        return node;
      } catch (error) {
        console.warn("AudioWorklet unavailable, using ScriptProcessor", error);
      }
    }
    const node = this.context.createScriptProcessor(4096, 1, 1);
    node.onaudioprocess = (event) => this.receive(new Float32Array(event.inputBuffer.getChannelData(0)));
    return node;
  }

  receive(samples) {
    let peak = 0;
    let energy = 0;
    for (const value of samples) {
      peak = Math.max(peak, Math.abs(value));
      energy += value * value;
    }
    const rms = Math.sqrt(energy / samples.length);
    this.onLevel(rms, peak);
    if (!this.recording) return;
    this.chunks.push(samples);
    this.watchSilence(rms, samples.length);
  }

  // Speech is a block well above the quietest block heard so far (the room's noise floor).
  watchSilence(rms, length) {
    const silence = this.silence;
    silence.floor = Math.min(silence.floor, Math.max(rms, 1e-5));
    if (rms > Math.max(0.01, silence.floor * 8)) {
      silence.heard = true;
      silence.quiet = 0;
    } else if (silence.heard) {
      silence.quiet += length;
      if (silence.quiet >= AUTO_STOP_SILENCE_S * this.context.sampleRate && this.onSilence) {
        silence.heard = false;
        this.onSilence();
      }
    }
  }

  begin() {
    this.chunks = [];
    this.silence = { floor: 1, heard: false, quiet: 0 };
    this.recording = true;
  }

  cancel() {
    this.recording = false;
    this.chunks = [];
  }

  end() {
    this.recording = false;
    const length = this.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const samples = new Float32Array(length);
    let offset = 0;
    for (const chunk of this.chunks) {
      samples.set(chunk, offset);
      offset += chunk.length;
    }
    this.chunks = [];
    return encodeWav(samples, this.context.sampleRate);
  }
}

// A mono 16-bit PCM WAV file of float samples in [-1, 1].
function encodeWav(samples, sampleRate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, value) => [...value].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true); // size of the fmt chunk
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true); // bytes per second
  view.setUint16(32, 2, true); // bytes per frame
  view.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  view.setUint32(40, samples.length * 2, true);
  samples.forEach((value, i) => {
    const clamped = Math.max(-1, Math.min(1, value));
    view.setInt16(44 + i * 2, clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff, true);
  });
  return new Blob([view], { type: "audio/wav" });
}

function showLevel(rms, peak) {
  // dBFS from -60 (empty bar) to 0 (full bar).
  const percent = (value) => Math.max(0, Math.min(100, ((20 * Math.log10(value + 1e-9)) + 60) / 60 * 100));
  $("meter-bar").style.width = `${percent(rms)}%`;
  $("meter-peak").style.left = `${percent(peak)}%`;
}

const recorder = new Recorder(showLevel);

// --- account --------------------------------------------------------------------------------

async function loadAccount() {
  const account = await api("/api/studio/account");
  state.user = account.user;
  state.anonymousAllowed = account.anonymous_allowed;
  $("account-name").textContent = state.user ? `Signed in as ${state.user.username}`
    : state.anonymousAllowed
      ? "Not signed in: you can record, export and train without an account, but voices made so are shared with everyone who uses this server without signing in."
      : "Not signed in";
  $("signin-form").hidden = Boolean(state.user);
  // The server leaves the sign-up button out of the page when sign-up is off; this covers a page
  // served before the setting changed.
  for (const id of ["signup-button", "signup-hint"]) {
    if ($(id)) $(id).hidden = !account.signup_allowed;
  }
  $("signout").hidden = !state.user;
  $("new-voice-private-label").hidden = !state.user;
  const blocked = !state.user && !state.anonymousAllowed;
  $("signin-required").hidden = !blocked;
  $("studio").hidden = blocked;
  return !blocked;
}

async function submitAccount(event) {
  const action = event.submitter?.dataset.action || "signin";
  await api(`/api/studio/account/${action}`, {
    json: { username: $("signin-username").value, password: $("signin-password").value },
  });
  $("signin-password").value = "";
  await start();
}

async function signOut() {
  await api("/api/studio/account/signout", { method: "POST" });
  localStorage.removeItem("moksori.voice");
  await start();
}

// --- voices and prompt sets -----------------------------------------------------------------

function fillSelect(select, items, label, selected) {
  select.replaceChildren(...items.map((item) => new Option(label(item), item.id, false, item.id === selected)));
}

async function loadVoices(selectId) {
  state.voices = (await api("/api/studio/voices")).voices;
  const wanted = selectId ?? Number(localStorage.getItem("moksori.voice"));
  const voice = state.voices.find((v) => v.id === wanted) || state.voices[0] || null;
  fillSelect($("voice-select"), state.voices, (v) => `${v.name} (${v.language})${v.trained ? " ✓ trained" : ""}`, voice?.id);
  await openVoice(voice);
}

async function createVoice() {
  const form = $("new-voice-form");
  const voice = await api("/api/studio/voices", {
    json: {
      name: form.name.value,
      language: form.language.value,
      description: form.description.value,
      private: form.private.checked,
    },
  });
  form.reset();
  document.activeElement?.blur(); // so that Space records instead of typing
  toast(`Voice “${voice.name}” created`);
  await loadVoices(voice.id);
}

async function openVoice(voice) {
  cancelRecording(); // a take of this voice's sentence must not be stored under another voice's prompt
  state.voice = voice;
  const hasVoice = Boolean(voice);
  $("recorder").hidden = !hasVoice;
  $("details").hidden = !hasVoice;
  $("new-voice").open = !hasVoice;
  stopRunPoll();
  if (!voice) return;
  localStorage.setItem("moksori.voice", voice.id);
  document.dispatchEvent(new CustomEvent("studio:voice", { detail: voice })); // lexicon.js follows it
  $("export-link").href = `/api/studio/voices/${voice.id}/export`;
  $("delete-confirm").value = "";
  const setId = Number(localStorage.getItem(`moksori.set.${voice.id}`));
  const preferred = state.promptSets.find((s) => s.id === setId)
    || state.promptSets.find((s) => s.source === "builtin" && s.language === voice.language)
    || state.promptSets[0];
  $("prompt-set-select").value = preferred?.id ?? "";
  await openPromptSet(preferred);
  training.runActive = false;
  fillTrainingChoices();
  await loadRuns();
  await loadPlan();
}

async function loadPromptSets() {
  state.promptSets = (await api("/api/studio/prompt-sets")).prompt_sets;
  fillSelect($("prompt-set-select"), state.promptSets, (s) => `${s.name} — ${s.prompts} sentences`, state.promptSet?.id);
}

async function uploadPromptSet() {
  const form = $("upload-prompts-form");
  const body = new FormData(form);
  if (!body.get("name")) body.set("name", form.file.files[0]?.name || "my sentences");
  const created = await api("/api/studio/prompt-sets", { method: "POST", body });
  form.reset();
  toast(`${created.prompts} sentences uploaded` + (created.warnings.length ? ` (${created.warnings.length} warnings, listed under the form)` : ""));
  showPromptWarnings(created.warnings);
  await loadPromptSets();
  if (state.voice) localStorage.setItem(`moksori.set.${state.voice.id}`, created.id);
  $("prompt-set-select").value = created.id;
  await openPromptSet(state.promptSets.find((s) => s.id === created.id));
}

// The upload's warnings, line by line (emoji, Chinese characters... that the voice cannot read).
function showPromptWarnings(warnings) {
  const list = $("prompt-warnings");
  list.replaceChildren(...warnings.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
  list.hidden = warnings.length === 0;
}

async function openPromptSet(promptSet) {
  cancelRecording();
  state.promptSet = promptSet || null;
  if (!promptSet || !state.voice) return;
  localStorage.setItem(`moksori.set.${state.voice.id}`, promptSet.id);
  const data = await api(`/api/studio/prompt-sets/${promptSet.id}/prompts?voice_id=${state.voice.id}`);
  state.prompts = data.prompts;
  const saved = localStorage.getItem(indexKey());
  const firstOpen = state.prompts.findIndex((p) => !p.kept);
  state.index = saved !== null ? Math.min(Number(saved), state.prompts.length - 1) : Math.max(0, firstOpen);
  renderPromptList();
  showPrompt();
  await loadProgress();
}

function indexKey() {
  return `moksori.index.${state.voice?.id}.${state.promptSet?.id}`;
}

// --- recording ------------------------------------------------------------------------------

function currentPrompt() {
  return state.prompts[state.index] || null;
}

function showPrompt() {
  const prompt = currentPrompt();
  if (state.unsent?.prompt !== prompt) forgetUnsent();
  $("prompt-text").textContent = prompt ? prompt.text : "This prompt set is empty.";
  $("prompt-text").lang = state.promptSet?.language || "ko";
  $("prompt-position").textContent = prompt ? `${state.index + 1} / ${state.prompts.length}` : "";
  state.take = prompt ? prompt.kept || prompt.latest : null;
  $("take-info").textContent = prompt && prompt.takes ? `${prompt.takes} take${prompt.takes > 1 ? "s" : ""}` : "no take yet";
  showVerdict(state.take ? { recording: state.take, problems: state.take.problems, ok: !state.take.problems.length } : null);
  // A take still being judged (the page reloaded, or the prompt shown again) is followed until its verdict.
  if (state.take) followJudges(state.take).catch((error) => console.warn("judges", error));
  markCurrentPrompt($("prompt-list").contains(document.activeElement));
  localStorage.setItem(indexKey(), state.index);
}

function move(step) {
  const next = state.index + step;
  if (next < 0 || next >= state.prompts.length) return;
  choosePrompt(next);
}

async function toggleRecording() {
  if (state.uploading || !currentPrompt()) return;
  if (!recorder.ready) {
    setRecordState("Opening the microphone…");
    try {
      await recorder.open();
    } catch (error) {
      setRecordState(microphoneProblem(error));
      throw error;
    }
  }
  if (!recorder.recording) {
    forgetUnsent();
    recorder.begin();
    setRecordState(`Recording… ${HINT.stop}; it stops by itself after a pause.`, true);
    return;
  }
  const wav = recorder.end();
  setRecordState("Checking the take…");
  await uploadTake(wav);
}

// Why the microphone did not open, and what to do about it.
function microphoneProblem(error) {
  const thenStart = `then ${HINT.start[0].toLowerCase()}${HINT.start.slice(1)}`;
  if (!navigator.mediaDevices) {
    return "The browser gives this page no microphone: it does so only over HTTPS or on http://127.0.0.1 / http://localhost.";
  }
  if (error.name === "NotAllowedError" || error.name === "SecurityError") {
    return `The microphone is blocked for this page: allow it (the icon in the address bar), ${thenStart}`;
  }
  if (error.name === "NotFoundError" || error.name === "OverconstrainedError") {
    return `No microphone was found: connect one (or choose it in the system settings), ${thenStart}`;
  }
  return `The microphone could not be opened (${error.message}). ${HINT.start}`;
}

function cancelRecording() {
  if (!recorder.recording) return;
  recorder.cancel();
  setRecordState(`Cancelled: nothing was saved. ${HINT.start}`);
}

recorder.onSilence = () => guarded(async () => { if (recorder.recording && !state.uploading) await toggleRecording(); })();

function setRecordState(message, recording = false) {
  $("record-state").textContent = message;
  $("record-state").classList.toggle("recording", recording);
  $("record").classList.toggle("recording", recording);
  $("record").textContent = recording ? "■ Stop" : "● Record";
}

async function uploadTake(wav) {
  const prompt = currentPrompt();
  const body = new FormData();
  body.set("prompt_id", prompt.id);
  body.set("audio", wav, "take.wav");
  state.uploading = true;
  try {
    const result = await api(`/api/studio/voices/${state.voice.id}/takes`,
      { method: "POST", body, signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS) });
    if (currentPrompt() !== prompt) { // another voice or prompt set was opened meanwhile: stored, not shown here
      setRecordState(`The take was saved for the prompt you left. ${HINT.start}`);
      return;
    }
    setRecordState(result.ok
      ? `Saved. ${TOUCH ? "Tap Next →" : "Press →"} for the next prompt, or ${HINT.again}.`
      : `Saved, with problems: ${HINT.again}, or keep it anyway.`);
    prompt.takes += 1;
    prompt.latest = result.recording;
    if (result.recording.kept) prompt.kept = result.recording;
    state.take = result.recording;
    $("take-info").textContent = `${prompt.takes} take${prompt.takes > 1 ? "s" : ""}`;
    showVerdict(result);
    renderPromptList();
    followJudges(result.recording).catch((error) => console.warn("judges", error));
    await loadProgress();
  } catch (error) {
    // A take refused for what it is (too long, not audio) is gone; one lost on the way is kept to send again.
    const onTheWay = lostOnTheWay(error) && currentPrompt() === prompt;
    state.unsent = onTheWay ? { wav, prompt } : null;
    $("retry-upload").hidden = !onTheWay;
    setRecordState(onTheWay
      ? "The take could not be saved. It is kept in this page: Upload it again, or record it again."
      : "The take could not be saved.");
    if (error.name === "TimeoutError") throw new Error(`the server did not answer within ${UPLOAD_TIMEOUT_MS / 1000} s`);
    throw error;
  } finally {
    state.uploading = false;
  }
}

async function retryUpload() {
  const unsent = state.unsent;
  forgetUnsent();
  if (!unsent || currentPrompt() !== unsent.prompt || recorder.recording || state.uploading) return;
  setRecordState("Checking the take…");
  await uploadTake(unsent.wav);
}

function forgetUnsent() {
  state.unsent = null;
  $("retry-upload").hidden = true;
}

function showVerdict(result) {
  const box = $("verdict");
  // A redraw of the same take (the judges' verdict arriving) leaves an open "Delete this take?" open.
  const asking = Boolean(result) && !$("discard-confirm").hidden && box.dataset.take === String(result.recording.id);
  box.replaceChildren();
  box.dataset.take = result ? String(result.recording.id) : "";
  $("take-actions").hidden = !result;
  $("play").disabled = !result;
  $("waveform").hidden = !result;
  if (!result) return;
  const take = result.recording;
  const headline = document.createElement("div");
  headline.className = result.ok ? "ok" : "problem";
  headline.textContent = result.ok
    ? `✓ Good take (${take.duration_s.toFixed(2)} s)`
    : `✗ ${result.problems.length === 1 ? "A problem" : "Problems"} with this take (${take.duration_s.toFixed(2)} s)`;
  box.append(headline);
  if (!result.ok) {
    const list = document.createElement("ul");
    for (const problem of result.problems) {
      const item = document.createElement("li");
      item.dataset.code = problem.code;
      item.append(ADVICE[problem.code] || problem.code, document.createElement("br"));
      const detail = document.createElement("small");
      detail.textContent = problem.message;
      item.append(detail);
      list.append(item);
    }
    box.append(list);
  }
  const kept = document.createElement("div");
  kept.className = "hint";
  kept.textContent = take.kept ? "This take is kept for the dataset." : "This take is not in the dataset.";
  box.append(kept);
  if (take.trim) {
    const cut = document.createElement("div");
    cut.className = "hint";
    cut.id = "trim-note";
    cut.textContent = take.trim.start_s === undefined
      ? "Silence trimmed; the untrimmed recording is kept (Undo trim)."
      : `Edge silence trimmed: kept ${take.trim.start_s.toFixed(2)}–${take.trim.end_s.toFixed(2)} s of the recording; the untrimmed recording is kept (Undo trim).`;
    box.append(cut);
  }
  const judges = judgesNote(take);
  if (judges) box.append(judges);
  $("keep").hidden = take.kept;
  $("unkeep").hidden = !take.kept;
  $("trim").hidden = !result.problems.some((p) => ["leading_silence", "trailing_silence", "late_start"].includes(p.code));
  $("untrim").hidden = !take.trim;
  $("discard-confirm").hidden = !asking;
  $("discard").hidden = asking;
  drawWaveform(take).catch((error) => console.warn("waveform", error));
}

// The background judges' state under the verdict: checking, no answer (and a retry), off (and why), or not run.
function judgesNote(take) {
  const judges = take.judges;
  if (!judges || judges.status === "done") return null;
  const note = document.createElement("div");
  note.className = "hint";
  note.id = "judges-note";
  const stalled = judges.status === "pending" && judgesFollow.stalled.get(take.id);
  note.dataset.status = stalled ? "stalled" : judges.status;
  note.textContent = stalled
    ? `The word and noise checks have not answered: ${stalled}. The take is saved; the checks above stand. `
    : judges.status === "pending"
      ? "Checking the words against the script and the background noise…"
      : judges.status === "off"
        ? `Word and noise checks are off: ${judges.note}`
        : `Word and noise checks did not run: ${judges.note}`;
  if (stalled) {
    const retry = Object.assign(document.createElement("button"), { id: "judges-retry", className: "secondary", textContent: "Check again" });
    retry.addEventListener("click", () => followJudges(take).catch((error) => console.warn("judges", error)));
    note.append(retry);
  }
  return note;
}

// The takes whose judges are being asked for now, and those that got no answer (id → why).
const judgesFollow = { active: new Set(), stalled: new Map() };

// Ask for the take again until the background judges are done; show their verdict if it is still
// the take shown. A request that fails or hangs, or no verdict within JUDGES_WAIT_MS, is said
// under the verdict with a "Check again" button: the judges' process may have stopped.
async function followJudges(take) {
  if (take.judges?.status !== "pending" || judgesFollow.active.has(take.id)) return;
  judgesFollow.active.add(take.id);
  judgesFollow.stalled.delete(take.id);
  redrawJudgesNote(take);
  const deadline = Date.now() + JUDGES_WAIT_MS;
  try {
    while (take.judges?.status === "pending" && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, JUDGES_POLL_MS));
      if (state.take?.id !== take.id) return;
      take = await api(`/api/studio/recordings/${take.id}`, { signal: AbortSignal.timeout(JUDGES_REQUEST_TIMEOUT_MS) });
    }
    if (take.judges?.status === "pending") judgesFollow.stalled.set(take.id, `no verdict after ${JUDGES_WAIT_MS / 1000} s`);
  } catch (error) {
    judgesFollow.stalled.set(take.id, error.name === "TimeoutError"
      ? `the server did not answer within ${JUDGES_REQUEST_TIMEOUT_MS / 1000} s`
      : `asking the server failed (${error.message})`);
  } finally {
    judgesFollow.active.delete(take.id);
  }
  if (state.take?.id !== take.id) return;
  if (judgesFollow.stalled.has(take.id)) redrawJudgesNote(take);
  else updateTake(take, { recording: take, problems: take.problems });
}

function redrawJudgesNote(take) {
  if ($("verdict").dataset.take !== String(take.id)) return;
  const note = judgesNote(take);
  if (note) $("judges-note")?.replaceWith(note);
}

// The stored take's waveform: min/max of the samples under each pixel column.
async function drawWaveform(take) {
  const canvas = $("waveform");
  canvas.hidden = false;
  canvas.dataset.take = "";
  const data = await (await fetch(take.audio_url, { credentials: "same-origin" })).arrayBuffer();
  const audio = await new OfflineAudioContext(1, 1, take.sample_rate).decodeAudioData(data);
  if (state.take?.id !== take.id) return; // another take is shown meanwhile
  const samples = audio.getChannelData(0);
  const width = (canvas.width = canvas.clientWidth * (window.devicePixelRatio || 1) || 600);
  const height = canvas.height;
  const draw = canvas.getContext("2d");
  draw.clearRect(0, 0, width, height);
  draw.fillStyle = take.kept ? "#1a7f37" : "#9a6700";
  const step = Math.max(1, Math.floor(samples.length / width));
  for (let x = 0; x < width; x++) {
    let low = 0;
    let high = 0;
    for (let i = x * step; i < Math.min(samples.length, (x + 1) * step); i++) {
      low = Math.min(low, samples[i]);
      high = Math.max(high, samples[i]);
    }
    const top = (1 - high) * height / 2;
    draw.fillRect(x, top, 1, Math.max(1, (high - low) * height / 2));
  }
  canvas.dataset.take = String(take.id);
  canvas.title = `take ${take.take}: ${take.duration_s.toFixed(2)} s`;
}

function playTake() {
  if (!state.take) return;
  new Audio(`${state.take.audio_url}?v=${Date.now()}`).play().catch((error) => toast(error.message, true));
}

// A kept take left out of the dataset again (a Keep anyway by mistake), without deleting it.
async function unkeepTake() {
  const take = await api(`/api/studio/recordings/${state.take.id}`, { method: "PATCH", json: { kept: false } });
  updateTake(take, { recording: take, problems: take.problems });
}

async function keepTake() {
  const take = await api(`/api/studio/recordings/${state.take.id}`, { method: "PATCH", json: { kept: true } });
  updateTake(take, { recording: take, ok: true, problems: take.problems });
}

async function trimTake() {
  const result = await api(`/api/studio/recordings/${state.take.id}/trim`, { method: "POST" });
  updateTake(result.recording, result);
  followJudges(result.recording).catch((error) => console.warn("judges", error));
  toast(result.ok ? "Trimmed: the take is fine now" : "Trimmed");
}

async function untrimTake() {
  const result = await api(`/api/studio/recordings/${state.take.id}/untrim`, { method: "POST" });
  updateTake(result.recording, result);
  followJudges(result.recording).catch((error) => console.warn("judges", error));
  toast("Trimming undone: the take is the whole recording again");
}

// "Delete take" asks first: the button is swapped for "Delete it / Keep it".
function askDiscard() {
  $("discard").hidden = true;
  $("discard-confirm").hidden = false;
  $("discard-yes").focus();
}

async function discardTake() {
  const take = state.take;
  await api(`/api/studio/recordings/${take.id}`, { method: "DELETE" });
  await openPromptSet(state.promptSet);
  setRecordState(`Take ${take.take} deleted. ${HINT.start}`);
}

function updateTake(take, result) {
  const prompt = currentPrompt();
  prompt.latest = take;
  if (take.kept) prompt.kept = take;
  else if (prompt.kept?.id === take.id) prompt.kept = null;
  state.take = take;
  showVerdict({ ...result, ok: result.problems.length === 0 });
  renderPromptList();
  loadProgress();
}

function renderPromptList() {
  const list = $("prompt-list");
  const hadFocus = list.contains(document.activeElement); // a redraw must not drop keyboard focus to the page
  const items = state.prompts.map((prompt, i) => {
    const item = document.createElement("li");
    const mark = prompt.kept ? "✓ " : prompt.takes > 0 ? "! " : "";
    const status = prompt.kept ? "done" : prompt.takes > 0 ? "not kept yet" : "";
    item.textContent = mark + prompt.text;
    item.title = status ? `${status}: ${prompt.text}` : prompt.text;
    item.setAttribute("role", "option");
    item.setAttribute("aria-label", `${i + 1}. ${status ? `${status}: ` : ""}${prompt.text}`);
    item.classList.toggle("kept", Boolean(prompt.kept));
    item.classList.toggle("problem", !prompt.kept && prompt.takes > 0);
    item.addEventListener("click", () => choosePrompt(i));
    return item;
  });
  list.replaceChildren(...items);
  markCurrentPrompt(hadFocus);
}

// The shown prompt is the list's one selected option and its one Tab stop (roving tabindex).
function markCurrentPrompt(focus) {
  document.querySelectorAll("#prompt-list li").forEach((li, i) => {
    li.classList.toggle("current", i === state.index);
    li.setAttribute("aria-selected", String(i === state.index));
    li.tabIndex = i === state.index ? 0 : -1;
  });
  const current = document.querySelector("#prompt-list li.current");
  current?.scrollIntoView({ block: "nearest" });
  if (focus) current?.focus();
}

function choosePrompt(index) {
  if (recorder.recording || state.uploading) return; // the take lands on the prompt shown
  const moved = index !== state.index;
  state.index = index;
  showPrompt();
  if (moved) setRecordState(HINT.start); // the last take's message is about the prompt left
}

// ↑ ↓ (Page Up/Down by ten, Home, End) move through the list and select; Enter selects the focused prompt.
function onPromptListKey(event) {
  const last = state.prompts.length - 1;
  const steps = { ArrowUp: -1, ArrowDown: 1, PageUp: -10, PageDown: 10 };
  let index;
  if (event.key in steps) index = Math.max(0, Math.min(last, state.index + steps[event.key]));
  else if (event.key === "Home") index = 0;
  else if (event.key === "End") index = last;
  else if (event.key === "Enter") index = [...$("prompt-list").children].indexOf(event.target.closest("li"));
  else return;
  event.preventDefault();
  if (index >= 0 && !event.ctrlKey && !event.metaKey && !event.altKey) choosePrompt(index);
}

// --- progress -------------------------------------------------------------------------------

async function loadProgress() {
  if (!state.voice) return;
  const query = state.promptSet ? `?prompt_set_id=${state.promptSet.id}` : "";
  const progress = await api(`/api/studio/voices/${state.voice.id}/progress${query}`);
  $("progress-prompts").textContent = `${progress.prompts_done ?? 0} / ${progress.prompts_total ?? 0}`;
  $("progress-minutes").textContent = formatDuration(progress.recorded_seconds);
  state.keptTakes = progress.kept_takes;
  $("export-link").setAttribute("aria-disabled", String(progress.kept_takes === 0));
  const goals = progress.goals;
  $("progress-finetune").value = Math.min(1, progress.recorded_minutes / goals.finetune_minutes);
  $("progress-scratch").value = Math.min(1, progress.recorded_minutes / goals.scratch_minutes);
  $("progress-remaining").textContent =
    `${goals.finetune_remaining_minutes.toFixed(0)} more minutes for fine-tuning, ` +
    `${(goals.scratch_remaining_minutes / 60).toFixed(1)} more hours for training from scratch.` +
    (progress.can_train ? "" : ` Training needs at least ${progress.min_training_takes} kept takes.`);
  training.canTrain = progress.can_train;
  training.minTakes = progress.min_training_takes;
  updateStartButton();
}

// 75.4 → "1:15", 3725 → "1:02:05"
function formatDuration(seconds) {
  const whole = Math.round(seconds);
  const [h, m, s] = [Math.floor(whole / 3600), Math.floor(whole / 60) % 60, whole % 60];
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

// --- training -------------------------------------------------------------------------------

// What the training form knows: the choices, the current plan, whether a run is active.
const training = { recipes: [], defaultRecipe: null, finetune: null, bases: [], plan: null, planError: null,
  canTrain: false, minTakes: 0, runActive: false, planSeq: 0 };

async function loadTrainingChoices() {
  const data = await api("/api/studio/recipes");
  // bases: the voices the signed-in caller may start from, their private ones included.
  Object.assign(training, { recipes: data.recipes, defaultRecipe: data.default, finetune: data.finetune, bases: data.bases });
}

// "Start from": voices of the studio voice's language (the shipped one first); "Settings": the
// small-data fine-tune for a base voice, or a recipe (from scratch, or warm-started).
function fillTrainingChoices() {
  const language = state.voice?.language;
  const bases = training.bases.filter((v) => v.language === language && v.id !== String(state.voice?.id));
  bases.sort((a, b) => (b.id === "ko_default") - (a.id === "ko_default"));
  const canFinetune = Boolean(training.finetune) && bases.length > 0;
  const baseSelect = $("init-from-select");
  baseSelect.replaceChildren(new Option("(nothing: train from scratch)", ""),
    ...bases.map((v) => new Option(`${v.name} (${v.language}${v.private ? ", private" : ""})`, v.id, false, false)));
  baseSelect.value = canFinetune ? bases[0].id : "";
  fillRecipeChoices();
}

function fillRecipeChoices() {
  const fromVoice = $("init-from-select").value;
  const options = training.recipes.map((name) => new Option(fromVoice ? `${name} (warm start)` : name, name));
  if (fromVoice && training.finetune) options.unshift(new Option(`small-data fine-tune (recommended)`, ""));
  $("recipe-select").replaceChildren(...options);
  $("recipe-select").value = fromVoice && training.finetune ? "" : (training.defaultRecipe ?? "");
}

async function loadPlan() {
  training.plan = null;
  training.planError = null;
  const base = $("init-from-select").value;
  const recipe = $("recipe-select").value;
  if (!state.voice || (!base && !recipe)) {
    $("training-plan").textContent = "";
    updateStartButton();
    return;
  }
  const seq = ++training.planSeq;
  $("training-plan").textContent = "Checking the plan…";
  updateStartButton();
  const query = new URLSearchParams();
  if (base) query.set("init_from_voice", base);
  if (recipe) query.set("recipe", recipe);
  let plan = null;
  let retry = false;
  try {
    plan = await api(`/api/studio/voices/${state.voice.id}/training/plan?${query}`,
      { signal: AbortSignal.timeout(PLAN_TIMEOUT_MS) });
  } catch (error) {
    if (seq !== training.planSeq) return;
    // A refusal (another language, a recipe that does not fit) stands; a request lost on the way can be retried.
    retry = lostOnTheWay(error);
    training.planError = error.name === "TimeoutError"
      ? `The plan did not come within ${PLAN_TIMEOUT_MS / 1000} s (the server may be busy).`
      : retry ? `The plan could not be checked: ${error.message}.` : error.message;
  }
  if (seq !== training.planSeq) return; // another choice was made meanwhile
  training.plan = plan;
  $("training-plan").textContent = plan
    ? `${plan.summary}. Weights: ${plan.weights_summary}.` + (plan.ok ? "" : ` ✗ ${plan.problem}`)
    : `✗ ${training.planError} `;
  if (retry) {
    const again = Object.assign(document.createElement("button"), { type: "button", id: "plan-retry", className: "secondary", textContent: "Check again" });
    again.addEventListener("click", guarded(loadPlan));
    $("training-plan").append(again);
  }
  $("training-plan").classList.toggle("problem", !plan?.ok);
  updateStartButton();
}

// Start training is clickable only when the server would accept it; otherwise the reason is shown.
function startBlocker() {
  if (!training.recipes.length && !training.finetune) return "No training recipes are installed on this server.";
  if (training.runActive) return "A run is in progress.";
  if (!training.canTrain) return `Training needs at least ${training.minTakes} kept takes.`;
  if (!$("init-from-select").value && !$("recipe-select").value) return "Choose a recipe or a voice to start from.";
  if (training.planError) return training.planError;
  if (training.plan && !training.plan.ok) return "This combination would drop most of the voice's weights (see above).";
  if (!training.plan) return "Checking the plan…";
  return "";
}

function updateStartButton() {
  const reason = startBlocker();
  $("start-training").disabled = Boolean(reason);
  $("start-reason").textContent = reason;
}

async function loadRuns() {
  const runs = (await api(`/api/studio/voices/${state.voice.id}/training`)).runs;
  $("training").hidden = runs.length === 0;
  if (runs.length) await pollRun(runs[0].id);
}

async function startTraining() {
  const run = await api(`/api/studio/voices/${state.voice.id}/training`, {
    json: { recipe: $("recipe-select").value || null, init_from_voice: $("init-from-select").value || null },
  });
  toast("Training started");
  $("training").hidden = false;
  await pollRun(run.id);
}

async function pollRun(runId) {
  stopRunPoll();
  const voice = state.voice;
  const run = await api(`/api/studio/training/${runId}`);
  if (state.voice !== voice) return; // another voice was opened meanwhile: its runs are shown, not this one
  const active = run.status === "queued" || run.status === "running";
  $("training-status").textContent =
    `Run ${run.id} (${run.recipe}): ${run.status}` + (active ? ` — ${run.stage}, step ${run.step}` : "") +
    (run.error ? ` — ${run.error}` : "");
  $("training-progress").value = run.progress;
  $("training-log").textContent = run.log_tail;
  $("training-log").scrollTop = $("training-log").scrollHeight;
  $("cancel-training").hidden = !active;
  $("cancel-training").dataset.run = run.id;
  training.runActive = active;
  updateStartButton();
  const listen = $("listen-link");
  listen.hidden = run.status !== "succeeded" && !state.voice.trained; // a later run cancelled or failed: the voice still speaks
  listen.href = `/listen?voice=${encodeURIComponent(state.voice.id)}`;
  if (active) state.runPoll = setTimeout(() => followRun(runId), 2000);
  else if (run.status === "succeeded" && training.lastSucceeded !== run.id) {
    training.lastSucceeded = run.id;
    markTrained(state.voice);
    await loadProgress();
    await loadTrainingChoices(); // the new voice can now be fine-tuned further
    fillTrainingChoices();
    await loadPlan();
  }
}

// The next status poll of an active run. One lost on the way (the server restarting, the network)
// is said and asked again, less often each time: the run goes on meanwhile and the page must not
// stay at its last step.
function followRun(runId, failures = 0) {
  const voice = state.voice;
  pollRun(runId).catch((error) => {
    if (state.voice !== voice || state.runPoll !== null) return; // another voice (or run) is followed now
    $("training-status").textContent = `Run ${runId}: no answer from the server (${error.message}); asking again…`;
    state.runPoll = setTimeout(() => followRun(runId, failures + 1), Math.min(30000, 2000 * 2 ** failures));
  });
}

// The voice list says "✓ trained" as soon as a run succeeds, without waiting for a reload.
function markTrained(voice) {
  voice.trained = true;
  const option = [...$("voice-select").options].find((o) => Number(o.value) === voice.id);
  if (option) option.text = `${voice.name} (${voice.language}) ✓ trained`;
}

function stopRunPoll() {
  clearTimeout(state.runPoll);
  state.runPoll = null;
}

async function cancelTraining() {
  const runId = $("cancel-training").dataset.run;
  await api(`/api/studio/training/${runId}/cancel`, { method: "POST" });
  await pollRun(runId);
}

async function deleteVoice() {
  const confirm = $("delete-confirm").value;
  if (confirm !== state.voice.name) {
    throw new Error(`To delete this voice, type its name exactly: ${state.voice.name}`);
  }
  await api(`/api/studio/voices/${state.voice.id}?confirm=${encodeURIComponent(confirm)}`, { method: "DELETE" });
  toast(`Voice “${state.voice.name}” deleted`);
  localStorage.removeItem("moksori.voice");
  await loadVoices();
}

// --- wiring ---------------------------------------------------------------------------------

// The export of a voice with no kept take is a 409 that the browser drops without a word: say why instead.
function exportDataset(event) {
  if (state.keptTakes !== 0) return;
  event.preventDefault();
  toast("Nothing to download yet: the dataset holds this voice's kept takes, and it has none. Record a take (or press Keep anyway) first.", true);
}

function onKey(event) {
  const typing = event.target.closest?.("input, textarea, select, [contenteditable]");
  if (typing || event.repeat || $("recorder").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest?.("button")) event.target.blur(); // Space must not also press a focused button
  if (event.code === "Space") {
    event.preventDefault();
    guarded(toggleRecording)();
  } else if (event.key === "Escape") {
    cancelRecording();
  } else if (event.key === "ArrowLeft") {
    event.preventDefault();
    move(-1);
  } else if (event.key === "ArrowRight") {
    event.preventDefault();
    move(1);
  } else if (event.key === "p" || event.key === "P") {
    playTake();
  }
}

function wire() {
  $("signin-form").addEventListener("submit", guarded(submitAccount));
  $("signout").addEventListener("click", guarded(signOut));
  $("new-voice-form").addEventListener("submit", guarded(createVoice));
  $("voice-select").addEventListener("change", guarded(() => openVoice(state.voices.find((v) => v.id === Number($("voice-select").value)))));
  $("prompt-set-select").addEventListener("change", guarded(() => openPromptSet(state.promptSets.find((s) => s.id === Number($("prompt-set-select").value)))));
  $("upload-prompts-form").addEventListener("submit", guarded(uploadPromptSet));
  $("record").addEventListener("click", guarded(toggleRecording));
  $("retry-upload").addEventListener("click", guarded(retryUpload));
  $("prompt-list").addEventListener("keydown", onPromptListKey);
  $("prev").addEventListener("click", () => move(-1));
  $("next").addEventListener("click", () => move(1));
  $("play").addEventListener("click", playTake);
  $("keep").addEventListener("click", guarded(keepTake));
  $("unkeep").addEventListener("click", guarded(unkeepTake));
  $("trim").addEventListener("click", guarded(trimTake));
  $("discard").addEventListener("click", askDiscard);
  $("discard-yes").addEventListener("click", guarded(discardTake));
  $("discard-no").addEventListener("click", () => { $("discard-confirm").hidden = true; $("discard").hidden = false; });
  $("untrim").addEventListener("click", guarded(untrimTake));
  $("guide-close").addEventListener("click", () => { localStorage.setItem("moksori.guide.seen", "1"); $("guide").hidden = true; });
  $("export-link").addEventListener("click", exportDataset);
  $("training-form").addEventListener("submit", guarded(startTraining));
  $("init-from-select").addEventListener("change", guarded(() => { fillRecipeChoices(); return loadPlan(); }));
  $("recipe-select").addEventListener("change", guarded(loadPlan));
  $("cancel-training").addEventListener("click", guarded(cancelTraining));
  $("delete-voice-form").addEventListener("submit", guarded(deleteVoice));
  // Buttons keep focus after a click; Space would then click them again instead of recording.
  document.querySelectorAll(".controls button, #take-actions button, #guide button").forEach((b) => b.addEventListener("mouseup", () => b.blur()));
  document.addEventListener("keydown", onKey);
}

function showRecordingHints() {
  $("record-state").textContent = HINT.start;
  $("keys-hint").hidden = TOUCH;
  $("guide").hidden = Boolean(localStorage.getItem("moksori.guide.seen"));
}

async function start() {
  showRecordingHints();
  if (!(await loadAccount())) return;
  await loadPromptSets();
  await loadTrainingChoices();
  await loadVoices();
  document.body.dataset.ready = "true";
}

wire();
guarded(start)();
