"""Static files and Plotly: gzip when asked, ETag revalidation (304), caching headers."""

from __future__ import annotations

import gzip

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
