"""The API layer the blueprints share: request bodies must be JSON objects, and every error,
validation included, answers in this API's `{"msg": ...}` shape."""

import json

from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest import abort
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from .errors import MESSAGES, MISSING, json_error

NOT_AN_OBJECT = "Request body must be a JSON object"
NOT_JSON = "Request body is not valid JSON"


class JsonObjectParser(FlaskParser):
    """Accepts only a JSON object as the body: 415 for another content type, 400 otherwise."""

    def _raw_load_json(self, req):
        if not is_json_request(req):
            abort(415, message=MESSAGES[415])
        raw = req.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
        if not raw.strip():
            abort(400, message=NOT_AN_OBJECT)
        try:
            body = core.parse_json(raw)
        except json.JSONDecodeError:
            raise  # webargs answers it through _handle_invalid_json_error
        except RecursionError:
            abort(400, message="Request body is nested too deeply")
        except ValueError:  # e.g. an integer longer than Python converts (4300 digits)
            abort(400, message=NOT_JSON)
        if not isinstance(body, dict):
            abort(400, message=NOT_AN_OBJECT)
        return body

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        abort(400, message=NOT_JSON)


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = JsonObjectParser()


class Api(SmorestApi):
    """flask-smorest, answering errors in this API's `{"msg": ...}` shape."""

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
    errors = messages.get("json", messages)
    missing_message = getattr(schema, "missing_message", None)
    if missing_message and any(
        MISSING in field_errors
        for field_errors in errors.values()
        if isinstance(field_errors, list)
    ):
        return json_error(400, missing_message, headers)
    return json_error(status, MESSAGES[422], headers, errors=errors)
