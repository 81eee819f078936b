// The portal's map (/carte): the projects the page lists, drawn on tiles.
// The page lists every project without this script; it only adds the map.
// Its data come from the page itself (data-* attributes): no inline script.
(function () {
  "use strict";
  var el = document.getElementById("carte");
  if (!el || typeof L === "undefined") { return; }
  el.hidden = false;
  var map = L.map(el, { scrollWheelZoom: false }).setView([46.6, 2.4], 5);
  var tiles = el.getAttribute("data-tuiles");
  if (tiles) {
    L.tileLayer(tiles, {
      maxZoom: 18,
      attribution: el.getAttribute("data-attribution") || ""
    }).addTo(map);
  }
  var points = [];
  document.querySelectorAll("li[data-lat][data-lon]").forEach(function (li) {
    var lat = parseFloat(li.getAttribute("data-lat"));
    var lon = parseFloat(li.getAttribute("data-lon"));
    if (!isFinite(lat) || !isFinite(lon)) { return; }
    var link = li.querySelector("a");
    var marker = L.circleMarker([lat, lon], { radius: 7, color: "#000091", weight: 2, fillOpacity: 0.6 });
    // Text, never HTML: a project's name is shown as written.
    var popup = document.createElement("a");
    popup.textContent = link ? link.textContent : "";
    popup.href = link ? link.getAttribute("href") : "#";
    marker.bindPopup(popup);
    marker.addTo(map);
    points.push([lat, lon]);
  });
  if (points.length > 0) {
    map.fitBounds(points, { padding: [30, 30], maxZoom: 12 });
  }
})();
