"""Static files and Plotly: gzip when asked, ETag revalidation (304), caching headers."""

from __future__ import annotations

import gzip

from app.assets import FOREVER

PLOTLY = "/vendor/plotly.min.js"


def test_plotly_is_gzipped_with_a_long_cache(client):
    r = client.get(PLOTLY, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert "immutable" in r.headers["cache-control"]
    assert int(r.headers["content-length"]) < 2_000_000  # 4.8 MB uncompressed
    assert b"\n/**\n* plotly.js" in r.content[:100]  # httpx unzipped it: a real gzip stream


def test_plotly_is_the_packages_file_with_a_compile_hint_at_the_url_the_page_names(client):
    from app.main import PLOTLY_JS, PLOTLY_PREFIX, PLOTLY_URL

    # the hint makes V8 compile while streaming: the cold evaluation's task 370 -> 55 ms
    assert PLOTLY_PREFIX.startswith(b"//# allFunctionsCalledOnLoad")
    served = client.get(PLOTLY_URL, headers={"Accept-Encoding": "identity"}).content
    assert served == PLOTLY_PREFIX + PLOTLY_JS.read_bytes()
    assert f'href="{PLOTLY_URL}"'.replace("&", "&amp;") in client.get("/").text


def test_static_files_revalidate_by_etag(client):
    first = client.get("/static/js/main.js", headers={"Accept-Encoding": "identity"})
    assert first.status_code == 200 and "content-encoding" not in first.headers
    assert first.headers["cache-control"] == "no-cache" and first.headers[
        "content-type"
    ].startswith("text/javascript")
    again = client.get("/static/js/main.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    zipped = client.get("/static/js/main.js", headers={"Accept-Encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == first.content


def test_paths_outside_static_are_not_served(client):
    for path in ("/static/../app/main.py", "/static/%2e%2e/app/settings.py", "/static/js/none.js"):
        assert client.get(path).status_code == 404, path


def test_small_files_are_not_compressed(client, tmp_path):
    from app.assets import MIN_GZIP_BYTES, _load

    small = tmp_path / "a.css"
    small.write_text("b{}")
    big = tmp_path / "b.js"
    big.write_text("x;" * MIN_GZIP_BYTES)
    assert _load(small).gzipped is None
    assert gzip.decompress(_load(big).gzipped) == big.read_bytes()


def test_the_page_preloads_every_module_it_imports(client):
    import re

    from app.main import ROOT

    html = client.get("/").text
    preloaded = re.findall(r'<link rel="modulepreload" href="/static/(js/[^"?]+)\?v=\w+">', html)
    assert len(preloaded) == len(set(preloaded))
    every = {p.relative_to(ROOT / "static").as_posix() for p in (ROOT / "static/js").rglob("*.js")}
    # the docs page's module and the classic long-task recorder are not main.js's imports
    assert set(preloaded) == every - {"js/docs.js", "js/longtasks.js"}
    assert preloaded[0] == "js/main.js"
    # Plotly is fetched when idle, not preloaded: a preload compiled it during the first picture
    assert 'rel="prefetch"' in html and 'rel="preload"' not in html


def _page_urls(html: str) -> list[str]:
    import re

    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_the_page_names_each_files_bytes_and_those_urls_are_cached_for_good(client):
    import base64
    import hashlib
    import json
    import re

    r = client.get("/")
    from app.main import PAGE_FILES

    urls = set(_page_urls(r.text))
    assert {f"/static/{name}" for name in PAGE_FILES} < {u.partition("?")[0] for u in urls}
    for url in urls:
        path, _, version = url.partition("?v=")
        assert version, url
        named = client.get(url)
        assert named.status_code == 200 and named.headers["cache-control"] == FOREVER, url
        # the same file by its plain URL, or an old version's, is asked again each time
        plain = client.get(path)
        assert plain.headers["cache-control"] == "no-cache" and plain.content == named.content
        assert client.get(f"{path}?v=0{version}").headers["cache-control"] == "no-cache"
    # the import map sends each module's plain URL (what "./x.js" resolves to) to its version
    (text,) = re.findall(r'<script type="importmap">(.*?)</script>', r.text)
    imports = json.loads(text)["imports"]
    modules = [u for u in urls if u.endswith(".js") or ".js?" in u]
    assert {imports[u.partition("?")[0]] for u in modules if "longtasks" not in u} == {
        u for u in modules if "longtasks" not in u
    }
    # and runs under the page's CSP by its hash, which only this answer allows
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    policy = r.headers["content-security-policy"]
    assert f"script-src 'self' 'sha256-{digest}';" in policy
    assert "script-src 'self';" in client.get("/docs").headers["content-security-policy"]


def test_a_changed_file_gets_a_new_version(tmp_path):
    from app.assets import Assets

    (tmp_path / "a.js").write_text("export const a = 1;\n")
    assets = Assets(tmp_path)
    first = assets.version("a.js")
    assert assets.version("a.js") == first
    (tmp_path / "a.js").write_text("export const a = 22;\n")
    assert assets.version("a.js") != first


def test_module_graph_follows_every_form_of_static_import(tmp_path):
    from app.assets import module_graph

    files = {
        "js/main.js": 'import { a } from "./a.js";\nimport "./side.js";\n'
        'export { b } from "./b.js";\nimport {\n  c,\n  d,\n} from "./views/c.js";\n'
        '/** @param {import("./typed.js").T} t a type, not an import */\n',
        "js/a.js": 'import { c } from "./views/c.js";\n',  # seen twice, listed once
        "js/side.js": "",
        "js/b.js": "",
        "js/views/c.js": 'import { e } from "../e.js";\n',
        "js/e.js": "",
        "js/typed.js": "",
        "js/unused.js": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = module_graph(tmp_path, "js/main.js")
    assert graph == ["js/main.js", "js/a.js", "js/side.js", "js/b.js", "js/views/c.js", "js/e.js"]
    # read from a cache while nothing changes, walked again when an importer does
    assert module_graph(tmp_path, "js/main.js") == graph
    (tmp_path / "js/e.js").write_text('import "./unused.js";\n')
    assert module_graph(tmp_path, "js/main.js") == [*graph, "js/unused.js"]
    (tmp_path / "js/e.js").write_text("")
    assert module_graph(tmp_path, "js/main.js") == graph
