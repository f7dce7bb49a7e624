"""/.well-known: the JWK Set, so that other services can verify access tokens themselves."""

from .api import Blueprint
from .schemas import JwksSchema
from .tokens import codec

blp = Blueprint(
    "wellknown", __name__, url_prefix="/.well-known", description="Keys for other services"
)

# Long enough to spare the app, short enough that a rotation's new key is seen soon (README).
CACHE = {"Cache-Control": "public, max-age=300"}
CACHE_HEADERS = {
    "Cache-Control": {
        "description": "The key set may be cached for five minutes",
        "required": True,
        "schema": {"type": "string", "enum": [CACHE["Cache-Control"]]},
    }
}


@blp.route("/jwks.json", methods=["GET"])
@blp.response(200, JwksSchema, headers=CACHE_HEADERS)
def jwks():
    """The public keys that verify this API's tokens (EdDSA). With HS256 the set is empty: the
    shared secret is never published, and tokens cannot be verified elsewhere."""
    return codec().jwks(), 200, CACHE
