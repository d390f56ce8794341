// "Watch the match advance along the route": send growing windows of frames to POST /sequence
// and move a marker to each answered database place (GET /places/{id}).
"use strict";

const ui = {
  form: document.getElementById("seq-form"),
  folder: document.getElementById("folder-input"),
  files: document.getElementById("files-input"),
  window: document.getElementById("window"),
  start: document.getElementById("start"),
  stop: document.getElementById("stop"),
  picked: document.getElementById("picked"),
  progress: document.getElementById("progress"),
  progressText: document.getElementById("progress-text"),
  final: document.getElementById("final"),
  rows: document.querySelector("#steps tbody"),
};
const IMAGE_NAME = /\.(jpe?g|png|webp|bmp|tiff?|gif)$/i;
const ROUTE_PREFETCH_MAX = 300; // draw the whole route up front when the index is this small
const map = makeMap(document.getElementById("map"), document.getElementById("online-tiles"));
const places = new Map(); // id -> place dict
let routeLine = null;
let trackLine = null;
let marker = null;
let frames = [];
let stopRequested = false;

// Sequence confidence is a gap ratio: how clearly the best place beats the best one outside a
// window around it (>= 1; 1 is a tie; null when nothing else aligned at all).
const fmtGap = (c) => (typeof c === "number" ? `${c.toFixed(2)}×` : "∞");

const byName = (a, b) =>
  a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: "base" });

function pick(list) {
  frames = [...list].filter((f) => f.type.startsWith("image/") || IMAGE_NAME.test(f.name));
  frames.sort(byName);
  ui.start.disabled = frames.length === 0;
  ui.picked.textContent = frames.length
    ? `${frames.length} frames, ${frames[0].name} … ${frames[frames.length - 1].name}`
    : "No images among the files picked.";
}

async function getPlace(id) {
  if (!places.has(id)) places.set(id, await api(`/places/${id}`));
  return places.get(id);
}

const located = (p) => p && typeof p.lat === "number" && typeof p.lon === "number";

/** The route: the database places known so far, in place-id (route) order. */
function drawRoute() {
  if (!map) return;
  const pts = [...places.values()]
    .filter(located)
    .sort((a, b) => a.id - b.id)
    .map((p) => [p.lat, p.lon]);
  if (!routeLine) {
    routeLine = L.polyline(pts, { color: "#7f8c8d", weight: 3, dashArray: "4 6" }).addTo(map);
  } else {
    routeLine.setLatLngs(pts);
  }
}

async function prefetchRoute() {
  try {
    const stats = await api("/stats");
    const n = stats && Number.isInteger(stats.places) ? stats.places : 0;
    if (n > ROUTE_PREFETCH_MAX) return;
    const ids = [...Array(n).keys()];
    for (let i = 0; i < ids.length; i += 8) {
      await Promise.all(ids.slice(i, i + 8).map((id) => getPlace(id).catch(() => null)));
    }
    drawRoute();
    const pts = [...places.values()].filter(located).map((p) => [p.lat, p.lon]);
    if (map && pts.length) map.fitBounds(L.latLngBounds(pts), { padding: [30, 30], maxZoom: 17 });
  } catch (err) {
    showError(`The route could not be drawn: ${err.message}`);
  }
}

function moveMarker(place, step) {
  if (!map || !located(place)) return;
  const at = [place.lat, place.lon];
  if (!marker) {
    marker = L.marker(at, { title: "Matched position", alt: "Matched position" }).addTo(map);
    trackLine = L.polyline([], { color: "#c0392b", weight: 4 }).addTo(map);
  } else {
    marker.setLatLng(at);
  }
  trackLine.addLatLng(at);
  marker.bindPopup(`Step ${step}: place #${place.id}<br>${fmtDeg(place.lat, place.lon)}`);
  if (!map.getBounds().pad(-0.1).contains(at)) map.panTo(at);
}

function addRow(cells, cls) {
  const tr = el("tr", { class: cls });
  for (const c of cells) tr.append(el("td", {}, c));
  ui.rows.append(tr);
  tr.scrollIntoView({ block: "nearest" });
}

function setBusy(on) {
  ui.start.disabled = on || frames.length === 0;
  ui.stop.disabled = !on;
  ui.folder.disabled = on;
  ui.files.disabled = on;
}

async function run() {
  const windowLength = Math.max(1, Math.min(200, parseInt(ui.window.value, 10) || 10));
  clearError();
  stopRequested = false;
  setBusy(true);
  ui.rows.replaceChildren();
  if (trackLine) trackLine.setLatLngs([]);
  ui.progress.max = frames.length;
  ui.progress.value = 0;
  ui.final.textContent = "Matching…";
  await prefetchRoute();
  let last = null;
  let failures = 0;
  for (let i = 1; i <= frames.length && !stopRequested; i++) {
    const batch = frames.slice(Math.max(0, i - windowLength), i);
    const form = new FormData();
    for (const f of batch) form.append("files", f, f.name);
    const name = frames[i - 1].name;
    try {
      const r = await api("/sequence", { method: "POST", body: form });
      // The place's record (position on the map) is optional: an index may have no store.
      const place = r.place || (await getPlace(r.position).catch(() => null));
      if (place) {
        places.set(place.id, place);
        drawRoute();
        moveMarker(place, i);
      }
      addRow([i, name, r.frames ?? batch.length, `#${r.position}`,
        fmtGap(r.confidence), r.ops, r.timing_ms && r.timing_ms.total !== undefined
          ? r.timing_ms.total.toFixed(0) : ""], "step");
      last = { step: i, place, r };
    } catch (err) {
      failures += 1;
      addRow([i, name, batch.length, err.message, "", "", ""], "step failed");
      showError(`Step ${i}: ${err.message}`);
    }
    ui.progress.value = i;
    ui.progressText.textContent = `${i} / ${frames.length} frames`;
  }
  if (last) {
    const p = last.place || { id: last.r.position };
    ui.final.dataset.position = String(last.r.position);
    if (located(p)) {
      ui.final.dataset.lat = String(p.lat);
      ui.final.dataset.lon = String(p.lon);
    }
    ui.final.textContent =
      `After ${last.step} frames: place #${last.r.position}` +
      (located(p) ? ` at ${fmtDeg(p.lat, p.lon)}` : "") +
      `, confidence ${fmtGap(last.r.confidence)}` +
      (failures ? ` (${failures} step${failures > 1 ? "s" : ""} failed)` : "") + ".";
    ui.final.classList.add("done");
  } else {
    ui.final.textContent = stopRequested ? "Stopped." : "No step was matched.";
  }
  setBusy(false);
}

ui.folder.addEventListener("change", () => pick(ui.folder.files));
ui.files.addEventListener("change", () => pick(ui.files.files));
ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  if (frames.length) run();
});
ui.stop.addEventListener("click", () => {
  stopRequested = true;
});
carryTokenOnLinks();
