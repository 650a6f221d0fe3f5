// ravemap control page. The daemon owns the state: this page sends gestures as OSC-style
// messages over its WebSocket ({"osc": address, "args": [...]}) and draws what it is pushed.
// Plain JavaScript, nothing fetched but this page's own files and its WebSocket.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const SEND_INTERVAL_MS = 16;    // continuous values (pad, faders): at most one per frame, the last always sent
  const LOCAL_HOLD_MS = 600;      // a fader just moved here is not pulled back by the echo of older state
  const RETRY_MS = 1000;
  const SCENES = 8;               // scene buttons on the page (any of 1..128 can be recalled over OSC and MIDI)
  const STORE_HOLD_MS = 600;      // a press this long on a scene button stores the scene

  let ws = null;
  let config = { inputs: 2, dims: [0, 1, 2, 3], range: [-3, 3], pads: 1, params: [] };
  let state = null;
  let points = [];
  let field = null;
  let nextId = 1;

  // -- sending ---------------------------------------------------------------------------
  const pending = new Map();      // address -> args: continuous values, the newest wins
  let flushTimer = null;
  let lastFlush = 0;

  function sendNow(message) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }
  function flush() {
    if (flushTimer !== null) { clearTimeout(flushTimer); flushTimer = null; }
    lastFlush = performance.now();
    for (const [address, args] of pending) sendNow({ osc: address, args });
    pending.clear();
  }
  function setContinuous(address, args) {
    pending.set(address, args);
    if (flushTimer !== null) return;
    const wait = Math.max(0, SEND_INTERVAL_MS - (performance.now() - lastFlush));
    flushTimer = setTimeout(flush, wait);
  }
  const afterReply = new Map();   // message id -> what to do once the daemon has carried it out
  function command(address, args = [], then = null) {
    flush(); // a command comes after the gesture that led to it
    const id = nextId++;
    if (then) afterReply.set(id, then);
    sendNow({ osc: address, args, id });
  }

  // -- messages from the daemon ---------------------------------------------------------
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    setConnection("connecting");
    ws = new WebSocket(scheme + location.host + "/ws");
    ws.onopen = () => setConnection("open");
    ws.onclose = () => { setConnection("closed"); setTimeout(connect, RETRY_MS); };
    ws.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (err) { return; }
      handle(message);
    };
  }
  function setConnection(what) {
    const el = $("connection");
    el.dataset.state = what;
    el.textContent = what === "open" ? "connected" : what;
  }

  function handle(message) {
    switch (message.type) {
      case "config":
        config = message.config;
        buildFaders(); buildParams(); buildFieldMaps();
        if (state) showState();  // the state may have come first: show it on the new controls
        drawAll();
        break;
      case "state": state = message.state; showState(); break;
      case "examples": points = message.points; drawAll(); break;
      case "field": field = message.field; buildFieldMaps(); drawAll(); break;
      case "lists": showLists(message.lists); break;
      case "reply": {
        const then = afterReply.get(message.id);
        afterReply.delete(message.id);
        if (then) then();
        break;
      }
      case "error": afterReply.delete(message.id); say(message.text, true); break;
      case "info": say(message.text, false); break;
      default: break;
    }
  }

  function say(text, isError) {
    const el = $("message");
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  // -- faders ----------------------------------------------------------------------------
  const faders = [];  // {input, output, touchedAt, held}
  function buildFaders() {
    const box = $("faders");
    box.textContent = "";
    faders.length = 0;
    const [low, high] = config.range;
    config.dims.forEach((dim, i) => {
      const row = document.createElement("div");
      row.className = "fader";
      const label = document.createElement("span");
      label.textContent = String(dim);
      label.title = `latent dim ${dim}`;
      const input = document.createElement("input");
      input.type = "range";
      input.min = String(low);
      input.max = String(high);
      input.step = "0.05";
      input.value = "0";
      input.setAttribute("aria-label", `latent ${i}`);
      const output = document.createElement("output");
      output.textContent = "0.00";
      const fader = { input, output, touchedAt: -Infinity, held: false, settle: null };
      input.addEventListener("input", () => {
        fader.touchedAt = performance.now();
        clearTimeout(fader.settle);  // then show the daemon's value again, whoever set it meanwhile
        fader.settle = setTimeout(() => { if (state) showFaders(); }, LOCAL_HOLD_MS + 50);
        output.textContent = Number(input.value).toFixed(2);
        setContinuous(`/ravemap/latent/${i}`, [Number(input.value)]);
      });
      input.addEventListener("change", () => { fader.touchedAt = performance.now(); flush(); });
      input.addEventListener("pointerdown", () => { fader.held = true; });
      const release = () => { fader.held = false; fader.touchedAt = performance.now(); flush(); };
      input.addEventListener("pointerup", release);
      input.addEventListener("pointercancel", release);
      row.append(label, input, output);
      box.append(row);
      faders.push(fader);
    });
  }

  function showFaders() {
    const values = state.running ? state.offsets : state.targets;
    $("faders").classList.toggle("following", !!state.running);
    const now = performance.now();
    faders.forEach((fader, i) => {
      if (i >= values.length) return;
      if (fader.held || now - fader.touchedAt < LOCAL_HOLD_MS) return;
      const value = values[i];
      if (Number(fader.input.value) !== value) fader.input.value = String(value);
      fader.output.textContent = value.toFixed(2);
    });
  }

  // -- parameter controls: one per entry of the daemon's OSC vocabulary that names a page control
  // (config.params: address, kind "fader" or "toggle", name, range, unit, description, state key, panel
  // "params" or "performer", per_dim). A per-dim entry (/ravemap/scale/N) is one fader per element of its
  // state list, named "scale 0", "scale 1"..., rebuilt when the list's length changes (a model swap).
  // A parameter added to the vocabulary appears here with no change to this page.
  const params = [];  // {param, index, el, output, touchedAt, held}
  const perDimCounts = new Map();  // per-dim address -> how many faders it has now
  function panelOf(param) { return param.panel === "performer" ? $("performer") : $("params"); }
  function buildParams() {
    $("params").textContent = "";
    $("performer").textContent = "";
    for (const old of document.querySelectorAll("[data-param]")) old.remove();
    params.length = 0;
    perDimCounts.clear();
    for (const param of config.params || []) {
      if (param.per_dim) {
        const count = state && Array.isArray(state[param.state]) ? state[param.state].length : 0;
        perDimCounts.set(param.address, count);
        for (let i = 0; i < count; i++) addFader(param, i);
      } else if (param.kind === "toggle") {
        addToggle(param);
      } else {
        addFader(param, null);
      }
    }
  }
  function addToggle(param) {
    const el = document.createElement("button");
    el.type = "button";
    el.textContent = param.name;
    el.title = param.description;
    el.dataset.param = param.address;
    el.setAttribute("aria-pressed", "false");
    el.addEventListener("click", () => command(param.address, [el.getAttribute("aria-pressed") === "true" ? 0 : 1]));
    $("buttons").append(el);
    params.push({ param, index: null, el, output: null, touchedAt: -Infinity, held: false, settle: null });
  }
  function addFader(param, index) {
    const entry = { param, index, el: null, output: null, touchedAt: -Infinity, held: false, settle: null };
    const name = index === null ? param.name : `${param.name} ${index}`;
    const address = index === null ? param.address : param.address.replace("/N", `/${index}`);
    const unit = param.unit ? ` ${param.unit}` : "";
    const [low, high] = param.range;
    const row = document.createElement("div");
    row.className = "fader";
    row.dataset.param = address;
    const label = document.createElement("span");
    label.textContent = name;
    label.title = param.description;
    const input = document.createElement("input");
    input.type = "range";
    input.min = String(low);
    input.max = String(high);
    input.step = "any";  // the daemon's value is shown as it is, not snapped to a step
    input.value = String(Math.min(high, Math.max(low, 0)));
    input.setAttribute("aria-label", name);
    const output = document.createElement("output");
    output.textContent = Number(input.value).toFixed(2) + unit;
    input.addEventListener("input", () => {
      entry.touchedAt = performance.now();
      clearTimeout(entry.settle);  // then show the daemon's value again, whoever set it meanwhile
      entry.settle = setTimeout(() => { if (state) showParams(); }, LOCAL_HOLD_MS + 50);
      output.textContent = Number(input.value).toFixed(2) + unit;
      setContinuous(address, [Number(input.value)]);
    });
    input.addEventListener("change", () => { entry.touchedAt = performance.now(); flush(); });
    input.addEventListener("pointerdown", () => { entry.held = true; });
    const release = () => { entry.held = false; entry.touchedAt = performance.now(); flush(); };
    input.addEventListener("pointerup", release);
    input.addEventListener("pointercancel", release);
    row.append(label, input, output);
    panelOf(param).append(row);
    entry.el = input;
    entry.output = output;
    params.push(entry);
  }

  function showParams() {
    for (const param of config.params || []) {
      const list = state[param.state];
      if (param.per_dim && Array.isArray(list) && perDimCounts.get(param.address) !== list.length) {
        buildParams();  // the model's latent size changed: one fader per dim again
        break;
      }
    }
    const now = performance.now();
    for (const entry of params) {
      let value = entry.param.state ? state[entry.param.state] : undefined;
      if (entry.index !== null) value = Array.isArray(value) ? value[entry.index] : undefined;
      if (value === undefined || value === null) continue;
      if (entry.param.kind === "toggle") {
        entry.el.setAttribute("aria-pressed", value ? "true" : "false");
      } else if (!entry.held && now - entry.touchedAt >= LOCAL_HOLD_MS && typeof value === "number") {
        if (Number(entry.el.value) !== value) entry.el.value = String(value);
        entry.output.textContent = value.toFixed(2) + (entry.param.unit ? ` ${entry.param.unit}` : "");
      }
    }
  }

  // -- state ------------------------------------------------------------------------------
  function pressed(id, on) { $(id).setAttribute("aria-pressed", on ? "true" : "false"); }

  function showState() {
    $("examples").textContent = String(state.examples);
    $("mapping-name").textContent = state.mapping;
    pressed("record", state.recording);
    pressed("run", state.running);
    $("run").disabled = !state.trained && !state.running;
    const [fraction, progressLoss] = state.progress;
    const progress = $("progress");
    progress.value = state.training ? fraction : (state.trained ? 1 : 0);
    if (state.training) {
      $("loss").textContent = progressLoss === null ? "training" : `loss ${progressLoss.toFixed(5)}`;
    } else if (state.loss !== null) {
      $("loss").textContent = `loss ${state.loss.toFixed(5)}`;
    } else {
      $("loss").textContent = state.trained ? "trained" : "not trained";
    }
    $("train").disabled = !!state.training;
    if (typeof state.latency_ms === "number") {
      $("latency-figure").hidden = false;
      $("latency").textContent = state.latency_ms.toFixed(0);
    }
    selectValue($("model"), state.model);
    selectValue($("loop"), state.loop);
    selectValue($("mapping"), state.mapping);
    showFaders();
    showParams();
    showGestures();
    showScenes();
    if (!localCursor[0]) {
      const [x, y] = currentInput();
      $("pad-readout").textContent = `x ${x.toFixed(2)} y ${y.toFixed(2)}`;
    }
    drawAll();
  }

  function selectValue(select, value) {
    if (value === null || value === undefined || document.activeElement === select) return;
    if (![...select.options].some((o) => o.value === value)) {
      const option = document.createElement("option");
      option.value = option.textContent = value;
      select.append(option);
    }
    select.value = value;
  }

  function showLists(lists) {
    fill($("model"), lists.models, state && state.model);
    fill($("loop"), lists.loops, state && state.loop);
    fill($("mapping"), lists.mappings, state && state.mapping);
  }
  function fill(select, names, current) {
    const chosen = document.activeElement === select ? select.value : current;  // keep what is being chosen
    select.textContent = "";
    for (const name of names) {
      const option = document.createElement("option");
      option.value = option.textContent = name;
      select.append(option);
    }
    if (chosen && ![...select.options].some((o) => o.value === chosen)) {
      const option = document.createElement("option");
      option.value = option.textContent = chosen;
      select.append(option);
    }
    if (chosen) select.value = chosen;
  }

  // -- the XY pad ---------------------------------------------------------------------------
  const pad = $("pad");
  const padCanvas = $("pad-canvas");
  const fingers = new Map();   // pointerId -> slot (0: /ravemap/xy, k: /ravemap/pad/k)
  const localCursor = [];      // slot -> [x, y] while a finger is down

  function padPoint(event) {
    const rect = pad.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
    const y = Math.min(1, Math.max(0, 1 - (event.clientY - rect.top) / rect.height));
    return [Math.round(x * 10000) / 10000, Math.round(y * 10000) / 10000];
  }
  function sendPad(slot, xy) {
    localCursor[slot] = xy;
    setContinuous(slot === 0 ? "/ravemap/xy" : `/ravemap/pad/${slot}`, xy);
    $("pad-readout").textContent = `x ${xy[0].toFixed(2)} y ${xy[1].toFixed(2)}`;
    drawPad();
  }
  function freeSlot() {
    const used = new Set(fingers.values());
    for (let slot = 0; slot < config.pads; slot++) if (!used.has(slot)) return slot;
    return -1;
  }
  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    const slot = freeSlot();
    if (slot < 0) return;   // more fingers than the input vector has pairs of dims: ignored
    pad.setPointerCapture(event.pointerId);
    fingers.set(event.pointerId, slot);
    pad.focus({ preventScroll: true });
    if (slot === 0 && drawing) startDrawing();
    sendPad(slot, padPoint(event));
  });
  pad.addEventListener("pointermove", (event) => {
    const slot = fingers.get(event.pointerId);
    if (slot === undefined) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    sendPad(slot, padPoint(events.length ? events[events.length - 1] : event));
  });
  const lift = (event) => {
    const slot = fingers.get(event.pointerId);
    if (slot === undefined) return;
    fingers.delete(event.pointerId);
    delete localCursor[slot];
    flush();
    if (slot === 0 && drawn !== null) endDrawing();
  };
  pad.addEventListener("pointerup", lift);
  pad.addEventListener("pointercancel", lift);
  pad.addEventListener("keydown", (event) => {
    const step = event.shiftKey ? 0.1 : 0.02;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    const [x, y] = currentInput();
    const xy = [Math.min(1, Math.max(0, x + move[0])), Math.min(1, Math.max(0, y + move[1]))];
    sendPad(0, xy.map((v) => Math.round(v * 10000) / 10000));
    delete localCursor[0];
    flush();
  });

  function currentInput() {
    if (localCursor[0]) return localCursor[0];
    if (state && state.inputs.length >= 2) return [state.inputs[0], state.inputs[1]];
    if (state && state.inputs.length === 1) return [state.inputs[0], 0.5];
    return [0.5, 0.5];
  }

  // -- gestures: draw mode records what the first finger draws on the pad as a gesture (under the
  // next free gesture-N name) and plays it when the finger lifts (in a loop while "loop" is on, as it
  // is at first); the list plays the
  // mapping's gestures (looping while "loop" is on); "stop" stops the one playing. The daemon owns
  // them: the list and the one playing are what the state says.
  let drawing = false;        // draw mode on
  let drawn = null;           // the name of the gesture the finger is drawing now
  function nextGestureName() {
    let top = 0;
    for (const name of (state && state.gestures) || []) {
      const found = /^gesture-(\d{1,9})$/.exec(name);
      if (found) top = Math.max(top, Number(found[1]));
    }
    return `gesture-${top + 1}`;
  }
  function startDrawing() {
    drawn = nextGestureName();
    command("/ravemap/gesture/record", [1, drawn]);
  }
  function endDrawing() {
    const name = drawn;
    drawn = null;
    command("/ravemap/gesture/record", [0],
      () => command("/ravemap/gesture/play", [name, 1, isOn("gesture-loop") ? 1 : 0]));
  }
  function showGestures() {
    const names = state.gestures || [];
    const playing = state.gesture ? state.gesture.name : null;
    const list = $("gesture-list");
    const shown = [...list.children].map((el) => el.dataset.name);
    if (shown.join("\n") !== names.join("\n")) {
      list.textContent = "";
      for (const name of names) {
        const el = document.createElement("button");
        el.type = "button";
        el.textContent = name;
        el.dataset.name = name;
        el.setAttribute("aria-label", `play ${name}`);
        el.addEventListener("click", () => command("/ravemap/gesture/play", [name, 1, isOn("gesture-loop") ? 1 : 0]));
        list.append(el);
      }
    }
    for (const el of list.children) el.setAttribute("aria-pressed", el.dataset.name === playing ? "true" : "false");
    $("gesture-stop").disabled = playing === null;
    $("draw").classList.toggle("recording", !!state.gesture_recording);
  }
  $("draw").addEventListener("click", () => { drawing = !drawing; pressed("draw", drawing); });
  $("gesture-loop").addEventListener("click", () => pressed("gesture-loop", !isOn("gesture-loop")));
  $("gesture-stop").addEventListener("click", () => command("/ravemap/gesture/stop"));

  // -- drawing ------------------------------------------------------------------------------
  function fitCanvas(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
    return [width, height, ratio];
  }

  // Diverging blue - near black - red, like the coolwarm map `ravemap plot` uses, for a dark page.
  function diverging(t) {
    const u = Math.min(1, Math.max(-1, t));
    if (u < 0) return [Math.round(40 + 20 * -u), Math.round(60 + 60 * -u), Math.round(80 + 175 * -u)];
    return [Math.round(40 + 215 * u), Math.round(60 + 20 * u), Math.round(80 - 40 * u)];
  }
  function normalised(value) {
    const [low, high] = field ? field.range : config.range;
    const mid = (low + high) / 2;
    return (value - mid) / ((high - low) / 2);
  }

  // The field's grid as an image: rows from y = 0 at the bottom.
  function fieldImage(ctx, colour) {
    const grid = field.grid;
    const image = ctx.createImageData(grid, grid);
    for (let row = 0; row < grid; row++) {
      for (let col = 0; col < grid; col++) {
        const [r, g, b] = colour(row * grid + col);
        const at = ((grid - 1 - row) * grid + col) * 4;
        image.data[at] = r; image.data[at + 1] = g; image.data[at + 2] = b; image.data[at + 3] = 255;
      }
    }
    const tile = document.createElement("canvas");
    tile.width = tile.height = grid;
    tile.getContext("2d").putImageData(image, 0, 0);
    return tile;
  }

  function drawMarks(ctx, width, height, ratio, small) {
    const dot = (small ? 2.2 : 5) * ratio;
    ctx.lineWidth = (small ? 1 : 1.5) * ratio;
    for (const [x, y] of points) {
      ctx.beginPath();
      ctx.arc(x * width, (1 - y) * height, dot, 0, 2 * Math.PI);
      ctx.fillStyle = "#ffffff";
      ctx.fill();
      ctx.strokeStyle = "#10151c";
      ctx.stroke();
    }
    const cursors = [currentInput()];
    for (let slot = 1; slot < localCursor.length; slot++) if (localCursor[slot]) cursors.push(localCursor[slot]);
    cursors.forEach(([x, y], i) => {
      const cx = x * width;
      const cy = (1 - y) * height;
      ctx.beginPath();
      ctx.arc(cx, cy, (small ? 4 : 14) * ratio, 0, 2 * Math.PI);
      ctx.strokeStyle = i === 0 ? "#f6ae2d" : "#8ab4f8";
      ctx.lineWidth = (small ? 1.5 : 3) * ratio;
      ctx.stroke();
      if (!small) {
        ctx.beginPath();
        ctx.moveTo(cx, 0); ctx.lineTo(cx, height); ctx.moveTo(0, cy); ctx.lineTo(width, cy);
        ctx.strokeStyle = "rgba(246, 174, 45, 0.25)";
        ctx.lineWidth = ratio;
        ctx.stroke();
      }
    });
  }

  function drawPad() {
    const ctx = padCanvas.getContext("2d");
    const [width, height, ratio] = fitCanvas(padCanvas);
    ctx.clearRect(0, 0, width, height);
    if (field) {
      // The combined colour view: latent 0 -> red, 1 -> green, 2 -> blue (0.5 grey is the middle).
      const channels = field.values.slice(0, 3);
      const tile = fieldImage(ctx, (i) => [0, 1, 2].map((c) => channels[c]
        ? Math.round(255 * Math.min(1, Math.max(0, 0.5 + 0.5 * normalised(channels[c][i])))) : 60));
      ctx.globalAlpha = 0.55;
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(tile, 0, 0, width, height);
      ctx.globalAlpha = 1;
    }
    ctx.strokeStyle = "rgba(255, 255, 255, 0.08)";
    ctx.lineWidth = ratio;
    ctx.beginPath();
    for (let k = 1; k < 4; k++) {
      ctx.moveTo((k * width) / 4, 0); ctx.lineTo((k * width) / 4, height);
      ctx.moveTo(0, (k * height) / 4); ctx.lineTo(width, (k * height) / 4);
    }
    ctx.stroke();
    drawMarks(ctx, width, height, ratio, false);
  }

  const fieldCanvases = [];
  function buildFieldMaps() {
    const box = $("field");
    const wanted = config.dims.length;
    if (fieldCanvases.length === wanted) return;
    box.textContent = "";
    fieldCanvases.length = 0;
    config.dims.forEach((dim, i) => {
      const cell = document.createElement("div");
      cell.className = "field-map";
      const canvas = document.createElement("canvas");
      const label = document.createElement("span");
      label.textContent = `latent ${i}`;
      label.title = `latent dim ${dim}`;
      cell.append(canvas, label);
      box.append(cell);
      fieldCanvases.push(canvas);
    });
  }

  function drawField() {
    fieldCanvases.forEach((canvas, k) => {
      const ctx = canvas.getContext("2d");
      const [width, height, ratio] = fitCanvas(canvas);
      ctx.clearRect(0, 0, width, height);
      if (field && field.values[k]) {
        const plane = field.values[k];
        const tile = fieldImage(ctx, (i) => diverging(normalised(plane[i])));
        ctx.imageSmoothingEnabled = true;
        ctx.drawImage(tile, 0, 0, width, height);
      } else {
        ctx.fillStyle = "#6b7280";
        ctx.font = `${11 * ratio}px system-ui, sans-serif`;
        ctx.textAlign = "center";
        ctx.fillText("train to see", width / 2, height * 0.8);
      }
      drawMarks(ctx, width, height, ratio, true);
    });
  }

  let drawQueued = false;
  function drawAll() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => { drawQueued = false; drawPad(); drawField(); });
  }
  new ResizeObserver(drawAll).observe(document.body);

  // -- buttons and pickers -----------------------------------------------------------------
  const isOn = (id) => $(id).getAttribute("aria-pressed") === "true";
  $("record").addEventListener("click", () => command("/ravemap/record", [isOn("record") ? 0 : 1]));
  $("record-once").addEventListener("click", () => command("/ravemap/record/once"));
  $("undo").addEventListener("click", () => command("/ravemap/examples/undo"));
  $("clear").addEventListener("click", () => command("/ravemap/examples/clear"));
  $("train").addEventListener("click", () => { say("training", false); command("/ravemap/train"); });
  $("run").addEventListener("click", () => command("/ravemap/run", [isOn("run") ? 0 : 1]));
  $("model").addEventListener("change", (e) => { say(`loading model ${e.target.value}`); command("/ravemap/model", [e.target.value]); });
  $("loop").addEventListener("change", (e) => { say(`loading loop ${e.target.value}`); command("/ravemap/loop", [e.target.value]); });
  for (const id of ["model", "loop", "mapping"]) {
    $(id).addEventListener("focus", () => sendNow({ get: "lists" }));
  }
  const typedName = () => $("mapping-new-name").value.trim();
  $("load").addEventListener("click", () => {
    const name = $("mapping").value;
    if (name) command("/ravemap/mapping/load", [name]);
  });
  $("save").addEventListener("click", () => {
    const name = typedName();
    command("/ravemap/mapping/save", name ? [name] : [], () => {
      say(`saved mapping ${name || (state && state.mapping)}`);
      sendNow({ get: "lists" });
    });
    $("mapping-new-name").value = "";
  });
  $("new").addEventListener("click", () => {
    const name = typedName();
    command("/ravemap/mapping/new", name ? [name] : [], () => sendNow({ get: "lists" }));
    $("mapping-new-name").value = "";
  });

  // -- scenes: a tap recalls (morphing over the morph time), a long press stores -------------
  function buildScenes() {
    const box = $("scenes");
    box.textContent = "";
    for (let n = 1; n <= SCENES; n++) {
      const el = document.createElement("button");
      el.type = "button";
      el.textContent = String(n);
      el.setAttribute("aria-label", `scene ${n}`);
      let timer = null;
      let stored = false;
      const cancel = () => { if (timer !== null) { clearTimeout(timer); timer = null; } };
      el.addEventListener("pointerdown", () => {
        stored = false;
        cancel();
        timer = setTimeout(() => {
          timer = null;
          stored = true;
          el.classList.add("storing");
          command("/ravemap/scene/store", [n], () => say(`stored scene ${n}`, false));
        }, STORE_HOLD_MS);
      });
      for (const kind of ["pointerup", "pointercancel", "pointerleave"]) {
        el.addEventListener(kind, () => { cancel(); el.classList.remove("storing"); });
      }
      el.addEventListener("contextmenu", (event) => event.preventDefault());  // a long touch is a store
      el.addEventListener("click", () => {
        if (stored) { stored = false; return; }  // the end of a long press: stored, not recalled
        const time = Number($("morph").value);
        command("/ravemap/scene/recall", Number.isFinite(time) && time > 0 ? [n, time] : [n]);
      });
      box.append(el);
    }
  }
  function showScenes() {
    const stored = new Set(state.scenes || []);
    const current = state.scene ? state.scene.number : null;
    [...$("scenes").children].forEach((el, i) => {
      el.classList.toggle("stored", stored.has(i + 1));
      el.setAttribute("aria-current", current === i + 1 ? "true" : "false");
    });
    $("morph-unit").textContent = state.morph_unit === "beats" ? "beats" : "s";
  }

  buildFaders();
  buildParams();
  buildFieldMaps();
  buildScenes();
  drawAll();
  connect();
})();
