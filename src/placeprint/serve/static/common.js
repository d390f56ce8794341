// Shared helpers of the placeprint pages: API calls (with the optional token), the offline map,
// the error box and small formatters. Plain ES2020, no build step, no external URL.
"use strict";

const TOKEN = new URLSearchParams(window.location.search).get("token") || "";
// Used only when the user ticks "Online map tiles"; nothing else on the page leaves this server.
const OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";

/** Same-origin URL with `?token=` added when the page has a token (for <img> and links). */
function withToken(url) {
  if (!TOKEN || url.startsWith("data:") || url.startsWith("blob:")) return url;
  const u = new URL(url, window.location.origin);
  u.searchParams.set("token", TOKEN);
  return u.pathname + u.search;
}

/** fetch() a JSON endpoint; throws an Error carrying the API's one-sentence `error`. */
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (TOKEN) headers.set("Authorization", `Bearer ${TOKEN}`);
  let resp;
  try {
    resp = await fetch(path, { ...options, headers });
  } catch (err) {
    throw new Error(`The server did not answer (${err.message}).`);
  }
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (resp.status === 401) {
    // a browser cannot send headers by hand: ask for the token, keep it in the address
    const given = window.prompt(
      TOKEN ? "The token was not accepted. Token:" : "This service needs a token. Token:"
    );
    if (given) {
      const u = new URL(window.location.href);
      u.searchParams.set("token", given);
      window.location.assign(u.toString());
    }
    throw new Error(body && body.error ? body.error : "This service needs a token.");
  }
  if (!resp.ok) {
    const msg = body && body.error ? body.error : `${resp.status} ${resp.statusText}`;
    throw new Error(msg);
  }
  return body;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  const box = document.getElementById("error");
  box.textContent = "";
  box.hidden = true;
}

/** Element helper: el("li", {class: "mode", "data-lat": 1}, "text", child). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

const fmtKm = (km) => (km < 1 ? `${Math.round(km * 1000)} m` : `${km.toFixed(km < 10 ? 1 : 0)} km`);
const fmtPct = (p) => `${Math.round(p * 100)} %`;
const fmtDeg = (lat, lon) => `${lat.toFixed(5)}, ${lon.toFixed(5)}`;

/** Great-circle distance in km between two points in degrees. */
function haversineKm(lat1, lon1, lat2, lon2) {
  const r = Math.PI / 180;
  const a =
    Math.sin(((lat2 - lat1) * r) / 2) ** 2 +
    Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin(((lon2 - lon1) * r) / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(a)));
}

/**
 * A Leaflet map in `container` over the country outlines (GET /api/outlines); tiles are added
 * only while the checkbox `tilesBox` is ticked. Returns null (and says so) without Leaflet.
 */
function makeMap(container, tilesBox) {
  if (!window.L) {
    container.classList.add("map-missing");
    container.textContent =
      "Leaflet is missing: run `make web` (npm install --prefix web) and restart the server.";
    showError("Leaflet is missing, so no map can be drawn; the results are listed beside it.");
    if (tilesBox) tilesBox.disabled = true;
    return null;
  }
  const map = L.map(container, { worldCopyJump: true, minZoom: 1 }).setView([20, 0], 2);
  map.attributionControl.setPrefix("Leaflet");
  // Panes, bottom to top: tiles (200), country outlines, heat map, then circles and lines (400).
  map.createPane("outlines").style.zIndex = 250;
  map.createPane("heat").style.zIndex = 350;
  map.getPane("outlines").style.pointerEvents = "none";
  map.getPane("heat").style.pointerEvents = "none";
  const land = { color: "#8a96a3", weight: 0.8, fillColor: "#f6f4ee", fillOpacity: 1 };
  let outlines = null;
  api("/api/outlines")
    .then((geojson) => {
      outlines = L.geoJSON(geojson, {
        pane: "outlines",
        interactive: false,
        style: () => ({ ...land, fillOpacity: tilesBox && tilesBox.checked ? 0 : 1 }),
      }).addTo(map);
    })
    .catch((err) => showError(`Country outlines could not be loaded: ${err.message}`));
  // Offline place names (GeoNames towns of 1,000+ people, GET /api/places) from zoom 6 on,
  // spread over the view, so a map without tiles still says where it is.
  map.createPane("places").style.zIndex = 450;
  const places = L.layerGroup().addTo(map);
  let placesRequest = 0;
  const refreshPlaces = () => {
    const ticket = ++placesRequest;
    if (map.getZoom() < 6) {
      places.clearLayers();
      return;
    }
    const b = map.getBounds();
    const box = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
      .map((v) => v.toFixed(4))
      .join(",");
    api(`/api/places?bbox=${box}&limit=120`)
      .then((geojson) => {
        if (ticket !== placesRequest) return; // a newer view asked meanwhile
        places.clearLayers();
        for (const f of geojson.features) {
          const [lon, lat] = f.geometry.coordinates;
          L.circleMarker([lat, lon], {
            pane: "places",
            radius: 2,
            color: "#444",
            weight: 1,
            fillOpacity: 1,
            interactive: false,
          })
            .bindTooltip(f.properties.name, {
              permanent: true,
              direction: "right",
              className: "place-label",
              pane: "places",
            })
            .addTo(places);
        }
      })
      .catch(() => places.clearLayers());
  };
  map.on("moveend", refreshPlaces);
  if (tilesBox) {
    let tiles = null;
    tilesBox.addEventListener("change", () => {
      if (tilesBox.checked) {
        tiles = L.tileLayer(OSM_TILES, {
          maxZoom: 19,
          attribution: "&copy; OpenStreetMap contributors",
        }).addTo(map);
      } else if (tiles) {
        map.removeLayer(tiles);
        tiles = null;
      }
      // Over tiles the outlines are lines only, so the tiles show through.
      if (outlines) outlines.setStyle({ fillOpacity: tilesBox.checked ? 0 : 1 });
    });
  }
  return map;
}

/** Keep `?token=` on links between the pages. */
function carryTokenOnLinks() {
  if (!TOKEN) return;
  for (const a of document.querySelectorAll("a[data-keep-token]")) {
    a.href = withToken(a.getAttribute("href"));
  }
}
