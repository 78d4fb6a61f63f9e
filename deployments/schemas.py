"""Request models built from a model's :class:`~autopilot.schema.FeatureSchema`.

One pydantic row type per schema validates every request row (pydantic-core,
so a 100-row request costs well under a millisecond). Problems become a
:class:`RequestError` with an HTTP status and a message that names the field
and the problem, e.g. ``rows[3].age: Input should be a valid number``.

Accepted bodies for ``POST /v1/models/{name}/predict``::

    [{"age": 31, "plan": "a"}, ...]                       # a list of row objects
    {"rows": [{...}, ...], "key": "user-7"}               # the same, with a caller key
    {"columns": {"age": [31, 45], "plan": ["a", "b"]}}    # columnar

and for ``POST /v2/models/{name}/infer`` (Open Inference Protocol), either one
input tensor per feature (``name`` = feature, ``shape`` = ``[n]`` or
``[n, 1]``) or one ``[n, k]`` tensor with features in schema order.

Example
-------
>>> from autopilot.schema import Column, FeatureSchema
>>> s = FeatureSchema((Column("x", "numeric", nullable=False), Column("c", "categorical")),
...                   "y", "classification", ("0", "1"))
>>> p = RequestParser(s, max_rows=100)
>>> p.predict({"columns": {"x": [1, 2.5], "c": ["a", None]}}).rows
[{'x': 1.0, 'c': 'a'}, {'x': 2.5, 'c': None}]
>>> try:
...     p.predict([{"x": "high", "c": "a"}])
... except RequestError as e:
...     print(e.status, e.message)
422 rows[0].x: Input should be a valid number, unable to parse string as a number
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired

from pydantic import AfterValidator, ConfigDict, TypeAdapter, ValidationError, create_model
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from autopilot.schema import Column, FeatureSchema

__all__ = [
    "FeedbackRequest",
    "ParsedRequest",
    "RequestError",
    "RequestParser",
    "V2Request",
]

_V2_NUMERIC = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
               "UINT8", "UINT16", "UINT32", "UINT64", "BOOL"}


class RequestError(Exception):
    """A request the endpoint refuses; ``status`` is the HTTP code (4xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ParsedRequest:
    """Validated rows (feature dicts in schema order) plus the caller key if sent."""

    rows: list[dict[str, Any]]
    key: str | None = None
    request_id: str | None = None


def _finite(v: float) -> float:
    if math.isinf(v):
        raise ValueError("must be a finite number, got infinity")
    return v


def _nan_is_missing(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def _no_nan(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        raise ValueError("NaN is not allowed for this feature (not nullable)")
    return v


def _column_type(col: Column) -> Any:
    if col.kind == "numeric":
        if col.nullable:
            # NaN from a lenient JSON encoder means "missing", as in the training data.
            return Annotated[float | None, AfterValidator(_nan_is_missing),
                             AfterValidator(lambda v: v if v is None else _finite(v))]
        return Annotated[float, AfterValidator(_no_nan), AfterValidator(_finite)]
    base = str | int | float | bool  # levels arrive as labels or numbers; coerced later
    if col.nullable:
        return Annotated[base | None, AfterValidator(_nan_is_missing)]
    return Annotated[base, AfterValidator(_no_nan)]


def _row_type(schema: FeatureSchema) -> Any:
    fields = {c.name: _column_type(c) for c in schema.columns}
    row = TypedDict("Row", fields)  # type: ignore[misc]  # functional form allows any names
    row.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return row


def _format(exc: ValidationError, prefix: str, names: tuple[str, ...]) -> str:
    """Pydantic errors as ``field: problem``, one per field, at most five fields."""
    by_path: dict[str, list[str]] = {}
    for err in exc.errors():
        path = prefix
        for p in err["loc"]:
            if isinstance(p, int):
                path += f"[{p}]"
            elif p in names or err["type"] == "extra_forbidden":
                # Other strings are union-member tags pydantic adds; they only confuse.
                path += f".{p}"
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "missing feature"
        elif err["type"] == "extra_forbidden":
            msg = "unknown feature (not in the model's schema)"
        by_path.setdefault(path, []).append(msg.removeprefix("Value error, "))
    parts = []
    for path, msgs in list(by_path.items())[:5]:
        if len(msgs) > 1 and all(m.startswith("Input should be a valid ") for m in msgs):
            kinds = [m.removeprefix("Input should be a valid ").split(",")[0] for m in msgs]
            msgs = [f"wrong type, expected a {', '.join(kinds[:-1])} or {kinds[-1]}"]
        parts.append(f"{path}: {'; '.join(dict.fromkeys(msgs))}")
    if len(by_path) > 5:
        parts.append(f"(+{len(by_path) - 5} more fields)")
    return "; ".join(parts)


# ------------------------------------------------------------------ docs models

FeedbackRequest = create_model(
    "FeedbackRequest",
    request_id=(str | None, None),
    label=(Any, None),
    labels=(list[dict[str, Any]] | None, None),
)


class _V2Input(TypedDict):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: NotRequired[dict[str, Any]]


V2Request = create_model(
    "V2InferenceRequest",
    id=(str | None, None),
    inputs=(list[_V2Input], ...),
    parameters=(dict[str, Any] | None, None),
)


class RequestParser:
    """Validate request bodies against one feature schema.

    Parameters
    ----------
    schema : FeatureSchema
        The model's input schema (features in model order).
    max_rows : int
        Rows allowed per request; more gives a 413 naming ``rows``.
    """

    def __init__(self, schema: FeatureSchema, max_rows: int) -> None:
        self.schema = schema
        self.names = schema.names
        self.max_rows = int(max_rows)
        self._row = _row_type(schema)
        # A type built at runtime from the schema, which mypy cannot check as a type.
        row_list: Any = list[self._row]  # type: ignore[name-defined]
        self._rows = TypeAdapter(row_list)
        self.predict_model = create_model(
            "PredictRequest",
            rows=(row_list | None, None),
            columns=(dict[str, list[Any]] | None, None),
            key=(str | None, None),
        )

    # -------------------------------------------------------------- helpers

    def _check_count(self, n: int, field: str) -> None:
        if n == 0:
            raise RequestError(422, f"{field}: at least one row is required")
        if n > self.max_rows:
            raise RequestError(413, f"{field}: too many rows ({n} > max_rows {self.max_rows})")

    def _validate_rows(self, rows: Any, prefix: str) -> list[dict[str, Any]]:
        if not isinstance(rows, list):
            raise RequestError(422, f"{prefix}: must be a list of row objects")
        self._check_count(len(rows), prefix)
        try:
            return self._rows.validate_python(rows)
        except ValidationError as exc:
            raise RequestError(422, _format(exc, prefix, self.names)) from None

    def _columns_to_rows(self, columns: Any, prefix: str) -> list[dict[str, Any]]:
        if not isinstance(columns, dict) or not columns:
            raise RequestError(422, f"{prefix}: must be an object of feature -> list of values")
        lengths = {}
        for name, values in columns.items():
            if not isinstance(values, list):
                raise RequestError(422, f"{prefix}.{name}: must be a list of values")
            lengths[name] = len(values)
        if len(set(lengths.values())) > 1:
            raise RequestError(422, f"{prefix}: columns differ in length {lengths}")
        unknown = [n for n in columns if n not in self.names]
        if unknown:
            raise RequestError(422, f"{prefix}.{unknown[0]}: unknown feature "
                                    "(not in the model's schema)")
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise RequestError(422, f"{prefix}.{missing[0]}: missing feature")
        n = next(iter(lengths.values()))
        self._check_count(n, prefix)
        names = list(columns)
        rows = [dict(zip(names, vals, strict=True))
                for vals in zip(*(columns[k] for k in names), strict=True)]
        try:
            return self._rows.validate_python(rows)
        except ValidationError as exc:
            # Re-express rows[i].f as columns.f[i]: that is what the caller sent.
            parts = []
            for err in exc.errors()[:5]:
                loc = [p for p in err["loc"] if isinstance(p, int) or p in self.names]
                i = loc[0] if loc and isinstance(loc[0], int) else "?"
                f = loc[1] if len(loc) > 1 else "?"
                msg = err["msg"].removeprefix("Value error, ")
                parts.append(f"{prefix}.{f}[{i}]: {msg}")
            raise RequestError(422, "; ".join(parts)) from None

    # --------------------------------------------------------------- bodies

    def predict(self, body: Any) -> ParsedRequest:
        """Validate a ``/v1/.../predict`` body."""
        if isinstance(body, list):
            return ParsedRequest(self._validate_rows(body, "rows"))
        if not isinstance(body, dict):
            raise RequestError(422, "body: must be a list of rows or an object with "
                                    "'rows' or 'columns'")
        extra = sorted(set(body) - {"rows", "columns", "key"})
        if extra:
            raise RequestError(422, f"{extra[0]}: unknown field (expected rows, columns, key)")
        key = body.get("key")
        if key is not None and not isinstance(key, str | int):
            raise RequestError(422, "key: must be a string")
        key = None if key is None else str(key)
        if ("rows" in body) == ("columns" in body):
            raise RequestError(422, "body: give exactly one of 'rows' or 'columns'")
        if "rows" in body:
            return ParsedRequest(self._validate_rows(body["rows"], "rows"), key)
        return ParsedRequest(self._columns_to_rows(body["columns"], "columns"), key)

    def v2(self, body: Any) -> ParsedRequest:
        """Validate an Open Inference Protocol ``infer`` body."""
        if not isinstance(body, dict):
            raise RequestError(422, "body: must be an object with 'inputs'")
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise RequestError(422, "inputs: must be a non-empty list of tensors")
        rid = body.get("id")
        params = body.get("parameters") or {}
        key = params.get("key") if isinstance(params, dict) else None
        for i, t in enumerate(inputs):
            if not isinstance(t, dict):
                raise RequestError(422, f"inputs[{i}]: must be a tensor object")
            for f in ("name", "shape", "data"):
                if f not in t:
                    raise RequestError(422, f"inputs[{i}].{f}: missing")
            if not isinstance(t["shape"], list) or not all(
                isinstance(s, int) and s >= 0 for s in t["shape"]
            ):
                raise RequestError(422, f"inputs[{i}].shape: must be a list of sizes")
            if not isinstance(t["data"], list):
                raise RequestError(422, f"inputs[{i}].data: must be a list")
        by_feature = len(inputs) > 1 or inputs[0]["name"] in self.names
        if by_feature:
            columns = {}
            for i, t in enumerate(inputs):
                data = _flatten(t["data"])
                if len(t["shape"]) not in (1, 2) or (
                    len(t["shape"]) == 2 and t["shape"][1] != 1
                ):
                    raise RequestError(422, f"inputs[{i}].shape: a feature tensor is [n] or "
                                            f"[n, 1], got {t['shape']}")
                if t["shape"][0] != len(data):
                    raise RequestError(422, f"inputs[{i}].data: {len(data)} values for shape "
                                            f"{t['shape']}")
                columns[str(t["name"])] = data
            rows = self._columns_to_rows(columns, "inputs")
        else:
            t = inputs[0]
            k = len(self.names)
            data = _flatten(t["data"])
            shape = t["shape"]
            if len(shape) != 2 or shape[1] != k:
                raise RequestError(422, f"inputs[0].shape: expected [n, {k}] with features "
                                        f"{list(self.names)} in order, got {shape}")
            if len(data) != shape[0] * k:
                raise RequestError(422, f"inputs[0].data: {len(data)} values for shape {shape}")
            self._check_count(shape[0], "inputs[0]")
            raw = [dict(zip(self.names, data[r * k:(r + 1) * k], strict=True))
                   for r in range(shape[0])]
            rows = self._validate_rows(raw, "inputs[0].rows")
        return ParsedRequest(rows, None if key is None else str(key),
                             None if rid is None else str(rid))

    def feedback(self, body: Any) -> list[tuple[str, Any]]:
        """Validate labels: ``{"request_id", "label"}`` or ``{"labels": [...]}``."""
        if not isinstance(body, dict):
            raise RequestError(422, "body: must be an object with request_id and label, "
                                    "or labels")
        if "labels" in body:
            items, prefix = body["labels"], "labels"
            if not isinstance(items, list):
                raise RequestError(422, "labels: must be a list of {request_id, label}")
        else:
            items, prefix = [body], "body"
        self._check_count(len(items), prefix)
        out = []
        for i, it in enumerate(items):
            where = f"{prefix}[{i}]" if prefix == "labels" else prefix
            if not isinstance(it, dict):
                raise RequestError(422, f"{where}: must be an object")
            rid = it.get("request_id")
            if not isinstance(rid, str) or not rid:
                raise RequestError(422, f"{where}.request_id: missing or not a string")
            label = it.get("label")
            if label is None or (isinstance(label, float) and not math.isfinite(label)):
                raise RequestError(422, f"{where}.label: missing, null or not finite")
            if not isinstance(label, str | int | float | bool):
                raise RequestError(422, f"{where}.label: must be a number, string or boolean")
            out.append((rid, label))
        return out


def _flatten(data: list[Any]) -> list[Any]:
    if data and isinstance(data[0], list):
        return [v for row in data for v in (row if isinstance(row, list) else [row])]
    return data
