// The API documentation pages, served from this server only (no CDN): Swagger UI for the
// HTTP routes, and the Markdown documents beside them (the session protocol, the binary
// transport) rendered here. The Markdown is the repository's own; it is escaped before
// any markup is added, and links go only to relative or http(s) addresses.

/** The repository's document links, as the server serves them. */
const DOC_LINKS = {
  "session-protocol.md": "/docs/session-protocol",
  "transport.md": "/docs/transport",
  "frame-schema.json": "/docs/frame-schema.json",
};

/** @param {string} text */
function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** @param {string} href an escaped link target */
function linkTarget(href) {
  const [path, hash] = href.split("#");
  const file = path.replace(/^(\.\.\/)*(docs\/)?/, "");
  if (DOC_LINKS[file]) return DOC_LINKS[file] + (hash ? `#${hash}` : "");
  if (!path) return `#${hash || ""}`;
  if (/^https?:\/\//.test(href) || href.startsWith("/")) return href;
  return null; // a repository file this server does not serve: text only
}

/** @param {string} text heading text -> the id GitHub would give it */
function slug(text) {
  return text.toLowerCase().replace(/<[^>]+>/g, "").replace(/&[a-z#0-9]+;/g, "").replace(/[^\w\- ]/g, "").trim().replace(/ /g, "-");
}

/** Inline markup of one escaped line: code spans are set aside first, so nothing inside
 * them is touched, while emphasis may span them. */
function inline(escaped) {
  const spans = [];
  const text = escaped.replace(/`([^`]+)`/g, (_, code) => `\u0000${spans.push(code) - 1}\u0000`);
  return text
    .replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^\w*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>")
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, label, href) => {
      const target = linkTarget(href);
      return target ? `<a href="${target}">${label}</a>` : label;
    })
    .replace(/\u0000(\d+)\u0000/g, (_, k) => `<code>${spans[Number(k)]}</code>`);
}

/** @param {string} row a table row `| a | b |` -> its cells */
function cells(row) {
  return row.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

/**
 * Markdown (the subset the repository's documents use: headings, paragraphs, lists,
 * fenced code, tables, inline code, emphasis, links) to HTML.
 * @param {string} markdown
 */
export function renderMarkdown(markdown) {
  const lines = markdown.replace(/\r\n?/g, "\n").split("\n");
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^```(\w*)/);
    if (fence) {
      const code = [];
      for (i += 1; i < lines.length && !lines[i].startsWith("```"); i += 1) code.push(escapeHtml(lines[i]));
      out.push(`<pre><code${fence[1] ? ` class="language-${fence[1]}"` : ""}>${code.join("\n")}</code></pre>`);
      i += 1;
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      const level = heading[1].length;
      const html = inline(escapeHtml(heading[2]));
      out.push(`<h${level} id="${slug(html)}">${html}</h${level}>`);
      i += 1;
      continue;
    }
    if (/^\s*\|/.test(line) && i + 1 < lines.length && /^\s*\|?\s*:?-{3,}/.test(lines[i + 1])) {
      const head = cells(line).map((c) => `<th>${inline(escapeHtml(c))}</th>`).join("");
      const body = [];
      for (i += 2; i < lines.length && /^\s*\|/.test(lines[i]); i += 1) {
        body.push(`<tr>${cells(lines[i]).map((c) => `<td>${inline(escapeHtml(c))}</td>`).join("")}</tr>`);
      }
      out.push(`<table><thead><tr>${head}</tr></thead><tbody>${body.join("")}</tbody></table>`);
      continue;
    }
    const item = line.match(/^(\s*)([-*]|\d+\.)\s+(.*)$/);
    if (item) {
      const ordered = /\d/.test(item[2]);
      const items = [];
      while (i < lines.length) {
        const next = lines[i].match(/^(\s*)([-*]|\d+\.)\s+(.*)$/);
        if (next) {
          items.push([next[3]]);
        } else if (/^\s+\S/.test(lines[i]) && items.length) {
          items[items.length - 1].push(lines[i].trim()); // a continuation line
        } else {
          break;
        }
        i += 1;
      }
      const tag = ordered ? "ol" : "ul";
      out.push(`<${tag}>${items.map((parts) => `<li>${inline(escapeHtml(parts.join(" ")))}</li>`).join("")}</${tag}>`);
      continue;
    }
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const paragraph = [];
    while (i < lines.length && lines[i].trim() && !/^(```|#{1,6}\s|\s*([-*]|\d+\.)\s|\s*\|)/.test(lines[i])) {
      paragraph.push(lines[i].trim());
      i += 1;
    }
    if (!paragraph.length) {
      paragraph.push(line.trim()); // a line no block rule took
      i += 1;
    }
    out.push(`<p>${inline(escapeHtml(paragraph.join(" ")))}</p>`);
  }
  return out.join("\n");
}

async function showDocument(article) {
  const response = await fetch(article.dataset.src, { headers: { Accept: "text/markdown" } });
  if (!response.ok) {
    article.textContent = `Cannot load ${article.dataset.src}: HTTP ${response.status}`;
    return;
  }
  article.innerHTML = renderMarkdown(await response.text());
  const heading = article.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · Unroll API`;
  if (location.hash) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView();
}

window.addEventListener("DOMContentLoaded", () => {
  const article = document.getElementById("doc");
  if (article) {
    showDocument(article);
    return;
  }
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: true,
  });
});
