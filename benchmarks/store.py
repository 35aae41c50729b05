"""Model store benchmark (issue 10, item 8): reads beside writers, on SQLite and PostgreSQL.

Run: python benchmarks/store.py [--seconds 1] [--rounds 3] [--readers 4] [--reference COMMIT]

For each backend (SQLite in a temporary file; PostgreSQL where UNROLL_TEST_DATABASE_URL
names a server, in a schema of its own, dropped afterwards) and for two versions of
app/store.py, today's and the reference commit's (default ed4d284, before reads stopped
taking the write lock), loaded side by side in this one process:

- idle: `info()` reads per second from N reader threads over 8 models, nothing else
  running; and over one model (a link a whole class opens at once);
- beside a writer: the same while one thread uploads new models in a loop (each upload
  past the byte cap evicts one);
- during a held lock: a writer holds the store's write lock for 1 s (a slow write, or
  one waiting on a slow disk); reads completed in that second and the longest read.

The two versions alternate, round after round, and each figure is the median of its
rounds: on a busy machine, load drifts between rounds more than it does within one.
Prints one table; ratios are today / reference, measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from machine import ROOT, code_version, cpu_model, system_busy_seconds

sys.path.insert(0, str(ROOT))

from app.rnn import ModelConfig, init_params  # noqa: E402

CONFIG = ModelConfig(cell="lstm", input_size=2, hidden_size=16, output_size=1)
HOLD_S = 1.0  # how long the slow writer holds the lock


def load_store_module(commit: str | None) -> ModuleType:
    """app/store.py as of `commit` (None: the working tree), as a module of its own."""
    if commit is None:
        path = ROOT / "app" / "store.py"
    else:
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:app/store.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        path = Path(tempfile.mkdtemp(prefix="unroll-store-")) / f"store_{commit}.py"
        path.write_text(text)
    name = f"store_{commit or 'now'}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    import psycopg

    schema = f"unroll_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in url else "?"
            yield f"{url}{separator}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def readers(store: Any, ids: list[str], count: int, seconds: float) -> tuple[int, float]:
    """(reads done, longest read in s) by `count` threads reading for `seconds`."""
    stop = time.monotonic() + seconds
    done = [0] * count
    longest = [0.0] * count

    def work(index: int) -> None:
        for model_id in itertools.cycle(ids):
            started = time.monotonic()
            if started > stop:
                return
            assert store.info(model_id) is not None
            longest[index] = max(longest[index], time.monotonic() - started)
            done[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), max(longest)


def measure(module: ModuleType, database: Any, seconds: float, count: int) -> dict[str, float]:
    models = [init_params(CONFIG, seed=seed) for seed in range(2000)]
    store = module.ModelStore(database, 10**9)  # no eviction: readers' models stay
    ids = [store.put(CONFIG, params) for params in models[:8]]
    results: dict[str, float] = {}

    reads, _ = readers(store, ids, count, seconds)
    results["idle reads/s"] = reads / seconds
    store.info(ids[0])
    reads, _ = readers(store, ids[:1], count, seconds)
    results["idle reads/s, one model"] = reads / seconds

    stop = threading.Event()
    fresh = iter(models[8:])
    writes = [0]

    def writer() -> None:
        while not stop.is_set():
            store.put(CONFIG, next(fresh))
            writes[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    reads, _ = readers(store, ids, count, seconds)
    stop.set()
    thread.join()
    results["reads/s beside a writer"] = reads / seconds
    results["its uploads/s"] = writes[0] / seconds

    other = module.ModelStore(database, 10**9)  # the slow writer's own connections
    held = threading.Event()

    def slow_writer() -> None:
        with other._db.transaction() as conn:
            conn.execute("SELECT 1 FROM models")
            held.set()
            time.sleep(HOLD_S)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    held.wait()
    reads, longest = readers(store, ids, count, HOLD_S)
    thread.join()
    results["reads in the held second"] = reads
    results["longest read then (ms)"] = longest * 1000
    other.close()
    store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--reference", default="ed4d284", help="commit of the older store")
    args = parser.parse_args()
    print(
        f"Store benchmark: {args.readers} reader threads, {args.seconds:g} s per figure, "
        f"median of {args.rounds} rounds"
    )
    print(f"machine  {cpu_model()}, {os.cpu_count()} cores; code {code_version()}")
    now, before = load_store_module(None), load_store_module(args.reference)
    url = os.environ.get("UNROLL_TEST_DATABASE_URL", "")
    busy, started = system_busy_seconds(), time.monotonic()
    for backend in ["sqlite", "postgres"] if url else ["sqlite"]:
        rounds: dict[str, list[dict[str, float]]] = {"now": [], args.reference: []}
        for _ in range(args.rounds):
            for label, module in (("now", now), (args.reference, before)):
                if backend == "sqlite":
                    with tempfile.TemporaryDirectory() as tmp:
                        database: Any = Path(tmp) / "m.sqlite3"
                        rounds[label].append(measure(module, database, args.seconds, args.readers))
                else:
                    with postgres_schema(url) as schema_url:
                        rounds[label].append(
                            measure(module, schema_url, args.seconds, args.readers)
                        )
        table = {
            label: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            for label, runs in rounds.items()
        }
        print(f"\n{backend}")
        print(f"  {'figure':28} {'now':>10} {args.reference:>10} {'ratio':>8}")
        for key in table["now"]:
            a, b = table["now"][key], table[args.reference][key]
            ratio = f"{a / b:.2f}x" if b else "-"
            print(f"  {key:28} {a:10.1f} {b:10.1f} {ratio:>8}")
    if busy is not None:
        used = (system_busy_seconds() or busy) - busy
        cores = used / (time.monotonic() - started)
        print(f"\nmachine load during the run: {cores:.2f} of {os.cpu_count()} cores busy")


if __name__ == "__main__":
    main()
