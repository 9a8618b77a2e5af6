/// `/api-docs`: the OpenAPI document as a page, with no script or style from anywhere but this server (a bank's
/// network does not reach a CDN, and must not have to trust one).
enum APIDocsPage {
    static let contentSecurityPolicy = "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'"

    static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>uwf API</title>
        <style>
          body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; }
          h2 { margin-top: 2rem; border-bottom: 1px solid #ccc; }
          .op { margin: .4rem 0; }
          .method { display: inline-block; width: 4.5rem; font-weight: bold; font-family: monospace; }
          .path { font-family: monospace; }
          .summary { color: #444; }
        </style>
        </head>
        <body>
        <h1>Unified Workflow API</h1>
        <p>The machine-readable description is at <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
        <div id="ops">Loading…</div>
        <script>
        fetch('/openapi.json').then(r => r.json()).then(doc => {
          const byTag = {};
          for (const [path, item] of Object.entries(doc.paths)) {
            for (const [method, op] of Object.entries(item)) {
              if (method === 'parameters') continue;
              const tag = (op.tags || ['other'])[0];
              (byTag[tag] = byTag[tag] || []).push({method, path, op});
            }
          }
          const root = document.getElementById('ops');
          root.textContent = '';
          for (const [tag, ops] of Object.entries(byTag)) {
            const h = document.createElement('h2');
            h.textContent = tag;
            root.appendChild(h);
            for (const {method, path, op} of ops) {
              const row = document.createElement('div');
              row.className = 'op';
              row.id = op.operationId;
              for (const [cls, text] of [['method', method.toUpperCase()], ['path', path], ['summary', ' ' + (op.summary || '')]]) {
                const span = document.createElement('span');
                span.className = cls;
                span.textContent = text;
                row.appendChild(span);
              }
              root.appendChild(row);
            }
          }
        });
        </script>
        </body>
        </html>
        """
}
