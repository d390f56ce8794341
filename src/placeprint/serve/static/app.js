// "Where was this taken?": upload one photo to POST /locate and show the answer on the map.
"use strict";

const ui = {
  input: document.getElementById("file-input"),
  drop: document.getElementById("drop-zone"),
  status: document.getElementById("status"),
  modes: document.getElementById("modes"),
  matches: document.getElementById("matches"),
  thumb: document.getElementById("query-thumb"),
  confidence: document.getElementById("confidence"),
  meter: document.getElementById("confidence-meter"),
  confidenceText: document.getElementById("confidence-text"),
  timing: document.getElementById("timing"),
};
const map = makeMap(document.getElementById("map"), document.getElementById("online-tiles"));
const results = map ? L.layerGroup().addTo(map) : null;
const markers = [];
let thumbUrl = null;
let busy = false;

async function locate(file) {
  if (busy) return;
  if (!file) return;
  busy = true;
  clearError();
  ui.drop.setAttribute("aria-busy", "true");
  ui.status.textContent = `Locating ${file.name}…`;
  if (thumbUrl) URL.revokeObjectURL(thumbUrl);
  thumbUrl = URL.createObjectURL(file);
  ui.thumb.src = thumbUrl;
  ui.thumb.hidden = false;
  ui.thumb.closest("figure").hidden = false;
  const form = new FormData();
  form.append("file", file);
  try {
    const answer = await api("/locate", { method: "POST", body: form });
    render(answer);
    ui.status.textContent = `Located ${file.name}.`;
  } catch (err) {
    showError(err.message);
    ui.status.textContent = "";
  } finally {
    busy = false;
    ui.drop.removeAttribute("aria-busy");
    ui.input.value = "";
  }
}

function render(answer) {
  const modes = answer.modes || [];
  renderConfidence(answer.confidence, answer.calibrated, answer.calibration_photos);
  renderModes(modes);
  renderMatches(answer.matches || [], modes[0]);
  renderTiming(answer.timing_ms || {});
  if (map) renderMap(answer, modes);
}

function renderConfidence(p, calibrated, photos) {
  if (typeof p !== "number") {
    ui.meter.value = 0;
    ui.confidence.dataset.value = "";
    ui.confidenceText.textContent = "No confidence given.";
    return;
  }
  ui.meter.value = p;
  ui.confidence.dataset.value = String(p);
  ui.confidenceText.textContent = calibrated
    ? `${fmtPct(p)} — guesses this sure were right about ${fmtPct(p)} of the time ` +
      `when each of ${photos} photos of this collection was located from the others.`
    : `${fmtPct(p)} — not calibrated: this collection has too few photos (under 10) ` +
      "to test its answers on.";
}

function renderModes(modes) {
  ui.modes.replaceChildren();
  if (!modes.length) {
    ui.modes.append(el("li", { class: "empty" }, "No guess: the photo matched nothing."));
    return;
  }
  modes.forEach((m, i) => {
    const item = el(
      "li",
      { class: "mode", "data-lat": m.lat, "data-lon": m.lon, "data-rank": i + 1, tabindex: 0 },
      el("span", { class: "mode-rank" }, `${i + 1}.`),
      el("span", { class: "mode-name" }, m.name || "Unnamed place"),
      el("span", { class: "mode-prob" }, fmtPct(m.probability)),
      el("span", { class: "mode-pos" }, `${fmtDeg(m.lat, m.lon)} · within ${fmtKm(m.radius_km)}`),
      m.verified
        ? el("span", { class: "mode-verified" }, `verified: ${m.inliers} matching features`)
        : ""
    );
    const show = () => {
      if (!map) return;
      map.setView([m.lat, m.lon], Math.max(map.getZoom(), 12));
      if (markers[i]) markers[i].openPopup();
    };
    item.addEventListener("click", show);
    item.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        show();
      }
    });
    ui.modes.append(item);
  });
}

