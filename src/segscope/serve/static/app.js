// segscope serve: the page. Plain JavaScript, no dependencies, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  catalogue: null,
  image: null,          // the selected image's name
  size: null,           // [height, width] of the selected image
  runJob: null,         // the last Run job (its result can be corrected by pointing)
  prompt: { actions: [], object: 1, objects: 1, job: null, pending: false, again: false },
  cursor: null,         // keyboard cursor on the canvas, in image pixels [row, col]
  drag: null,
};

// ---------------------------------------------------------------- helpers

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error(`the server cannot be reached (${err.message})`);
  }
  const isJson = (response.headers.get("content-type") || "").includes("application/json");
  const body = isJson ? await response.json() : null;
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function offers(group) {
  return state.catalogue.offers.filter((o) => o.group === group);
}

function offer(name) {
  return state.catalogue.offers.find((o) => o.name === name);
}

// ---------------------------------------------------------------- forms from the registry

function buildForm(form, item) {
  form.replaceChildren();
  for (const field of item.fields) {
    const id = `${form.id}-${field.name}`;
    let input;
    if (field.kind === "checkbox") {
      input = el("input", { type: "checkbox", id, checked: field.default === "true" });
    } else if (field.kind === "choice") {
      input = el("select", { id }, field.choices.map((c) => el("option", { value: c, text: c })));
      input.value = field.default;
    } else {
      const numeric = field.kind === "integer" || field.kind === "number";
      input = el("input", { type: numeric ? "number" : "text", id, value: field.default });
      if (numeric) input.step = field.kind === "integer" ? "1" : "any";
    }
    input.name = field.name;
    input.dataset.default = field.default;
    const label = el("label", { htmlFor: id, text: `${field.name} (${field.annotation})` });
    const doc = el("p", { className: "doc", text: field.doc });
    form.append(el("div", {}, field.kind === "checkbox" ? [input, label, doc] : [label, input, doc]));
  }
}

function formOptions(form) {
  // Only the fields changed from their defaults: the method fills in the rest itself.
  const options = {};
  for (const input of form.querySelectorAll("input, select")) {
    const value = input.type === "checkbox" ? String(input.checked) : input.value.trim();
    if (value !== input.dataset.default) options[input.name] = value;
  }
  return options;
}

function fillMethods() {
  const select = $("method-select");
  select.replaceChildren();
  for (const [group, title] of [["method", "Methods"], ["zoo", "Zoo models"]]) {
    const optgroup = el("optgroup", { label: title });
    for (const item of offers(group)) {
      optgroup.append(el("option", { value: item.name, text: `${item.name} [${item.task}]` }));
    }
    select.append(optgroup);
  }
  select.value = offer("otsu") ? "otsu" : select.options[0].value;
  select.addEventListener("change", showMethod);
  showMethod();

  const list = $("compare-list");
  for (const item of [...offers("method"), ...offers("zoo")]) {
    const id = `compare-${item.name}`;
    list.append(el("label", { htmlFor: id }, [
      el("input", { type: "checkbox", id, value: item.name }), ` ${item.name}`]));
  }

  const prompted = $("prompted-select");
  for (const item of offers("prompted")) {
    prompted.append(el("option", { value: item.name, text: `${item.name} (${item.kinds.join(", ")})` }));
  }
  prompted.value = offer("geodesic") ? "geodesic" : prompted.options[0].value;
  prompted.addEventListener("change", showPrompted);
  showPrompted();

  const formats = $("format-select");
  for (const fmt of state.catalogue.formats) formats.append(el("option", { value: fmt.name, text: fmt.name, title: fmt.help }));
  formats.value = "png";
  formats.addEventListener("change", updateDownload);
}

function showMethod() {
  const item = offer($("method-select").value);
  let summary = item.summary;
  if (item.card) summary += ` Classes: ${item.card.classes.join(", ")}. ${item.card.figures.join("; ")}`;
  $("method-summary").textContent = summary;
  buildForm($("method-form"), item);
}

