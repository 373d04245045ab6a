// vidgan explorer page: talks to the JSON API in vidgan/explore/app.py (no build step).
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  job: null, // id of the newest video job
  result: null, // {frames, size, indices, names} of the shown video
  images: [],
  playing: false,
  pos: 0, // index of the shown frame of the video
  timer: null,
  frameBusy: false, // a scrubbed frame request is in flight
  frameWanted: null, // the newest scrub position not yet requested
};

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options = {}) {
  const resp = await fetch(path, options);
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    try {
      message = (await resp.json()).error || message;
    } catch (e) { /* not JSON */ }
    const err = new Error(message);
    err.status = resp.status;
    throw err;
  }
  return resp;
}

function postJSON(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

// --- the request the controls describe ------------------------------------------------
function viewSpec() {
  const info = state.info;
  const spec = {
    content_seeds: $("content").value.trim(),
    motion_seeds: $("motion").value.trim(),
    difference: $("difference").checked,
  };
  if (info.continuous) {
    spec.frames = Number($("frames").value);
    spec.start = Number($("start").value || 0);
    spec.density = Number($("density").value);
  } else {
    spec.frames = Number($("lengths").value);
  }
  if (info.abilities.upsample) spec.scale = Number($("scale").value);
  if (info.abilities.zoom) spec.zoom = Number($("zoom").value || 1);
  if (info.abilities.bands && $("edges").value.trim()) {
    spec.edges = $("edges").value.split(",").map((x) => x.trim()).filter((x) => x).map(Number);
    spec.ratio = $("ratio").checked;
    spec.remove = [];
    spec.alter = {};
    document.querySelectorAll("#band-table tbody tr").forEach((row, band) => {
      const action = row.querySelector("select").value;
      if (action === "remove") spec.remove.push(band);
      if (action === "alter") spec.alter[band] = row.querySelector("input").value.trim() || "0";
    });
  }
  return spec;
}

// --- model info -----------------------------------------------------------------------
async function loadInfo() {
  const info = await (await api("/api/info")).json();
  state.info = info;
  const kind = info.continuous ? "continuous time" : `lengths ${info.lengths.join(", ")}`;
  $("model").textContent =
    `${info.model} (${info.generator}) · ${info.size[0]}×${info.size[1]} px · ${kind} · ${info.source}`;
  document.querySelectorAll(".continuous-only").forEach((el) => { el.hidden = !info.continuous; });
  $("frames-label").hidden = !info.continuous;
  $("lengths-label").hidden = info.continuous;
  if (!info.continuous) {
    $("lengths").innerHTML = info.lengths.map((n) => `<option>${n}</option>`).join("");
  }
  $("frames").value = info.clip_frames;
  $("frames").max = info.limits.frames;
  $("space").hidden = !(info.abilities.upsample || info.abilities.zoom);
  $("bands").hidden = !info.abilities.bands;
  if (info.abilities.bands) await loadSpectrum();
}

async function loadSpectrum() {
  const edges = $("edges").value.replace(/\s/g, "");
  const ratio = $("ratio").checked ? 1 : 0;
  let spec;
  try {
    spec = await (await api(`/api/spectrum?edges=${encodeURIComponent(edges)}&ratio=${ratio}`)).json();
  } catch (e) {
    showError(e.message);
    return;
  }
  drawSpectrum(spec);
  fillBandTable(spec);
}

const COLORS = ["#0071e3", "#ff9500", "#34c759", "#af52de"];

function drawSpectrum(spec) {
  const canvas = $("spectrum");
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = 16;
  ctx.clearRect(0, 0, W, H);
  const all = spec.generators.flatMap((g) => g.frequencies);
  const top = Math.max(...all, 1e-6) * 1.05;
  const bins = 48;
  ctx.font = "10px sans-serif";
  spec.generators.forEach((g, i) => {
    const counts = new Array(bins).fill(0);
    g.frequencies.forEach((w) => { counts[Math.min(bins - 1, Math.floor((w / top) * bins))] += 1; });
    const peak = Math.max(...counts, 1);
    ctx.fillStyle = COLORS[i % COLORS.length] + "99";
    counts.forEach((c, b) => {
      const h = ((H - 2 * pad) * c) / peak;
      ctx.fillRect(pad + ((W - 2 * pad) * b) / bins, H - pad - h, (W - 2 * pad) / bins - 1, h);
    });
    ctx.fillStyle = COLORS[i % COLORS.length];
    ctx.fillText(`band generator ${i}`, W - 110, 12 + 11 * i);
  });
  ctx.strokeStyle = "#d70015";
  spec.edges.forEach((e) => {
    const tops = spec.ratio ? spec.generators.map((g) => e * Math.max(...g.frequencies)) : [e];
    tops.forEach((x) => {
      const px = pad + ((W - 2 * pad) * x) / top;
      ctx.beginPath(); ctx.moveTo(px, pad); ctx.lineTo(px, H - pad); ctx.stroke();
    });
  });
  ctx.fillStyle = "#333";
  ctx.fillText("0", pad, H - 3);
  ctx.fillText(`|w| = ${top.toFixed(2)} (angular, per time unit)`, W - 190, H - 3);
}

function fillBandTable(spec) {
  const body = document.querySelector("#band-table tbody");
  const old = [...body.querySelectorAll("tr")]
    .filter((r) => r.querySelector("select"))
    .map((r) => [r.querySelector("select").value, r.querySelector("input").value]);
  const n = spec.edges.length + 1;
  const bounds = [0, ...spec.edges, Infinity];
  const unit = spec.ratio ? " × max" : "";
  body.innerHTML = "";
  if (!spec.edges.length) {
    body.innerHTML = `<tr><td colspan="4" class="hint">Enter band edges to keep, remove or alter bands.</td></tr>`;
    return;
  }
  for (let k = 0; k < n; k++) {
    const counts = spec.generators.map((g) => g.band_counts[k]).join(" + ");
    const hi = bounds[k + 1] === Infinity ? "∞" : bounds[k + 1];
    const row = document.createElement("tr");
    row.innerHTML = `<td>${k}${k === 0 ? " (low)" : k === n - 1 ? " (high)" : ""}</td>` +
      `<td>[${bounds[k]}, ${hi})${unit}</td><td>${counts}</td>` +
      `<td><select><option value="keep">keep</option><option value="remove">remove</option>` +
      `<option value="alter">alter</option></select> <input title="motion seed driving this band" placeholder="seed" value="1"></td>`;
    if (old[k] && old[k][0]) {
      row.querySelector("select").value = old[k][0];
      row.querySelector("input").value = old[k][1];
    }
    row.querySelector("select").addEventListener("change", scheduleRender);
    row.querySelector("input").addEventListener("change", scheduleRender);
    body.appendChild(row);
  }
}

// --- rendering jobs -------------------------------------------------------------------
let renderTimer = null;
function scheduleRender() {
  clearTimeout(renderTimer);
  renderTimer = setTimeout(render, 250);
}

async function render() {
  clearTimeout(renderTimer);
  showError("");
  let job;
  try {
    job = await (await postJSON("/api/render", viewSpec())).json();
  } catch (e) {
    showError(e.message);
    return;
  }
  state.job = job.id;
  $("status").textContent = "queued";
  poll(job.id);
}

async function poll(id) {
  while (state.job === id) {
    let job;
    try {
      job = await (await api(`/api/jobs/${id}`)).json();
    } catch (e) {
      showError(e.message);
      return;
    }
    if (state.job !== id) return; // a newer job took over
    $("progress").value = job.progress;
    $("status").textContent = job.state === "running" ? job.message : job.state;
    if (job.state === "done") return showResult(id, job.result);
    if (job.state === "error") return showError(job.error);
    if (job.state === "cancelled") return;
    await new Promise((r) => setTimeout(r, 120));
  }
}

function showResult(id, result) {
  stop();
  state.result = result;
  state.images = result.indices.map((_, k) => {
    const img = new Image();
    img.src = `/api/jobs/${id}/frames/${k}`;
    return img;
  });
  const [h, w] = result.size;
  const fit = Math.max(1, Math.floor(Math.min(640 / w, 640 / h, 384 / Math.min(w, h))));
  $("screen").width = w * fit;
  $("screen").height = h * fit;
  $("screen").dataset.videos = String(result.names.length);
  const info = state.info;
  const slider = $("time");
  const first = result.indices[0], last = result.indices[result.indices.length - 1];
  if (info.continuous) {
    const L = info.clip_frames;
    slider.min = Math.min(first, 0) - L;
    slider.max = Math.max(last, L) + L;
    slider.step = 0.01;
    $("range-note").textContent =
      `Drag to render any moment: the model was trained on frames 0–${L - 1}; ` +
      `outside that range it extrapolates.`;
  } else {
    slider.min = 0;
    slider.max = result.indices.length - 1;
    slider.step = 1;
    $("range-note").textContent = `${info.generator} makes frames 0–${result.indices.length - 1} only.`;
  }
  slider.disabled = false;
  $("play").disabled = false;
  updateDownloads();
  state.images[0].onload = () => showFrame(0);
  play();
}

function updateDownloads() {
  const fps = $("fps").value;
  $("fps-out").textContent = fps;
  if (!state.result) return;
  for (const fmt of ["mp4", "gif"]) {
    const a = $(`dl-${fmt}`);
    a.href = `/api/jobs/${state.job}/download?format=${fmt}&fps=${fps}`;
    a.classList.remove("disabled");
  }
  if (state.playing) { stop(); play(); }
}

// --- playback and scrubbing -----------------------------------------------------------
function draw(img) {
  const canvas = $("screen");
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
}

function setTimeLabel(t, rendered) {
  const L = state.info.clip_frames;
  const outside = state.info.continuous && (t < 0 || t > L - 1) ? " · past the training range" : "";
  $("time-out").textContent = `t = ${Number(t).toFixed(2)}${outside}${rendered ? " · rendered" : ""}`;
}

function showFrame(k) {
  state.pos = k;
  const img = state.images[k];
  if (img && img.complete && img.naturalWidth) draw(img);
  $("time").value = state.result.indices[k];
  setTimeLabel(state.result.indices[k], false);
}

function play() {
  if (!state.result) return;
  state.playing = true;
  $("play").textContent = "Pause";
  const fps = Number($("fps").value);
  state.timer = setInterval(() => showFrame((state.pos + 1) % state.images.length), 1000 / fps);
}

function stop() {
  state.playing = false;
  clearInterval(state.timer);
  $("play").textContent = "Play";
}

async function scrub() {
  stop();
  const t = Number($("time").value);
  setTimeLabel(t, false);
  if (!state.info.continuous) return showFrame(Math.round(t));
  state.frameWanted = t;
  if (state.frameBusy) return; // the newest position is sent when this request returns
  state.frameBusy = true;
  try {
    while (state.frameWanted !== null) {
      const want = state.frameWanted;
      state.frameWanted = null;
      let blob;
      try {
        blob = await (await postJSON("/api/frame", { ...viewSpec(), t: want })).blob();
      } catch (e) {
        if (e.status !== 409) showError(e.message);
        continue;
      }
      const img = new Image();
      img.src = URL.createObjectURL(blob);
      await img.decode();
      if (state.frameWanted === null) {
        draw(img);
        setTimeLabel(want, true);
        $("screen").dataset.t = String(want);
      }
      URL.revokeObjectURL(img.src);
    }
  } finally {
    state.frameBusy = false;
  }
}

// --- checkpoint loading ---------------------------------------------------------------
async function loadCheckpoint(event) {
  event.preventDefault();
  showError("");
  let job;
  try {
    job = await (await postJSON("/api/load", { path: $("load-path").value, from: $("load-from").value })).json();
  } catch (e) {
    return showError(e.message);
  }
  $("status").textContent = "loading checkpoint";
  for (;;) {
    job = await (await api(`/api/jobs/${job.id}`)).json();
    if (job.state === "error") return showError(job.error);
    if (job.state === "cancelled") return;
    if (job.state === "done") break;
    await new Promise((r) => setTimeout(r, 150));
  }
  await loadInfo();
  render();
}

// --- wiring ---------------------------------------------------------------------------
function init() {
  $("generate").addEventListener("click", render);
  $("shuffle").addEventListener("click", () => {
    $("content").value = Math.floor(Math.random() * 100000);
    $("motion").value = Math.floor(Math.random() * 100000);
    render();
  });
  for (const id of ["content", "motion", "frames", "lengths", "start", "density", "scale", "zoom", "difference"]) {
    $(id).addEventListener("change", scheduleRender);
  }
  for (const id of ["edges", "ratio"]) {
    $(id).addEventListener("change", async () => { await loadSpectrum(); scheduleRender(); });
  }
  $("fps").addEventListener("input", updateDownloads);
  $("time").addEventListener("input", scrub);
  $("play").addEventListener("click", () => (state.playing ? stop() : play()));
  $("load-form").addEventListener("submit", loadCheckpoint);
  loadInfo().then(render).catch((e) => showError(e.message));
}

init();
