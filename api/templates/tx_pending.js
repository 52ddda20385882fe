// A pending transaction's page: wait on the node for the commit (GET /v1/transactions/{id}
// ?wait_ms), then reload to show the block. A transaction the node no longer knows reloads too,
// to show the "Not found" page.
(() => {
  "use strict";
  const idEl = document.getElementById("tx-id");
  const id = idEl ? idEl.textContent.trim() : "";
  if (!/^[0-9a-f]{64}$/.test(id)) return;
  const wait = () =>
    fetch("/v1/transactions/" + id + "?wait_ms=20000", { headers: { accept: "application/json" } })
      .then((r) => {
        if (r.status === 404) return location.reload();
        if (!r.ok) throw new Error(String(r.status));
        return r.json().then((t) => (t.status === "committed" ? location.reload() : wait()));
      })
      .catch(() => setTimeout(wait, 5000));
  wait();
})();
