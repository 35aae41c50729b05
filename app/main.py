"""The FastAPI application: pages, static files and the health check."""

from __future__ import annotations

from pathlib import Path

import plotly
import swagger_ui
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import __version__
from app.api import api_router
from app.api.compute import ComputePool
from app.api.errors import install_error_handlers
from app.api.limits import BodySizeLimit
from app.assets import FOREVER, Assets, import_map, module_graph
from app.headers import SecurityHeaders, policy_allowing
from app.origin import OriginGuard
from app.ratelimit import RateLimit
from app.settings import Settings
from app.store import StoreUnavailable, open_store
from app.wsguard import SessionLimit

ROOT = Path(__file__).resolve().parent.parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# V8's explicit compile hint: compile every function while the bytes stream in, off the
# main thread, instead of on first call inside the evaluation (a ~370 ms task -> ~55 ms)
PLOTLY_PREFIX = b"//# allFunctionsCalledOnLoad\n"
# the URL names the served bytes (version and hint), so a cache holding other bytes refetches
PLOTLY_URL = f"/vendor/plotly.min.js?v={plotly.__version__}-eager"
SWAGGER_DIR = Path(swagger_ui.__file__).parent / "static"
DOCS_DIR = ROOT / "docs"
# the documents /docs links to beside the OpenAPI pages: name -> (file, title)
DOC_PAGES = {
    "session-protocol": ("session-protocol.md", "The session protocol: WebSocket /api/v1/session"),
    "transport": ("transport.md", "The binary transport"),
}
FRAME_SCHEMA = "frame-schema.json"
# what the page's <head> loads beside main.js's modules
PAGE_FILES = ("css/app.css", "css/lesson.css", "css/series.css", "js/longtasks.js")
DESCRIPTION = (
    "Run small recurrent networks step by step and see every state and gradient.\n\n"
    "Beyond the HTTP routes below: the [WebSocket session protocol](/docs/session-protocol) "
    "(`/api/v1/session`, not listed by OpenAPI), the [frame schema](/docs/frame-schema.json) "
    "(JSON Schema of every stream and session frame) and the "
    "[binary transport](/docs/transport) a session can answer in. Every error answer is "
    '`{"detail": "<field>: <reason>", "field": ...}` (`ErrorOut`).'
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; `settings` defaults to the environment's."""
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="Unroll",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # served below from local files: the CDN default breaks offline
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.pool = ComputePool(settings.max_concurrent, settings.max_queue)
    app.state.store = open_store(settings)
    install_error_handlers(app)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        # the database is down or saturated: the client may retry, the request was fine
        body = {"detail": f"model store: unavailable ({exc})", "field": None}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        SessionLimit,
        max_sessions=settings.max_sessions,
        per_client=settings.max_sessions_per_client,
    )
    app.add_middleware(OriginGuard, settings=settings)  # outside: refused ones count nowhere
    app.add_middleware(SecurityHeaders)
    if settings.rate_limit_per_minute > 0:
        app.add_middleware(RateLimit, per_minute=settings.rate_limit_per_minute)
    if settings.cors_origins:
        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    app.include_router(api_router)
    templates = Jinja2Templates(directory=ROOT / "templates")
    static = Assets(ROOT / "static")
    # the page asks for PLOTLY_URL: other bytes are another URL, so it may be cached for good
    plotly_file = Assets(PLOTLY_JS, cache_control=FOREVER, prefix=PLOTLY_PREFIX)

    @app.get("/static/{name:path}", include_in_schema=False)
    async def static_file(request: Request, name: str) -> Response:
        # gzipped once, then from memory, with an ETag (issue 11: 4.8 MB of Plotly uncompressed)
        return await static.response(request, name)

    app.mount("/vendor/swagger", StaticFiles(directory=SWAGGER_DIR), name="swagger")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        # no icon: an empty answer instead of a 404 in the console of a page without one
        return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})

    @app.get("/healthz", tags=["meta"])
    async def healthz() -> dict[str, str]:  # async: no thread hop, answers under load
        """Liveness check: answers while the server can serve."""
        return {"status": "ok", "version": __version__}

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js(request: Request) -> Response:
        # served from the installed plotly package so the page works offline
        return await plotly_file.response(request)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        # every file the page loads by a URL naming its bytes, so a second visit takes them
        # all from its cache, asking nothing (it asked ~45 times, one 304 per file)
        modules = module_graph(ROOT / "static", "js/main.js")  # preloaded from the <head>
        names = [*modules, *PAGE_FILES]
        url = {name: f"/static/{name}?v={static.version(name)}" for name in names}
        imports, imports_source = import_map({f"/static/{m}": url[m] for m in modules})
        context = {
            "version": __version__,
            "plotly_url": PLOTLY_URL,
            "modules": [url[m] for m in modules],
            "url": url,
            "import_map": imports,
        }
        page = templates.TemplateResponse(request, "index.html", context)
        page.headers["Content-Security-Policy"] = policy_allowing(imports_source)
        return page

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        context = {"version": __version__, "pages": DOC_PAGES, "page": None}
        return templates.TemplateResponse(request, "docs.html", context)

    @app.get("/docs/{name}", include_in_schema=False)
    def doc_file(request: Request, name: str) -> Response:
        """A document beside the OpenAPI pages: /docs/<page> (rendered by docs.js from
        /docs/<page>.md, no CDN), the Markdown itself, or the frame schema's JSON."""
        if name == FRAME_SCHEMA:
            return Response(_doc_bytes(FRAME_SCHEMA), media_type="application/json")
        stem = name.removesuffix(".md")
        if stem not in DOC_PAGES:
            raise StarletteHTTPException(404)
        file, title = DOC_PAGES[stem]
        if name.endswith(".md"):
            return Response(_doc_bytes(file), media_type="text/markdown; charset=utf-8")
        _doc_bytes(file)  # 404 before a page that could only say so
        context = {"version": __version__, "pages": DOC_PAGES, "page": stem, "title": title}
        return templates.TemplateResponse(request, "docs.html", context)

    return app


def _doc_bytes(file: str) -> bytes:
    """A file of docs/ (a 404 where the docs are not installed)."""
    try:
        return (DOCS_DIR / file).read_bytes()
    except OSError:
        raise StarletteHTTPException(404) from None


def __getattr__(name: str) -> FastAPI:
    """`app.main:app` for uvicorn, built on first use: importing this module (as every test
    does) opens no store and creates no data directory."""
    if name == "app":
        globals()["app"] = built = create_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
