import { newRouter } from "../app";

/**
 * `/docs`: a self-contained reference page. It fetches `/openapi.json` in the browser and renders the
 * operations and schemas, so it works offline and needs no third-party script.
 */
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Reelgate API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#111}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
.op{border:1px solid #ddd;border-radius:6px;margin:.75rem 0;padding:.5rem .75rem}
.m{font-weight:700;text-transform:uppercase;display:inline-block;min-width:4.5rem}
.get{color:#05620f}.post{color:#0b4db3}.put{color:#8a5a00}.delete{color:#b00020}
code,pre{font:13px ui-monospace,monospace;background:#f6f6f6}pre{padding:.5rem;overflow:auto}
summary{cursor:pointer}
</style></head><body><main>
<h1>Reelgate API reference</h1>
<p>The machine-readable document is at <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<div id="ops" aria-live="polite">Loading…</div>
</main>
<script>
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (ch) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"})[ch]);
fetch("/openapi.json").then((r) => r.json()).then((doc) => {
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "Other";
      (byTag[tag] ||= []).push({ path, method, op });
    }
  }
  let html = "";
  for (const [tag, ops] of Object.entries(byTag)) {
    html += "<h2>" + esc(tag) + "</h2>";
    for (const { path, method, op } of ops) {
      html += '<details class="op"><summary><span class="m ' + method + '">' + method + "</span> <code>" + esc(path) +
        "</code> " + esc(op.summary) + "</summary><pre>" + esc(JSON.stringify(op, null, 2)) + "</pre></details>";
    }
  }
  html += "<h2>Schemas</h2>";
  for (const [name, schema] of Object.entries((doc.components && doc.components.schemas) || {})) {
    html += '<details class="op"><summary><code>' + esc(name) + "</code></summary><pre>" + esc(JSON.stringify(schema, null, 2)) + "</pre></details>";
  }
  document.getElementById("ops").innerHTML = html;
}).catch((e) => { document.getElementById("ops").textContent = "Could not load /openapi.json: " + e; });
</script></body></html>`;

export const docsRoutes = newRouter();
docsRoutes.get("/docs", (c) => c.html(PAGE, 200, { "cache-control": "public, max-age=300" }));