function showPrompted() {
  const item = offer($("prompted-select").value);
  $("prompted-summary").textContent = `${item.summary} Takes: ${item.kinds.join(", ")}.`;
  buildForm($("prompted-form"), item);
}

// ---------------------------------------------------------------- images

async function loadImages(select) {
  const { images } = await api("/api/images");
  const list = $("image-select");
  list.replaceChildren(...images.map((i) => el("option", {
    value: i.name, text: i.truth ? `${i.name} (with truth)` : i.name })));
  if (select) list.value = select;
  if (list.value) await openImage(list.value);
}

async function openImage(name) {
  state.image = name;
  state.runJob = null;
  resetPrompts();
  clearResult();
  $("comparison").hidden = true;
  // The picture may be subsampled for display; the header gives the image's own size, in which
  // prompts are sent.
  const response = await fetch(imageUrl(name));
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    showError(`Cannot open ${name}: ${body.error || response.statusText}`);
    return;
  }
  const [height, width] = (response.headers.get("x-image-size") || "0,0").split(",").map(Number);
  const blob = await response.blob();
  const img = $("image");
  await new Promise((resolve) => {
    img.onload = resolve;
    img.onerror = resolve;
    if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
    img.dataset.url = URL.createObjectURL(blob);
    img.src = img.dataset.url;
  });
  state.size = [height || img.naturalHeight, width || img.naturalWidth];
  drawMarks();
}

function imageUrl(name) {
  return `/api/image?name=${encodeURIComponent(name)}`;
}

async function upload(event) {
  const file = event.target.files[0];
  if (!file) return;
  showError("");
  const data = new FormData();
  data.append("file", file);
  try {
    const made = await api("/api/upload", { method: "POST", body: data });
    const list = $("image-select");
    list.append(el("option", { value: made.name, text: `${file.name} (uploaded)` }));
    list.value = made.name;
    await openImage(made.name);
  } catch (err) {
    showError(`Upload refused: ${err.message}`);
  } finally {
    event.target.value = "";
  }
}

// ---------------------------------------------------------------- jobs

