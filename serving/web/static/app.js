// payrank workspace: refresh "My calls" every 30 s, so items compliance withdrew leave the list with their
// reason without a reload. Everything works without this script (plain links and forms).
(function () {
  var box = document.getElementById("calls");
  if (!box || !window.fetch) return;
  var url = box.getAttribute("data-refresh");
  function refresh() {
    return fetch(url, { credentials: "same-origin", redirect: "manual" }).then(function (r) {
      if (r.ok && r.type !== "opaqueredirect") return r.text();
    }).then(function (html) { if (html) box.innerHTML = html; }).catch(function () {});
  }
  window.payrankRefresh = refresh;
  setInterval(function () {
    if (!document.hidden && !box.contains(document.activeElement)) refresh();
  }, 30000);
})();
