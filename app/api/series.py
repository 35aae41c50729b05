"""POST /api/v1/series: a CSV of the user's own numbers, read into columns (and dates) for
the `custom` task; every bad line named, none silently dropped."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from pydantic import BaseModel, Field

from app.api.errors import ApiError
from app.api.schemas import BAD_BODY, ErrorOut
from app.rnn.series import MAX_VALUES, SeriesError, parse_csv

router = APIRouter(prefix="/series", tags=["series"])


class ColumnOut(BaseModel):
    name: str
    values: list[float]


class SeriesOut(BaseModel):
    """The file's numeric columns in file order, and its dates if it had a date column."""

    rows: int
    columns: list[ColumnOut]
    dates: list[str] | None = Field(description="ISO dates, ascending, one per row")


class LinesError(ApiError):
    """A 422 that also lists each bad line: {"field", "line", "reason"}."""

    def __init__(self, exc: SeriesError):
        super().__init__(422, str(exc), exc.field)
        self.problems = exc.problems

    def body(self) -> dict[str, Any]:
        lines = [
            {"field": self.field, "line": line, "reason": reason} for line, reason in self.problems
        ]
        return {**super().body(), "errors": lines}


@router.post(
    "",
    response_model=SeriesOut,
    responses={
        **BAD_BODY,
        413: {"model": ErrorOut, "description": "over max_series_bytes"},
        422: {"model": ErrorOut, "description": "bad lines, each named with its number"},
    },
    summary="Read a CSV of your own numbers",
)
async def upload_series(
    request: Request,
    file: Annotated[
        UploadFile,
        File(
            description="UTF-8 CSV: an optional header row, an optional date column "
            "(YYYY-MM-DD), one or more numeric columns"
        ),
    ],
) -> dict[str, Any]:
    """Parse the file; answer its columns and dates, ready for the `custom` task (`series`
    one column's values, `dates` the dates). A cell that is not a plain number, a missing
    cell or a date out of order is a 422 naming each such line (`errors`: line number and
    reason); entirely blank lines are skipped. Capped at `max_series_bytes` (413) and
    100,000 values.

        curl -F file=@prices.csv http://127.0.0.1:8000/api/v1/series
    """
    settings = request.app.state.settings
    limit = getattr(settings, "max_series_bytes", settings.max_upload_bytes)
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, f"file: over the limit of {limit} bytes", "file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(422, f"file: not UTF-8 text (byte {exc.start})", "file") from None
    try:
        series = await request.app.state.pool.run(parse_csv, text, "file", MAX_VALUES)
    except SeriesError as exc:
        raise LinesError(exc) from None
    except ValueError as exc:
        raise ApiError(422, str(exc), "file") from None
    return {
        "rows": series.length,
        "columns": [{"name": n, "values": v.tolist()} for n, v in series.columns.items()],
        "dates": series.dates,
    }
