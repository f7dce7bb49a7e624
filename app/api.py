"""The API layer the blueprints share: request bodies must be JSON objects within the size limit
(whatever the framing), every error answers in this API's `{"msg": ...}` shape, and every route
documents the errors it can answer, with their headers."""

import json
from typing import ClassVar
from urllib.parse import parse_qsl

from flask import current_app, request
from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest import abort
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import authentication, tokens
from .errors import MESSAGES, MISSING, json_error
from .schemas import ErrorSchema, ValidationErrorSchema

NOT_AN_OBJECT = "Request body must be a JSON object"
NOT_JSON = "Request body is not valid JSON"
# OAuth's endpoints take a form body (RFC 6749, RFC 7662); this API also takes a JSON object there.
FORM = "application/x-www-form-urlencoded"
FORM_OR_JSON = "form_or_json"
NOT_FORM_OR_JSON = "Content-Type must be application/x-www-form-urlencoded or application/json"

# Always sent with the statuses they document (errors.py), hence required.
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": 'RFC 6750: `Bearer`, with `error="invalid_token"` when a token was sent',
        "required": True,
        "schema": {"type": "string", "enum": ["Bearer", 'Bearer error="invalid_token"']},
    }
}


def read_body() -> bytes:
    """The whole body, or 413 past MAX_CONTENT_LENGTH, with a Content-Length or chunked."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if (length or 0) > limit:
        raise RequestEntityTooLarge()
    if length is None and request.environ.get("wsgi.input_terminated"):
        # Chunked: the server ends the stream where the body ends. Werkzeug's request.stream
        # stops at the limit itself, which would cut an oversized body to a parsable 16 KiB, so
        # read the server's stream to one byte past the limit to know.
        stream, wanted = request.input_stream, limit + 1
    else:
        stream, wanted = request.stream, length or 0
    body = bytearray()
    while len(body) < wanted:  # a read may return less than asked
        chunk = stream.read(wanted - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return bytes(body)


class JsonObjectParser(FlaskParser):
    """Accepts only a JSON object as the body: 415 for another content type, 400 otherwise.
    The location `form_or_json` also takes a form, read within the same size limit."""

    __location_map__: ClassVar[dict] = {
        **FlaskParser.__location_map__,
        FORM_OR_JSON: "load_form_or_json",
    }

    def load_form_or_json(self, req, schema):
        if req.mimetype == FORM:
            try:
                pairs = parse_qsl(read_body().decode(), keep_blank_values=True)
            except UnicodeDecodeError:
                abort(400, message="Request body is not valid UTF-8")
            return self._makeproxy(MultiDict(pairs), schema)
        if is_json_request(req):
            return self.load_json(req, schema)
        abort(415, message=NOT_FORM_OR_JSON)

    def load_json(self, req, schema):
        if not is_json_request(req):
            abort(415, message=MESSAGES[415])
        raw = read_body()
        if not raw.strip():
            abort(400, message=NOT_AN_OBJECT)
        try:
            body = core.parse_json(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            abort(400, message=NOT_JSON)
        except RecursionError:
            abort(400, message="Request body is nested too deeply")
        except ValueError:  # e.g. an integer longer than Python converts (4300 digits)
            abort(400, message=NOT_JSON)
        if not isinstance(body, dict):
            abort(400, message=NOT_AN_OBJECT)
        return body


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = JsonObjectParser()
    # `form_or_json` is documented as the form; the view documents the JSON alternative.
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING: ClassVar[dict] = {
        **SmorestBlueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        FORM_OR_JSON: FORM,
    }

    def errors(self, *statuses: int):
        """Document the error answers a route can give, each with its schema and headers."""
        descriptions = {
            400: "Body missing, not JSON or not an object, or a required field missing",
            401: "Authentication failed",
            403: "The current password is wrong",
            404: "No such live login of this user",
            409: "The username is taken",
            413: MESSAGES[413],
            415: MESSAGES[415],
            422: "A field breaks its rule; `errors` holds the messages per field",
            429: "Too many attempts: wait the `Retry-After` seconds",
            503: "The database did not answer",
        }
        headers = {401: WWW_AUTHENTICATE, 429: RETRY_AFTER, 503: RETRY_AFTER}

        def decorator(view):
            for status in statuses:
                view = self.alt_response(
                    status,
                    schema=ValidationErrorSchema if status == 422 else ErrorSchema,
                    description=descriptions[status],
                    headers=headers.get(status),
                )(view)
            return view

        return decorator

    def token_required(self, kind: str = tokens.ACCESS):
        """Authenticate the request with a bearer token of `kind`, and document it."""

        def decorator(view):
            guarded = authentication.token_required(kind)(view)
            guarded = self.doc(security=[{"bearerAuth": []}])(guarded)
            return self.errors(401)(guarded)

        return decorator


class Api(SmorestApi):
    """flask-smorest, answering errors in this API's `{"msg": ...}` shape."""

    ERROR_SCHEMA = ErrorSchema
    # Every route lists its own errors: no catch-all "default" response in the document.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        headers = dict(data.get("headers") or {})
        if getattr(error, "valid_methods", None):
            headers["Allow"] = ", ".join(error.valid_methods)
        messages = data.get("messages")
        if messages is not None:
            return _validation_error(error.code, messages, data.get("schema"), headers)
        message = data.get("message") or MESSAGES.get(error.code) or error.name
        return json_error(error.code, message, headers)


def _validation_error(status, messages, schema, headers):
    errors = messages.get("json") or messages.get(FORM_OR_JSON) or messages
    missing_message = getattr(schema, "missing_message", None)
    if missing_message and any(
        MISSING in field_errors
        for field_errors in errors.values()
        if isinstance(field_errors, list)
    ):
        return json_error(400, missing_message, headers)
    return json_error(status, MESSAGES[422], headers, errors=errors)