async function follow(jobId, { quiet = false } = {}) {
  const bar = $("progress-bar");
  const text = $("progress-text");
  if (!quiet) $("progress").hidden = false;
  try {
    for (;;) {
      const job = await api(`/api/jobs/${jobId}`);
      if (job.state === "done" || job.state === "failed") return job;
      if (job.total > 0) { bar.max = job.total; bar.value = job.done; } else { bar.removeAttribute("value"); }
      const step = job.total > 0 ? `${job.step}: ${job.done} of ${job.total} tiles` : job.state;
      text.textContent = `${job.method}: ${step}, ${job.seconds.toFixed(1)} s`;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    if (!quiet) $("progress").hidden = true;
  }
}

function clearResult() {
  $("overlay").hidden = true;
  $("overlay").removeAttribute("src");
  $("result").hidden = true;
}

function showResult(job) {
  const overlay = $("overlay");
  overlay.src = job.overlay;
  overlay.hidden = false;
  overlay.style.opacity = $("opacity").value / 100;
  overlay.dataset.job = job.id;
  $("result").hidden = false;
  $("result").dataset.job = job.id;
  $("result-summary").textContent =
    `${job.method}: ${job.kind}, ${job.segments} segments, ${job.seconds.toFixed(2)} s`;
  $("legend").replaceChildren(...job.legend.map((entry) => {
    const item = el("li", {}, []);
    if (entry.colour) {
      const swatch = el("span", { className: "swatch" });
      swatch.style.background = entry.colour;
      item.append(swatch);
    }
    item.append(entry.name);
    return item;
  }));
  const rows = Object.entries(job.scores || {}).slice(0, 8).map(([k, v]) =>
    el("tr", {}, [el("td", { text: k }), el("td", { text: Number(v).toFixed(4) })]));
  $("scores").replaceChildren(...rows);
  updateDownload();
}

function updateDownload() {
  const jobId = $("result").dataset.job;
  if (jobId) $("download").href = `/api/jobs/${jobId}/download/${$("format-select").value}`;
}

async function run() {
  showError("");
  if (!state.image) { showError("Open or upload an image first."); return; }
  const button = $("run");
  button.disabled = true;
  try {
    const { job } = await api("/api/run", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ image: state.image, method: $("method-select").value,
                             options: formOptions($("method-form")) }),
    });
    const done = await follow(job);
    if (done.state === "failed") throw new Error(done.error);
    state.runJob = done.id;
    $("comparison").hidden = true;
    showResult(done);
  } catch (err) {
    showError(`${$("method-select").value}: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

async function compare() {
  showError("");
  const names = [...$("compare-list").querySelectorAll("input:checked")].map((i) => i.value);
  if (names.length < 2) { showError("Tick at least two methods to compare."); return; }
  const grid = $("comparison");
  grid.replaceChildren();
  grid.hidden = false;
  $("compare").disabled = true;
  const shown = $("image").src;  // the picture already loaded
  try {
    const started = await Promise.all(names.map(async (method) => {
      try {
        const { job } = await api("/api/run", {
          method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ image: state.image, method, options: {} }),
        });
        return { method, job };
      } catch (err) {
        return { method, error: err.message };
      }
    }));
    for (const { method, job, error } of started) {
      const panel = el("article", { className: "panel" }, [el("h3", { text: method })]);
      grid.append(panel);
      const done = error ? { state: "failed", error } : await follow(job);
      if (done.state === "failed") {
        panel.classList.add("failed");
        panel.append(el("p", { text: done.error }));
        continue;
      }
      const top = el("img", { src: done.overlay, alt: `${method} overlay` });
      top.style.opacity = $("opacity").value / 100;
      panel.append(el("div", { className: "pair" }, [el("img", { src: shown, alt: "image" }), top]));
      panel.append(el("p", { className: "summary",
        text: `${done.kind}, ${done.segments} segments, ${done.seconds.toFixed(2)} s` }));
      const scores = Object.entries(done.scores || {}).slice(0, 5);
      if (scores.length) {
        panel.append(el("table", { className: "scores" }, scores.map(([k, v]) =>
          el("tr", {}, [el("td", { text: k }), el("td", { text: Number(v).toFixed(4) })]))));
      }
      if (done.errors) panel.append(el("img", { className: "errmap", src: done.errors, alt: `${method} errors` }));
    }
  } finally {
    $("compare").disabled = false;
  }
}

// ---------------------------------------------------------------- pointing

function resetPrompts() {
  state.prompt = { actions: [], object: 1, objects: 1, job: null, pending: false, again: false };
  $("object-select").replaceChildren(el("option", { value: "1", text: "1" }));
  drawMarks();
}

function tool() {
  return document.querySelector("input[name=tool]:checked").value;
}

function toImage(event) {
  const box = $("marks").getBoundingClientRect();
  const [height, width] = state.size;
  const col = Math.floor((event.clientX - box.left) / box.width * width);
  const row = Math.floor((event.clientY - box.top) / box.height * height);
  return [Math.min(Math.max(row, 0), height - 1), Math.min(Math.max(col, 0), width - 1)];
}

function colourOf(label) {
  return label === 0 || label === -1 ? "#ff3b30" : "#34c759";
}

function drawMarks() {
  // The canvas holds as many pixels as it shows (sharp marks on small images); marks are drawn
  // in image coordinates, their sizes in screen pixels.
  const canvas = $("marks");
  if (!state.size) return;
  const box = canvas.getBoundingClientRect();
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(box.width * ratio));
  const height = Math.max(1, Math.round(box.height * ratio));
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.setTransform(width / state.size[1], 0, 0, height / state.size[0], 0, 0);
  const scale = box.width > 0 ? state.size[1] / box.width : 1;  // image pixels per screen pixel
  const actions = [...state.prompt.actions];
  if (state.drag) actions.push(state.drag);
  for (const a of actions) {
    ctx.strokeStyle = ctx.fillStyle = colourOf(a.label);
    if (a.kind === "point") {
      ctx.beginPath();
      ctx.arc(a.at[1] + 0.5, a.at[0] + 0.5, 6 * scale, 0, 2 * Math.PI);
      ctx.fill();
      ctx.lineWidth = 2 * scale;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    } else if (a.kind === "box") {
      ctx.lineWidth = 2 * scale;
      ctx.strokeRect(a.from[1], a.from[0], a.to[1] - a.from[1], a.to[0] - a.from[0]);
    } else if (a.kind === "stroke") {
      ctx.globalAlpha = 0.6;
      ctx.lineWidth = 2 * a.radius + 1;
      ctx.lineCap = ctx.lineJoin = "round";
      ctx.beginPath();
      a.points.forEach(([r, c], i) => (i ? ctx.lineTo(c, r) : ctx.moveTo(c, r)));
      if (a.points.length === 1) ctx.lineTo(a.points[0][1] + 0.1, a.points[0][0]);
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
  }
  if (state.cursor) {
    const [r, c] = state.cursor;
    ctx.strokeStyle = "#f59e0b";
    ctx.lineWidth = 2 * scale;
    ctx.strokeRect(c - 6 * scale, r - 6 * scale, 12 * scale, 12 * scale);
  }
}

function promptBody() {
  const points = [], boxes = [], strokes = [];
  for (const a of state.prompt.actions) {
    if (a.kind === "point") points.push([a.at[0], a.at[1], a.label]);
    if (a.kind === "box") {
      boxes.push([Math.min(a.from[0], a.to[0]), Math.min(a.from[1], a.to[1]),
                  Math.max(a.from[0], a.to[0]) + 1, Math.max(a.from[1], a.to[1]) + 1, a.label]);
    }
    if (a.kind === "stroke") strokes.push({ label: a.label, radius: a.radius, points: a.points });
  }
  const body = { image: state.image, method: $("prompted-select").value,
                 options: formOptions($("prompted-form")), points, boxes, strokes };
  if ($("from-result").checked && state.runJob) body.mask = state.runJob;
  return body;
}

async function runPrompts() {
  // One job at a time: actions made while one runs are sent together when it ends.
  if (state.prompt.pending) { state.prompt.again = true; return; }
  showError("");
  drawMarks();
  if (!state.prompt.actions.length && !($("from-result").checked && state.runJob)) {
    clearResult();
    return;
  }
  state.prompt.pending = true;
  try {
    const { job } = await api("/api/prompt", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(promptBody()),
    });
    const done = await follow(job);
    if (done.state === "failed") throw new Error(done.error);
    state.prompt.job = done.id;
    showResult(done);
  } catch (err) {
    showError(`${$("prompted-select").value}: ${err.message}`);
  } finally {
    state.prompt.pending = false;
    if (state.prompt.again) { state.prompt.again = false; runPrompts(); }
  }
}

function addAction(action) {
  state.prompt.actions.push(action);
  runPrompts();
}

function labelFor(kind) {
  return kind === "negative" ? 0 : kind === "eraser" ? -1 : state.prompt.object;
}

function pointerDown(event) {
  if (!state.image || event.button > 0 || $("panel-prompt").hidden) return;
  const at = toImage(event);
  const kind = tool();
  $("marks").setPointerCapture(event.pointerId);
  if (kind === "box") state.drag = { kind: "box", from: at, to: at, label: state.prompt.object };
  else if (kind === "brush" || kind === "eraser") {
    state.drag = { kind: "stroke", points: [at], radius: Number($("radius").value), label: labelFor(kind) };
  } else addAction({ kind: "point", at, label: labelFor(kind) });
  drawMarks();
}

function pointerMove(event) {
  if (!state.drag) return;
  const at = toImage(event);
  if (state.drag.kind === "box") state.drag.to = at;
  else {
    const last = state.drag.points[state.drag.points.length - 1];
    if (Math.hypot(at[0] - last[0], at[1] - last[1]) >= 2) state.drag.points.push(at);
  }
  drawMarks();
}

function pointerUp() {
  const drag = state.drag;
  state.drag = null;
  if (!drag) return;
  if (drag.kind === "box" && (Math.abs(drag.to[0] - drag.from[0]) < 3 || Math.abs(drag.to[1] - drag.from[1]) < 3)) {
    drawMarks();
    return;
  }
  addAction(drag);
}

function keyOnCanvas(event) {
  if (!state.size || $("panel-prompt").hidden) return;
  const step = event.shiftKey ? 32 : 8;
  const moves = { ArrowUp: [-step, 0], ArrowDown: [step, 0], ArrowLeft: [0, -step], ArrowRight: [0, step] };
  if (!moves[event.key] && event.key !== "Enter" && event.key !== " ") return;
  if (!state.cursor) state.cursor = [Math.floor(state.size[0] / 2), Math.floor(state.size[1] / 2)];
  if (moves[event.key]) {
    const [dr, dc] = moves[event.key];
    state.cursor = [Math.min(Math.max(state.cursor[0] + dr, 0), state.size[0] - 1),
                    Math.min(Math.max(state.cursor[1] + dc, 0), state.size[1] - 1)];
    event.preventDefault();
    drawMarks();
  } else if (event.key === "Enter" || event.key === " ") {
    const kind = tool();
    event.preventDefault();
    if (kind === "positive" || kind === "negative") addAction({ kind: "point", at: state.cursor, label: labelFor(kind) });
  }
}

function undo() {
  if (state.prompt.actions.pop()) runPrompts();
}

function shortcuts(event) {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)
    && document.activeElement.type !== "radio" && document.activeElement.type !== "checkbox";
  if ((event.ctrlKey || event.metaKey) && event.key === "z" && !typing) {
    event.preventDefault();
    undo();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const tools = { p: "positive", n: "negative", b: "box", s: "brush", e: "eraser" };
  if (tools[event.key] && !$("panel-prompt").hidden) {
    document.querySelector(`input[name=tool][value=${tools[event.key]}]`).checked = true;
  }
}

// ---------------------------------------------------------------- tabs and start

function selectTab(tab) {
  for (const button of document.querySelectorAll("[role=tab]")) {
    const chosen = button === tab;
    button.setAttribute("aria-selected", String(chosen));
    $(button.getAttribute("aria-controls")).hidden = !chosen;
  }
}

async function start() {
  try {
    state.catalogue = await api("/api/catalogue");
    fillMethods();
    await loadImages();
  } catch (err) {
    showError(`The app could not start: ${err.message}`);
    return;
  }
  for (const tab of document.querySelectorAll("[role=tab]")) tab.addEventListener("click", () => selectTab(tab));
  $("image-select").addEventListener("change", (e) => openImage(e.target.value));
  $("upload").addEventListener("change", upload);
  $("run").addEventListener("click", run);
  $("compare").addEventListener("click", compare);
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", () => { resetPrompts(); clearResult(); });
  $("new-object").addEventListener("click", () => {
    state.prompt.objects += 1;
    state.prompt.object = state.prompt.objects;
    const n = String(state.prompt.objects);
    $("object-select").append(el("option", { value: n, text: n }));
    $("object-select").value = n;
  });
  $("object-select").addEventListener("change", (e) => { state.prompt.object = Number(e.target.value); });
  $("from-result").addEventListener("change", runPrompts);
  $("opacity").addEventListener("input", (e) => {
    for (const img of document.querySelectorAll("#overlay, .pair img + img")) img.style.opacity = e.target.value / 100;
  });
  const canvas = $("marks");
  canvas.addEventListener("pointerdown", pointerDown);
  canvas.addEventListener("pointermove", pointerMove);
  canvas.addEventListener("pointerup", pointerUp);
  canvas.addEventListener("keydown", keyOnCanvas);
  canvas.addEventListener("blur", () => { state.cursor = null; drawMarks(); });
  document.addEventListener("keydown", shortcuts);
  window.addEventListener("resize", drawMarks);
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", start);
