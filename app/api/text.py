"""POST /api/v1/text/guesses and /text/sample: a character model's next-character guesses
along a text, and text sampled from it at a temperature."""

from __future__ import annotations

from functools import lru_cache, partial

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from app.api.encoding import JSONBytesResponse
from app.api.errors import from_value_error
from app.api.forecast import ERRORS, check_work, stored_model
from app.api.limits import check_length
from app.api.schemas import MODEL_ID_PATTERN, Number
from app.rnn.sample import MAX_TEMPERATURE, next_char_guesses, sample_text
from app.rnn.tasks import TextTask

router = APIRouter(prefix="/text", tags=["text"])

MAX_SAMPLE = 2000  # characters drawn in one request


class GuessesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(pattern=MODEL_ID_PATTERN, description="a model trained on `text`")
    text: str = Field(min_length=1, description="characters of the task's vocabulary")
    top: StrictInt = Field(5, ge=1, le=20)


class SampleTextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(pattern=MODEL_ID_PATTERN, description="a model trained on `text`")
    prompt: str = Field("Shall I compare thee", min_length=1, description="the text to continue")
    length: StrictInt = Field(200, ge=1, le=MAX_SAMPLE, description="characters to draw")
    temperature: Number = Field(
        1.0,
        ge=0,
        le=MAX_TEMPERATURE,
        allow_inf_nan=False,
        description="below 1 sharper, above 1 flatter; 0 always takes the likeliest",
    )
    seed: StrictInt = Field(0, ge=0, le=2**32 - 1)
    context: StrictInt = Field(
        40, ge=1, description="characters the model reads (its training length)"
    )


@lru_cache(maxsize=1)
def _vocabulary() -> str:
    """The characters of the text task, in code order: what a character model reads."""
    return "".join(TextTask().vocabulary)


@router.post("/guesses", responses=ERRORS, summary="Top next-character guesses along a text")
async def guesses(request: Request, body: GuessesRequest) -> JSONBytesResponse:
    """After each character of `text`, the model's `top` likeliest next characters with
    their probabilities, likeliest first: `chars[t]` and `probs[t]` follow `text[t]`."""
    check_length(len(body.text), request.app.state.settings, "text")
    config, params = stored_model(request, body.model_id)
    check_work(config, 1, len(body.text), "text")
    vocabulary = _vocabulary()
    run = partial(next_char_guesses, config, params, vocabulary, body.text, body.top)
    try:
        probs, chars = await request.app.state.pool.run(run)
    except ValueError as exc:
        raise from_value_error(exc) from None
    return JSONBytesResponse(
        {"text": body.text, "vocabulary": vocabulary, "chars": chars, "probs": probs}
    )


@router.post("/sample", responses=ERRORS, summary="Text sampled from a character model")
async def sample(request: Request, body: SampleTextRequest) -> JSONBytesResponse:
    """`length` characters after `prompt`, each drawn from the model's next-character
    distribution given the last `context` characters, at `temperature`. The same seed and
    settings always give the same text."""
    settings = request.app.state.settings
    check_length(body.context, settings, "context")
    config, params = stored_model(request, body.model_id)
    # one pass per drawn character over at most `context` characters
    check_work(config, 1, body.length * min(body.context, len(body.prompt) + body.length), "length")
    vocabulary = _vocabulary()
    run = partial(
        sample_text,
        config,
        params,
        vocabulary,
        body.prompt,
        body.length,
        body.temperature,
        body.seed,
        body.context,
    )
    try:
        text = await request.app.state.pool.run(run)
    except ValueError as exc:
        raise from_value_error(exc) from None
    return JSONBytesResponse({"prompt": body.prompt, "text": text, "vocabulary": vocabulary})
