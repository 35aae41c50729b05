"""Upload refusal benchmark (issue 10, item 6): hostile weight files against POST /models.

Run: python benchmarks/uploads.py [--repeat 5] [--reference-layers 100000]

Each file is a few hundred bytes to a few hundred kilobytes whose headers declare far
more than the caps allow (or are malformed). It is posted to an in-process app at the
default caps; the figure is the median wall time to the 4xx and the answer itself. For
scale, the reference reads the same kind of file (a stored config of
`--reference-layers` layers) the way uploads did before the header checks: straight
into `weights_from_bytes`, whose parameter list grows with the declared layers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
import zipfile

import numpy as np
import safetensors.numpy
from machine import ROOT, code_version, cpu_model

sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from app.main import create_app  # noqa: E402
from app.rnn import ModelConfig, weights_from_bytes  # noqa: E402
from app.settings import Settings  # noqa: E402

CONFIG = ModelConfig(cell="rnn_tanh", input_size=1, hidden_size=1)


def stored_config(**fields: int) -> bytes:
    metadata = {"unroll_config": json.dumps({**CONFIG.to_dict(), **fields})}
    return safetensors.numpy.save({"rnn.weight_ih_l0": np.zeros((1, 1))}, metadata=metadata)


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


FILES = {
    "stored config num_layers=10**6": stored_config(num_layers=10**6),
    "stored config num_layers=10**7": stored_config(num_layers=10**7),
    "tensor name weight_ih_l99999999": safetensors.numpy.save(
        {
            "rnn.weight_ih_l99999999": np.zeros((1, 1)),
            "fc.weight": np.zeros((1, 1)),
            "fc.bias": np.zeros(1),
        }
    ),
    "npz entry that is not .npy data": zipped({"rnn.weight_hh_l0.npy": b"hello world"}),
    "npz of 5000 empty entries": zipped({f"m{i}.npy": b"" for i in range(5000)}),
}


def timed(call, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def traced_peak(call) -> int:
    """Peak bytes Python allocated during call()."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reference-layers", type=int, default=100_000)
    args = parser.parse_args()
    print("Upload refusals: POST /api/v1/models at the default caps, in-process")
    print(f"machine  {cpu_model()}; code {code_version()}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        TestClient(create_app(Settings(data_dir=tmp))) as client,
    ):
        for name, data in FILES.items():

            def post(data: bytes = data):
                return client.post("/api/v1/models", files={"file": ("w.bin", data)})

            seconds, response = timed(post, args.repeat)
            peak = traced_peak(post)  # a run of its own: tracing slows everything down
            body = response.json()  # type: ignore[attr-defined]
            print(f"\n{name} ({len(data)} bytes)")
            print(
                f"  {response.status_code} in {seconds * 1000:.1f} ms, peak {peak / 2**20:.1f} MiB"  # type: ignore[attr-defined]
                f" (Python allocations)"
            )
            print(f"  {body['detail'][:150]}")
    layers = args.reference_layers
    data = stored_config(num_layers=layers)

    def read() -> None:
        with contextlib.suppress(ValueError):
            weights_from_bytes(data)

    seconds, _ = timed(read, 1)
    peak = traced_peak(read)
    print(
        f"\nreference: weights_from_bytes on a stored config of {layers} layers (the "
        f"path uploads took before): {seconds * 1000:.0f} ms, peak {peak / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
