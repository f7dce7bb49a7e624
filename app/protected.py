"""/protected: the demo's protected resource."""

from .api import Blueprint
from .authentication import current_principal
from .schemas import DashboardSchema

blp = Blueprint("protected", __name__, url_prefix="/protected", description="Protected resources")


@blp.route("/dashboard", methods=["GET"])
@blp.response(200, DashboardSchema)
@blp.errors(503)
@blp.token_required()
def dashboard():
    """Greet the user behind the access token."""
    return {"message": f"Welcome {current_principal().username}, this is your dashboard"}
