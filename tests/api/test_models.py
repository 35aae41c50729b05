"""POST /api/v1/models and GET /api/v1/models/{id}[/weights]: upload, describe, download."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import warnings
import zipfile

import numpy as np
import pytest
import safetensors.numpy
from fastapi.testclient import TestClient

from app.main import create_app
from app.rnn import ModelConfig, init_params, run_sequence, weights_from_bytes, weights_to_bytes
from app.settings import Settings

CONFIG = ModelConfig(
    cell="lstm", input_size=2, hidden_size=3, num_layers=2, bidirectional=True, output_size=2
)
PARAMS = init_params(CONFIG, seed=7)
SAFETENSORS = weights_to_bytes(CONFIG, PARAMS, "safetensors")
MODEL_ID = hashlib.sha256(SAFETENSORS).hexdigest()
BAD_IDS = ["abc", "A" * 64, "0" * 63, "0" * 65, "g" * 64, "%00" * 3, "0" * 64 + "%0A"]


def upload(client: TestClient, data: bytes, filename: str = "model.safetensors", **form):
    return client.post("/api/v1/models", files={"file": (filename, data)}, data=form)


def small_model(seed: int) -> bytes:
    config = ModelConfig(cell="gru", input_size=1, hidden_size=3)
    return weights_to_bytes(config, init_params(config, seed=seed), "safetensors")


def state_dict(cell_rows: int = 4, input_size: int = 3, hidden: int = 5, outputs: int = 2):
    """A PyTorch-style state_dict of nn.LSTM (or RNN/GRU) + nn.Linear, as float32."""
    rng = np.random.default_rng(0)
    rows = cell_rows * hidden
    tensors = {
        "lstm.weight_ih_l0": rng.normal(size=(rows, input_size)),
        "lstm.weight_hh_l0": rng.normal(size=(rows, hidden)),
        "lstm.bias_ih_l0": rng.normal(size=rows),
        "lstm.bias_hh_l0": rng.normal(size=rows),
        "fc.weight": rng.normal(size=(outputs, hidden)),
        "fc.bias": rng.normal(size=outputs),
    }
    return {name: value.astype(np.float32) for name, value in tensors.items()}


def assert_error(response, status: int, field: str | None, *, detail_starts: str = ""):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"detail", "field"}, body
    assert body["field"] == field, body
    assert body["detail"].startswith(detail_starts), body
    return body


def test_upload_safetensors_then_npz_of_the_same_weights_gets_the_same_id(client):
    first = upload(client, SAFETENSORS)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["model_id"] == MODEL_ID and body["created"] is True
    assert body["config"] == CONFIG.to_dict()
    assert body["shapes"]["rnn.weight_ih_l1_reverse"] == [12, 6]
    assert body["shapes"]["head.weight"] == [2, 6]
    assert body["num_params"] == sum(value.size for value in PARAMS.values())
    assert body["size_bytes"] == len(SAFETENSORS)
    assert first.headers["location"].endswith(f"/api/v1/models/{MODEL_ID}")

    npz = upload(client, weights_to_bytes(CONFIG, PARAMS, "npz"), "model.npz")
    assert npz.status_code == 200, npz.text
    assert npz.json()["model_id"] == MODEL_ID and npz.json()["created"] is False
    again = upload(client, SAFETENSORS, "renamed.bin")
    assert again.status_code == 200 and again.json()["model_id"] == MODEL_ID
    assert client.app.state.store.total_bytes() == len(SAFETENSORS)


def test_plain_state_dict_uploads_with_an_inferred_config(client):
    tensors = state_dict()
    data = safetensors.numpy.save(tensors)  # no metadata: a state_dict, not an Unroll file
    r = upload(client, data, head="classification", output_mode="last")
    assert r.status_code == 201, r.text
    config = r.json()["config"]
    assert config == {
        "cell": "lstm",
        "input_size": 3,
        "hidden_size": 5,
        "num_layers": 1,
        "bidirectional": False,
        "output_size": 2,
        "head": "classification",
        "output_mode": "last",
    }
    weights = client.get(f"/api/v1/models/{r.json()['model_id']}/weights")
    stored = safetensors.numpy.load(weights.content)
    np.testing.assert_array_equal(stored["rnn.weight_hh_l0"], tensors["lstm.weight_hh_l0"])
    np.testing.assert_array_equal(stored["head.bias"], tensors["fc.bias"])

    plain = state_dict(cell_rows=1)
    buffer = io.BytesIO()
    np.savez(buffer, **plain)
    r = upload(client, buffer.getvalue(), "rnn.npz", nonlinearity="relu")
    assert r.status_code == 201, r.text
    assert r.json()["config"]["cell"] == "rnn_relu"


def test_explicit_config_overrides_the_inferred_one(client):
    data = safetensors.numpy.save(state_dict(cell_rows=3))
    config = {"cell": "gru", "input_size": 3, "hidden_size": 5, "output_size": 2}
    r = upload(client, data, config=json.dumps(config))
    assert r.status_code == 201, r.text
    assert r.json()["config"]["cell"] == "gru"
    wrong = {**config, "hidden_size": 4}
    r = upload(client, data, config=json.dumps(wrong))
    assert_error(r, 422, "file", detail_starts="file: ")
    assert "shape" in r.json()["detail"]


def test_get_info_and_download_both_formats_bit_identical(client):
    upload(client, SAFETENSORS)
    info = client.get(f"/api/v1/models/{MODEL_ID}")
    assert info.status_code == 200, info.text
    body = info.json()
    assert body["model_id"] == MODEL_ID and "created" not in body
    assert body["config"] == CONFIG.to_dict() and body["size_bytes"] == len(SAFETENSORS)
    assert body["created_at"] <= body["last_used_at"]

    st = client.get(f"/api/v1/models/{MODEL_ID}/weights")
    assert st.status_code == 200
    assert st.headers["content-type"] == "application/octet-stream"
    disposition = st.headers["content-disposition"]
    assert disposition == f'attachment; filename="{MODEL_ID[:12]}.safetensors"'
    assert st.content == SAFETENSORS and hashlib.sha256(st.content).hexdigest() == MODEL_ID

    npz = client.get(f"/api/v1/models/{MODEL_ID}/weights", params={"format": "npz"})
    assert npz.status_code == 200
    assert npz.headers["content-disposition"].endswith(f'filename="{MODEL_ID[:12]}.npz"')
    for data, fmt in ((st.content, "safetensors"), (npz.content, "npz")):
        config, params = weights_from_bytes(data, fmt)
        assert config == CONFIG
        for name, value in PARAMS.items():
            assert params[name].tobytes() == value.tobytes(), (fmt, name)
    with np.load(io.BytesIO(npz.content), allow_pickle=False) as archive:
        assert archive["rnn.weight_hh_l0"].tobytes() == PARAMS["rnn.weight_hh_l0"].tobytes()

    r = client.get(f"/api/v1/models/{MODEL_ID}/weights", params={"format": "pickle"})
    assert_error(r, 422, "format")


def test_trace_by_model_id_matches_run_sequence(client):
    upload(client, SAFETENSORS)
    inputs = [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]]
    targets = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]
    body = {"config": CONFIG.to_dict(), "model_id": MODEL_ID, "inputs": inputs, "targets": targets}
    r = client.post("/api/v1/trace", json=body)
    assert r.status_code == 200, r.text
    ref = run_sequence(CONFIG, PARAMS, inputs, targets, jacobians=True)
    got = r.json()
    np.testing.assert_allclose(got["outputs"], ref.outputs, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["hidden"], ref.hidden, rtol=1e-12, atol=1e-15)
    assert got["loss"] == pytest.approx(ref.loss, rel=1e-12)
    for name, value in ref.grads.items():
        np.testing.assert_allclose(got["grads"][name], value, rtol=1e-12, atol=1e-15)

    missing = client.post("/api/v1/trace", json={**body, "model_id": "f" * 64})
    assert_error(missing, 404, "model_id")


def test_a_second_app_on_the_same_data_dir_finds_the_model(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path))) as first:
        assert upload(first, SAFETENSORS).status_code == 201
    with TestClient(create_app(Settings(data_dir=tmp_path))) as second:
        r = second.get(f"/api/v1/models/{MODEL_ID}")
        assert r.status_code == 200 and r.json()["model_id"] == MODEL_ID
        assert upload(second, SAFETENSORS).status_code == 200
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'store.db'}"
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=url))) as other:
        assert other.get(f"/api/v1/models/{MODEL_ID}").status_code == 404
        assert upload(other, SAFETENSORS).status_code == 201
    assert (tmp_path / "elsewhere" / "store.db").exists()


def test_unsupported_database_url_fails_at_startup(tmp_path):
    with pytest.raises(ValueError, match="^UNROLL_DATABASE_URL: expected sqlite"):
        create_app(Settings(data_dir=tmp_path, database_url="mysql://db/unroll"))


def test_lru_eviction_keeps_the_recently_used(tmp_path):
    size = len(small_model(0))
    settings = Settings(data_dir=tmp_path, max_store_bytes=int(2.5 * size))
    with TestClient(create_app(settings)) as client:
        a, b = (upload(client, small_model(seed)).json()["model_id"] for seed in (0, 1))
        assert client.get(f"/api/v1/models/{a}/weights").status_code == 200  # a used after b
        c = upload(client, small_model(2)).json()["model_id"]
        assert client.get(f"/api/v1/models/{b}").status_code == 404
        assert client.get(f"/api/v1/models/{a}").status_code == 200
        assert client.get(f"/api/v1/models/{c}").status_code == 200
        # a trace by id is a use as well: now c is the least recently used
        config = ModelConfig(cell="gru", input_size=1, hidden_size=3).to_dict()
        trace = {"config": config, "model_id": a, "inputs": [[0.5]]}
        assert client.post("/api/v1/trace", json=trace).status_code == 200
        d = upload(client, small_model(3)).json()["model_id"]
        assert client.get(f"/api/v1/models/{c}").status_code == 404
        assert {client.get(f"/api/v1/models/{x}").status_code for x in (a, d)} == {200}


def test_a_model_larger_than_the_store_is_413(tmp_path):
    settings = Settings(data_dir=tmp_path, max_store_bytes=len(SAFETENSORS) - 1)
    with TestClient(create_app(settings)) as client:
        r = upload(client, SAFETENSORS)
        assert_error(r, 413, "file", detail_starts="file: model: ")


def test_oversize_upload_is_413(tmp_path):
    settings = Settings(data_dir=tmp_path, max_upload_bytes=len(SAFETENSORS) - 1)
    with TestClient(create_app(settings)) as client:
        r = upload(client, SAFETENSORS)
        body = assert_error(r, 413, "file")
        assert body["detail"] == f"file: upload is over the limit of {len(SAFETENSORS) - 1} bytes"
        ok = upload(client, small_model(0))
        assert ok.status_code == 201


def _npz(**entries) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=True, **entries)
    return buffer.getvalue()


BAD_FILES = {
    "pickle": pickle.dumps({"rnn.weight_ih_l0": np.zeros((4, 1))}),
    "empty": b"",
    "text": b"hello, this is not a weights file",
    "truncated safetensors": SAFETENSORS[: len(SAFETENSORS) // 2],
    "truncated npz": weights_to_bytes(CONFIG, PARAMS, "npz")[:300],
    "npz with an object array": _npz(**{"lstm.weight_ih_l0": np.array([{"a": 1}], dtype=object)}),
    "int tensors": safetensors.numpy.save({"rnn.weight_ih_l0": np.zeros((4, 1), dtype=np.int32)}),
    "no head": safetensors.numpy.save(
        {k: v for k, v in state_dict().items() if not k.startswith("fc.")}
    ),
    "head without bias": safetensors.numpy.save(
        {k: v for k, v in state_dict().items() if k != "fc.bias"}
    ),
    "no recurrent layer": safetensors.numpy.save({"fc.weight": np.zeros((2, 3))}),
    "stray tensor": safetensors.numpy.save({**state_dict(), "lstm.extra": np.zeros(3)}),
    "wrong shape": safetensors.numpy.save(
        {**state_dict(), "lstm.weight_hh_l0": np.zeros((20, 4), dtype=np.float32)}
    ),
    "nan": safetensors.numpy.save(
        {**state_dict(), "fc.bias": np.array([np.nan, 0.0], dtype=np.float32)}
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_are_422_naming_file(client, name):
    r = upload(client, BAD_FILES[name])
    assert_error(r, 422, "file", detail_starts="file: ")
    assert client.app.state.store.total_bytes() == 0


@pytest.mark.parametrize(
    ("form", "field", "starts"),
    [
        ({"config": "{nope"}, "config", "config: malformed JSON"),
        ({"config": '{"cell": "lstm", "colour": "red"}'}, "config.colour", "config.colour: "),
        ({"config": "[1, 2]"}, "config", "config: "),
        ({"config": '{"hidden_size": 0}'}, "config.hidden_size", "config.hidden_size: "),
        (
            {"config": '{"head": "classification", "output_size": 1}'},
            "config.output_size",
            "config.output_size: ",
        ),
        ({"config": '{"hidden_size": 500}'}, "config.hidden_size", "config.hidden_size: 500 is"),
        ({"nonlinearity": "sigmoid"}, "nonlinearity", "nonlinearity: "),
        ({"head": "ranking"}, "head", "head: "),
    ],
)
def test_bad_form_fields_are_422_naming_them(client, form, field, starts):
    r = upload(client, SAFETENSORS, **form)
    assert_error(r, 422, field, detail_starts=starts)


def test_inferred_config_over_the_caps_is_422(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, max_hidden_size=4))) as client:
        r = upload(client, safetensors.numpy.save(state_dict(hidden=5)))
        assert_error(r, 422, "config.hidden_size", detail_starts="config.hidden_size: 5 is over")


def test_missing_file_field_is_422(client):
    r = client.post("/api/v1/models", data={"config": "{}"})
    assert_error(r, 422, "file")
    r = client.post("/api/v1/models", files={"weights": ("m.safetensors", SAFETENSORS)})
    assert_error(r, 422, "file")
    r = client.post("/api/v1/models", json={"file": "abc"})
    assert_error(r, 422, "file")


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_malformed_ids_are_422_naming_model_id(client, bad_id):
    for suffix in ("", "/weights"):
        r = client.get(f"/api/v1/models/{bad_id}{suffix}")
        assert_error(r, 422, "model_id", detail_starts="model_id: ")


@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd"]
)
def test_path_traversal_is_404(client, path):
    for suffix in ("", "/weights"):
        r = client.get(f"/api/v1/models/{path}{suffix}")
        assert r.status_code == 404, r.text
        assert set(r.json()) >= {"detail", "field"}


def test_unknown_id_is_404(client):
    for suffix in ("", "/weights", "/weights?format=npz"):
        r = client.get(f"/api/v1/models/{'e' * 64}{suffix}")
        assert_error(r, 404, "model_id", detail_starts=f"model_id: no stored model {'e' * 64}")


def test_openapi_documents_the_model_endpoints(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/api/v1/models"]["post"]
    info = spec["paths"]["/api/v1/models/{model_id}"]["get"]
    weights = spec["paths"]["/api/v1/models/{model_id}/weights"]["get"]
    for operation in (post, info, weights):
        assert operation["summary"] and operation["description"]
        assert operation["tags"] == ["models"]
    assert {"200", "201", "413", "422"} <= set(post["responses"])
    assert {"404", "422"} <= set(info["responses"]) and {"404", "422"} <= set(weights["responses"])
    assert "application/octet-stream" in weights["responses"]["200"]["content"]
    assert spec["components"]["schemas"]["UploadOut"]["examples"][0]["created"] is True


def _stored_config_file(**config) -> bytes:
    """A tiny safetensors file whose stored config says whatever `config` says."""
    body = {**CONFIG.to_dict(), **config}
    metadata = {"unroll_config": json.dumps(body)}
    return safetensors.numpy.save({"rnn.weight_ih_l0": np.zeros((1, 1))}, metadata=metadata)


def _npz_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


DECLARED_OVER_THE_CAPS = {
    "stored config num_layers 10**6": (_stored_config_file(num_layers=10**6), "config.num_layers"),
    "stored config hidden_size 10**9": (
        _stored_config_file(hidden_size=10**9),
        "config.hidden_size",
    ),
    "tensor name weight_ih_l99999999": (
        safetensors.numpy.save({**state_dict(), "lstm.weight_ih_l99999999": np.zeros((1, 1))}),
        "config.num_layers",
    ),
    "npz tensor name weight_hh_l4": (
        _npz_of({"lstm.weight_hh_l4.npy": _npy(np.zeros((1, 1)))}),
        "config.num_layers",
    ),
    "safetensors tensor declaring 10**6 values": (
        safetensors.numpy.save({"lstm.weight_hh_l0": np.zeros((10**6,), dtype=np.float16)}),
        "file",
    ),
    "npz with 100 tensors": (
        _npz_of({f"t{i}.npy": _npy(np.zeros(1)) for i in range(100)}),
        "file",
    ),
}


@pytest.mark.parametrize("name", list(DECLARED_OVER_THE_CAPS))
def test_declared_sizes_over_the_caps_are_refused_before_any_tensor_is_read(
    client, monkeypatch, name
):
    def never(*args, **kwargs):
        raise AssertionError("the weights were read before the declared sizes were checked")

    monkeypatch.setattr("app.api.models.weights_from_bytes", never)
    data, field = DECLARED_OVER_THE_CAPS[name]
    r = upload(client, data)
    body = assert_error(r, 422, field, detail_starts=f"{field}: ")
    assert "over the limit" in body["detail"] or "more than" in body["detail"], body


def test_an_explicit_config_wins_over_a_stored_one_over_the_caps(client):
    stored = json.dumps({**CONFIG.to_dict(), "num_layers": 10**6})
    data = safetensors.numpy.save(
        {k: np.asarray(v) for k, v in PARAMS.items()}, metadata={"unroll_config": stored}
    )
    r = upload(client, data, config=json.dumps(CONFIG.to_dict()))
    assert r.status_code == 201, r.text
    assert r.json()["config"] == CONFIG.to_dict()


def _safetensors_file(header: object) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text


def _twice(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate: that is the point
        archive.writestr(name, data)
        archive.writestr(name, data)
    return buffer.getvalue()


MALFORMED_ARCHIVES = {
    "entry that is not .npy data": (
        _npz_of({"lstm.weight_hh_l0.npy": b"hello world"}),
        "file: npz: entry 'lstm.weight_hh_l0.npy' is not .npy data (the magic string",
    ),
    "5000 empty entries": (
        _npz_of({f"m{i}.npy": b"" for i in range(5000)}),
        "file: npz: 5000 entries, more than",
    ),
    "one empty entry": (
        _npz_of({"lstm.weight_hh_l0.npy": b""}),
        "file: npz: entry 'lstm.weight_hh_l0.npy' is not .npy data (EOF",
    ),
    "npy header cut short": (
        _npz_of({"lstm.weight_hh_l0.npy": _npy(np.zeros((4, 4)))[:20]}),
        "file: npz: entry 'lstm.weight_hh_l0.npy' is not .npy data",
    ),
    "npy data cut short": (
        _npz_of(
            {
                **{f"{k}.npy": _npy(v) for k, v in state_dict().items()},
                "lstm.weight_hh_l0.npy": _npy(state_dict()["lstm.weight_hh_l0"])[:-8],
            }
        ),
        "file: lstm.weight_hh_l0: unreadable npz entry",
    ),
    "the same entry twice": (
        _twice("lstm.weight_hh_l0.npy", _npy(np.zeros((1, 1)))),
        "file: npz: entry 'lstm.weight_hh_l0.npy' appears twice",
    ),
    "safetensors header that is a list": (
        _safetensors_file([1]),
        "file: data is neither safetensors nor npz",
    ),
    "safetensors shape of strings": (
        _safetensors_file({"w": {"dtype": "F64", "shape": ["x"], "data_offsets": [0, 8]}}),
        "file: w: corrupt safetensors header, shape",
    ),
    "safetensors entry that is not an object": (
        _safetensors_file({"w": 3}),
        "file: w: corrupt safetensors header entry",
    ),
    "safetensors header that is not JSON": (
        b"\x05\x00\x00\x00\x00\x00\x00\x00{nope",
        "file: safetensors: corrupt header, not JSON",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED_ARCHIVES))
def test_malformed_archives_are_422_naming_the_entry_and_the_reason(client, name):
    data, starts = MALFORMED_ARCHIVES[name]
    assert_error(upload(client, data, filename="w.npz"), 422, "file", detail_starts=starts)
    assert client.app.state.store.total_bytes() == 0


def test_a_pinned_model_survives_a_flood_of_uploads(tmp_path):
    size = len(small_model(0))
    settings = Settings(
        data_dir=tmp_path,
        max_store_bytes=int(2.5 * size),
        max_pinned_bytes=int(1.5 * size),
        max_pins_per_client=5,
    )
    with TestClient(create_app(settings)) as client:
        shared = upload(client, small_model(0)).json()["model_id"]
        r = client.post(f"/api/v1/models/{shared}/pin")
        assert r.status_code == 200 and r.json()["pinned"] is True, r.text
        assert client.post(f"/api/v1/models/{shared}/pin").json()["pinned"] is True  # no-op
        for seed in range(1, 8):  # anonymous uploads that flush the LRU several times
            assert upload(client, small_model(seed)).json()["pinned"] is False
        assert client.get(f"/api/v1/models/{shared}").json()["pinned"] is True
        assert client.get(f"/api/v1/models/{shared}/weights").content == small_model(0)
        other = upload(client, small_model(20)).json()["model_id"]
        full = client.post(f"/api/v1/models/{other}/pin")
        assert_error(full, 507, "model_id", detail_starts="model_id: pinned models take")
        assert_error(client.post(f"/api/v1/models/{'e' * 64}/pin"), 404, "model_id")
        assert client.post("/api/v1/models/abc/pin").status_code == 422


def test_each_client_pins_at_most_its_quota(tmp_path):
    settings = Settings(data_dir=tmp_path, max_pins_per_client=1)
    with TestClient(create_app(settings)) as client:
        first, second = (upload(client, small_model(s)).json()["model_id"] for s in (1, 2))
        assert client.post(f"/api/v1/models/{first}/pin").status_code == 200
        r = client.post(f"/api/v1/models/{second}/pin")
        assert_error(r, 429, "model_id", detail_starts="model_id: this client has pinned 1")


def test_an_upload_over_the_budget_is_refused_from_its_declared_config(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the weights were read before the budget was checked")

    monkeypatch.setattr("app.api.models.weights_from_bytes", never)
    # a budget of 20 kB: less than this small model's float64 copies and file together
    with TestClient(create_app(Settings(data_dir=tmp_path, max_request_bytes=20_000))) as client:
        for form in ({}, {"config": json.dumps(CONFIG.to_dict())}):  # stored, then explicit
            r = upload(client, SAFETENSORS, **form)
            body = assert_error(r, 422, "file", detail_starts="file: about ")
            assert "over this server's budget" in body["detail"], body