function renderMatches(matches, best) {
  ui.matches.replaceChildren();
  if (!matches.length) {
    ui.matches.append(el("p", { class: "empty" }, "No database image matched."));
    return;
  }
  for (const m of matches) {
    const km =
      typeof m.distance_km === "number"
        ? m.distance_km
        : best && typeof m.lat === "number"
          ? haversineKm(best.lat, best.lon, m.lat, m.lon)
          : null;
    const file = m.path ? m.path.split("/").pop() : null;
    const caption = [file || `#${m.id}`];
    if (typeof m.weight === "number") caption.push(`weight ${m.weight.toFixed(2)}`);
    if (km !== null) caption.push(`${fmtKm(km)} from the best guess`);
    const img = m.image_url
      ? el("img", {
          class: "match",
          src: withToken(m.image_url),
          alt: `Database image ${m.path || m.id}`,
          "data-id": m.id,
        })
      : el("div", { class: "no-image" }, `No image for ${m.path || `#${m.id}`}`);
    ui.matches.append(el("figure", { class: "match-card" }, img, el("figcaption", {}, caption.join(" · "))));
  }
}

function renderTiming(t) {
  ui.timing.replaceChildren();
  for (const key of ["decode", "describe", "locate", "total"]) {
    if (typeof t[key] !== "number") continue;
    ui.timing.append(el("dt", {}, key), el("dd", {}, `${t[key].toFixed(0)} ms`));
  }
}

function renderMap(answer, modes) {
  results.clearLayers();
  markers.length = 0;
  const hm = answer.heatmap;
  if (hm && hm.png && hm.bounds) {
    L.imageOverlay(hm.png, hm.bounds, {
      opacity: 0.7,
      pane: "heat",
      className: "heatmap",
      alt: "Probability heat map",
    }).addTo(results);
  }
  let bounds = null;
  modes.forEach((m, i) => {
    const radius = Math.max(m.radius_km * 1000, 30);
    const circle = L.circle([m.lat, m.lon], {
      radius,
      color: i === 0 ? "#c0392b" : "#2c6fbb",
      weight: 2,
      fillOpacity: 0.08,
    }).addTo(results);
    const popup =
      `<strong>#${i + 1} ${escapeHtml(m.name || "Unnamed place")}</strong><br>` +
      `${fmtPct(m.probability)} · within ${fmtKm(m.radius_km)}<br>${fmtDeg(m.lat, m.lon)}`;
    const marker = L.marker([m.lat, m.lon], { title: `Guess ${i + 1}`, alt: `Guess ${i + 1}` })
      .bindPopup(popup)
      .addTo(results);
    markers.push(marker);
    const b = circle.getBounds();
    bounds = bounds ? bounds.extend(b) : L.latLngBounds(b.getSouthWest(), b.getNorthEast());
  });
  if (bounds) map.fitBounds(bounds, { padding: [30, 30], maxZoom: 15 });
}

function escapeHtml(s) {
  const span = document.createElement("span");
  span.textContent = s;
  return span.innerHTML;
}

// ------------------------------------------------------------------ file picker and drop zone
ui.input.addEventListener("change", () => locate(ui.input.files[0]));
ui.drop.addEventListener("click", (e) => {
  if (e.target !== ui.input && e.target.tagName !== "LABEL") ui.input.click();
});
ui.drop.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    ui.input.click();
  }
});
for (const name of ["dragenter", "dragover"]) {
  ui.drop.addEventListener(name, (e) => {
    e.preventDefault();
    ui.drop.classList.add("over");
  });
}
for (const name of ["dragleave", "drop"]) {
  ui.drop.addEventListener(name, () => ui.drop.classList.remove("over"));
}
ui.drop.addEventListener("drop", (e) => {
  e.preventDefault();
  const files = [...(e.dataTransfer ? e.dataTransfer.files : [])];
  if (files.length !== 1) {
    showError(files.length ? "Drop one photo at a time." : "That was not a file.");
    return;
  }
  locate(files[0]);
});
// A photo dropped beside the zone must not replace the page.
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());
carryTokenOnLinks();
